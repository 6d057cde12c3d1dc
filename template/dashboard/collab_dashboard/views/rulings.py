"""Rulings and flags: what the organizers ruled (decision, text, scope, what it covers, in force) and open flags."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.render import path_part
from collab_dashboard.site import SiteDep, render, seq_now

router = APIRouter()
PAGE = 50
Cursor = Annotated[str | None, Query(max_length=64)]


@router.get("/rulings", response_class=HTMLResponse)
async def rulings(request: Request, site: SiteDep, before: Cursor = None, flags_before: Cursor = None) -> HTMLResponse:
    """Rulings newest first, and flags newest first with whether a ruling answered them."""
    listed, flags, seq = await asyncio.gather(
        site.backend.get("/v1/rulings", before=before, limit=PAGE),
        site.backend.get("/v1/flags", before=flags_before, limit=PAGE),
        seq_now(site),
    )
    return render(site, request, "rulings.html", rulings=listed, flags=flags, before=before, seq=seq)


@router.get("/rulings/{ruling_id}", response_class=HTMLResponse)
async def ruling(request: Request, site: SiteDep, ruling_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One ruling: decision, text, scope, the results it covers, what it answers and revokes."""
    shown, seq = await asyncio.gather(site.backend.get(f"/v1/rulings/{path_part(ruling_id)}"), seq_now(site))
    return render(site, request, "ruling.html", ruling=shown, seq=seq)
