"""Benchmark jobs: launching within the quotas, status, logs, and recording how each run ended.

A launch is checked in this order: jobs on (spec and backend), the caller's agent, the
submission folder's name (the path rules), the track, the quota (a quick refusal that costs no
storage call), the agent's bucket and the folder's files (bounded like a sync), the harness in
the central bucket. Then the quota is checked again **inside the writer** while the launch entry
is built, so concurrent launches cannot overspend: the launch entry is the charge. Only then does
the launcher start the run; if it cannot, an end entry refunds the charge.

Quotas count charged launches in the last 24 hours (a sliding window): per agent
(`jobs.quota.per_agent_per_day`, or its entry in `overrides`) and per HF user over all of its
agents (`per_user_per_day`). A run that ends in an infrastructure failure is refunded by its end
entry (`charged: false`): no summary and the harness's exit status 3, a stage `ERROR` (or a
cancel) on the Hub without a summary, a run the launcher lost, a launch that never started.

The monitor (a thread) polls the runs still going, cancels those far past their timeout, and
records each ending: the end entry (status, charge, reason, the summary checked against the
job summary schema) and the log's tail in the central bucket.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, replace
from typing import Any, Literal

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.jobs.base import LauncherError, LaunchRequest, Progress, job_labels, redact
from collab_backend.jobs.paths import job_id as new_job_id
from collab_backend.jobs.paths import job_path
from collab_backend.jobs.summary import SummaryProblem, parse_summary
from collab_backend.record.entries import JobEntry, iso
from collab_backend.record.state import State
from collab_backend.services.registry import agent_of
from collab_backend.storage import FileInfo, NotFound, StorageError, check_path

log = logging.getLogger("collab_backend.jobs")

DAY = 86_400.0
DEFAULT_LOG_LINES = 200
MAX_LOG_LINES = 1000
MAX_LINE_CHARS = 2000
MAX_REASON_CHARS = 500
MAX_HARNESS_BYTES = 1 << 20
LOG_CACHE = 256
LIVE_LOG_TTL = 3.0
_OPTION = re.compile(r"""["'](--[a-z0-9][a-z0-9-]*)["']""")


class _Ended(Exception):
    """The job already has its end entry."""


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as its end entry records it."""

    status: Literal["succeeded", "failed", "timeout", "error"]
    charged: bool
    reason: str
    exit_code: int | None = None
    summary: dict[str, Any] | None = None


# -- quotas ---------------------------------------------------------------------------------
def _charged(events: list[JobEntry]) -> bool:
    return not any(e.event == "end" and not e.charged for e in events)


def _charged_times(state: State, ids: list[str], since: float) -> list[float]:
    """Launch times of the charged jobs among `ids` (in launch order) after `since`, oldest first."""
    times = []
    for job in reversed(ids):
        events = state.jobs[job]
        if events[0].ts <= since:
            break
        if _charged(events):
            times.append(events[0].ts)
    return times[::-1]


def _limits(ctx: Context, agent: str) -> tuple[int, int]:
    quota = ctx.spec.jobs.quota
    return quota.overrides.get(agent, quota.per_agent_per_day), quota.per_user_per_day


def _check_quota(ctx: Context, state: State, agent: str, user: str, now: float) -> None:
    agent_limit, user_limit = _limits(ctx, agent)
    for who, ids, limit in (
        (f"agent {agent}", state.jobs_by_agent.get(agent, []), agent_limit),
        (f"user {user}", state.jobs_by_user.get(user, []), user_limit),
    ):
        times = _charged_times(state, ids, now - DAY)
        if len(times) < limit:
            continue
        if limit == 0:
            raise APIError("QUOTA_EXCEEDED", f"{who} may launch no jobs", "ask the organizers for a quota")
        wait = max(1, math.ceil(times[len(times) - limit] + DAY - now))
        raise APIError(
            "QUOTA_EXCEEDED",
            f"{who} launched {len(times)} charged job(s) in the last 24 h, the most allowed ({limit})",
            f"retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def quota_of(ctx: Context, agent: str) -> dict[str, Any] | None:
    """An agent's and its user's charged launches in the last 24 h, and their limits."""
    state = ctx.record.state
    registration = state.agents.get(agent)
    if registration is None:
        return None
    since = ctx.record.clock() - DAY
    agent_limit, user_limit = _limits(ctx, agent)
    return {
        "window_seconds": int(DAY),
        "agent": {"used": len(_charged_times(state, state.jobs_by_agent.get(agent, []), since)), "limit": agent_limit},
        "user": {
            "used": len(_charged_times(state, state.jobs_by_user.get(registration.user, []), since)),
            "limit": user_limit,
        },
    }


# -- launching ------------------------------------------------------------------------------
def _jobs_on(ctx: Context) -> None:
    if not ctx.spec.jobs.enabled:
        raise APIError("JOBS_DISABLED", "jobs are off in this collab", "run the harness on your own hardware")
    if ctx.launcher is None:
        raise APIError("JOBS_DISABLED", "this backend runs no jobs", "organizers: set COLLAB_JOBS to local or hub")


def _folder(submission: str) -> str:
    """The submission folder's path in the agent's bucket: relative, safe, without the trailing '/'."""
    folder = submission[:-1] if submission.endswith("/") else submission
    return check_path(folder)


def _submission_files(ctx: Context, bucket: str, folder: str) -> tuple[FileInfo, ...]:
    limits = ctx.spec.storage
    found: list[FileInfo] = []
    cursor = None
    while True:
        page = ctx.storage.list(bucket, folder + "/", cursor=cursor)
        found += page.items
        if len(found) > limits.max_sync_files:
            raise APIError("BODY_TOO_LARGE", f"{folder}/ holds more than {limits.max_sync_files} files", None)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    if not found:
        raise APIError("SUBMISSION_NOT_FOUND", f"{bucket} has no files under {folder}/", "write the submission first")
    too_big = [f.path for f in found if f.size > limits.max_file_bytes]
    if too_big:
        raise APIError("BODY_TOO_LARGE", f"{too_big[0]} is over {limits.max_file_bytes} bytes", None)
    if sum(f.size for f in found) > limits.max_sync_bytes:
        raise APIError("BODY_TOO_LARGE", f"the submission holds more than {limits.max_sync_bytes} bytes", None)
    return tuple(found)


def _harness_options(ctx: Context) -> frozenset[str]:
    """The options the harness's entrypoint names (read again only when it changes)."""
    jobs = ctx.spec.jobs
    path = jobs.harness_prefix + jobs.entrypoint
    info = ctx.storage.stat(ctx.central, [path]).get(path)
    if info is None or info.size > MAX_HARNESS_BYTES:
        raise APIError("JOB_LAUNCH_FAILED", f"the central bucket has no usable {path}",
                       "organizers: `collab apply` uploads the harness")  # fmt: skip
    cached = ctx.runs.harness
    if cached is not None and cached[0] == info.hash:
        return cached[1]
    try:
        text = ctx.storage.read(ctx.central, path).decode("utf-8", "replace")
    except NotFound:
        raise APIError("JOB_LAUNCH_FAILED", f"{path} vanished from the central bucket", None) from None
    options = frozenset(_OPTION.findall(text))
    ctx.runs.harness = (info.hash, options)
    return options


def harness_options(ctx: Context, job: str, supported: frozenset[str]) -> tuple[str, ...]:
    """What the command passes after the two folders, each only when the harness names it.

    The job id, the time budget (nine tenths of the timeout), and for each scoring metric with a
    guardrail maximum `--<field>-cap <max>`: except for a CPU stand-in, which the spec's caps,
    set for the real engine, would judge wrongly (it uses its own reference instead).
    """
    jobs = ctx.spec.jobs
    out: list[str] = []
    if "--job-id" in supported:
        out += ["--job-id", job]
    if "--time-budget-s" in supported:
        out += ["--time-budget-s", str(int(jobs.timeout_minutes * 60 * 0.9))]
    if ctx.launcher is not None and not ctx.launcher.stand_in:
        for metric in ctx.spec.scoring.metrics:
            flag = f"--{metric.field.replace('_', '-')}-cap"
            if metric.guardrail is not None and metric.guardrail.max is not None and flag in supported:
                out += [flag, repr(float(metric.guardrail.max))]
    return tuple(out)


def launch_job(ctx: Context, identity: Identity, agent_id: str, submission: str, track: str | None) -> dict[str, Any]:
    """Check, charge and start one run of the harness on a folder of the caller's agent's bucket."""
    _jobs_on(ctx)
    agent = agent_of(ctx, identity, agent_id)
    folder = _folder(submission)
    tracks = [t.name for t in ctx.spec.scoring.tracks]
    if track is not None and track not in tracks:
        hint = f"one of {', '.join(tracks)}" if tracks else "this collab has no tracks: leave it out"
        raise APIError("VALIDATION_FAILED", f"track: no track {track!r}", hint)
    _check_quota(ctx, ctx.record.state, agent, identity.user, ctx.record.clock())
    bucket = naming.scratch_bucket(ctx.spec, agent)
    if not ctx.storage.bucket_exists(bucket):
        raise APIError("SCRATCH_BUCKET_MISSING", f"bucket {bucket} does not exist", None)
    files = _submission_files(ctx, bucket, folder)
    supported = _harness_options(ctx)

    def build(state: State, seq: int, ts: float) -> JobEntry:
        _check_quota(ctx, state, agent, identity.user, ts)
        return JobEntry(seq, ts, new_job_id(ts, seq), "launch", agent, identity.user, "queued",
                        source={"bucket": bucket, "path": folder}, track=track)  # fmt: skip

    # Refunded launches cost no quota, so attempts are bounded like posts: each writes two entries.
    ctx.limits.raw_posts.acquire(agent)
    try:
        launch = ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise
    job, runs, launcher = launch.job_id, ctx.runs, ctx.launcher
    assert launcher is not None  # checked by _jobs_on  # noqa: S101
    with runs.lock:
        runs.launching.add(job)
        runs.active.add(job)
    spec = ctx.spec
    request = LaunchRequest(
        job_id=job, agent=agent, submission_bucket=bucket, submission_path=folder, submission_files=files,
        central_bucket=ctx.central, harness_prefix=spec.jobs.harness_prefix, entrypoint=spec.jobs.entrypoint,
        options=harness_options(ctx, job, supported), timeout_s=spec.jobs.timeout_minutes * 60,
        labels=job_labels(spec.challenge.org, spec.challenge.slug, agent, job),
    )  # fmt: skip
    try:
        handle = launcher.launch(request)
    except Exception as exc:
        if isinstance(exc, LauncherError):
            why = str(exc)
        else:
            log.exception("launcher failed on %s", job)
            why = "the launcher failed"
        _settle(ctx, launch, None, Outcome("error", False, f"the job could not be started: {why}"))
        with runs.lock:
            runs.launching.discard(job)
        raise APIError("JOB_LAUNCH_FAILED", f"the job could not be started: {why}",
                       "it was not charged; retry later") from None  # fmt: skip
    with runs.lock:
        runs.handles[job] = handle
        runs.stages[job] = ""  # queued until the monitor sees it run
    try:
        _record_start(ctx, launch, handle)
    except APIError as exc:  # the run goes on; the monitor knows its handle, a restart finds it again
        log.warning("start of %s not recorded: %s", job, exc.message)
    finally:
        with runs.lock:
            runs.launching.discard(job)
    return job_view(ctx, job)


def _record_start(ctx: Context, launch: JobEntry, handle: str) -> None:
    def build(state: State, seq: int, ts: float) -> JobEntry:
        if any(e.event == "end" for e in state.jobs[launch.job_id]):
            raise _Ended
        return JobEntry(seq, ts, launch.job_id, "start", launch.agent, launch.user, "running", external_id=handle)

    with contextlib.suppress(_Ended):
        ctx.record.write(build)


# -- endings --------------------------------------------------------------------------------
def judge(progress: Progress) -> Outcome:
    """What an ended (or lost) run means: its status, whether the charge stands, and why."""
    code = progress.exit_code
    if progress.summary is not None or progress.summary_error:
        try:
            if progress.summary_error:
                raise SummaryProblem(progress.summary_error)
            summary = parse_summary(progress.summary or b"")
        except SummaryProblem as exc:
            return Outcome("failed", True, str(exc), code)
        verdict = "valid" if summary["valid"] else "invalid: " + str(summary["reasons"][0])
        proxy = " (a proxy: a stand-in measured it, so it never ranks)" if summary["proxy"] else ""
        return Outcome("succeeded", True, f"summary written, {verdict}{proxy}", code, summary)
    if progress.state == "lost":
        return Outcome("error", False, f"the run was lost: {progress.message}")
    if progress.timed_out:
        if progress.started:
            return Outcome("timeout", True, "stopped at the timeout without a summary", code)
        return Outcome("error", False, "the job did not start before its timeout", code)
    if progress.canceled:
        return Outcome("error", False, f"the run was canceled ({progress.stage})", code)
    if code is None:  # the Hub reports a stage, not the harness's exit status
        detail = f": {progress.message}" if progress.message else ""
        return Outcome("error", False, f"the job ended {progress.stage} without a summary{detail}")
    if code == 3:
        return Outcome("error", False, "infrastructure failure: the harness exited 3 without a summary", code)
    if code == 0:
        return Outcome("error", False, "the harness exited 0 without writing summary.json", code)
    return Outcome("failed", True, f"the harness exited with status {code} without a summary", code)


def _record_end(ctx: Context, launch: JobEntry, outcome: Outcome) -> JobEntry | None:
    def build(state: State, seq: int, ts: float) -> JobEntry:
        events = state.jobs.get(launch.job_id)
        if events is None or any(e.event == "end" for e in events):
            raise _Ended
        return JobEntry(
            seq, ts, launch.job_id, "end", launch.agent, launch.user, outcome.status,
            charged=outcome.charged, exit_code=outcome.exit_code, reason=outcome.reason[:MAX_REASON_CHARS],
            summary=outcome.summary,
        )  # fmt: skip

    try:
        return ctx.record.write(build)
    except _Ended:
        return None


def _clip(line: str) -> str:
    return redact(line[:MAX_LINE_CHARS])


def _settle(ctx: Context, launch: JobEntry, handle: str | None, outcome: Outcome) -> bool:
    """Store the log's tail and the end entry; True once the job's end is recorded."""
    job, runs = launch.job_id, ctx.runs
    lines: list[str] = []
    if handle is not None and ctx.launcher is not None:
        try:
            lines = [_clip(line) for line in ctx.launcher.logs(handle, MAX_LOG_LINES)]
        except LauncherError as exc:
            lines = [f"(the log could not be read: {exc})"]
    try:
        if handle is not None:
            ctx.record.write_files({job_path(job, "log.txt"): "".join(f"{line}\n" for line in lines).encode()})
        _record_end(ctx, launch, outcome)
    except (APIError, TimeoutError) as exc:
        log.warning("end of %s not recorded yet: %s", job, exc)
        return False
    with runs.lock:
        runs.active.discard(job)
        runs.handles.pop(job, None)
        runs.stages.pop(job, None)
        runs.live_logs.pop(job, None)
        runs.logs[job] = lines
        while len(runs.logs) > LOG_CACHE:
            runs.logs.popitem(last=False)
    if handle is not None and ctx.launcher is not None:
        ctx.launcher.release(handle)
    return True


def _handle(ctx: Context, events: list[JobEntry]) -> str | None:
    known = ctx.runs.handles.get(events[0].job_id)
    return known or next((e.external_id for e in events if e.event == "start" and e.external_id), None)


def check_job(ctx: Context, job: str) -> None:
    """Look at one run still going: record its start if it was lost, its end if it ended."""
    launcher, runs = ctx.launcher, ctx.runs
    events = ctx.record.state.jobs.get(job)
    if launcher is None or events is None or any(e.event == "end" for e in events):
        with runs.lock:
            runs.active.discard(job)
        return
    launch = events[0]
    now = ctx.record.clock()
    handle = _handle(ctx, events)
    if handle is None:
        if now - launch.ts < runs.start_grace_s:
            return
        try:
            handle = launcher.find(job)
        except LauncherError as exc:
            log.warning("looking for %s failed: %s", job, exc)
            return
        if handle is None:
            _settle(ctx, launch, None, Outcome("error", False, "the launch was interrupted before the job started"))
            return
        with runs.lock:
            runs.handles[job] = handle
        _record_start(ctx, launch, handle)
    overdue = now > launch.ts + ctx.spec.jobs.timeout_minutes * 60 + runs.overdue_grace_s
    try:
        progress = launcher.poll(job, handle)
    except LauncherError as exc:
        log.warning("job %s could not be inspected: %s", job, exc)
        if overdue:
            _settle(ctx, launch, None, Outcome("error", False, f"the job could not be inspected: {exc}"))
        return
    with runs.lock:
        runs.stages[job] = progress.stage
    if progress.state in ("queued", "running"):
        if not overdue:
            return
        try:
            launcher.cancel(handle)
        except LauncherError as exc:
            log.warning("job %s could not be canceled: %s", job, exc)
            return
        progress = replace(progress, state="ended", timed_out=True, started=progress.state == "running")
    _settle(ctx, launch, handle, judge(progress))


def tick(ctx: Context) -> None:
    """One pass of the monitor over every run still going."""
    runs = ctx.runs
    if not runs.loaded:
        with runs.lock:
            for job, events in list(ctx.record.state.jobs.items()):
                if not any(e.event == "end" for e in events):
                    runs.active.add(job)
            runs.loaded = True
    with runs.lock:
        waiting = sorted(runs.active - runs.launching)
    for job in waiting:
        try:
            check_job(ctx, job)
        except Exception:  # one bad run must not stop the monitor
            log.exception("checking job %s failed", job)


class JobMonitor:
    """Polls the runs still going every `ctx.runs.poll_interval` seconds, from one thread."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.ctx.launcher is None:
            return
        self._thread = threading.Thread(target=self._run, name="job-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ctx.runs.poll_interval):
            tick(self.ctx)

    def stop(self) -> None:
        """Stop polling; record what ended; stop the runs that end with this process and refund them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        launcher = self.ctx.launcher
        if launcher is None:
            return
        tick(self.ctx)
        for job in launcher.close():
            events = self.ctx.record.state.jobs.get(job)
            if events:
                try:
                    _record_end(self.ctx, events[0], Outcome("error", False, "the backend stopped while the job ran"))
                except (APIError, RuntimeError, TimeoutError) as exc:
                    log.warning("end of %s not recorded: %s", job, exc)


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
        "charged": _charged(events),
        "stage": ctx.runs.stages.get(job),
        "submission": launch.source,
        "track": launch.track,
        "launched_at": iso(launch.ts),
        "started_at": iso(start.ts) if start else None,
        "ended_at": iso(end.ts) if end else None,
        "exit_code": end.exit_code if end else None,
        "reason": end.reason if end else "",
        "valid": summary.get("valid") if summary else None,
        "proxy": summary.get("proxy") if summary else None,
        "logs": f"/v1/jobs/{job}/logs",
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
                runs.logs[job] = lines
                while len(runs.logs) > LOG_CACHE:
                    runs.logs.popitem(last=False)
    else:
        lines = _live_logs(ctx, job, events, tail)
    return {"id": job, "status": _status(ctx, events), "complete": ended, "lines": lines[-tail:]}


def _live_logs(ctx: Context, job: str, events: list[JobEntry], tail: int) -> list[str]:
    handle = _handle(ctx, events)
    if handle is None or ctx.launcher is None:
        return []
    runs = ctx.runs
    now = time.monotonic()
    with runs.lock:
        cached = runs.live_logs.get(job)
    if cached is not None and now - cached[0] < LIVE_LOG_TTL and cached[1] >= tail:
        return cached[2]
    try:
        lines = [_clip(line) for line in ctx.launcher.logs(handle, tail)]
    except LauncherError as exc:
        raise APIError("JOBS_UNAVAILABLE", f"the job's log could not be read: {exc}", "retry shortly") from None
    with runs.lock:
        runs.live_logs[job] = (now, tail, lines)
        while len(runs.live_logs) > LOG_CACHE:
            runs.live_logs.pop(next(iter(runs.live_logs)))
    return lines
