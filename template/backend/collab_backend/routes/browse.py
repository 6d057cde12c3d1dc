"""Read views for people (the dashboard's): counts, changes, score series, lineage, threads, search, handles.

All paged, all served from memory; none ranks (they follow the leaderboard's rules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from collab_backend.context import Context
from collab_backend.deps import ContextDep
from collab_backend.errors import APIError
from collab_backend.openapi import answers
from collab_backend.services import result_views, threads
from collab_backend.services.activity import changes_since, job_counts

router = APIRouter(prefix="/v1", tags=["browse"])
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Name = Annotated[str | None, Query(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=64, description="an id from a previous page's `next`")]
Time = Annotated[str | None, Query(max_length=40, description="ISO 8601, e.g. 2026-12-01T00:00:00Z")]


def _tracks(ctx: Context, track: str | None) -> list[str | None]:
    names = [t.name for t in ctx.spec.scoring.tracks]
    if track is not None and track not in names:
        raise APIError("NOT_FOUND", f"no track {track!r}", f"tracks: {', '.join(names) or 'none'}")
    return [track] if track is not None else ([*names] if names else [None])


def _time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise APIError("VALIDATION_FAILED", f"`{name}` is not an ISO 8601 time: {value!r}", None) from None


@router.get("/stats")
async def get_stats(ctx: ContextDep) -> dict[str, Any]:
    """The collab in numbers, and the sequence number of its latest entry (for `changes`)."""
    state = ctx.record.state
    built = await ctx.result_views.current(state, ctx.spec.scoring)
    return {
        "seq": state.seq,
        "agents": len(state.agents),
        "channels": len(state.channels),
        "messages": len(state.messages),
        "results": built.counts,
        "tracks": {str(t): len(ids) for t, ids in built.by_track.items()},
        "jobs": job_counts(ctx),
    }


@router.get("/changes")
async def get_changes(
    ctx: ContextDep, since: Annotated[int | None, Query(ge=0, description="a `seq` seen before")] = None
) -> dict[str, Any]:
    """What was written after entry `since`, counted by kind (a cheap poll); without `since`, just `seq`."""
    state = ctx.record.state
    if since is None:
        return {"since": None, "seq": state.seq, "kinds": {}, "channels": {}, "truncated": False}
    return changes_since(state, since)


@router.get("/series", responses=answers("NOT_FOUND"))
async def get_series(
    ctx: ContextDep, track: Name = None, limit: Annotated[int, Query(ge=1, le=2000)] = 500
) -> dict[str, Any]:
    """Score over time per track: the newest points and every record set (by the leaderboard's rules)."""
    state = ctx.record.state
    built = await ctx.result_views.current(state, ctx.spec.scoring)
    scoring = ctx.spec.scoring
    return {
        "score": {
            "field": scoring.score_field,
            "label": scoring.label,
            "unit": scoring.unit,
            "direction": scoring.direction,
        },
        "series": [result_views.series(state, built, t, limit) for t in _tracks(ctx, track)],
    }


@router.get("/lineage", responses=answers("NOT_FOUND", "VALIDATION_FAILED"))
async def get_lineage(
    ctx: ContextDep,
    track: Name = None,
    agent: Name = None,
    since: Time = None,
    until: Time = None,
    limit: Limit = 100,
    before: Cursor = None,
) -> dict[str, Any]:
    """Results as a graph by their parents, newest first, with verdicts, exclusions and the Pareto frontier."""
    state = ctx.record.state
    if track is not None:
        _tracks(ctx, track)
    built = await ctx.result_views.current(state, ctx.spec.scoring)
    ids, cursor = result_views.lineage(
        state, built, track=track, agent=agent, since=_time(since, "since"), until=_time(until, "until"),
        limit=limit, before=before,
    )  # fmt: skip
    frontier = {t: built.frontier.get(t, []) for t in _tracks(ctx, track)}
    on_frontier = {rid for ids_ in frontier.values() for rid in ids_}
    guard = result_views.guarded_metric(ctx.spec.scoring)
    return {
        "items": [result_views.node(state, built, rid, on_frontier) for rid in ids],
        "next": cursor,
        "frontier": [{"track": t, "ids": ids_} for t, ids_ in frontier.items()],
        "guarded_metric": guard.model_dump() if guard else None,
    }


@router.get("/threads", responses=answers("CHANNEL_UNKNOWN"))
async def get_threads(
    ctx: ContextDep, channel: Name = None, limit: Limit = 50, before: Cursor = None
) -> dict[str, Any]:
    """Thread starts newest first (of a channel, or all), with reply counts and the latest reply."""
    state = ctx.record.state
    if channel is not None and channel not in state.channels:
        raise APIError("CHANNEL_UNKNOWN", f"no channel {channel!r}", "GET /v1/channels lists them")
    index = await ctx.threads.current(state)
    return threads.thread_page(state, index, channel, limit, before)


@router.get("/search", responses=answers("VALIDATION_FAILED"))
def search_messages(
    ctx: ContextDep,
    q: Annotated[str, Query(min_length=2, max_length=100, description="text to find, any case")],
    channel: Name = None,
    author: Name = None,
    limit: Limit = 50,
    before: Cursor = None,
) -> dict[str, Any]:
    """Messages containing the text, newest first; `next` goes on where this request stopped looking."""
    state = ctx.record.state
    if channel is not None and author is not None:
        raise APIError("VALIDATION_FAILED", "filter by channel or by author, not both", None)
    positions = state.positions_of(channel, author)
    return threads.search(state, positions, q, limit, before)


@router.get("/handles")
async def get_handles(
    ctx: ContextDep,
    prefix: Annotated[str, Query(max_length=64, description="the start of a handle")] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict[str, Any]:
    """Handles that can be @mentioned (registered agents, people who posted) starting with the prefix."""
    return {"items": threads.handles(ctx.handles.get(ctx.record.state), prefix.lower(), limit)}
