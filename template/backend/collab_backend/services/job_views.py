"""Reading jobs: a job as the API shows it, the lists, and the logs (stored or live)."""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from typing import Any

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.jobs.base import LauncherError
from collab_backend.jobs.paths import job_path
from collab_backend.record.entries import JobEntry, iso
from collab_backend.services.job_endings import LOG_CACHE, clip_line, remember_log, run_handle
from collab_backend.services.jobs import is_charged, quota_of
from collab_backend.storage import NotFound, StorageError

DEFAULT_LOG_LINES = 200
LIVE_LOG_TTL = 3.0
LIVE_LOG_WAIT = 15.0  # how long a reader waits for another reader's fetch of the same log


# -- reading --------------------------------------------------------------------------------
def _events(ctx: Context, job: str) -> list[JobEntry]:
    events = ctx.record.state.jobs.get(job)
    if events is None:
        raise APIError("JOB_UNKNOWN", f"no job {job!r}", "GET /v1/jobs?agent=<your agent> lists yours")
    return events


def _status(ctx: Context, events: list[JobEntry]) -> str:
    end = next((e for e in events if e.event == "end"), None)
    if end is not None:
        return end.status
    stage = ctx.runs.stages.get(events[0].job_id)
    if stage == "RUNNING" or (stage is None and any(e.event == "start" for e in events)):
        return "running"
    return "queued"


def job_view(ctx: Context, job: str, *, full: bool = True) -> dict[str, Any]:
    """A job as the API shows it (`full` adds the summary)."""
    events = _events(ctx, job)
    launch = events[0]
    start = next((e for e in events if e.event == "start"), None)
    end = next((e for e in events if e.event == "end"), None)
    summary = end.summary if end else None
    view: dict[str, Any] = {
        "id": job,
        "agent": launch.agent,
        "user": launch.user,
        "status": _status(ctx, events),
        "charged": is_charged(events),
        "stage": ctx.runs.stages.get(job),
        "submission": launch.source,
        "track": launch.track,
        "fingerprint": launch.fingerprint,
        "launched_at": iso(launch.ts),
        "started_at": iso(start.ts) if start else None,
        "ended_at": iso(end.ts) if end else None,
        "exit_code": end.exit_code if end else None,
        "reason": end.reason if end else "",
        "valid": summary.get("valid") if summary else None,
        "proxy": summary.get("proxy") if summary else None,
        "logs": f"/v1/jobs/{job}/logs",
        "run_request": launch.run_request,
        "originator": launch.originator,
        "sponsor": launch.sponsor,
    }
    if full:
        view["summary"] = summary
    return view


def _seq(job: str) -> int:
    return int(job.rsplit("-", 1)[1])


def list_jobs(ctx: Context, agent: str | None, limit: int, before: str | None) -> dict[str, Any]:
    """Jobs newest first (one agent's, or all), below the cursor `before`; the agent's quota."""
    state = ctx.record.state
    ids = state.jobs_by_agent.get(agent, []) if agent is not None else state.job_order
    end = len(ids) if before is None else bisect_left(ids, _seq(before), key=_seq)
    chosen = ids[max(0, end - limit) : end][::-1]
    out: dict[str, Any] = {
        "items": [job_view(ctx, job, full=False) for job in chosen],
        "next": chosen[-1] if end - limit > 0 and chosen else None,
    }
    if agent is not None:
        out["quota"] = quota_of(ctx, agent)
    return out


def job_logs(ctx: Context, job: str, tail: int) -> dict[str, Any]:
    """The last `tail` lines of a job's output: stored once it ended, from the launcher while it runs."""
    events = _events(ctx, job)
    runs = ctx.runs
    ended = any(e.event == "end" for e in events)
    if ended:
        with runs.lock:
            lines = runs.logs.get(job)
        if lines is None:
            try:
                raw = ctx.storage.read(ctx.central, job_path(job, "log.txt"))
                lines = raw.decode("utf-8", "replace").splitlines()
            except NotFound:
                lines = []
            except StorageError:
                raise APIError("STORAGE_UNAVAILABLE", "the job's log could not be read", "retry shortly") from None
            with runs.lock:
                remember_log(runs, job, lines)
    else:
        lines = _live_logs(ctx, job, events, tail)
    return {"id": job, "status": _status(ctx, events), "complete": ended, "lines": lines[-tail:]}


def _busy() -> APIError:
    return APIError("JOBS_UNAVAILABLE", "the job's log is being read for others; try again shortly", "retry in 2 s",
                    headers={"Retry-After": "2"})  # fmt: skip


def _live_logs(ctx: Context, job: str, events: list[JobEntry], tail: int) -> list[str]:
    """A running job's log from the launcher, fetched once per job at a time.

    At most `runs.max_live_fetches` fetches run at once over all jobs; each answer is cached
    LIVE_LOG_TTL seconds from when it arrived. Readers beyond the cap get the cached lines (however
    old) or JOBS_UNAVAILABLE.
    """
    handle = run_handle(ctx, events)
    launcher = ctx.launcher
    if handle is None or launcher is None:
        return []
    runs = ctx.runs
    with runs.lock:
        cached = runs.live_logs.get(job)
        if cached is not None and time.monotonic() - cached[0] < LIVE_LOG_TTL and cached[1] >= tail:
            return cached[2]
        pending = runs.live_fetching.get(job)
        if pending is None:
            if runs.live_fetches >= runs.max_live_fetches:
                if cached is not None:
                    return cached[2]
                raise _busy()
            pending = runs.live_fetching[job] = threading.Event()
            runs.live_fetches += 1
            mine = True
        else:
            mine = False
    if not mine:  # another reader fetches this log: take what it brings
        pending.wait(LIVE_LOG_WAIT)
        with runs.lock:
            cached = runs.live_logs.get(job)
        if cached is None:
            raise _busy()
        return cached[2]
    want = max(tail, DEFAULT_LOG_LINES)
    try:
        lines = [clip_line(line) for line in launcher.logs(handle, want)]
    except LauncherError as exc:
        raise APIError("JOBS_UNAVAILABLE", f"the job's log could not be read: {exc}", "retry shortly") from None
    else:
        with runs.lock:
            runs.live_logs[job] = (time.monotonic(), want, lines)  # timestamped once the lines are here
            while len(runs.live_logs) > LOG_CACHE:
                runs.live_logs.pop(next(iter(runs.live_logs)))
    finally:
        with runs.lock:
            runs.live_fetching.pop(job, None)
            runs.live_fetches -= 1
        pending.set()
    return lines
