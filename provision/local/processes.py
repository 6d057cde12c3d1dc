"""The local target's processes: the backend and the dashboard as child processes, started and stopped by PID.

`LocalCollab` applies nothing itself: `bring_up` applies the local target (`provision.local.target`),
checks the ports, starts the backend (`python -m uvicorn collab_backend.main:app` in the collab's
`backend/`, with the environment the backend Space gets, pointed at the folder hub and the local
identity file) and waits until `/v1/healthz` answers, then starts the dashboard
(`collab_dashboard.main:app` in `dashboard/`, reading the backend on loopback, with the local
sign-in against the same identity file) and waits until its `/healthz` answers. Each child runs
in its own session, so a Ctrl-C in the terminal reaches only `collab up`, which then stops the
children in order, the dashboard first: SIGINT (a clean shutdown that flushes the record and the
audit log), SIGTERM, SIGKILL, each with a timeout. Each logs to `.collab/logs/<name>.log`.

A running server is recorded in `.collab/processes.json` (git-ignored: name, pid, address, URL,
start time, and the pid of the process that started it) once it answers, and its entry is removed
when it is stopped; `collab status --target local` reads the file, checks that each pid is alive
and asks its health check. An entry whose process is gone is stale (a `collab up` killed without
its cleanup): status reports it, and the next start replaces it.
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
    ORGANIZER,
    STATE_DIR,
    LocalTarget,
    LocalTargetError,
    apply_local,
    backend_url,
    local_tokens,
    plan_local,
    remember_url,
)

START_TIMEOUT = 60.0
LOG_TAIL_LINES = 20
PROCESS_FILE = f"{STATE_DIR}/processes.json"
HEALTH_TIMEOUT = 2.0
MAX_PID = 4_194_304  # Linux's highest pid_max: a larger recorded PID is no process of ours
# The backend must not receive the organizers' Hub token: local mode reads folders only.
_WITHHELD_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


@dataclass(frozen=True)
class Service:
    """One of the collab's servers: its folder in the collab, its ASGI app, its health check."""

    name: str
    folder: str
    app: str
    health: str  # the path that answers 200 once it serves
    option: str  # `collab up`'s option that sets its port
    needs: tuple[str, ...]  # modules its requirements.txt installs, checked before it starts
    args: tuple[str, ...] = ()  # more uvicorn options


BACKEND = Service(
    "backend", "backend", "collab_backend.main:app", "/v1/healthz", "--port", ("uvicorn", "fastapi", "httptools"),
    ("--loop", "auto", "--http", "collab_backend.server:HttpToolsProtocol"),
)  # fmt: skip
# The dashboard's /healthz answers 200 only when the backend does too.
DASHBOARD = Service(
    "dashboard", "dashboard", "collab_dashboard.main:app", "/healthz", "--dashboard-port",
    ("uvicorn", "fastapi", "httptools", "authlib", "nh3", "markdown_it", "pydantic_settings"),
    ("--loop", "auto", "--http", "httptools"),
)  # fmt: skip
# The eval service (verification mode `eval-space`): the cheap check over pending results, as an organizer.
EVAL = Service("eval", "eval", "collab_eval.main:app", "/healthz", "--eval-port",
               ("uvicorn", "fastapi", "pydantic_settings"))  # fmt: skip
SERVICES = {s.name: s for s in (BACKEND, DASHBOARD, EVAL)}


