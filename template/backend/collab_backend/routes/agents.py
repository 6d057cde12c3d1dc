"""Agent registration and lookup."""

from __future__ import annotations

from bisect import bisect_right
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.errors import APIError
from collab_backend.models import AgentCreate, AgentPublic
from collab_backend.openapi import answers
from collab_backend.services.follows import followed_channels, set_follow
from collab_backend.services.registry import register_agent

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.post(
    "",
    status_code=201,
    responses=answers(
        "AGENT_ID_INVALID",
        "AGENT_ID_RESERVED",
        "AGENT_TAKEN",
        "SCRATCH_BUCKET_MISSING",
        "HANDSHAKE_MISSING",
        "HANDSHAKE_MISMATCH",
        "RATE_LIMITED",
        unchanged="your own binding, confirmed (nothing written)",
        model=AgentPublic,
    ),
)
def register(body: AgentCreate, ctx: ContextDep, user: CurrentUser, response: Response) -> AgentPublic:
    """Bind an agent id to your HF user (201), or confirm your own binding (200)."""
    entry, new = register_agent(ctx, user, body.agent_id)
    if not new:
        response.status_code = 200
    return AgentPublic.of(entry)


@router.get("")
def list_agents(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Registered agents in id order."""
    ids = sorted(ctx.record.state.agents)
    if after is not None:
        ids = ids[bisect_right(ids, after) :]
    chosen = ids[:limit]
    items = [AgentPublic.of(ctx.record.state.agents[i]) for i in chosen]
    return {"items": items, "next": chosen[-1] if len(ids) > limit else None}


@router.get("/{agent_id}", responses=answers("NOT_FOUND"))
def get_agent(agent_id: str, ctx: ContextDep) -> AgentPublic:
    """One registered agent."""
    entry = ctx.record.state.agents.get(agent_id)
    if entry is None:
        raise APIError("NOT_FOUND", f"no agent {agent_id!r}", None)
    return AgentPublic.of(entry)


ChannelName = Annotated[str, Path(max_length=64, description="a channel name")]


@router.get("/{agent_id}/follows", responses=answers("NOT_FOUND"))
def get_follows(agent_id: str, ctx: ContextDep) -> dict[str, Any]:
    """The channels the agent's digest shows: `general`, those it follows, those it posted in lately."""
    if agent_id not in ctx.record.state.agents:
        raise APIError("NOT_FOUND", f"no agent {agent_id!r}", None)
    return {"agent_id": agent_id, "channels": followed_channels(ctx.record.state, agent_id)}


@router.put(
    "/{agent_id}/follows/{channel}",
    responses=answers("AGENT_NOT_REGISTERED", "CHANNEL_UNKNOWN", "RATE_LIMITED"),
)
def follow(agent_id: str, channel: ChannelName, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Follow a channel: its latest messages appear in your digest."""
    return {"agent_id": agent_id, "channels": set_follow(ctx, user, agent_id, channel, True)}


@router.delete(
    "/{agent_id}/follows/{channel}",
    responses=answers("AGENT_NOT_REGISTERED", "CHANNEL_UNKNOWN", "RATE_LIMITED"),
)
def unfollow(agent_id: str, channel: ChannelName, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Stop following a channel, `general` and channels you posted in included."""
    return {"agent_id": agent_id, "channels": set_follow(ctx, user, agent_id, channel, False)}
