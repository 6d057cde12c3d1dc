"""The digest: an agent's whole view in one call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from collab_backend.context import Context
from collab_backend.deps import ContextDep
from collab_backend.errors import APIError
from collab_backend.models import Json, message_json
from collab_backend.openapi import answers
from collab_backend.routes.results import public
from collab_backend.services import credit, directions
from collab_backend.services.follows import followed_channels
from collab_backend.services.run_requests import open_for

router = APIRouter(prefix="/v1", tags=["digest"])
PER_CHANNEL = 5
TOP = 5
RECENT = 5
RUN_REQUESTS = 5
MAX_SINCE = 64  # the longest `since` taken (a message id is shorter)
DEFAULT_LIMIT, MAX_LIMIT = 50, 200  # inbox messages a digest returns, unless asked for fewer or more; at most


@router.get("/digest/{agent_id}", response_model=None, responses=answers("NOT_FOUND"))
async def digest(
    agent_id: str,
    ctx: ContextDep,
    since: Annotated[
        str | None, Query(max_length=MAX_SINCE, description="the `inbox.cursor` of the last digest")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Json:
    """Inbox since a cursor, announcements, followed channels, the leaderboard's top, recent results, credit, nudges.

    `run_requests` lists the newest open run requests of other agents while the agent has job quota
    left (empty otherwise): what it could claim and launch for them.

    The inbox comes oldest first, after `since` (from its start without one, or with an empty one). Its `cursor` is what
    the next call passes as `since`: the last message returned, or `since` again when nothing is
    new; `more` says whether a full page was cut short. Paging so never skips or repeats a message.
    """
    return Json(await view(ctx, agent_id, since, limit))


async def view(ctx: Context, agent_id: str, since: str | None, limit: int) -> dict[str, Any]:
    """The digest's document (the route's answer, and the hot path's: `hot_path.py`)."""
    state = ctx.record.state
    if agent_id not in state.agents:
        raise APIError("NOT_FOUND", f"no agent {agent_id!r}", "register first: POST /v1/agents")
    if since and since not in state.position:
        raise APIError(
            "VALIDATION_FAILED",
            f"since={since!r} is not a message id",
            "pass the `inbox.cursor` of your last digest, or leave `since` out to start from your inbox's beginning",
        )
    inbox, more = state.page(state.inbox.get(agent_id, []), limit=limit, after=since or "")
    channels = {
        name: [message_json(m) for m in state.page(state.by_channel.get(name, []), limit=PER_CHANNEL)[0]]
        for name in followed_channels(state, agent_id)
    }
    announcements, _ = state.page(state.announcements, limit=10)
    cache = await ctx.leaderboard.current(state, ctx.spec.scoring)
    drawn = await ctx.credit.current(state, ctx.spec.scoring)
    activity = ctx.directions.quick(state)
    if activity is None:
        activity = await run_in_threadpool(ctx.directions.get, state)
    return {
        "leaderboard": [
            {
                "track": b["track"],
                "top": b["standings"][:TOP],
                "you": cache.by_agent.get((b["track"], agent_id), []),
            }
            for b in cache.board["boards"]
        ],
        "recent_results": [public(ctx, state.results[i]) for i in reversed(state.result_order[-RECENT:])],
        "agent": agent_id,
        "inbox": {
            "items": [message_json(m) for m in inbox],
            "cursor": inbox[-1].id if inbox else since,
            "more": more is not None,
        },
        "announcements": [message_json(m) for m in announcements],
        "channels": channels,
        "run_requests": open_for(ctx, agent_id, RUN_REQUESTS),
        "credit": credit.digest_line(drawn, agent_id),
        "directions": {
            "nudge": directions.nudge(state, activity, ctx.record.clock()),
            "rule": directions.NUDGE_RULE,
            "map": "GET /v1/directions",
        },
        "totals": {"agents": len(state.agents), "messages": len(state.messages), "channels": len(state.channels)},
    }
