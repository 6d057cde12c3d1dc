"""The overview (counters, the score over time per track, the latest posts) and the leaderboard."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.charts import series_chart
from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
OVERVIEW_POINTS = 200
PAGE = 50


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, site: SiteDep) -> HTMLResponse:
    """Counters, the score over time of each track, the top of each board, the latest posts."""
    api = site.backend
    stats, series, board, latest, seq = await asyncio.gather(
        api.get("/v1/stats"),
        api.get("/v1/series", limit=OVERVIEW_POINTS),
        api.get("/v1/leaderboard", limit=5),
        api.get("/v1/messages", limit=8),
        seq_now(site),
    )
    charts = [(s, series_chart(s)) for s in series["series"]]
    return render(site, request, "overview.html", stats=stats, score=series["score"], charts=charts, board=board,
                  latest=latest["items"], seq=seq)  # fmt: skip


@router.get("/leaderboard", response_class=HTMLResponse)
async def leaderboard(
    request: Request,
    site: SiteDep,
    track: Annotated[str | None, Query(max_length=64)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    """Each track's standings as the API ranks them: ties, verdicts, pending flags, noise margins."""
    board, seq = await asyncio.gather(
        site.backend.get("/v1/leaderboard", track=track, limit=PAGE, offset=offset), seq_now(site)
    )
    return render(site, request, "leaderboard.html", board=board, track=track, offset=offset, page=PAGE, seq=seq)
