"""The ASGI app: wiring, the security headers, error pages, static files and the pages.

`create_app(settings)` serves given settings (tests, `collab up`); `app` reads them from the
environment (the Space): `uvicorn collab_dashboard.main:app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from collab_dashboard import __version__
from collab_dashboard.auth import CALLBACK_PATH, HubSignIn, LocalSignIn, SignIn
from collab_dashboard.backend import Backend, BackendError
from collab_dashboard.config import Settings
from collab_dashboard.render import environment
from collab_dashboard.security import HUB_FRAME_ANCESTORS, SecurityHeaders, content_security_policy
from collab_dashboard.sessions import SessionStore
from collab_dashboard.site import Site, render
from collab_dashboard.views import (
    account,
    actions,
    agents,
    board,
    coordination,
    jobs,
    join,
    lineage,
    live,
    overview,
    rulings,
    run_requests,
)

STATIC = Path(__file__).parent / "static"


def _sign_in(settings: Settings, http: httpx.AsyncClient) -> SignIn:
    if settings.sign_in == "local":
        assert settings.identity_file is not None  # noqa: S101  # Settings requires it in local mode
        return LocalSignIn(settings.identity_file)
    return HubSignIn(
        client_id=settings.oauth_client_id or "", client_secret=settings.oauth_client_secret or "",
        scopes=settings.oauth_scopes, provider_url=settings.openid_provider_url,
        redirect_uri=f"https://{settings.space_host}{CALLBACK_PATH}", http=http,
    )  # fmt: skip


def _error_page(request: Request, status: int, message: str, hint: str | None) -> Response:
    site: Site | None = getattr(request.app.state, "site", None)
    if site is None or request.url.path in ("/live", "/autocomplete", "/healthz"):
        return JSONResponse({"error": {"message": message, "hint": hint}}, status_code=status)
    return render(site, request, "error.html", status=status, message=message, hint=hint, seq=None)


def create_app(
    settings: Settings | None = None,
    *,
    backend_transport: httpx.AsyncBaseTransport | None = None,
    oauth_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The dashboard over `settings` (read from the environment when omitted)."""
    settings = settings or Settings()  # pydantic-settings reads the environment

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.backend_timeout_s)
        async with (
            httpx.AsyncClient(base_url=settings.api, timeout=timeout, transport=backend_transport) as client,
            httpx.AsyncClient(timeout=10, transport=oauth_transport) as oauth_http,
        ):
            app.state.site = Site(
                settings=settings, backend=Backend(client),
                sessions=SessionStore(settings.session_hours * 3600, settings.max_sessions),
                sign_in=_sign_in(settings, oauth_http), templates=environment(),
            )  # fmt: skip
            yield

    app = FastAPI(title="Agent collab dashboard", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)  # fmt: skip
    for module in (
        overview,
        lineage,
        board,
        agents,
        jobs,
        run_requests,
        rulings,
        coordination,
        join,
        account,
        actions,
        live,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(BackendError)
    async def backend_error(request: Request, exc: BackendError) -> Response:
        status = exc.status if exc.status in (400, 404, 409, 422, 429) else 503 if exc.status >= 500 else 502
        return _error_page(request, status, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
        return _error_page(request, 422, f"this address has a value that is not valid: {where}", None)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return _error_page(request, exc.status_code, message, None)

    logo = settings.spec.dashboard.branding.logo_url
    images = (f"https://{urlsplit(logo).netloc}",) if logo else ()
    frames = HUB_FRAME_ANCESTORS if settings.secure else "'none'"
    app.add_middleware(SecurityHeaders, policy=content_security_policy(frames, images), secure=settings.secure)
    return app


def __getattr__(name: str) -> FastAPI:
    """`collab_dashboard.main:app` for uvicorn, built from the environment when first asked for.

    Built on demand rather than at import, so tests and tools import this module without a Space's
    environment.
    """
    if name == "app":
        return create_app()
    raise AttributeError(name)
