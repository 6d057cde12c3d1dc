"""Local mode's launcher: the harness as a subprocess of the backend, on this machine.

Each run gets a private folder (mode 0700) holding copies of the harness (the central bucket's
harness folder) and of the submission (exactly the files the launch checked), an empty state
folder, a home folder and the log. The child starts in its own session with an environment that
carries no token: only a short list of harmless variables passes (PATH, locale, time zone, GPU
selection), and none whose name looks like a credential. A waiter thread per run stops it at the
timeout (SIGTERM to its process group, whose id is the child's PID, then SIGKILL) and reaps it.
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
from collab_backend.storage import Storage, StorageError, check_path

log = logging.getLogger("collab_backend.jobs")

MAX_HARNESS_FILES = 10_000
MAX_LOG_READ = 256 * 1024
_PASSED = frozenset({"PATH", "LANG", "LANGUAGE", "TZ", "SYSTEMROOT", "LD_LIBRARY_PATH"})
_PASSED_PREFIXES = ("LC_", "CUDA_", "NVIDIA_")
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
            running = sum(1 for run in self._runs.values() if not run.done.is_set())
            if running >= self.max_running:
                raise LauncherError(f"{running} local job(s) are running, the most this machine runs at once")
            base = self._base()
        root = Path(tempfile.mkdtemp(prefix=f"{request.job_id}-", dir=base))
        try:
            return self._start(request, root)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _start(self, request: LaunchRequest, root: Path) -> str:
        harness, submission, state, home = (root / name for name in ("harness", "submission", "state", "home"))
        for folder in (state, home):
            folder.mkdir()
        try:
            self._copy_harness(request, harness)
            base = request.submission_path + "/"
            for info in request.submission_files:
                self._write(submission, info.path[len(base) :], request.submission_bucket, info.path)
        except StorageError as exc:
            raise LauncherError(f"could not copy the job's files: {exc}") from None
        entry = harness / request.entrypoint
        if not entry.is_file():
            raise LauncherError(f"the harness folder has no {request.entrypoint}")
        command = [self.python, str(entry), "--submission-dir", str(submission), "--state-dir", str(state),
                   *request.options, *self.cpu_args]  # fmt: skip
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

    def _write(self, folder: Path, relative: str, bucket: str, path: str) -> None:
        check_path(relative)  # bucket paths obey the path rules; checked again before touching the disk
        destination = folder / relative
        if not destination.resolve().is_relative_to(folder.resolve()):
            raise LauncherError(f"{relative} leaves the job's folder")
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(self.storage.read(bucket, path))

    # -- watching -----------------------------------------------------------------------------
    def _wait(self, run: _Run) -> None:
        try:
            run.process.wait(timeout=max(0.0, run.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            run.timed_out = True
            log.warning("job %s ran past its timeout; stopping PID %d", run.job_id, run.process.pid)
        finally:
            self._stop(run)  # reaps the child, and ends anything it left behind in its group
            run.done.set()

    def _stop(self, run: _Run) -> None:
        """SIGTERM, then SIGKILL, to the run's process group (its id is the child's PID); then reap."""
        pid = run.process.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            try:
                run.process.wait(timeout=self.kill_grace_s)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # whatever the harness spawned and left behind
        run.process.wait()

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
        return [redact(line) for line in text.splitlines()[-tail:]]

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
