"""Benchmark jobs: launching a run within the quotas, and the quotas themselves.

A launch is checked in this order: jobs on (spec and backend), the caller's agent, the submission
folder's name (the path rules), the track, the quota (a quick refusal that costs no storage call),
the agent's bucket and the folder's files (bounded like a sync), the harness in the central bucket,
the organizers' rulings in force (`RULED_OUT`, services/rulings.py). Then the quota is checked again
**inside the writer** while the launch entry is built, so concurrent launches cannot overspend: the
launch entry is the charge. Only then does the launcher start the run; if it cannot, an end entry
refunds the charge.

Quotas count charged launches in the last 24 hours (a sliding window): per agent
(`jobs.quota.per_agent_per_day`, or its entry in `overrides`) and per HF user over all of its
agents (`per_user_per_day`). A run that ends in an infrastructure failure is refunded by its end
entry (`charged: false`): no summary and the harness's exit status 3 (or 0), a Hub run killed
with its container (no exit status) before about its timeout, a cancel, a run the launcher lost,
a launch that never started.

How runs end is `job_endings`; reading them is `job_views`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Any

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.jobs.base import LauncherError, LaunchRequest, job_labels
from collab_backend.jobs.paths import job_id as new_job_id
from collab_backend.record.entries import JobEntry
from collab_backend.record.state import State
from collab_backend.services.fingerprints import fingerprint, harness_files
from collab_backend.services.job_endings import Outcome, record_start, settle
from collab_backend.services.registry import agent_of
from collab_backend.services.rulings import refuse_ruled, submission_config
from collab_backend.services.sources import check_sizes, list_bounded
from collab_backend.services.standing import refuse_standing
from collab_backend.storage import FileInfo, NotFound, TooLarge, check_path

log = logging.getLogger("collab_backend.jobs")

DAY = 86_400.0
MAX_HARNESS_BYTES = 1 << 20
_OPTION = re.compile(r"""["'](--[a-z0-9][a-z0-9-]*)["']""")


# -- quotas ---------------------------------------------------------------------------------
def is_charged(events: list[JobEntry]) -> bool:
    return not any(e.event == "end" and not e.charged for e in events)


def _charged_times(state: State, ids: list[str], since: float) -> list[float]:
    """Launch times of the charged jobs among `ids` (in launch order) after `since`, oldest first."""
    times = []
    for job in reversed(ids):
        events = state.jobs[job]
        if events[0].ts <= since:
            break
        if is_charged(events):
            times.append(events[0].ts)
    return times[::-1]


def _limits(ctx: Context, agent: str) -> tuple[int, int]:
    quota = ctx.spec.jobs.quota
    return quota.overrides.get(agent, quota.per_agent_per_day), quota.per_user_per_day


def check_quota(ctx: Context, state: State, agent: str, user: str, now: float) -> None:
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
def jobs_on(ctx: Context) -> None:
    if not ctx.spec.jobs.enabled:
        raise APIError("JOBS_DISABLED", "jobs are off in this collab", "run the harness on your own hardware")
    if ctx.launcher is None:
        raise APIError("JOBS_DISABLED", "this backend runs no jobs", "organizers: set COLLAB_JOBS to local or hub")


def submission_folder(submission: str) -> str:
    """The submission folder's path in the agent's bucket: relative, safe, without the trailing '/'."""
    folder = submission[:-1] if submission.endswith("/") else submission
    return check_path(folder)


def submission_files(ctx: Context, bucket: str, folder: str) -> tuple[FileInfo, ...]:
    found = list_bounded(ctx, bucket, folder + "/", too_many="BODY_TOO_LARGE", hint=None)
    if not found:
        raise APIError("SUBMISSION_NOT_FOUND", f"{bucket} has no files under {folder}/", "write the submission first")
    check_sizes(ctx, found, hint=None)
    return tuple(found)


def harness_options_supported(ctx: Context) -> frozenset[str]:
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
        text = ctx.storage.read(ctx.central, path, max_bytes=MAX_HARNESS_BYTES).decode("utf-8", "replace")
    except (NotFound, TooLarge):
        raise APIError("JOB_LAUNCH_FAILED", f"{path} vanished from the central bucket or grew", None) from None
    options = frozenset(_OPTION.findall(text))
    ctx.runs.harness = (info.hash, options)
    return options


def harness_options(ctx: Context, job: str, supported: frozenset[str]) -> tuple[str, ...]:
    """What the command passes after the folders: the launcher's own options, then the spec's.

    The job id and the time budget (nine tenths of the timeout), each only when the harness
    names it; then the challenge type's arguments from the spec (`COLLAB_JOBS_ARGS`, e.g.
    `--ppl-cap 2.42`), the values the leaderboard applies: except for a CPU stand-in, which the
    spec's caps, set for the real engine, would judge wrongly (it uses its own reference instead).
    """
    jobs = ctx.spec.jobs
    out: list[str] = []
    if "--job-id" in supported:
        out += ["--job-id", job]
    if "--time-budget-s" in supported:
        out += ["--time-budget-s", str(int(jobs.timeout_minutes * 60 * 0.9))]
    if ctx.launcher is not None and not ctx.launcher.stand_in:
        out += ctx.job_args
    return tuple(out)


def check_track(ctx: Context, track: str | None) -> None:
    """VALIDATION_FAILED unless `track` is None or one of the spec's tracks."""
    tracks = [t.name for t in ctx.spec.scoring.tracks]
    if track is not None and track not in tracks:
        hint = f"one of {', '.join(tracks)}" if tracks else "this collab has no tracks: leave it out"
        raise APIError("VALIDATION_FAILED", f"track: no track {track!r}", hint)


def launch_job(ctx: Context, identity: Identity, agent_id: str, submission: str, track: str | None) -> str:
    """Check, charge and start one run of the harness on a folder of the caller's agent's bucket; its id."""
    jobs_on(ctx)
    agent = agent_of(ctx, identity, agent_id)
    folder = submission_folder(submission)
    check_track(ctx, track)
    check_quota(ctx, ctx.record.state, agent, identity.user, ctx.record.clock())
    return start_job(ctx, identity.user, agent, naming.scratch_bucket(ctx.spec, agent), folder, track)


def checked_submission(ctx: Context, bucket: str, folder: str) -> tuple[FileInfo, ...]:
    """The files of a submission folder of an agent's bucket, bounded like a sync (at least one)."""
    if not ctx.storage.bucket_exists(bucket):
        raise APIError("SCRATCH_BUCKET_MISSING", f"bucket {bucket} does not exist", None)
    return submission_files(ctx, bucket, folder)


def refuse_ruled_out(ctx: Context, bucket: str, folder: str, files: tuple[FileInfo, ...]) -> str:
    """RULED_OUT when an accepted ruling or a standing rule covers the folder; else the run's fingerprint."""
    run_fingerprint = fingerprint(ctx, files, folder, harness_files(ctx))
    refuse_ruled(ctx, {"bucket": bucket, "path": folder}, run_fingerprint)
    if ctx.denylist is not None:  # the type's standing rules: the harness would refuse it, so no job is spent
        refuse_standing(ctx, submission_config(ctx, {"bucket": bucket, "path": folder}))
    return run_fingerprint


def start_job(
    ctx: Context,
    user: str,
    agent: str,
    bucket: str,
    folder: str,
    track: str | None,
    *,
    guard: Callable[[State, float], None] | None = None,
    **launch_fields: Any,
) -> str:
    """Charge `agent` (and `user`) for a run of the harness on `bucket`'s `folder`, and start it; its id.

    The quota is checked again in the writer, after `guard` (a check that must hold at the
    moment of the charge, e.g. a run request's lease); `launch_fields` go on the launch entry.
    """
    files = checked_submission(ctx, bucket, folder)
    supported = harness_options_supported(ctx)
    run_fingerprint = refuse_ruled_out(ctx, bucket, folder, files)

    def build(state: State, seq: int, ts: float) -> JobEntry:
        if guard is not None:
            guard(state, ts)
        check_quota(ctx, state, agent, user, ts)
        return JobEntry(seq, ts, new_job_id(ts, seq), "launch", agent, user, "queued",
                        source={"bucket": bucket, "path": folder}, track=track,
                        fingerprint=run_fingerprint, **launch_fields)  # fmt: skip

    # Refunded launches cost no quota, so attempts are bounded like posts: each writes two entries.
    ctx.limits.raw_posts.acquire(agent)
    try:
        launch = ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise
    spec = ctx.spec
    request = LaunchRequest(
        job_id=launch.job_id, agent=agent, submission_bucket=bucket, submission_path=folder, submission_files=files,
        central_bucket=ctx.central, harness_prefix=spec.jobs.harness_prefix, entrypoint=spec.jobs.entrypoint,
        options=harness_options(ctx, launch.job_id, supported), timeout_s=spec.jobs.timeout_minutes * 60,
        labels=job_labels(spec.challenge.org, spec.challenge.slug, agent, launch.job_id),
    )  # fmt: skip
    start_run(ctx, launch, request)
    return launch.job_id


def start_run(ctx: Context, launch: JobEntry, request: LaunchRequest) -> None:
    """Hand a recorded launch to the launcher; a launch that fails is refunded (JOB_LAUNCH_FAILED)."""
    job, runs, launcher = launch.job_id, ctx.runs, ctx.launcher
    assert launcher is not None  # checked by the caller  # noqa: S101
    with runs.lock:
        runs.launching.add(job)
        runs.active.add(job)
    try:
        handle = launcher.launch(request)
    except Exception as exc:
        if isinstance(exc, LauncherError):
            why = str(exc)
        else:
            log.exception("launcher failed on %s", job)
            why = "the launcher failed"
        settle(ctx, launch, None, Outcome("error", False, f"the job could not be started: {why}"))
        with runs.lock:
            runs.launching.discard(job)
        raise APIError("JOB_LAUNCH_FAILED", f"the job could not be started: {why}",
                       "it was not charged; retry later") from None  # fmt: skip
    with runs.lock:
        runs.handles[job] = handle
        runs.stages[job] = ""  # queued until the monitor sees it run
    try:
        record_start(ctx, launch, handle)
    except APIError as exc:  # the run goes on; the monitor knows its handle, a restart finds it again
        log.warning("start of %s not recorded: %s", job, exc.message)
    finally:
        with runs.lock:
            runs.launching.discard(job)