def without_tokens(environ: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment (or `environ`) without the Hub token: local processes need none."""
    return {k: v for k, v in (os.environ if environ is None else environ).items() if k not in _WITHHELD_ENV}


class LocalRunError(ProvisionError):
    """A local process could not be started, or stopped running."""


class PortInUseError(LocalRunError):
    """The port `collab up` should listen on is taken."""


def check_port(host: str, port: int, option: str = "--port") -> None:
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
                    f"or choose another port with {option} N"
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


def healthz(url: str, path: str = BACKEND.health, *, timeout: float = HEALTH_TIMEOUT) -> str | None:
    """GET `{url}{path}` (the backend's `/v1/healthz` by default): None when it answers 200, else the problem."""
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as response:  # noqa: S310  # our own loopback URL
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
        if not all(isinstance(v, str) for v in (record.name, record.host, record.url)) or record.name not in SERVICES:
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
    The type's submission config file, when it names one, is COLLAB_SUBMISSION_CONFIG, and its
    denylist (standing rules, inside the harness folder) COLLAB_DENYLIST. COLLAB_JOBS_ARGS is the
    type's `job_args` of the spec, as on the Hub (`plan.desired`): a run on the real hardware passes
    them (the perplexity cap), a stand-in's does not.
    """
    from provision.challenge_types import load_type  # deferred: loading a type imports its package
    from provision.plan.desired import JOBS_ARGS_KEY, jobs_args_json

    env = _service_env(target, BACKEND)
    env.update(
        {
            "COLLAB_STORAGE": "local",
            "COLLAB_LOCAL_ROOT": str(target.hub_dir),
            "COLLAB_JOBS_DIR": str(target.collab_dir / STATE_DIR / "jobs"),
            JOBS_ARGS_KEY: jobs_args_json(target.loaded),
        }
    )
    kind = load_type(target.loaded.spec.challenge.type)
    if "COLLAB_JOBS_CPU_ARGS" not in env:
        env["COLLAB_JOBS_CPU_ARGS"] = json.dumps(list(kind.cpu_args))
    if kind.submission_config is not None:  # what the organizers' ruling predicates read
        env["COLLAB_SUBMISSION_CONFIG"] = kind.submission_config
    if kind.denylist is not None:  # the type's standing rules, seeded with the harness
        env["COLLAB_DENYLIST"] = kind.denylist
    return env


def dashboard_env(target: LocalTarget, backend_url: str) -> dict[str, str]:
    """The dashboard's environment in local mode: the spec, the backend's loopback address, local sign-in.

    People sign in with a token from the local identity file (the backend's), not with Hugging Face.
    """
    env = _service_env(target, DASHBOARD)
    env.update({"COLLAB_SIGN_IN": "local", "COLLAB_BACKEND_URL": backend_url})
    return env


def eval_env(target: LocalTarget, backend_url: str) -> dict[str, str]:
    """The eval service's environment in local mode: the backend's loopback address, the local organizer's token.

    The token is a local one (the identity file's organizer), never a Hub token.
    """
    env = _service_env(target, EVAL)
    env.update({"COLLAB_BACKEND_URL": backend_url, "COLLAB_EVAL_TOKEN": local_tokens(target)[ORGANIZER]})
    return env


def runs_eval(target: LocalTarget) -> bool:
    """Whether `collab up` starts the eval service: verification mode `eval-space` and an `eval/` folder."""
    return target.loaded.spec.verification.mode == "eval-space" and (target.collab_dir / EVAL.folder).is_dir()


def _service_env(target: LocalTarget, service: Service) -> dict[str, str]:
    env = without_tokens()
    folder = target.collab_dir / service.folder
    env.update(
        {
            "COLLAB_SPEC": json.dumps(target.loaded.document, sort_keys=True, separators=(",", ":")),
            "COLLAB_IDENTITY_FILE": str(target.identity_file),
            "PYTHONPATH": os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class LocalServer:
    """One of the collab's servers (`BACKEND`, `DASHBOARD`) as a local process, started and stopped by PID."""

    target: LocalTarget
    service: Service
    env: dict[str, str]
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def url(self) -> str:
        return backend_url(self.host, self.port)

    @property
    def log(self) -> str:
        """The log's path in the collab folder."""
        return f"{STATE_DIR}/logs/{self.name}.log"

    @property
    def log_path(self) -> Path:
        return self.target.collab_dir / self.log

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def check(self) -> None:
        """What the server needs before it starts: its folder, its requirements, a free port.

        Raises:
            PortInUseError: the port is taken. LocalRunError: the collab has no such folder, or the
                server's requirements are not installed in this Python.
        """
        package = self.service.app.partition(".")[0]
        if not (self.target.collab_dir / self.service.folder / package).is_dir():
            raise LocalRunError(
                f"this collab has no {self.service.folder}/{package}/ (rendered before the kit had it?)\n"
                "    hint: `copier update` adds it"
                + ("; `collab up --no-dashboard` runs the backend alone" if self.service is DASHBOARD else "")
            )
        missing = [m for m in self.service.needs if importlib.util.find_spec(m) is None]
        if missing:
            raise LocalRunError(
                f"the {self.name}'s requirements are not installed in this Python ({sys.executable}): "
                f"no {', '.join(missing)}\n    hint: pip install -r {self.service.folder}/requirements.txt"
            )
        check_port(self.host, self.port, self.service.option)

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait until its health check answers 200.

        Raises:
            PortInUseError, LocalRunError: as `check`, or the server exited or did not answer in
                time (with the end of its log).
        """
        self.check()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # appended: the log of a run that crashed outlives the restart
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", self.service.app, "--host", self.host, "--port", str(self.port),
                 "--log-level", "warning", *self.service.args],
                cwd=self.target.collab_dir / self.service.folder, env=self.env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise LocalRunError(
                    f"the {self.name} exited during start (exit {code}); its log ends with:\n{self.tail()}"
                )
            if healthz(self.url, self.service.health) is None:
                self._record()
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise LocalRunError(
                    f"the {self.name} did not answer within {timeout:.0f} s; its log ends with:\n{self.tail()}"
                )
            time.sleep(0.1)

    def _record(self) -> None:
        if self.process is None:
            return
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        record = ProcessRecord(
            self.name, self.process.pid, self.host, self.port, self.url, started, os.getpid(), self.log
        )
        record_process(self.target.collab_dir, record)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log, indented."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "      (no log)"
        return "\n".join(f"      | {line}" for line in text.splitlines()[-lines:]) or "      (the log is empty)"

    def stop(self, *, grace: float = 10.0) -> int | None:
        """Stop the server by its PID: SIGINT, then SIGTERM, then SIGKILL. Returns its exit status.

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


@dataclass
class LocalCollab:
    """The collab's local processes: the backend, the dashboard that reads it (unless left out), the eval service."""

    backend: LocalServer
    dashboard: LocalServer | None = None
    eval: LocalServer | None = None  # verification mode `eval-space` only

    @property
    def servers(self) -> list[LocalServer]:
        """The servers, in the order they start: the others need the backend."""
        return [s for s in (self.backend, self.dashboard, self.eval) if s is not None]

    def stopped(self) -> LocalServer | None:
        """A server that was started and is no longer running, if any."""
        return next((s for s in self.servers if s.process is not None and not s.running()), None)

    def stop(self, *, progress: Callable[[str], None] | None = None) -> dict[str, int | None]:
        """Stop every started server by its PID, the dashboard first; their exit statuses by name."""
        codes: dict[str, int | None] = {}
        for server in reversed(self.servers):
            if server.process is None:
                continue
            if progress is not None and server.running():
                progress(f"Stopping the {server.name} (pid {server.pid})...")
            codes[server.name] = server.stop()
        return codes


def bring_up(
    target: LocalTarget,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    dashboard_port: int | None = DEFAULT_PORT + 1,
    eval_port: int | None = None,
    progress: Callable[[str], None] = print,
) -> LocalCollab:
    """Apply the local target, then start the backend over it, and the dashboard over the backend.

    Each is waited for until its health check answers. `dashboard_port=None` leaves the dashboard out.
    In verification mode `eval-space` the eval service starts last, on `eval_port` (default: the
    first port after the backend's and the dashboard's).

    Raises:
        LocalTargetError, LocalRunError: with the fix in the message.
    """
    if dashboard_port == port:
        raise LocalRunError(f"the backend and the dashboard cannot share port {port}: choose another --dashboard-port")
    target = remember_url(target, backend_url(host, port))  # the seeded README names this address
    plan = plan_local(target)
    if plan.in_sync:
        progress("Local target in sync.")
    else:
        made = apply_local(target, plan, progress=lambda line: progress(f"  {line}"))
        progress(f"Local target applied: {made} change(s).")
    backend = LocalServer(target, BACKEND, backend_env(target), host, port)
    collab = LocalCollab(backend)
    if dashboard_port is not None:
        env = dashboard_env(target, loopback_url(host, port))
        collab.dashboard = LocalServer(target, DASHBOARD, env, host, dashboard_port)
    if runs_eval(target):
        taken = {port, dashboard_port}
        chosen = eval_port if eval_port is not None else _free_after(host, port, taken)
        if chosen in taken:
            raise LocalRunError(f"the eval service cannot share port {chosen}: choose another --eval-port")
        collab.eval = LocalServer(target, EVAL, eval_env(target, loopback_url(host, port)), host, chosen)
    for server in collab.servers:
        server.check()  # before anything starts: a missing folder or a taken port is found at once
    try:
        for server in collab.servers:
            server.start()
    except BaseException:  # Ctrl-C while waiting included: never leave a child behind
        collab.stop()
        raise
    return collab


def _free_after(host: str, port: int, taken: set[int | None]) -> int:
    """The first port after `port` that is not `taken` and that nothing listens on (of the next 20)."""
    for candidate in range(port + 1, min(port + 21, 65536)):
        if candidate in taken:
            continue
        with contextlib.suppress(PortInUseError):
            check_port(host, candidate, "--eval-port")
            return candidate
    raise LocalRunError(f"no free port among the 20 after {port} for the eval service: choose one with --eval-port")


def urls(collab: LocalCollab) -> list[tuple[str, str]]:
    """What to open once the collab is up: the dashboard (when it runs), then the API's entry points."""
    api = collab.backend.url
    shown = [("dashboard", f"{collab.dashboard.url}/")] if collab.dashboard is not None else []
    shown += [("eval", f"{collab.eval.url}/healthz")] if collab.eval is not None else []
    return [
        *shown,
        ("API", f"{api}/v1"),
        ("docs", f"{api}/docs"),
        ("leaderboard", f"{api}/v1/leaderboard"),
        ("board", f"{api}/v1/messages"),
        ("digest", f"{api}/v1/digest/<agent_id>"),
    ]
