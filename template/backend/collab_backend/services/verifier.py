"""Verification by re-runs (mode `jobs`): which results are re-run, how a re-run decides a verdict.

A pending result is re-run when it would take first place in its track over the verified
champion, outside the champion's tie group (or, with no champion yet, when it ranks first), or
when it ranks in its track's top `verification.top_k` (0: off). The
re-run is an ordinary job of the harness on the result's submission folder, launched by
`_verifier` for `_organizers`: charged to `verification.runs_per_day` in any 24 h, never to an
agent's quota, with the private set (`verification.private_set` of the audit bucket) read-only at
`/private` when the harness takes `--private-dir`. One run per fingerprint: results with one
fingerprint share the run in flight and the run that ended. A re-run that ended decides each
result of its fingerprint against that result's own figure (`decide`); an infrastructure failure
leaves the result `pending` with the reason and is retried after 1, 2, then 4 minutes, three
tries at most. A human verdict always wins (the verdict service keeps it).

A rehearsal (`COLLAB_VERIFY_REHEARSAL=1`, local jobs only) lets the whole path run on one machine
with the challenge type's CPU stand-in: the verifier also re-runs pending proxy results that a job
measured (proxies never rank, so the board never asks for them), and takes the stand-in's re-run
as its measurement. The rule that keeps it from verifying anything real: a rehearsal verdict
falls only on a proxy result, is recorded by `verifier:rehearsal` with a reason that starts
`rehearsal:`, and a proxy never ranks whatever its verdict; a non-proxy result whose re-run was a
stand-in's stays `pending`, as outside a rehearsal. In a rehearsal the tolerance and the noise
decide; a guard the stand-in fails is named in the reason but decides nothing (a stand-in's
outputs are not the model's, so its quality checks say nothing about the submission).

The gap monitor: a re-run on the private set records the gap, the public figure minus the private
one in the track's direction (how much worse the private set scores), beside the noise margin
the verdict used; a gap above that noise is flagged (`gap_flag`): the overfitting signal of a
submission tuned to the public prompts. The flag decides nothing by itself (the tolerance does);
`GET /v1/verification/gaps` lists the flagged results for the organizers.

Everything is decided from the record at each sweep (the job monitor's period), so a restart in
the middle of a re-run finds the run again (the monitor) and records the verdict it has not
recorded yet (the next sweep).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.jobs.base import LaunchRequest, job_labels
from collab_backend.jobs.paths import job_id as new_job_id
from collab_backend.poller import Poller
from collab_backend.record.entries import JobEntry, ResultEntry
from collab_backend.record.state import State
from collab_backend.services.fingerprints import fingerprint, harness_files
from collab_backend.services.jobs import (
    DAY,
    harness_options,
    harness_options_supported,
    is_charged,
    start_run,
    submission_files,
)
from collab_backend.services.leaderboard import tie_margin
from collab_backend.services.results import measured_interval, set_verdict
from collab_backend.spec import ChallengeSpec
from collab_backend.storage import StorageError

log = logging.getLogger("collab_backend.verifier")

VERIFIER = "_verifier"  # not a valid agent id: never registered, never anyone's quota
ORGANIZERS = "_organizers"
BY = "verifier:jobs"
REHEARSAL_BY = "verifier:rehearsal"
REHEARSAL = "rehearsal: the CPU stand-in's re-run, not a measurement; "
MAX_TRIES = 3
BACKOFF_S = 60.0  # after the n-th infrastructure failure, wait BACKOFF_S x 2^(n-1)
LOOK_AGAIN_S = 600.0  # a result that could not be re-run (folder changed, budget spent) is looked at again after this


@dataclass(frozen=True)
class Decision:
    """A re-run's verdict on one result: `retry` when the infrastructure failed (the result stays pending)."""

    verdict: Literal["pending", "valid", "invalid"]
    reason: str
    figures: dict[str, float] | None = None
    retry: bool = False
    gap: Gap | None = None  # on the private set only


@dataclass(frozen=True)
class Gap:
    """How much worse the private figure is than the public one, in the track's direction, against the noise."""

    gap: float
    noise: float

    @property
    def flagged(self) -> bool:
        return self.gap > self.noise


def gap_of(direction: str, public: float, private: float, noise: float) -> Gap:
    """The gap rule: public minus private when higher is better, private minus public when lower is better."""
    return Gap(public - private if direction == "maximize" else private - public, noise)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def decide(
    spec: ChallengeSpec,
    public: float,
    end: JobEntry,
    *,
    private_set: bool = True,
    interval: list[float] | None = None,
    rehearsal: bool = False,
) -> Decision:
    """The verdict a re-run's end entry gives a result whose public figure is `public`.

    `private_set` says whether the run had the private set at `/private` (else it re-ran the public one);
    `interval` is the result's measured 95% interval: with it (or the re-run's own), the tolerance is
    widened by the two intervals' half-widths instead of the noise model's margin. `rehearsal`
    takes a stand-in's figures as the measurement (a proxy result's rehearsal, never a real result's);
    its guards are named, not applied.
    """
    scoring, verification = spec.scoring, spec.verification
    if end.status == "error":
        return Decision("pending", f"the re-run failed in the infrastructure ({end.reason}); it is retried", retry=True)
    summary = end.summary
    if end.status != "succeeded" or summary is None:
        return Decision("invalid", f"the re-run ended {end.status}: {end.reason}")
    if summary.get("proxy") and not rehearsal:
        return Decision("pending", "a stand-in ran the re-run: its figures are not a measurement")
    if not summary.get("valid"):
        return Decision("invalid", "the re-run judged the submission invalid: " + "; ".join(summary["reasons"][:3]))
    private = _number(summary.get(scoring.score_field))
    if private is None:
        return Decision("invalid", f"the re-run's summary has no `{scoring.score_field}`")
    figures = {scoring.score_field: private}
    figures.update({m.field: v for m in scoring.metrics if (v := _number(summary.get(m.field))) is not None})
    noted = ""
    for guard in verification.guards:
        value = _number(summary.get(guard.field))
        if value is None or not guard.admits(value):
            bounds = f"min {guard.min}, max {guard.max}"
            if rehearsal:  # a stand-in's outputs are not the model's: its quality checks decide nothing
                noted += f"guard `{guard.field}` not applied: {value} ({bounds}), a stand-in's figure; "
                continue
            return Decision("invalid", f"guard `{guard.field}` failed: {value} ({bounds})", figures)
    rerun_interval = measured_interval(summary, scoring.score_field)
    if interval is None and rerun_interval is None:
        noise = tie_margin(scoring.noise, public, private)
    else:
        noise = sum((i[1] - i[0]) / 2 for i in (interval, rerun_interval) if i is not None)
    allowed = verification.tolerance * abs(public) + noise
    apart = abs(private - public)
    where = "on the private set" if private_set else "on the public set (no private set)"
    words = f"{noted}the re-run measured {private:g} {where}, the result says {public:g}"
    gap = gap_of(scoring.direction, public, private, noise) if private_set else None
    if gap is not None and gap.flagged:
        words += f" (gap flagged: the private figure is {gap.gap:g} worse, more than the {noise:g} noise)"
    if apart > allowed:
        return Decision("invalid", f"{words}: {apart:g} apart, more than the {allowed:g} allowed", figures, gap=gap)
    return Decision("valid", f"{words}: within the {allowed:g} allowed", figures, gap=gap)


# -- which results ------------------------------------------------------------------------------
def candidates(ctx: Context) -> list[str]:
    """Pending results that would take first place over their track's verified champion, or enter its top K.

    `verification.top_k` K (0: none) re-runs every pending result ranked K or better too.
    In a rehearsal, also every job-measured proxy result no verdict decided yet.
    """
    board = ctx.leaderboard.get(ctx.record.state, ctx.spec.scoring).board
    out: list[str] = []
    for b in board["boards"]:
        standings = b["standings"]
        champion = next((s for s in standings if s["verdict"] == "valid"), None)
        above = max(champion["rank"] if champion is not None else 2, ctx.spec.verification.top_k + 1)
        out += [s["result_id"] for s in standings if s["rank"] < above and s["verdict"] == "pending"]
    if ctx.runs.rehearsal:
        state = ctx.record.state
        for rid in list(state.result_order):
            verdict = state.verdicts.get(rid)
            if _rehearsable(state.results[rid]) and (verdict is None or verdict.verdict == "pending"):
                out.append(rid)
    return out


def _rehearsable(result: ResultEntry) -> bool:
    """Whether a rehearsal may rule on a result: a proxy that a job measured."""
    return result.basis == "proxy" and result.job is not None


