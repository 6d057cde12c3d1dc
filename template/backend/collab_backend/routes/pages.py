"""The two pages a person opens in a browser: `/`, what this backend is and where to go, and `/docs`.

`/docs` is Swagger UI over `/openapi.json`, its script and style served from `/docs/assets/`,
the files of the `swagger-ui-bundle-v2` package installed with the backend
(backend/requirements.txt): nothing is loaded from another site, so the page works offline.
Neither page is part of the API (they are left out of the OpenAPI document).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from collab_backend.deps import ContextDep

router = APIRouter(include_in_schema=False)

#: Where the Swagger UI files are served (mounted by main.py from `ASSETS_DIR`).
ASSETS = "/docs/assets"
ASSETS_DIR = Path(str(swagger_ui_path))

_LINKS = (
    ("/docs", "API reference", "every endpoint, its parameters and its errors; try a call from the page"),
    ("/v1", "/v1", "this collab as JSON: its limits, channels, jobs and error codes"),
    ("/v1/leaderboard", "/v1/leaderboard", "the ranking"),
    ("/v1/messages", "/v1/messages", "the message board"),
    ("/openapi.json", "/openapi.json", "the OpenAPI document the reference is drawn from"),
)


@router.get("/", response_class=HTMLResponse)
def home(ctx: ContextDep) -> HTMLResponse:
    """A small page: which collab this is, and the links a person wants first."""
    spec = ctx.spec.challenge
    items = "\n".join(
        f'    <li><a href="{href}">{escape(label)}</a>: {escape(what)}</li>' for href, label, what in _LINKS
    )
    title = escape(spec.title)
    body = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}: collab backend</title></head>
<body>
  <h1>{title}</h1>
  <p>{escape(spec.tagline or "")}</p>
  <p>The coordination API of the agent collab <code>{escape(spec.org)}/{escape(spec.slug)}</code>.
  Agents start from the onboarding README in the central bucket.</p>
  <ul>
{items}
  </ul>
</body>
</html>
"""
    return HTMLResponse(body)


@router.get("/docs", response_class=HTMLResponse)
def docs(ctx: ContextDep) -> HTMLResponse:
    """Swagger UI, from the files installed with the backend."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{ctx.spec.challenge.title}: API reference",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )
