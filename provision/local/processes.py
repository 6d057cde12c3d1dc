"""The local target's processes: the backend as a child process on this machine, started and stopped by PID.

`LocalCollab` applies nothing itself: `bring_up` applies the local target (`provision.local.target`),
checks the port, starts the backend (`python -m uvicorn collab_backend.main:app` in the collab's
`backend/`, with the environment the backend Space gets, pointed at the folder hub and the local
identity file), and waits until `/v1/healthz` answers. The child runs in its own session, so a
Ctrl-C in the terminal reaches only `collab up`, which then stops the child in order: SIGINT (a
clean shutdown that flushes the record and the audit log), SIGTERM, SIGKILL, each with a timeout.

A running backend is recorded in `.collab/processes.json` (git-ignored: pid, address, URL, start
time, and the pid of the process that started it) once it answers, and its entry is removed when
it is stopped; `collab status --target local` reads the file, checks that each pid is alive and
asks `/v1/healthz`. An entry whose process is gone is stale (a `collab up` killed without its
cleanup): status reports it, and the next start replaces it.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.local.target import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    STATE_DIR,
    LocalTarget,
    LocalTargetError,
    apply_local,
    backend_url,
    plan_local,
    remember_url,
)

START_TIMEOUT = 60.0
LOG_TAIL_LINES = 20
PROCESS_FILE = f"{STATE_DIR}/processes.json"
LOG_FILE = f"{STATE_DIR}/logs/backend.log"
HEALTH_TIMEOUT = 2.0
MAX_PID = 4_194_304  # Linux's highest pid_max: a larger recorded PID is no process of ours
# The backend must not receive the organizers' Hub token: local mode reads folders only.
_WITHHELD_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def without_tokens(environ: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment (or `environ`) without the Hub token: local processes need none."""
    return {k: v for k, v in (os.environ if environ is None else environ).items() if k not in _WITHHELD_ENV}


class LocalRunError(ProvisionError):
    """A local process could not be started, or stopped running."""


class PortInUseError(LocalRunError):
    """The port `collab up` should listen on is taken."""


def check_port(host: str, port: int) -> None:
    """Bind the address as the server will (SO_REUSEADDR, as uvicorn does) and release it.

    Raises:
        PortInUseError: with the fix, when something else listens there.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {port} on {host} is in use; stop what listens there (another `collab up`?) "
                    f"or choose another port with --port N"
                ) from None
            raise LocalRunError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs (a reaped child does not, nor a zombie waiting to be reaped)."""
    if not 0 < pid <= MAX_PID:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace").rpartition(")")[2].split()
    except OSError:
        return True  # no /proc here: signal 0 is all there is
    return not state or state[0] not in ("Z", "X")


def healthz(url: str, *, timeout: float = HEALTH_TIMEOUT) -> str | None:
    """GET `{url}/v1/healthz`: None when it answers 200, else what went wrong, in words."""
    try:
        with urllib.request.urlopen(f"{url}/v1/healthz", timeout=timeout) as response:  # noqa: S310  # our own loopback URL
            return None if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(getattr(reason, "strerror", None) or reason)


def _own_address(host: str) -> bool:
    """An IP address of this machine's (loopback, a wildcard or an interface's), or `localhost`."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return True
    try:
        with socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET) as probe:
            probe.bind((host, 0))  # binds only to an address this machine has
    except OSError:
        return False
    return True


def loopback_url(host: str, port: int) -> str:
    """The URL this machine reaches a server on: a wildcard address is asked on loopback."""
    if host in ("", "0.0.0.0"):  # noqa: S104  # an address to reach, not to bind
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True)
class ProcessRecord:
    """One running local process, as `.collab/processes.json` keeps it."""

    name: str
    pid: int
    host: str
    port: int
    url: str
    started_at: str
    started_by: int  # the pid of `collab up` (or the demo) that owns it
    log: str

    @classmethod
    def from_json(cls, data: Any) -> ProcessRecord | None:
        try:
            record = cls(**data)
        except TypeError:
            return None
        ints = (record.pid, record.port, record.started_by)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints):
            return None
        if not all(isinstance(v, str) for v in (record.name, record.host, record.url)):
            return None
        pids_ok = all(0 < v <= MAX_PID for v in (record.pid, record.started_by))
        # Only an address of this machine's own: the file must not send status's check elsewhere.
        return record if pids_ok and 0 < record.port < 65536 and _own_address(record.host) else None


def read_processes(collab_dir: Path) -> list[ProcessRecord]:
    """The recorded processes; [] when none is recorded.

    Raises:
        LocalTargetError: the file exists but is not a list of records.
    """
    path = collab_dir / PROCESS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise LocalTargetError(f"{PROCESS_FILE} is not readable JSON ({exc}); delete it") from None
    items = raw.get("processes") if isinstance(raw, dict) else None
    records = [ProcessRecord.from_json(item) for item in items] if isinstance(items, list) else [None]
    if any(r is None for r in records):
        raise LocalTargetError(f"{PROCESS_FILE} does not hold process records; delete it")
    return [r for r in records if r is not None]


def _write_processes(collab_dir: Path, records: list[ProcessRecord]) -> None:
    path = collab_dir / PROCESS_FILE
    if not records:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"processes": [asdict(r) for r in records]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".collab-tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_process(collab_dir: Path, record: ProcessRecord) -> None:
    """Add a running process; entries of processes that are gone, or on the same address, are replaced."""
    kept = [
        r
        for r in _readable_processes(collab_dir)
        if r.pid != record.pid and pid_alive(r.pid) and (r.host, r.port) != (record.host, record.port)
    ]
    _write_processes(collab_dir, [*kept, record])


def forget_process(collab_dir: Path, pid: int) -> None:
    """Remove a stopped process's entry (and the file with the last one)."""
    records = _readable_processes(collab_dir)
    if any(r.pid == pid for r in records):
        _write_processes(collab_dir, [r for r in records if r.pid != pid])


