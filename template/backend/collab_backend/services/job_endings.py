"""How a benchmark job ended: judging a run, recording its end and log, and the monitor.

The monitor (a thread) polls the runs still going, cancels those far past their timeout, and
records each ending: the end entry (status, charge, reason, the summary checked against the
job summary schema) and the log's tail in the central bucket. A run that ends in an
infrastructure failure is refunded by its end entry (`charged: false`): no summary and the
harness's exit status 3 (or 0), a Hub run killed with its container (no exit status) before
about its timeout, a cancel, a run the launcher lost, a launch that never started.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any, Literal

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.jobs.base import LauncherError, Progress, Runs, redact
from collab_backend.jobs.paths import job_path
from collab_backend.jobs.summary import SummaryProblem, parse_summary
from collab_backend.poller import Poller
from collab_backend.record.entries import JobEntry
from collab_backend.record.state import State

log = logging.getLogger("collab_backend.jobs")

MAX_LOG_LINES = 1000
MAX_LINE_CHARS = 2000
MAX_REASON_CHARS = 500
LOG_CACHE = 256


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


def record_start(ctx: Context, launch: JobEntry, handle: str) -> None:
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
    if code is None:  # a Hub run whose container was killed before its command wrote the exit status
        detail = f": {progress.message}" if progress.message else ""
        return Outcome("error", False, f"the job ended {progress.stage} without a summary{detail}")
    if code == 3:
        return Outcome("error", False, "infrastructure failure: the harness exited 3 without a summary", code)
    if code == 0:
        return Outcome("error", False, "the harness exited 0 without writing summary.json", code)
    return Outcome("failed", True, f"the harness exited with status {code} without a summary", code)


def record_end(ctx: Context, launch: JobEntry, outcome: Outcome) -> JobEntry | None:
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


def remember_log(runs: Runs, job: str, lines: list[str]) -> None:
    """Cache an ended job's log lines, the oldest entries leaving past LOG_CACHE; call with `runs.lock` held."""
    runs.logs[job] = lines
    runs.logs.move_to_end(job)
    while len(runs.logs) > LOG_CACHE:
        runs.logs.popitem(last=False)


def clip_line(line: str) -> str:
    return redact(line[:MAX_LINE_CHARS])


def settle(ctx: Context, launch: JobEntry, handle: str | None, outcome: Outcome) -> bool:
    """Store the log's tail and the end entry; True once the job's end is recorded."""
    job, runs = launch.job_id, ctx.runs
    lines: list[str] = []
    if handle is not None and ctx.launcher is not None:
        try:
            lines = [clip_line(line) for line in ctx.launcher.logs(handle, MAX_LOG_LINES)]
        except LauncherError as exc:
            lines = [f"(the log could not be read: {exc})"]
    try:
        if handle is not None:
            ctx.record.write_files({job_path(job, "log.txt"): "".join(f"{line}\n" for line in lines).encode()})
        record_end(ctx, launch, outcome)
    except (APIError, TimeoutError) as exc:
        log.warning("end of %s not recorded yet: %s", job, exc)
        return False
    with runs.lock:
        runs.active.discard(job)
        runs.handles.pop(job, None)
        runs.stages.pop(job, None)
        runs.live_logs.pop(job, None)
        remember_log(runs, job, lines)
    if handle is not None and ctx.launcher is not None:
        ctx.launcher.release(handle)
    return True


def run_handle(ctx: Context, events: list[JobEntry]) -> str | None:
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
    handle = run_handle(ctx, events)
    if handle is None:
        if now - launch.ts < runs.start_grace_s:
            return
        try:
            handle = launcher.find(job)
        except LauncherError as exc:
            log.warning("looking for %s failed: %s", job, exc)
            return
        if handle is None:
            settle(ctx, launch, None, Outcome("error", False, "the launch was interrupted before the job started"))
            return
        with runs.lock:
            runs.handles[job] = handle
        record_start(ctx, launch, handle)
    overdue = now > launch.ts + ctx.spec.jobs.timeout_minutes * 60 + runs.overdue_grace_s
    try:
        progress = launcher.poll(job, handle)
    except LauncherError as exc:
        log.warning("job %s could not be inspected: %s", job, exc)
        if overdue:
            settle(ctx, launch, None, Outcome("error", False, f"the job could not be inspected: {exc}"))
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
    settle(ctx, launch, handle, judge(progress))


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


class JobMonitor(Poller):
    """Polls the runs still going every `ctx.runs.poll_interval` seconds."""

    name = "job-monitor"

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def enabled(self) -> bool:
        return self.ctx.launcher is not None

    def interval(self) -> float:
        return self.ctx.runs.poll_interval

    def tick(self) -> None:
        tick(self.ctx)

    def stop(self) -> None:
        """Stop polling; record what ended; stop the runs that end with this process and refund them."""
        super().stop()
        launcher = self.ctx.launcher
        if launcher is None:
            return
        tick(self.ctx)
        for job in launcher.close():
            events = self.ctx.record.state.jobs.get(job)
            if events:
                try:
                    record_end(self.ctx, events[0], Outcome("error", False, "the backend stopped while the job ran"))
                except (APIError, RuntimeError, TimeoutError) as exc:
                    log.warning("end of %s not recorded: %s", job, exc)
