"""The launcher interface: what runs a job's harness, and what the backend asks of it.

Two launchers implement it: `LocalLauncher` (a subprocess on this machine, local mode) and
`HubLauncher` (HF Jobs). The service (services/jobs.py) decides everything else: quotas, the
command's options, what an ending means, what is recorded.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

from collab_backend.storage import FileInfo

# The ownership mark of everything the kit creates (provision/naming.py's MARKER_KEY and TOOL;
# a test keeps them equal). Job labels allow only letters, digits, '-' and '_'.
MARKER_KEY = "COLLAB_MANAGED_BY"
TOOL = "agent-collab-kit"
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# An HF token anywhere in a log line is blanked before the line is stored or served.
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{16,}")


def job_labels(org: str, slug: str, agent: str, job_id: str) -> dict[str, str]:
    """The labels a job carries: the ownership mark, the collab, the agent and the job's id."""
    values = {MARKER_KEY: TOOL, "collab_org": org, "collab_slug": slug, "collab_agent": agent, "collab_job": job_id}
    return {key: _LABEL_UNSAFE.sub("-", value)[:63] for key, value in values.items()}


def redact(line: str) -> str:
    """A log line with anything that looks like an HF token blanked."""
    return _TOKEN_LIKE.sub("hf_[redacted]", line)


class LauncherError(Exception):
    """The launcher could not do what was asked (start, inspect, read); the message is safe to show."""


@dataclass(frozen=True)
class LaunchRequest:
    """Everything a launcher needs to start one run of the harness."""

    job_id: str
    agent: str
    submission_bucket: str
    submission_path: str  # a folder of the agent's bucket, without a trailing '/'
    submission_files: tuple[FileInfo, ...]  # what the launch checked (local mode copies exactly these)
    central_bucket: str
    harness_prefix: str  # a folder of the central bucket, ending in '/'
    entrypoint: str
    options: tuple[str, ...]  # harness options after the two folders (job id, time budget, caps)
    timeout_s: int
    labels: dict[str, str]
    private: tuple[str, str] | None = None  # (bucket, folder) of the private set, read-only at /private (re-runs)


@dataclass(frozen=True)
class Progress:
    """What a launcher knows of a run now.

    `state` is `queued` (not running yet), `running`, `ended`, or `lost` (the launcher does not
    know the run: the backend restarted, or the Hub forgot it). An ended run carries its stage
    (`COMPLETED`, `ERROR`, `CANCELED`, ...), the exit status when the launcher sees it (local
    runs), whether it was stopped at the timeout or canceled, whether it ever ran, and the bytes
    of its summary.json when the harness wrote one.
    """

    state: Literal["queued", "running", "ended", "lost"]
    stage: str = ""
    message: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    canceled: bool = False
    started: bool = True
    summary: bytes | None = None
    summary_error: str = ""  # summary.json exists but could not be taken (too large)


class Launcher(Protocol):
    """Starts runs of the harness and reports on them. Calls may come from several threads."""

    kind: str  # "local" | "hub"

    @property
    def stand_in(self) -> bool:
        """True when runs use the challenge type's CPU stand-in: its numbers are proxies."""
        ...

    def launch(self, request: LaunchRequest) -> str:
        """Start a run; return its handle. Raises LauncherError; nothing keeps running then."""
        ...

    def poll(self, job_id: str, handle: str) -> Progress:
        """The run's progress. Raises LauncherError when it cannot tell now."""
        ...

    def logs(self, handle: str, tail: int) -> list[str]:
        """The last `tail` lines of the run's output. Raises LauncherError."""
        ...

    def cancel(self, handle: str) -> None:
        """Stop the run (a run that already ended is left alone). Raises LauncherError."""
        ...

    def find(self, job_id: str) -> str | None:
        """The handle of a run started for `job_id` whose start was not recorded, if it exists."""
        ...

    def release(self, handle: str) -> None:
        """Forget an ended run whose outcome is recorded (local mode removes its folder)."""
        ...

    def close(self) -> list[str]:
        """Stop every run this process started and still runs; return their job ids."""
        ...


@dataclass
class Runs:
    """What this process knows about jobs beyond the record: handles, launches in flight, live stages."""

    poll_interval: float = 5.0
    rehearsal: bool = False  # the verifier re-runs proxy results on the local stand-in (COLLAB_VERIFY_REHEARSAL)
    overdue_grace_s: float = 1800.0  # past its timeout by this much, a run is canceled and ended
    start_grace_s: float = 120.0  # a launch without a recorded start for this long was interrupted
    lock: threading.Lock = field(default_factory=threading.Lock)
    sweeping: threading.Lock = field(default_factory=threading.Lock)  # one verification sweep at a time
    active: set[str] = field(default_factory=set)
    launching: set[str] = field(default_factory=set)
    handles: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    harness: tuple[str, frozenset[str]] | None = None  # (entrypoint hash, the options it accepts)
    logs: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)  # ended jobs' stored logs
    live_logs: dict[str, tuple[float, int, list[str]]] = field(default_factory=dict)  # (when, tail, lines)
    live_fetching: dict[str, threading.Event] = field(default_factory=dict)  # one live-log fetch per job
    live_fetches: int = 0  # live-log fetches in flight, all jobs together
    max_live_fetches: int = 4
    loaded: bool = False  # `active` was rebuilt from the record
    verify_wait: dict[str, float] = field(default_factory=dict)  # result id -> when the verifier looks again
