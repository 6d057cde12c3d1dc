"""Results, the leaderboard and verdicts."""

from __future__ import annotations

from bisect import bisect_right
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.errors import APIError
from collab_backend.openapi import answers
from collab_backend.record.entries import ResultEntry, iso
from collab_backend.services import verifier
from collab_backend.services.leaderboard import DEFAULT_PAGE
from collab_backend.services.results import ingest_index_edits, promote_result, set_verdict, sync_index_file

router = APIRouter(prefix="/v1", tags=["results"])
GAP_RULE = ("a re-run on the private set is flagged when its figure is worse than the result's public one, in the "
            "track's direction, by more than the noise margin its verdict used (the overfitting signal)")  # fmt: skip


class ResultPromote(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)
    path: str = Field(max_length=512, description="the result's Markdown file in the agent's bucket")


class VerdictSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["pending", "valid", "invalid"]
    reason: str = Field("", max_length=500)
    expected: Literal["pending", "valid", "invalid"] | None = Field(
        None, description="the verdict you saw; the change is refused if it moved since (compare-and-set)"
    )
    by: Literal["eval-space"] | None = Field(
        None, description="the organizers' eval service: a machine verdict (verifier:eval-space), never over a human's"
    )


def public(ctx: Any, r: ResultEntry) -> dict[str, Any]:
    verdict = ctx.leaderboard.get(ctx.record.state, ctx.spec.scoring).verdicts.get(r.id)  # rulings applied
    return {
        "id": r.id,
        "agent": r.agent,
        "score": r.score,
        "metrics": r.metrics,
        "status": r.status,
        "track": r.track,
        "parents": list(r.parents),
        "fingerprint": r.fingerprint,
        "basis": r.basis,
        "job": r.job,
        "originator": r.originator,
        "sponsor": r.sponsor,
        "submission": r.submission,
        "verdict": verdict.verdict if verdict else "pending",
        "verdict_by": verdict.by if verdict else None,
        "verdict_reason": verdict.reason if verdict else "",
        "rerun_figures": verdict.figures if verdict else None,  # the verification re-run's (private) figures
        "gap": verdict.gap if verdict else None,  # public minus private, in the track's direction
        "gap_noise": verdict.gap_noise if verdict else None,
        "gap_flag": verdict.gap_flag if verdict else False,  # the gap monitor: worse on the private set than noise
        "submitted_at": iso(r.ts),
        "source": r.source,
        "description": r.body,
        "direction": r.client_fields.get("direction"),
    }


@router.post(
    "/results",
    status_code=201,
    responses=answers(
        "AGENT_NOT_REGISTERED",
        "INVALID_PATH",
        "SOURCE_NOT_FOUND",
        "JOB_NOT_USABLE",
        "FIGURE_MISMATCH",
        "DIRECTION_UNKNOWN",
        "SUBMISSION_NOT_FOUND",
        "BODY_TOO_LARGE",
        "RATE_LIMITED",
        "RULED_OUT",
        unchanged="that content was recorded before: the first result",
    ),
)
def submit_result(body: ResultPromote, ctx: ContextDep, user: CurrentUser, response: Response) -> dict[str, Any]:
    """Record a result from your agent's bucket (200 when that content was already recorded)."""
    entry, new = promote_result(ctx, user, body.agent_id, body.path)
    if not new:
        response.status_code = 200
    return public(ctx, entry)