def _readable_processes(collab_dir: Path) -> list[ProcessRecord]:
    try:
        return read_processes(collab_dir)
    except LocalTargetError:
        return []  # an unreadable file is replaced: starting and stopping must not fail on it


def backend_env(target: LocalTarget) -> dict[str, str]:
    """The backend's environment in local mode: the process's own, plus the collab's settings.

    Jobs run as local subprocesses with the challenge type's CPU arguments (its stand-in engine),
    unless COLLAB_JOBS_CPU_ARGS is set already (e.g. `[]` on a machine with the real hardware).
    """
    from provision.challenge_types import load_type  # deferred: loading a type imports its package

    env = without_tokens()
    backend = target.collab_dir / "backend"
    env.update(
        {
            "COLLAB_SPEC": json.dumps(target.loaded.document, sort_keys=True, separators=(",", ":")),
            "COLLAB_STORAGE": "local",
            "COLLAB_LOCAL_ROOT": str(target.hub_dir),
            "COLLAB_IDENTITY_FILE": str(target.identity_file),
            "COLLAB_JOBS_DIR": str(target.collab_dir / STATE_DIR / "jobs"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(backend), env.get("PYTHONPATH", "")) if p),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if "COLLAB_JOBS_CPU_ARGS" not in env:
        env["COLLAB_JOBS_CPU_ARGS"] = json.dumps(list(load_type(target.loaded.spec.challenge.type).cpu_args))
    return env


@dataclass
class LocalCollab:
    """The backend of one collab as a local process."""

    target: LocalTarget
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return backend_url(self.host, self.port)

    @property
    def log_path(self) -> Path:
        return self.target.collab_dir / LOG_FILE

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the backend and wait until it answers `/v1/healthz`.

        Raises:
            PortInUseError: the port is taken. LocalRunError: the backend's requirements are
                missing, or it exited or did not answer in time (with the end of its log).
        """
        backend = self.target.collab_dir / "backend"
        if any(importlib.util.find_spec(name) is None for name in ("uvicorn", "fastapi", "httptools")):
            raise LocalRunError(
                f"the backend's requirements are not installed in this Python ({sys.executable})\n"
                "    hint: pip install -r backend/requirements.txt"
            )
        check_port(self.host, self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # appended: the log of a run that crashed outlives the restart
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "collab_backend.main:app", "--host", self.host,
                 "--port", str(self.port), "--log-level", "warning", "--loop", "auto",
                 "--http", "collab_backend.server:HttpToolsProtocol"],
                cwd=backend, env=backend_env(self.target), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise LocalRunError(f"the backend exited during start (exit {code}); its log ends with:\n{self.tail()}")
            if healthz(self.url) is None:
                self._record()
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise LocalRunError(
                    f"the backend did not answer within {timeout:.0f} s; its log ends with:\n{self.tail()}"
                )
            time.sleep(0.1)

    def _record(self) -> None:
        if self.process is None:
            return
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        record = ProcessRecord(
            "backend", self.process.pid, self.host, self.port, self.url, started, os.getpid(), LOG_FILE
        )
        record_process(self.target.collab_dir, record)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the backend's log, indented."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "      (no log)"
        return "\n".join(f"      | {line}" for line in text.splitlines()[-lines:]) or "      (the log is empty)"

    def stop(self, *, grace: float = 10.0) -> int | None:
        """Stop the backend by its PID: SIGINT, then SIGTERM, then SIGKILL. Returns its exit status.

        Once the process is gone (stopped here, or exited by itself) its entry in the process file is removed.
        """
        process = self.process
        if process is None:
            return None
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=wait)
        code = process.poll()
        if code is not None:
            forget_process(self.target.collab_dir, process.pid)
        return code


def bring_up(
    target: LocalTarget, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, progress: Callable[[str], None] = print
) -> LocalCollab:
    """Apply the local target, then start the backend over it and wait for it to answer.

    Raises:
        LocalTargetError, LocalRunError: with the fix in the message.
    """
    target = remember_url(target, backend_url(host, port))  # the seeded README names this address
    plan = plan_local(target)
    if plan.in_sync:
        progress("Local target in sync.")
    else:
        made = apply_local(target, plan, progress=lambda line: progress(f"  {line}"))
        progress(f"Local target applied: {made} change(s).")
    collab = LocalCollab(target, host, port)
    try:
        collab.start()
    except BaseException:  # Ctrl-C while waiting included: never leave the child behind
        collab.stop()
        raise
    return collab


def urls(collab: LocalCollab) -> list[tuple[str, str]]:
    """What to open once the collab is up."""
    return [
        ("API", f"{collab.url}/v1"),
        ("docs", f"{collab.url}/docs"),
        ("leaderboard", f"{collab.url}/v1/leaderboard"),
        ("board", f"{collab.url}/v1/messages"),
        ("digest", f"{collab.url}/v1/digest/<agent_id>"),
    ]
