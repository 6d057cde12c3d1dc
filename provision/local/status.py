"""`collab status --target local`: health and drift of every local resource, and of the running servers.

The resources are the local plan's (`provision.local.target.plan_local`): the folder hub's central and
audit buckets, the central bucket's seed files and the identity file; each gets its health, read
from the folders, and its drift, the fields the plan would change. The backend and the dashboard
are what `.collab/processes.json` records (`provision.local.processes`): each entry's pid must be
alive and its health check (`/v1/healthz`, the dashboard's `/healthz`) must answer on loopback; an
entry whose process is gone is reported as stale.

Exit codes as for the Hub's status: 0 healthy and in sync, 2 drift or unhealthy, 1 error. A server
that is not running is no drift: the local target is complete without it, as a Space is without
visitors. Reads only; no token is ever shown (the identity file is described by its users and mode).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from provision.local.folder_hub import FolderBuckets
from provision.local.processes import (
    EVAL,
    PROCESS_FILE,
    SERVICES,
    ProcessRecord,
    healthz,
    loopback_url,
    pid_alive,
    read_processes,
)
from provision.local.target import (
    HUB_DIR,
    IDENTITY_FILE,
    IDENTITY_MODE,
    PRIVATE_SET,
    LocalAction,
    LocalPlan,
    LocalTarget,
    observe_bucket,
    plan_local,
    read_identities,
)
from provision.onboarding.readme import VERIFICATION_INDEX
from provision.plan.compute import Blocker
from provision.plan.seed import README_PATH, ObservedSeed, observe_seed, sha256
from provision.plan.views import FORMAT_VERSION

ProcessState = Literal["running", "unhealthy", "orphaned", "stale"]


@dataclass(frozen=True)
class ResourceStatus:
    address: str
    id: str
    health: str
    drift: tuple[str, ...]  # the fields the plan would change; () when in sync

    @property
    def in_sync(self) -> bool:
        return not self.drift


@dataclass(frozen=True)
class ProcessStatus:
    record: ProcessRecord
    state: ProcessState
    detail: str

    @property
    def healthy(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class LocalStatus:
    collab: str
    collab_dir: Path
    resources: tuple[ResourceStatus, ...]
    processes: tuple[ProcessStatus, ...]
    blockers: tuple[Blocker, ...]
    index_problem: str | None = None  # a malformed verification index (the backend keeps it and takes nothing in)

    @property
    def in_sync(self) -> bool:
        return all(r.in_sync for r in self.resources) and not self.blockers

    @property
    def healthy(self) -> bool:
        return self.in_sync and self.index_problem is None and all(p.healthy for p in self.processes)


def local_status(
    target: LocalTarget, *, adopt: bool = False, probe: Callable[[str, str], str | None] = healthz
) -> LocalStatus:
    """Read every local resource and recorded process; write nothing.

    Args:
        target: The collab's local target.
        adopt: Plan as `--adopt` would (unmarked buckets are not blockers).
        probe: Asks a URL's health check path: None when healthy, else the problem.

    Raises:
        LocalTargetError: the identity file or the process file is unreadable.
    """
    plan = plan_local(target, adopt=adopt)
    seed = _observed_seed(target, plan)
    resources = tuple(_resource(target, action, seed) for action in plan.actions)
    processes = tuple(_process(record, probe) for record in read_processes(target.collab_dir))
    index = seed.index_problem if seed is not None else None
    return LocalStatus(plan.collab, target.collab_dir, resources, processes, plan.blockers, index)


def _observed_seed(target: LocalTarget, plan: LocalPlan) -> ObservedSeed | None:
    central = next((a for a in plan.actions if a.address == "bucket.central"), None)
    if target.desired.seed is None or central is None or central.action == "create":
        return None
    return observe_seed(FolderBuckets(target.hub_dir), "", target.desired.seed)


def _drift(action: LocalAction) -> tuple[str, ...]:
    if action.action in ("no-op", "kept"):
        return ()
    return tuple(c.field for c in action.changes) or (action.action,)


def _resource(target: LocalTarget, action: LocalAction, seed: ObservedSeed | None) -> ResourceStatus:
    address = action.address
    if address.startswith("bucket."):
        bucket = next(b for b in target.desired.buckets if b.address == address)
        seen = observe_bucket(target, bucket)
        visibility = {True: "private", False: "public", None: "visibility not recorded"}[seen.private]
        health = f"{visibility}, {seen.total_files} file(s)" if seen.exists else "missing"
    elif address.startswith("seed."):
        health = _seed_health(target, address, seed)
    elif address == PRIVATE_SET:
        health = _private_set_health(target)
    else:
        health = _identity_health(target)
    return ResourceStatus(address, action.id, health, _drift(action))


def _seed_health(target: LocalTarget, address: str, seed: ObservedSeed | None) -> str:
    desired = target.desired.seed
    if seed is None or desired is None:
        return "missing"
    if address == "seed.readme":
        if seed.readme is None:
            return "missing"
        recorded = seed.record.get(README_PATH, {}).get("sha256")
        if recorded == sha256(seed.readme.encode("utf-8")):
            current = "" if seed.readme == desired.readme else ", from an older challenge.yaml"
            return f"generated by collab{current}"
        return "edited by the organizers (kept until --overwrite-readme)"
    if address == "seed.harness":
        present = sum(path in seed.hub_hashes for path in desired.harness)
        return f"{present} of {len(desired.harness)} file(s)" if present else "missing"
    if seed.index_problem:
        return f"malformed: {seed.index_problem}"
    return "present (the backend owns it)" if VERIFICATION_INDEX in seed.hub_hashes else "missing"


def _private_set_health(target: LocalTarget) -> str:
    """The stand-in private set's files in the audit bucket (organizers' own files count the same)."""
    spec = target.loaded.spec
    folder = target.bucket_dir(spec.storage.audit_bucket) / spec.verification.private_set.rstrip("/")
    held = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    return f"{held} file(s), read only by the organizers" if held else "missing"


def _identity_health(target: LocalTarget) -> str:
    path = target.identity_file
    table = read_identities(path)
    if table is None:
        return "missing"
    admins = sum("admin" in dict(entry.get("orgs", {})).values() for entry in table.values())
    mode = stat.S_IMODE(path.stat().st_mode)
    shown = "0600" if mode == IDENTITY_MODE else f"{mode:04o}, should be 0600"
    return f"{len(table)} user(s) ({admins} organizer(s), {len(table) - admins} participant(s)), mode {shown}"


def _process(record: ProcessRecord, probe: Callable[[str, str], str | None]) -> ProcessStatus:
    where = f"pid {record.pid}, since {record.started_at}"
    if not pid_alive(record.pid):
        return ProcessStatus(
            record,
            "stale",
            f"stale: pid {record.pid} is gone (recorded at {record.started_at}, {record.url}); "
            f"`collab up` starts it again and replaces the entry in {PROCESS_FILE}",
        )
    health = SERVICES[record.name].health
    problem = probe(loopback_url(record.host, record.port), health)
    if problem is not None:
        return ProcessStatus(
            record,
            "unhealthy",
            f"pid {record.pid} is alive but GET {health} failed ({problem}); its log: {record.log}",
        )
    if not pid_alive(record.started_by):
        return ProcessStatus(
            record,
            "orphaned",
            f"running at {record.url} ({where}), but the process that started it (pid {record.started_by}) "
            f"is gone: stop it with `kill -INT {record.pid}`",
        )
    return ProcessStatus(record, "running", f"running at {record.url} ({where}); {health} answers")


def render_local_status(status: LocalStatus) -> str:
    """One line per resource and per recorded process: health, then drift; never a token."""
    lines = [f"Status of collab {status.collab}, local target ({HUB_DIR}/ in {status.collab_dir.name})", ""]
    names = [r.address for r in status.resources] + list(SERVICES)
    width = max(len(n) for n in names)
    for r in status.resources:
        drift = "in sync" if r.in_sync else "drift: " + ", ".join(r.drift)
        lines.append(f"  {r.address.ljust(width)}  {r.health}; {drift}")
    for name in SERVICES:
        recorded = [p for p in status.processes if p.record.name == name]
        for p in recorded:
            lines.append(f"  {name.ljust(width)}  {p.detail}")
        if not recorded and name == EVAL.name:
            continue  # only a collab in mode eval-space runs it: not running is no news
        if not recorded:
            lines.append(f"  {name.ljust(width)}  not running (`collab up` starts it)")
    for blocker in status.blockers:
        lines.append(f"  ! {blocker.address}: {blocker.message} (fix: {blocker.fix})")
    lines.append("")
    if status.healthy:
        lines.append("Healthy and in sync.")
    elif status.in_sync and status.index_problem:
        lines.append(f"In sync, but not healthy: the verification index needs a fix by hand ({VERIFICATION_INDEX} "
                     "in the central bucket), see above.")  # fmt: skip
    elif status.in_sync:
        lines.append(f"In sync, but not healthy: see the process line(s) above ({PROCESS_FILE}).")
    else:
        lines.append(
            "Not in sync or not healthy: `collab plan --target local` shows the changes, "
            "`collab apply --target local` (or `collab up`) makes them."
        )
    return "\n".join(lines)


def local_status_json(status: LocalStatus) -> dict[str, Any]:
    """Status as data (`format_version` 1): health and drift per resource, the processes, the verdict."""
    return {
        "format_version": FORMAT_VERSION,
        "target": "local",
        "collab": status.collab,
        "healthy": status.healthy,
        "in_sync": status.in_sync,
        "resources": [
            {"address": r.address, "id": r.id, "health": r.health, "in_sync": r.in_sync, "drift": list(r.drift)}
            for r in status.resources
        ],
        "drift": {r.address: list(r.drift) for r in status.resources},
        "processes": [{**asdict(p.record), "state": p.state, "detail": p.detail} for p in status.processes],
        "blockers": [b.as_json() for b in status.blockers],
        "index_problem": status.index_problem,
        "identity_file": IDENTITY_FILE,
    }
