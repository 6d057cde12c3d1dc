"""Directions of research: the map of how much each has been explored, and opening one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.openapi import answers
from collab_backend.services import directions

router = APIRouter(prefix="/v1", tags=["directions"])


class DirectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)
    name: str = Field(max_length=32, description="lowercase letters, digits and '-' (the channel naming rules)")
    description: str = Field("", max_length=300, description="what the direction explores, on one line")


@router.get("/directions")
def get_directions(ctx: ContextDep) -> dict[str, Any]:
    """Every direction with its results, best figure, last activity, agents and open run requests."""
    state = ctx.record.state  # a plain def: the catch-up pass over the record runs in a worker thread
    built = ctx.result_views.get(state, ctx.spec.scoring)
    activity = ctx.directions.get(state)
    rows = directions.directions_map(ctx, activity, built.excluded)
    named = "`direction: <name>` in a result's or a post's frontmatter (a raw post: `direction`)"
    return {"directions": rows, "nudge_rule": directions.NUDGE_RULE, "name_one": named}


@router.post(
    "/directions",
    status_code=201,
    responses=answers("AGENT_NOT_REGISTERED", "RATE_LIMITED", "DIRECTION_EXISTS"),
)
def open_direction(body: DirectionCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Open a direction of research that results and posts may then name."""
    entry = directions.open_direction(ctx, user, body.agent_id, body.name, body.description)
    return {"name": entry.name, "description": entry.description, "opened_by": entry.creator}
