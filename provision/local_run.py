"""The local target's processes: the backend as a child process on this machine, started and stopped by PID.

`LocalCollab` applies nothing itself: `bring_up` applies the local target (`provision.local`),
checks the port, starts the backend (`python -m uvicorn collab_backend.main:app` in the collab's
`backend/`, with the environment the backend Space gets, pointed at the folder hub and the local
identity file), and waits until `/v1/healthz` answers. The child runs in its own session, so a
Ctrl-C in the terminal reaches only `collab up`, which then stops the child in order: SIGINT (a
clean shutdown that flushes the record and the audit log), SIGTERM, SIGKILL, each with a timeout.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision.errors import ProvisionError
from provision.local import STATE_DIR, LocalTarget, apply_local, plan_local

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
START_TIMEOUT = 60.0
LOG_TAIL_LINES = 20
# The backend must not receive the organizers' Hub token: local mode reads folders only.
_WITHHELD_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


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


def backend_env(target: LocalTarget) -> dict[str, str]:
    """The backend's environment in local mode: the process's own, plus the collab's settings."""
    env = {k: v for k, v in os.environ.items() if k not in _WITHHELD_ENV}
    backend = target.collab_dir / "backend"
    env.update(
        {
            "COLLAB_SPEC": json.dumps(target.loaded.document, sort_keys=True, separators=(",", ":")),
            "COLLAB_STORAGE": "local",
            "COLLAB_LOCAL_ROOT": str(target.hub_dir),
            "COLLAB_IDENTITY_FILE": str(target.identity_file),
            "PYTHONPATH": os.pathsep.join(p for p in (str(backend), env.get("PYTHONPATH", "")) if p),
            "PYTHONUNBUFFERED": "1",
        }
    )
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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.target.collab_dir / STATE_DIR / "logs" / "backend.log"

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
        if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
            raise LocalRunError(
                f"the backend's requirements are not installed in this Python ({sys.executable})\n"
                "    hint: pip install -r backend/requirements.txt"
            )
        check_port(self.host, self.port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "collab_backend.main:app", "--host", self.host,
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=backend, env=backend_env(self.target), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise LocalRunError(f"the backend exited during start (exit {code}); its log ends with:\n{self.tail()}")
            if self._healthy():
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise LocalRunError(
                    f"the backend did not answer within {timeout:.0f} s; its log ends with:\n{self.tail()}"
                )
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v1/healthz", timeout=2) as response:  # noqa: S310  # our own loopback URL
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

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
        """Stop the backend by its PID: SIGINT, then SIGTERM, then SIGKILL. Returns its exit status."""
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
        return process.poll()


def bring_up(
    target: LocalTarget, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, progress: Callable[[str], None] = print
) -> LocalCollab:
    """Apply the local target, then start the backend over it and wait for it to answer.

    Raises:
        LocalTargetError, LocalRunError: with the fix in the message.
    """
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