@router.get("/results")
def list_results(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    agent: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Results, newest first."""
    state = ctx.record.state
    ids = state.result_order if agent is None else [i for i in state.result_order if state.results[i].agent == agent]
    return {"items": [public(ctx, state.results[i]) for i in reversed(ids[-limit:])]}


@router.get("/results/{result_id}", responses=answers("NOT_FOUND"))
def get_result(result_id: str, ctx: ContextDep) -> dict[str, Any]:
    """One result."""
    entry = ctx.record.state.results.get(result_id)
    if entry is None:
        raise APIError("NOT_FOUND", f"no result {result_id!r}", None)
    return public(ctx, entry)


@router.put("/results/{result_id}/verdict", responses=answers("NOT_ORGANIZER", "NOT_FOUND", "VERDICT_CHANGED"))
def put_verdict(result_id: str, body: VerdictSet, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Organizers set a verdict; a human verdict always wins over a verifier's."""
    if not user.is_admin(ctx.spec.challenge.org):
        raise APIError("NOT_ORGANIZER", "only admins of the challenge org set verdicts", None)
    by = f"verifier:{body.by}" if body.by else f"human:{user.user}"
    set_verdict(ctx, result_id, body.verdict, by, body.reason, body.expected)
    return get_result(result_id, ctx)


@router.get("/verification/pending", responses=answers("NOT_FOUND"))
def pending_results(
    ctx: ContextDep,
    after: Annotated[str | None, Query(max_length=64, description="a result id: those after it")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Results no one has ruled on (a machine's `pending` included, a human's not), oldest first after `after`."""
    state = ctx.record.state
    if after is not None and after not in state.results:
        raise APIError("NOT_FOUND", f"no result {after!r}", "start again without `after`")
    start = 0 if after is None else bisect_right(state.result_order, state.results[after].seq,
                                                 key=lambda i: state.results[i].seq)  # fmt: skip
    items: list[dict[str, Any]] = []
    for rid in state.result_order[start:]:
        verdict = state.verdicts.get(rid)
        if verdict is None or (verdict.verdict == "pending" and not verdict.human):
            r = state.results[rid]
            items.append({"id": rid, "agent": r.agent, "track": r.track, "basis": r.basis, "fields": r.client_fields,
                          "description": r.body, "source": r.source, "submitted_at": iso(r.ts)})  # fmt: skip
            if len(items) == limit:
                break
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


@router.get("/verification/gaps")
def flagged_gaps(ctx: ContextDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """The gap monitor: results whose private figure is worse than the public one by more than the noise."""
    verdicts = ctx.leaderboard.get(ctx.record.state, ctx.spec.scoring).verdicts  # rulings applied
    state, items = ctx.record.state, []
    for rid in reversed(state.result_order):
        verdict = verdicts.get(rid)
        if verdict is None or not verdict.gap_flag:
            continue
        r = state.results[rid]
        private = (verdict.figures or {}).get(ctx.spec.scoring.score_field)
        items.append({"id": rid, "agent": r.agent, "track": r.track, "fingerprint": r.fingerprint, "public": r.score,
                      "private": private, "gap": verdict.gap, "noise": verdict.gap_noise, "verdict": verdict.verdict,
                      "verdict_by": verdict.by})  # fmt: skip
        if len(items) == limit:
            break
    return {"rule": GAP_RULE, "items": items}


@router.post("/verification/sweep", responses=answers("NOT_ORGANIZER"))
def sweep_verification(ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Organizers: take in index edits, record verdicts of ended re-runs, start those due (mode `jobs`) now."""
    if not user.is_admin(ctx.spec.challenge.org):
        raise APIError("NOT_ORGANIZER", "only admins of the challenge org sweep verification", None)
    taken_in = ingest_index_edits(ctx)
    if taken_in:
        sync_index_file(ctx)
    swept = verifier.sweep(ctx)
    reruns = ctx.spec.verification.mode == "jobs" and ctx.launcher is not None
    return {"mode": ctx.spec.verification.mode, "reruns": reruns,
            "index": {"taken_in": taken_in, "problem": ctx.watch.index_problem}, **swept.as_json()}  # fmt: skip


@router.get("/leaderboard", response_model=None, responses=answers("NOT_FOUND"))
async def get_leaderboard(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    track: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The ranking per track (a page of it), with ties, flags, exclusions and the rules used."""
    cache = await ctx.leaderboard.current(ctx.record.state, ctx.spec.scoring)
    if track is not None and track not in [b["track"] for b in cache.board["boards"]]:
        raise APIError("NOT_FOUND", f"no track {track!r}", None)
    if (limit, offset, track) == (DEFAULT_PAGE, 0, None):
        return Response(cache.body, media_type="application/json")
    return JSONResponse(cache.page(limit, offset, track))
