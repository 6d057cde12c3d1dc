"""Copying files from an agent's bucket into the central bucket, server-side, by content hash.

Used for artifacts (`artifacts/{agent}/...`), shared resources (`shared_resources/{agent}/...`)
and a taskforce's named files. The agent names only a folder (or file) of its *own* bucket; the
destination is composed here, per agent, so nobody overwrites another's files. Every sync is
capped (files, bytes, bytes per file, from the spec), unchanged files are skipped, and the copy
list is recorded in the index once the copies are made.
"""

from __future__ import annotations

from typing import Literal

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import FileCopyEntry
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.services.registry import agent_of
from collab_backend.services.sources import check_sizes, list_bounded
from collab_backend.storage import Copy, FileInfo, check_path

Area = Literal["artifacts", "shared_resources", "taskforce", "traces"]


def _source_files(ctx: Context, bucket: str, source: str) -> list[FileInfo]:
    """The files under a folder (ending in '/') or the single file `source` of the agent's bucket."""
    if source.endswith("/"):
        check_path(source[:-1])
        found = list_bounded(ctx, bucket, source, too_many="VALIDATION_FAILED", hint="sync a smaller folder")
        if not found:
            raise APIError("SOURCE_NOT_FOUND", f"{bucket} has no files under {source}", "write the files first")
        return found
    check_path(source)
    info = ctx.storage.stat(bucket, [source]).get(source)
    if info is None:
        raise APIError("SOURCE_NOT_FOUND", f"{source} is not in {bucket}", "name a folder with a trailing '/'")
    return [info]


def sync_files(
    ctx: Context, identity: Identity, agent_id: str, area: Area, source: str, taskforce: str | None = None
) -> FileCopyEntry | None:
    """Copy `source` (a file, or a folder ending in '/') of the agent's bucket; None when all were current."""
    agent = agent_of(ctx, identity, agent_id)
    bucket = naming.scratch_bucket(ctx.spec, agent)
    if not ctx.storage.bucket_exists(bucket):
        raise APIError("SCRATCH_BUCKET_MISSING", f"bucket {bucket} does not exist", None)
    files = _source_files(ctx, bucket, source)
    check_sizes(ctx, files, hint="sync less, or share large files elsewhere")
    base = source if source.endswith("/") else source.rsplit("/", 1)[0] + "/" if "/" in source else ""
    plan = []
    for f in files:
        destination = naming.copy_destination(area, agent, f.path[len(base) :], taskforce)
        check_path(destination)
        if destination.startswith(ctx.spec.jobs.harness_prefix):
            # The harness prefix is configurable; whatever it is, jobs run what lies there.
            raise APIError("FORBIDDEN", f"{destination} is inside the jobs harness folder", "choose another agent id")
        current = ctx.record.state.copies.get(destination)
        if current is None or current[2] != f.hash:
            plan.append((destination, f))
    if not plan:
        return None
    ctx.limits.promotions.acquire(bucket)
    ctx.storage.batch(ctx.central, [Copy(bucket, f.path, f.hash, dest) for dest, f in plan])

    def build(state: State, seq: int, ts: float) -> FileCopyEntry:
        # Decided again here: a concurrent sync of the same files records them once.
        fresh = [(dest, f) for dest, f in plan if (state.copies.get(dest) or ("", "", ""))[2] != f.hash]
        if not fresh:
            raise Unchanged
        return FileCopyEntry(seq, ts, agent, area, tuple((dest, f.path, f.hash, f.size) for dest, f in fresh))

    entry, new = ctx.record.write_new(build)
    if not new:
        ctx.limits.promotions.release(bucket)
    return entry
