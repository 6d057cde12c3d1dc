"""Run requests: a submission its originator asks another agent to run on that agent's quota.

The originator opens a request for a folder of its own bucket (checked as a job launch would
check it, so a request that could never launch is refused up front). Another agent claims it: a
lease, held by one agent at a time until it ends (`expires`), is renewed or released by its
holder. Only the holder launches it: the job is charged to the holder (the *sponsor*) and runs
the originator's folder, and the job and any result recorded from it carry both `originator`
and `sponsor`. A lease that ran out returns the request to the pool: states are computed from
the record and the clock (`view`), so no thread has to expire anything.

Every change is decided inside the single writer (`_event`): of two concurrent claims, the one
built first wins and the other sees its lease (`LEASE_HELD`). The launch is the job's launch
entry itself (it names the request), built after the lease is checked in the same step, so a
launch can never outlive a lease that ended or race another launch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import RunRequestEntry, iso
from collab_backend.record.state import State
from collab_backend.services.direction_index import check_direction
from collab_backend.services.jobs import (
    check_quota,
    check_track,
    checked_submission,
    harness_options_supported,
    jobs_on,
    refuse_ruled_out,
    start_job,
    submission_folder,
)
from collab_backend.services.registry import agent_of

DEFAULT_LEASE_MINUTES = 30
MAX_LEASE_MINUTES = 120
RunState = Literal["open", "claimed", "launched", "done", "withdrawn"]
STATES: tuple[RunState, ...] = ("open", "claimed", "launched", "done", "withdrawn")
LEASE_RULE = (
    f"a claim holds the request for `minutes` (default {DEFAULT_LEASE_MINUTES}, at most {MAX_LEASE_MINUTES}); one "
    "holder at a time; the holder renews (from now, same bounds) or releases it; a lease that ran out returns the "
    "request to `open`; only the holder launches it, on its own quota; a job that was refunded (an infrastructure "
    "failure) leaves the request claimed while the lease lasts"
)


@dataclass(frozen=True)
class Lease:
    holder: str
    expires: float


def request_id(ts: float, seq: int) -> str:
    """A run request's id: sortable by opening time, unique by the record's sequence number."""
    return f"rr-{int(ts * 1000):013d}-{seq}"


# -- what the record says -------------------------------------------------------------------
def lease_of(events: list[RunRequestEntry], now: float) -> Lease | None:
    """The lease in force at `now`: the last claim, extended by its holder's renewals, unless released or over."""
    lease: Lease | None = None
    for event in events:
        if event.event == "claim" and event.expires is not None:
            lease = Lease(event.agent, event.expires)
        elif event.event == "renew" and lease is not None and event.agent == lease.holder and event.expires:
            lease = Lease(lease.holder, event.expires)
        elif event.event == "release" and lease is not None and event.agent == lease.holder:
            lease = None
    return lease if lease is not None and lease.expires > now else None


def _job_of(state: State, rid: str) -> tuple[str, bool] | None:
    """The request's latest job and whether it ended; None when it has none that counts (a refunded one does not)."""
    jobs = state.run_request_jobs.get(rid, [])
    if not jobs:
        return None
    end = next((e for e in state.jobs[jobs[-1]] if e.event == "end"), None)
    if end is not None and not end.charged:
        return None
    return jobs[-1], end is not None


def state_of(state: State, rid: str, now: float) -> RunState:
    events = state.run_requests[rid]
    if any(e.event == "withdraw" for e in events):
        return "withdrawn"
    job = _job_of(state, rid)
    if job is not None:
        return "done" if job[1] else "launched"
    return "claimed" if lease_of(events, now) is not None else "open"


def open_in(state: State, direction: str, now: float) -> int:
    """How many run requests naming `direction` are open (published, not claimed, launched or withdrawn)."""
    return sum(1 for rid, events in state.run_requests.items()
               if events[0].direction == direction and state_of(state, rid, now) == "open")  # fmt: skip


def view(state: State, rid: str, now: float) -> dict[str, Any]:
    """A run request as the API shows it."""
    events = state.run_requests[rid]
    opened = events[0]
    status = state_of(state, rid, now)
    lease = lease_of(events, now) if status == "claimed" else None
    job = _job_of(state, rid)
    return {
        "id": rid,
        "state": status,
        "originator": opened.agent,
        "submission": opened.source,
        "what": opened.what,
        "why": opened.why,
        "expected": opened.expected,
        "track": opened.track,
        "direction": opened.direction,
        "opened_at": iso(opened.ts),
        "lease": {"holder": lease.holder, "expires_at": iso(lease.expires)} if lease else None,
        "job": job[0] if job else None,
        "sponsor": state.jobs[job[0]][0].sponsor if job else None,
        "jobs": list(state.run_request_jobs.get(rid, [])),
    }