def _reruns(state: State) -> dict[str, list[list[JobEntry]]]:
    """The verifier's jobs (their events) by fingerprint, oldest first."""
    out: defaultdict[str, list[list[JobEntry]]] = defaultdict(list)
    for job in state.jobs_by_agent.get(VERIFIER, []):
        events = state.jobs[job]
        if events[0].fingerprint is not None:
            out[events[0].fingerprint].append(events)
    return out


def _end(events: list[JobEntry]) -> JobEntry | None:
    return next((e for e in events if e.event == "end"), None)


# -- one sweep ------------------------------------------------------------------------------------
@dataclass
class Swept:
    """What one sweep did: the verdicts it recorded, the re-runs it started, the re-runs still in flight."""

    recorded: list[str] = field(default_factory=list)  # result ids
    started: list[str] = field(default_factory=list)  # job ids
    in_flight: list[str] = field(default_factory=list)  # job ids

    def as_json(self) -> dict[str, list[str]]:
        return {"recorded": self.recorded, "started": self.started, "in_flight": self.in_flight}


def sweep(ctx: Context) -> Swept:
    """Record what ended re-runs decided, and start the re-runs the board now asks for.

    One sweep at a time (the verifier's thread and an organizer's `POST /v1/verification/sweep`).
    """
    swept = Swept()
    if ctx.spec.verification.mode != "jobs" or ctx.launcher is None:
        return swept
    with ctx.runs.sweeping:
        _sweep(ctx, swept)
    return swept


def _sweep(ctx: Context, swept: Swept) -> None:
    state = ctx.record.state
    reruns = _reruns(state)
    if reruns:
        by_fingerprint: defaultdict[str, list[ResultEntry]] = defaultdict(list)
        for result in list(state.results.values()):
            if result.fingerprint in reruns:
                by_fingerprint[result.fingerprint].append(result)
        for fp, jobs in reruns.items():
            end = _end(jobs[-1])
            if end is None:
                swept.in_flight.append(jobs[-1][0].job_id)
                continue
            for result in by_fingerprint[fp]:
                try:
                    if _conclude(ctx, result, jobs, end, swept):
                        swept.recorded.append(result.id)
                except (APIError, StorageError) as exc:  # one result's retry must not stop the others
                    log.warning("verdict of %s not recorded: %s", result.id, getattr(exc, "message", exc))
    now = ctx.record.clock()
    stand_in = ctx.launcher is not None and ctx.launcher.stand_in
    for rid in candidates(ctx):
        result = state.results[rid]
        if result.fingerprint is None or result.submission is None or result.fingerprint in reruns:
            continue  # not re-runnable (a claim naming no submission), or its run exists
        if stand_in and not (ctx.runs.rehearsal and _rehearsable(result)):
            continue  # a stand-in's re-run measures nothing: no job spent, nothing announced; it stays pending
        if ctx.runs.verify_wait.get(rid, 0.0) > now:
            continue
        try:
            _rerun(ctx, result, swept)
        except (APIError, StorageError) as exc:
            message = exc.message if isinstance(exc, APIError) else str(exc)
            log.warning("re-run of %s not started: %s", rid, message)
            ctx.runs.verify_wait[rid] = now + LOOK_AGAIN_S


def _conclude(ctx: Context, result: ResultEntry, jobs: list[list[JobEntry]], end: JobEntry, swept: Swept) -> bool:
    """Record what the fingerprint's last re-run says of one result (retrying an infrastructure failure).

    True when a verdict was written.
    """
    current = ctx.record.state.verdicts.get(result.id)
    if current is not None and current.human:
        return False  # a human ruled: never overruled
    rehearsal = ctx.runs.rehearsal and _rehearsable(result)
    decision = decide(ctx.spec, result.score, end, private_set=jobs[-1][0].private, interval=result.interval,
                      rehearsal=rehearsal)  # fmt: skip
    retry = decision.retry and len(jobs) < MAX_TRIES
    reason = decision.reason
    by = BY
    if rehearsal and decision.verdict != "pending":
        reason, by = REHEARSAL + reason, REHEARSAL_BY
    if decision.retry and not retry:
        reason = f"the re-run failed in the infrastructure {len(jobs)} times ({end.reason}); the organizers decide"
    reason = reason[:500]
    written = None
    if current is None or (current.verdict, current.reason, current.job) != (decision.verdict, reason, end.job_id):
        gap = decision.gap
        written = set_verdict(ctx, result.id, decision.verdict, by, reason, job=end.job_id, figures=decision.figures,
                              gap=None if gap is None else (gap.gap, gap.noise))  # fmt: skip
    if retry and ctx.record.clock() >= end.ts + BACKOFF_S * 2 ** (len(jobs) - 1):
        _rerun(ctx, result, swept)
    return written is not None


