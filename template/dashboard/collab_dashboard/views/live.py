"""Small endpoints for the pages' own script and for operators: what changed, handles, health, theme."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from collab_dashboard.backend import BackendError
from collab_dashboard.site import SiteDep

router = APIRouter()


@router.get("/live")
async def live(site: SiteDep, since: Annotated[int, Query(ge=0)]) -> dict[str, Any]:
    """What was written since the entry a page was drawn at (counts only: the page fetches what it shows)."""
    return dict(await site.backend.get("/v1/changes", since=since))


@router.get("/autocomplete")
async def autocomplete(site: SiteDep, q: Annotated[str, Query(max_length=64)] = "") -> dict[str, Any]:
    """Handles to @mention that start with `q` (plain strings: the script inserts them as text)."""
    found = await site.backend.get("/v1/handles", prefix=q.lower(), limit=8)
    return {"items": found["items"]}


@router.get("/healthz", response_model=None)
async def healthz(site: SiteDep) -> Response:
    """200 when the dashboard runs and the backend answers; 503 (with the reason) when the backend does not."""
    try:
        changes = await site.backend.get("/v1/changes")
    except BackendError as exc:
        return JSONResponse({"ok": False, "backend": site.settings.api, "error": exc.code}, status_code=503)
    return JSONResponse({"ok": True, "backend": site.settings.api, "seq": changes["seq"]})


@router.get("/theme.css")
async def theme(site: SiteDep) -> Response:
    """The organizers' accent color (from the spec, a checked hex color) as a style sheet: no inline style."""
    color = site.settings.spec.dashboard.branding.accent_color
    css = f":root {{ --accent: {color}; }}\n"
    return Response(css, media_type="text/css", headers={"cache-control": "public, max-age=300"})
