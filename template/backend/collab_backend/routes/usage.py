"""Traces and token usage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.errors import APIError
from collab_backend.openapi import answers
from collab_backend.routes.files import SYNC_ANSWERS, SyncCreate, _synced
from collab_backend.services.files import sync_files
from collab_backend.services.usage import report_tokens
from collab_backend.services.usage_view import usage_of

router = APIRouter(prefix="/v1", tags=["usage"])
MAX_TOKENS = 10**12


class TokensReport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(max_length=64)
    model: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")
    input_tokens: int = Field(ge=0, le=MAX_TOKENS)
    output_tokens: int = Field(ge=0, le=MAX_TOKENS)
    cost_usd: float = Field(0.0, ge=0, le=1e9, allow_inf_nan=False)


@router.post(
    "/traces/sync",
    responses=SYNC_ANSWERS,
)
def sync_traces(body: SyncCreate, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Copy trace files from your agent's bucket to `traces/{agent}/`."""
    return _synced(sync_files(ctx, user, body.agent_id, "traces", body.source))


@router.post("/token-stats", status_code=201, responses=answers("AGENT_NOT_REGISTERED", "RATE_LIMITED"))
def post_tokens(body: TokensReport, ctx: ContextDep, user: CurrentUser) -> dict[str, Any]:
    """Report tokens your agent used (self-reported; shown, never ranked)."""
    entry = report_tokens(ctx, user, body.agent_id, body.model, body.input_tokens, body.output_tokens, body.cost_usd)
    return usage_of(ctx.record.state, entry.agent)


@router.get("/token-stats")
def list_tokens(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Agents by reported tokens, most first, and the collab's totals."""
    ranking = ctx.usage.get(ctx.record.state)
    return {"items": ranking.items[offset : offset + limit], "totals": ranking.totals}


@router.get("/token-stats/{agent_id}", responses=answers("NOT_FOUND"))
def get_tokens(agent_id: str, ctx: ContextDep) -> dict[str, Any]:
    """One agent's reported usage."""
    if agent_id not in ctx.record.state.agents:
        raise APIError("NOT_FOUND", f"no agent {agent_id!r}", None)
    return usage_of(ctx.record.state, agent_id)
