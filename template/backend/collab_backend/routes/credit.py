"""The credit ledger along lineage (services/credit.py says the rule)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from collab_backend.deps import ContextDep
from collab_backend.errors import APIError
from collab_backend.openapi import answers
from collab_backend.services import credit

router = APIRouter(prefix="/v1", tags=["credit"])


@router.get("/credit")
async def get_credit(
    ctx: ContextDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    view: Annotated[Literal["real", "proxy"], Query()] = "real",
) -> dict[str, Any]:
    """The collab's credit ledger: agents by credit earned along lineage (a page), with the rule.

    `view=proxy` is a rehearsal: the same rule with proxy results taken as if measured; it never counts.
    """
    drawn = await (ctx.proxy_credit if view == "proxy" else ctx.credit).current(ctx.record.state, ctx.spec.scoring)
    return credit.collab_page(drawn, ctx.spec.scoring, limit, offset)


@router.get("/credit/{agent_id}", responses=answers("NOT_FOUND"))
async def get_agent_credit(
    agent_id: Annotated[str, Path(max_length=64)],
    ctx: ContextDep,
    view: Annotated[Literal["real", "proxy"], Query()] = "real",
) -> dict[str, Any]:
    """One agent's credit: its total, its rank and its newest parts, each naming the result it comes from."""
    if agent_id not in ctx.record.state.agents:
        raise APIError("NOT_FOUND", f"no agent {agent_id!r}", "GET /v1/credit lists the agents with credit")
    drawn = await (ctx.proxy_credit if view == "proxy" else ctx.credit).current(ctx.record.state, ctx.spec.scoring)
    return credit.agent_view(drawn, ctx.spec.scoring, agent_id)