def _known(state: State, rid: str) -> list[RunRequestEntry]:
    events = state.run_requests.get(rid)
    if events is None:
        raise APIError("RUN_REQUEST_UNKNOWN", f"no run request {rid!r}", "GET /v1/run-requests?state=open lists them")
    return events


def show(ctx: Context, rid: str) -> dict[str, Any]:
    """One run request, or RUN_REQUEST_UNKNOWN."""
    state = ctx.record.state
    _known(state, rid)
    return view(state, rid, ctx.record.clock())


def list_requests(ctx: Context, status: RunState | None, limit: int, before: str | None) -> dict[str, Any]:
    """Run requests newest first (in one state, or all), below the cursor `before`."""
    state, now = ctx.record.state, ctx.record.clock()
    order = state.run_request_order
    end = len(order)
    if before is not None:
        if before not in state.run_requests:
            raise APIError("VALIDATION_FAILED", f"before={before!r} is not a run request id",
                           "pass the `next` of the page before, or leave `before` out")  # fmt: skip
        end = order.index(before)
    items: list[dict[str, Any]] = []
    at = end - 1
    while at >= 0 and len(items) < limit:
        rid = order[at]
        if status is None or state_of(state, rid, now) == status:
            items.append(view(state, rid, now))
        at -= 1
    more = at >= 0 and len(items) == limit
    return {"items": items, "next": items[-1]["id"] if more else None}


def open_for(ctx: Context, agent: str, limit: int) -> list[dict[str, Any]]:
    """The open run requests another agent could sponsor, newest first: none unless `agent` has quota left."""
    state, now = ctx.record.state, ctx.record.clock()
    if not ctx.spec.jobs.enabled or ctx.launcher is None or agent not in state.agents:
        return []
    try:
        check_quota(ctx, state, agent, state.agents[agent].user, now)
    except APIError:
        return []
    found = []
    for rid in reversed(state.run_request_order):
        if state.run_requests[rid][0].agent != agent and state_of(state, rid, now) == "open":
            found.append(view(state, rid, now))
            if len(found) == limit:
                break
    return found


