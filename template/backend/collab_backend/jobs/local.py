"""Local mode's launcher: the harness as a subprocess of the backend, on this machine.

Each run gets a private folder (mode 0700) holding copies of the harness (the central bucket's
harness folder) and of the submission (exactly the files the launch checked: a file whose size
or hash changed since refuses the launch), an empty state
folder, a home folder and the log. The child starts in its own session with an environment that
carries no token: only a short list of harmless variables passes (PATH, locale, time zone, GPU
selection), and none whose name looks like a credential. A waiter thread per run stops it at the
timeout (SIGTERM to its process group, whose id is the child's PID, then SIGKILL) and reaps it.
The group is only signalled while the child is unreaped (its exit is seen with `waitid(WNOWAIT)`),
so its PID cannot have been reused. A slot of `max_running` is reserved before the copy starts.
`close()` stops and reaps every run still going and removes the folders.

Local mode is a rehearsal, not a sandbox: the harness runs as the backend's user.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from collab_backend.jobs.base import LauncherError, LaunchRequest, Progress, redact
from collab_backend.jobs.summary import MAX_SUMMARY_BYTES
from collab_backend.storage import Storage, StorageError, TooLarge, check_path

log = logging.getLogger("collab_backend.jobs")

MAX_HARNESS_FILES = 10_000
MAX_LOG_READ = 256 * 1024
_PASSED = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "SYSTEMROOT", "LD_LIBRARY_PATH"})
_PASSED_PREFIXES = ("LC_", "CUDA_", "NVIDIA_")
_SYSTEM_PREFIXES = frozenset({"/", "/usr", "/usr/local"})
_CREDENTIAL = re.compile(r"TOKEN|SECRET|PASS|KEY|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)


def job_environment(home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: harmless variables of `base` (the backend's own), a private home, no token."""
    source = os.environ if base is None else base
    env = {
        name: value
        for name, value in source.items()
        if (name in _PASSED or name.startswith(_PASSED_PREFIXES)) and not _CREDENTIAL.search(name)
    }
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(home),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # huggingface_hub inside the job finds no token: none in the environment, none on disk.
            "HF_HOME": str(home / ".hf"),
            "HF_TOKEN_PATH": str(home / ".hf" / "no-token"),
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        }
    )
    return env


def _local_paths(root: Path) -> list[tuple[str, str]]:
    """The backend's own paths a run's output may show, longest first, and what a reader sees instead.

    The run's folder is dropped, so `<root>/harness/run.py` reads `/harness/run.py` as in a Hub
    job; the backend's Python installation (its executable, its packages) reads `<python>`.
    """
    pairs = {str(root): "", str(root.resolve()): ""}
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        if prefix not in _SYSTEM_PREFIXES:  # a system Python's /usr says nothing about this machine
            pairs.setdefault(prefix, "<python>")
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


@dataclass
class _Run:
    job_id: str
    root: Path
    process: subprocess.Popen[bytes]
    deadline: float
    done: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False
    canceled: bool = False
    waiter: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # signalling vs reaping
    reaped: bool = False

    @property
    def log_path(self) -> Path:
        return self.root / "log.txt"


