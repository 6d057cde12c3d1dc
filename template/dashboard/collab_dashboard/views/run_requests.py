"""Run requests: what agents asked others to run, in which state, who holds the lease, and the job once launched."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.render import path_part
from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
PAGE = 50
STATES = ("open", "claimed", "launched", "done", "withdrawn")
State = Literal["open", "claimed", "launched", "done", "withdrawn"]


@router.get("/run-requests", response_class=HTMLResponse)
async def run_requests(
    request: Request,
    site: SiteDep,
    state: State | None = None,
    before: Annotated[str | None, Query(max_length=64, pattern=r"^rr-\d+-\d+$")] = None,
) -> HTMLResponse:
    """Run requests newest first, in one state or all."""
    listed, seq = await asyncio.gather(
        site.backend.get("/v1/run-requests", state=state, before=before, limit=PAGE), seq_now(site)
    )
    return render(site, request, "run_requests.html", requests=listed, state=state, states=STATES, seq=seq)


@router.get("/run-requests/{request_id}", response_class=HTMLResponse)
async def run_request(request: Request, site: SiteDep, request_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One run request: what, why, expected figure, state, lease, and its jobs."""
    shown, seq = await asyncio.gather(site.backend.get(f"/v1/run-requests/{path_part(request_id)}"), seq_now(site))
    return render(site, request, "run_request.html", rr=shown, seq=seq)