# -- changing it ----------------------------------------------------------------------------
def open_request(
    ctx: Context, identity: Identity, agent_id: str, submission: str, what: str, why: str,
    expected: float | None, track: str | None, direction: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Publish a run request for a folder of the caller's agent's bucket, checked as a job launch would be."""
    jobs_on(ctx)
    agent = agent_of(ctx, identity, agent_id)
    folder = submission_folder(submission)
    check_track(ctx, track)
    check_direction(ctx.record.state, direction)
    if expected is not None and not math.isfinite(expected):
        raise APIError("VALIDATION_FAILED", "expected: a finite number", None)
    bucket = naming.scratch_bucket(ctx.spec, agent)
    files = checked_submission(ctx, bucket, folder)
    harness_options_supported(ctx)  # the harness is there: a request that could never launch is refused now
    refuse_ruled_out(ctx, bucket, folder, files)  # as the launch would: a ruled-out folder is never published

    def build(state: State, seq: int, ts: float) -> RunRequestEntry:
        return RunRequestEntry(seq, ts, request_id(ts, seq), "open", agent, identity.user,
                               source={"bucket": bucket, "path": folder}, what=what, why=why, expected=expected,
                               track=track, direction=direction)  # fmt: skip

    entry = _write(ctx, agent, build)
    return view(ctx.record.state, entry.request_id, ctx.record.clock())


def _write(ctx: Context, agent: str, build: Callable[[State, int, float], RunRequestEntry]) -> RunRequestEntry:
    """Write one event, charged to the agent's raw-post limit like any small write."""
    ctx.limits.raw_posts.acquire(agent)
    try:
        return ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise


def _lease_minutes(minutes: int | None) -> int:
    return DEFAULT_LEASE_MINUTES if minutes is None else minutes


def _must_be_open(state: State, rid: str, now: float) -> None:
    status = state_of(state, rid, now)
    if status in ("withdrawn", "launched", "done"):
        raise APIError("RUN_REQUEST_CLOSED", f"run request {rid} is {status}", "GET /v1/run-requests?state=open")


def _held_by(state: State, rid: str, agent: str, now: float) -> Lease:
    """The lease, when `agent` holds it now; else LEASE_NOT_HELD (or LEASE_HELD naming its holder)."""
    _must_be_open(state, rid, now)
    lease = lease_of(state.run_requests[rid], now)
    if lease is None:
        raise APIError("LEASE_NOT_HELD", f"nobody holds run request {rid} (never claimed, released or expired)",
                       f"claim it first: POST /v1/run-requests/{rid}/claim")  # fmt: skip
    if lease.holder != agent:
        raise _held(rid, lease)
    return lease


def _held(rid: str, lease: Lease) -> APIError:
    return APIError("LEASE_HELD", f"run request {rid} is held by {lease.holder} until {iso(lease.expires)}",
                    "claim another, or come back after the lease ends")  # fmt: skip


def claim(ctx: Context, identity: Identity, rid: str, agent_id: str, minutes: int | None) -> dict[str, Any]:
    """Take the lease of an open run request (one holder at a time), to launch it on the agent's quota."""
    jobs_on(ctx)
    agent = agent_of(ctx, identity, agent_id)
    state = ctx.record.state
    if _known(state, rid)[0].agent == agent:
        raise APIError("FORBIDDEN", f"{agent} opened run request {rid}: it cannot sponsor its own",
                       "launch it yourself with POST /v1/jobs, or withdraw it")  # fmt: skip
    check_quota(ctx, state, agent, identity.user, ctx.record.clock())  # a claim that could not launch is refused
    length = _lease_minutes(minutes) * 60

    def build(state: State, seq: int, ts: float) -> RunRequestEntry:
        _must_be_open(state, rid, ts)
        lease = lease_of(state.run_requests[rid], ts)
        if lease is not None:
            raise _held(rid, lease)
        return RunRequestEntry(seq, ts, rid, "claim", agent, identity.user, expires=ts + length)

    _write(ctx, agent, build)
    return view(ctx.record.state, rid, ctx.record.clock())


def renew(ctx: Context, identity: Identity, rid: str, agent_id: str, minutes: int | None) -> dict[str, Any]:
    """Extend the caller's lease: it ends `minutes` from now."""
    agent = agent_of(ctx, identity, agent_id)
    _known(ctx.record.state, rid)
    length = _lease_minutes(minutes) * 60

    def build(state: State, seq: int, ts: float) -> RunRequestEntry:
        _held_by(state, rid, agent, ts)
        return RunRequestEntry(seq, ts, rid, "renew", agent, identity.user, expires=ts + length)

    _write(ctx, agent, build)
    return view(ctx.record.state, rid, ctx.record.clock())


def release(ctx: Context, identity: Identity, rid: str, agent_id: str) -> dict[str, Any]:
    """Give the lease back: the request is open again."""
    agent = agent_of(ctx, identity, agent_id)
    _known(ctx.record.state, rid)

    def build(state: State, seq: int, ts: float) -> RunRequestEntry:
        _held_by(state, rid, agent, ts)
        return RunRequestEntry(seq, ts, rid, "release", agent, identity.user)

    _write(ctx, agent, build)
    return view(ctx.record.state, rid, ctx.record.clock())


def withdraw(ctx: Context, identity: Identity, rid: str, agent_id: str) -> dict[str, Any]:
    """The originator takes its request back (unless a job already runs or ran it)."""
    agent = agent_of(ctx, identity, agent_id)
    if _known(ctx.record.state, rid)[0].agent != agent:
        raise APIError("FORBIDDEN", f"only its originator may withdraw run request {rid}", None)

    def build(state: State, seq: int, ts: float) -> RunRequestEntry:
        _must_be_open(state, rid, ts)
        return RunRequestEntry(seq, ts, rid, "withdraw", agent, identity.user)

    _write(ctx, agent, build)
    return view(ctx.record.state, rid, ctx.record.clock())


def launch(ctx: Context, identity: Identity, rid: str, agent_id: str) -> str:
    """Launch the request's job as its lease holder: the originator's folder, charged to the holder; its id."""
    jobs_on(ctx)
    agent = agent_of(ctx, identity, agent_id)
    state = ctx.record.state
    opened = _known(state, rid)[0]
    _held_by(state, rid, agent, ctx.record.clock())  # a quick refusal; the writer checks again
    check_quota(ctx, state, agent, identity.user, ctx.record.clock())
    assert opened.source is not None  # an opening always names its folder  # noqa: S101

    def guard(state: State, ts: float) -> None:
        _held_by(state, rid, agent, ts)

    return start_job(ctx, identity.user, agent, opened.source["bucket"], opened.source["path"], opened.track,
                     guard=guard, run_request=rid, originator=opened.agent, sponsor=agent)  # fmt: skip