class LocalLauncher:
    """Runs the harness as a local subprocess; handles are job ids."""

    kind = "local"

    def __init__(
        self,
        storage: Storage,
        *,
        workdir: Path | None = None,
        python: str = sys.executable,
        cpu_args: tuple[str, ...] = (),
        max_running: int = 2,
        max_timeout_s: float | None = None,
        kill_grace_s: float = 5.0,
    ) -> None:
        self.storage, self.python, self.cpu_args = storage, python, tuple(cpu_args)
        self.max_running, self.max_timeout_s, self.kill_grace_s = max_running, max_timeout_s, kill_grace_s
        self._workdir, self._own_workdir = workdir, workdir is None
        self._runs: dict[str, _Run] = {}
        self._reserved = 0  # launches between the check of max_running and their run's registration
        self._lock = threading.Lock()
        self._closed = False

    @property
    def stand_in(self) -> bool:
        return bool(self.cpu_args)

    def _base(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="collab-jobs-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    # -- starting -----------------------------------------------------------------------------
    def launch(self, request: LaunchRequest) -> str:
        with self._lock:
            if self._closed:
                raise LauncherError("the backend is stopping")
            running = self._reserved + sum(1 for run in self._runs.values() if not run.done.is_set())
            if running >= self.max_running:
                raise LauncherError(f"{running} local job(s) are running, the most this machine runs at once")
            self._reserved += 1
        registered = False
        try:
            with self._lock:
                base = self._base()
            root = Path(tempfile.mkdtemp(prefix=f"{request.job_id}-", dir=base))
            try:
                handle = self._start(request, root)
                registered = True
                return handle
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
        finally:
            if not registered:
                with self._lock:
                    self._reserved -= 1

    def _start(self, request: LaunchRequest, root: Path) -> str:
        harness, submission, state, home = (root / name for name in ("harness", "submission", "state", "home"))
        for folder in (state, home):
            folder.mkdir()
        private: list[str] = []
        try:
            self._copy_harness(request, harness)
            self._copy_submission(request, submission)
            if request.private is not None:
                private = ["--private-dir", str(self._copy_private(request.private, root / "private"))]
        except StorageError as exc:
            raise LauncherError(f"could not copy the job's files: {exc}") from None
        entry = harness / request.entrypoint
        if not entry.is_file():
            raise LauncherError(f"the harness folder has no {request.entrypoint}")
        command = [self.python, str(entry), "--submission-dir", str(submission), "--state-dir", str(state),
                   *private, *request.options, *self.cpu_args]  # fmt: skip
        timeout = float(request.timeout_s)
        if self.max_timeout_s is not None:
            timeout = min(timeout, self.max_timeout_s)
        try:
            with (root / "log.txt").open("wb") as out:
                process = subprocess.Popen(
                    command, cwd=harness, env=job_environment(home), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            raise LauncherError(f"could not start the harness: {exc.strerror or exc}") from None
        run = _Run(request.job_id, root, process, time.monotonic() + timeout)
        run.waiter = threading.Thread(target=self._wait, args=(run,), name=f"job-{process.pid}", daemon=True)
        with self._lock:
            self._runs[request.job_id] = run
            self._reserved -= 1  # the slot is the run's now
        run.waiter.start()
        log.info("job %s started as PID %d", request.job_id, process.pid)
        return request.job_id

    def _copy_harness(self, request: LaunchRequest, harness: Path) -> None:
        prefix = request.harness_prefix
        cursor, copied = None, 0
        while True:
            page = self.storage.list(request.central_bucket, prefix, cursor=cursor)
            for info in page.items:
                copied += 1
                if copied > MAX_HARNESS_FILES:
                    raise LauncherError(f"the harness folder holds more than {MAX_HARNESS_FILES} files")
                self._write(harness, info.path[len(prefix) :], request.central_bucket, info.path)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _copy_private(self, private: tuple[str, str], folder: Path) -> Path:
        """Copy the private set (a folder of the audit bucket) into the run's folder, read-only."""
        bucket, prefix = private[0], private[1] if private[1].endswith("/") else private[1] + "/"
        folder.mkdir()
        cursor = None
        while True:
            page = self.storage.list(bucket, prefix, cursor=cursor)
            for info in page.items:
                self._write(folder, info.path[len(prefix) :], bucket, info.path)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        for path in folder.rglob("*"):
            if path.is_file():
                path.chmod(0o400)  # files read-only; the folders stay removable with the run's folder
        return folder

    def _copy_submission(self, request: LaunchRequest, submission: Path) -> None:
        """Copy exactly what the launch checked: a file whose size or hash changed since refuses the launch."""
        bucket, base = request.submission_bucket, request.submission_path + "/"
        now = self.storage.stat(bucket, [info.path for info in request.submission_files])
        for checked in request.submission_files:
            current = now.get(checked.path)
            if current is None or current.size != checked.size or (checked.hash and current.hash != checked.hash):
                raise LauncherError(f"{checked.path} changed after the launch checked it; launch again")
            self._write(submission, checked.path[len(base) :], bucket, checked.path, size=checked.size)

    def _write(self, folder: Path, relative: str, bucket: str, path: str, *, size: int | None = None) -> None:
        check_path(relative)  # bucket paths obey the path rules; checked again before touching the disk
        destination = folder / relative
        if not destination.resolve().is_relative_to(folder.resolve()):
            raise LauncherError(f"{relative} leaves the job's folder")
        try:
            data = self.storage.read(bucket, path, max_bytes=size)
        except TooLarge:
            raise LauncherError(f"{path} changed after the launch checked it; launch again") from None
        if size is not None and len(data) != size:
            raise LauncherError(f"{path} changed after the launch checked it; launch again")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)

    # -- watching -----------------------------------------------------------------------------
    def _wait(self, run: _Run) -> None:
        try:
            if not self._exited(run, max(0.0, run.deadline - time.monotonic())):
                run.timed_out = True
                log.warning("job %s ran past its timeout; stopping PID %d", run.job_id, run.process.pid)
        finally:
            self._stop(run)  # reaps the child, and ends anything it left behind in its group
            run.done.set()

    @staticmethod
    def _exited(run: _Run, timeout: float | None) -> bool:
        """Whether the child exited within `timeout` seconds (None: wait for it), without reaping it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.01
        while True:
            with run.lock:
                if run.reaped:
                    return True
                try:
                    seen = os.waitid(os.P_PID, run.process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
                except ChildProcessError:
                    return True
            if seen is not None:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 0.2)

    @staticmethod
    def _signal(run: _Run, sig: signal.Signals) -> None:
        """Signal the run's process group, only while its leader is unreaped (so its PID is still its own)."""
        with run.lock:
            if not run.reaped:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.process.pid, sig)

    def _stop(self, run: _Run) -> None:
        """SIGTERM, then SIGKILL, to the run's process group (its id is the child's PID); then reap."""
        self._signal(run, signal.SIGTERM)
        if not self._exited(run, self.kill_grace_s):
            self._signal(run, signal.SIGKILL)
            self._exited(run, None)
        self._signal(run, signal.SIGKILL)  # whatever the harness spawned and left behind
        with run.lock:
            if not run.reaped:
                run.process.wait()
                run.reaped = True

    def _run(self, handle: str) -> _Run | None:
        with self._lock:
            return self._runs.get(handle)

    def poll(self, job_id: str, handle: str) -> Progress:
        run = self._run(handle)
        if run is None:
            return Progress("lost", message="no local process runs it (the backend restarted)", started=False)
        if not run.done.is_set():
            return Progress("running", stage="RUNNING")
        code = run.process.returncode
        summary = None
        path = run.root / "state" / "summary.json"
        if path.is_file():
            with path.open("rb") as source:
                summary = source.read(MAX_SUMMARY_BYTES + 1)
        return Progress(
            "ended", stage="COMPLETED" if code == 0 else "ERROR", exit_code=code, timed_out=run.timed_out,
            canceled=run.canceled, summary=summary,
        )  # fmt: skip

    def logs(self, handle: str, tail: int) -> list[str]:
        run = self._run(handle)
        if run is None:
            return []
        try:
            with run.log_path.open("rb") as source:
                size = source.seek(0, os.SEEK_END)
                source.seek(max(0, size - MAX_LOG_READ))
                text = source.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [redact(self._neutral(run, line)) for line in text.splitlines()[-tail:]]

    @staticmethod
    def _neutral(run: _Run, line: str) -> str:
        """A log line without this machine's paths: the run's folders read as the Hub's (`/harness`, ...)."""
        for local, shown in _local_paths(run.root):
            line = line.replace(local, shown)
        return line

    def cancel(self, handle: str) -> None:
        run = self._run(handle)
        if run is not None and not run.done.is_set():
            run.canceled = True
            self._stop(run)

    def find(self, job_id: str) -> str | None:
        return None  # local runs end with the backend that started them

    def release(self, handle: str) -> None:
        with self._lock:
            run = self._runs.pop(handle, None)
        if run is not None:
            if run.waiter is not None:
                run.waiter.join()
            shutil.rmtree(run.root, ignore_errors=True)

    def close(self) -> list[str]:
        with self._lock:
            self._closed = True
            runs = list(self._runs.values())
        stopped = []
        for run in runs:
            if not run.done.is_set():
                run.canceled = True
                self._stop(run)
                stopped.append(run.job_id)
            if run.waiter is not None:
                run.waiter.join()
        for run in runs:
            shutil.rmtree(run.root, ignore_errors=True)
        with self._lock:
            self._runs.clear()
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        return stopped
