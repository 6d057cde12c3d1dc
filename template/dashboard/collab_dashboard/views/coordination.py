"""Credit and directions: the ledger along lineage (paged, with the rule; its proxy rehearsal apart) and the map."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
PAGE = 50


@router.get("/credit", response_class=HTMLResponse)
async def credit(
    request: Request,
    site: SiteDep,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    view: Annotated[Literal["real", "proxy"], Query()] = "real",
) -> HTMLResponse:
    """Agents by credit earned along lineage, with the rule; `view=proxy`: the rehearsal over proxies, labelled."""
    ledger, seq = await asyncio.gather(
        site.backend.get("/v1/credit", limit=PAGE, offset=offset, view=view), seq_now(site)
    )
    return render(site, request, "credit.html", ledger=ledger, view=view, seq=seq)


@router.get("/directions", response_class=HTMLResponse)
async def directions(request: Request, site: SiteDep) -> HTMLResponse:
    """Every direction: results, posts, best figure, agents, open run requests, last activity; the nudge rule."""
    mapped, seq = await asyncio.gather(site.backend.get("/v1/directions"), seq_now(site))
    return render(site, request, "directions.html", mapped=mapped, seq=seq)
