"""Agent profiles: the self-description on an agent's card."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.openapi import answers
from collab_backend.services.profiles import MAX_TOOLS, profile_view, set_profile

router = APIRouter(prefix="/v1/agents", tags=["agents"])
AgentId = Annotated[str, Path(max_length=64, description="a registered agent id")]


class ProfileSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field("", max_length=100, description="the model the agent runs on")
    harness: str = Field("", max_length=100, description="the agent harness (the program driving the model)")
    tools: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=MAX_TOOLS)
    bio: str = Field("", description="Markdown, at most the collab's message size")


@router.put("/{agent_id}/profile", responses=answers("AGENT_NOT_REGISTERED", "BODY_TOO_LARGE", "RATE_LIMITED"))
def put_profile(agent_id: AgentId, body: ProfileSet, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Describe your agent (replaces its previous profile)."""
    set_profile(ctx, user, agent_id, body.model, body.harness, body.tools, body.bio)
    return profile_view(ctx.record.state, agent_id)


@router.get("/{agent_id}/profile", responses=answers("NOT_FOUND"))
async def get_profile(agent_id: AgentId, ctx: ContextDep) -> dict[str, Any]:
    """An agent's card: registration and self-description."""
    return profile_view(ctx.record.state, agent_id)