def _budget_used(state: State, since: float) -> int:
    ids = state.jobs_by_agent.get(VERIFIER, [])
    return sum(1 for job in ids if state.jobs[job][0].ts > since and is_charged(state.jobs[job]))


def _rerun(ctx: Context, result: ResultEntry, swept: Swept | None = None) -> None:
    """Launch the re-run of a result's submission on the organizers' budget (one per fingerprint)."""
    spec, submission = ctx.spec, result.submission
    assert submission is not None and result.fingerprint is not None  # noqa: S101
    bucket, folder = submission["bucket"], submission["path"]
    files = submission_files(ctx, bucket, folder)
    if fingerprint(ctx, files, folder, harness_files(ctx)) != result.fingerprint:
        set_verdict(ctx, result.id, "pending", BY, "the submission folder or the harness changed since the result "
                    "was recorded: it cannot be re-run as it was; record a new result")  # fmt: skip
        ctx.runs.verify_wait[result.id] = ctx.record.clock() + LOOK_AGAIN_S
        return
    supported = harness_options_supported(ctx)
    fp, limit = result.fingerprint, spec.verification.runs_per_day
    private_set = spec.verification.private_set
    private = (spec.storage.audit_bucket, private_set) if "--private-dir" in supported and _present(ctx) else None

    def build(state: State, seq: int, ts: float) -> JobEntry:
        running = [j for j in _reruns(state).get(fp, []) if _end(j) is None]
        if running:
            raise _Shared
        if _budget_used(state, ts - DAY) >= limit:
            raise _NoBudget
        return JobEntry(seq, ts, new_job_id(ts, seq), "launch", VERIFIER, ORGANIZERS, "queued", source=dict(submission),
                        track=result.track, fingerprint=fp, purpose="verify", result=result.id,
                        private=private is not None)  # fmt: skip

    try:
        launch = ctx.record.write(build)
    except _Shared:
        return
    except _NoBudget:
        set_verdict(ctx, result.id, "pending", BY, f"the organizers' {limit} re-runs for 24 h are spent; it waits")
        ctx.runs.verify_wait[result.id] = ctx.record.clock() + LOOK_AGAIN_S
        return
    request = LaunchRequest(
        job_id=launch.job_id, agent=VERIFIER, submission_bucket=bucket, submission_path=folder,
        submission_files=tuple(files), central_bucket=ctx.central, harness_prefix=spec.jobs.harness_prefix,
        entrypoint=spec.jobs.entrypoint, options=harness_options(ctx, launch.job_id, supported),
        timeout_s=spec.jobs.timeout_minutes * 60,
        labels=job_labels(spec.challenge.org, spec.challenge.slug, VERIFIER, launch.job_id), private=private,
    )  # fmt: skip
    log.info("re-running %s (fingerprint %s) as %s", result.id, fp, launch.job_id)
    start_run(ctx, launch, request)
    if swept is not None:
        swept.started.append(launch.job_id)


def _present(ctx: Context) -> bool:
    """Whether the private set holds a file (a harness without one re-runs on its public set)."""
    folder = ctx.spec.verification.private_set
    page = ctx.storage.list(ctx.spec.storage.audit_bucket, folder if folder.endswith("/") else folder + "/", limit=1)
    return bool(page.items)


class _Shared(Exception):
    """A re-run of this fingerprint is in flight: the result shares it."""


class _NoBudget(Exception):
    """The organizers' re-runs for 24 h are spent."""


class Verifier(Poller):
    """Sweeps every `ctx.runs.poll_interval` seconds (mode `jobs` only)."""

    name = "verifier"

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def enabled(self) -> bool:
        return self.ctx.spec.verification.mode == "jobs" and self.ctx.launcher is not None

    def interval(self) -> float:
        return self.ctx.runs.poll_interval

    def tick(self) -> None:
        sweep(self.ctx)
