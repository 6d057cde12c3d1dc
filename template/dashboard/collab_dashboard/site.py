"""The running dashboard's parts, and what every handler needs from a request.

`Site` is wired once at start (settings, the backend client, the session store, the sign-in,
the templates) and reached through `SiteDep`. `render` draws a page with what every page shows
(the collab, the person signed in, the CSRF token, the entry it was drawn at); `checked_form`
parses a form and refuses it without the session's CSRF token or from another origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.auth import SignIn
from collab_dashboard.backend import Backend, BackendError
from collab_dashboard.config import Settings
from collab_dashboard.security import foreign_origin, same_token
from collab_dashboard.sessions import Session, SessionStore, Viewer

MAX_FORM_BYTES = 64_000


@dataclass
class Site:
    settings: Settings
    backend: Backend
    sessions: SessionStore
    sign_in: SignIn
    templates: jinja2.Environment

    @property
    def cookie(self) -> str:
        """The session cookie's name (`__Host-` on a Space: HTTPS only, this host only, path /)."""
        return "__Host-collab_session" if self.settings.secure else "collab_session"

    @property
    def org(self) -> str:
        return self.settings.spec.challenge.org


async def get_site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


SiteDep = Annotated[Site, Depends(get_site)]


def session_of(site: Site, request: Request) -> Session | None:
    """The request's session, if its cookie names a live one."""
    return site.sessions.get(request.cookies.get(site.cookie))


def viewer_of(site: Site, request: Request) -> Viewer | None:
    session = session_of(site, request)
    return session.viewer if session else None


def set_session_cookie(site: Site, response: Any, session: Session) -> None:
    response.set_cookie(
        site.cookie, session.id, httponly=True, secure=site.settings.secure, samesite="lax", path="/",
        max_age=int(site.settings.session_hours * 3600),
    )  # fmt: skip


async def seq_now(site: Site) -> int | None:
    """The backend's latest entry number (what a page was drawn at), or None when it is down."""
    try:
        return int((await site.backend.get("/v1/changes"))["seq"])
    except BackendError:
        return None


def render(
    site: Site, request: Request, template: str, status: int = 200, session: Session | None = None, **data: Any
) -> HTMLResponse:
    """A page: the template with the collab, the person, the CSRF token and a one-time message.

    `session` is the request's own unless given (a session created while answering this request).
    """
    session = session or session_of(site, request)
    flash = None
    if session is not None:
        flash, session.flash = session.flash, None
    viewer = session.viewer if session else None
    spec = site.settings.spec
    html = site.templates.get_template(template).render(
        spec=spec,
        viewer=viewer,
        member=bool(viewer and viewer.is_member(site.org)),
        organizer=bool(viewer and viewer.is_admin(site.org)),
        csrf=session.csrf if session else "",
        flash=flash,
        here=request.url.path,
        here_full=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        poll_seconds=site.settings.poll_seconds,
        sign_in=site.settings.sign_in,
        **data,
    )
    return HTMLResponse(html, status_code=status)


class FormRefused(Exception):
    """A form without a valid CSRF token, or sent from another origin."""


async def checked_form(site: Site, request: Request) -> tuple[Session, dict[str, str]]:
    """The form's fields, once its session and CSRF token check out."""
    if foreign_origin(request.headers.get("origin"), request.headers.get("host")):
        raise FormRefused("this form was sent from another site")
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise FormRefused("this form is too large")
    session = session_of(site, request)
    form = await request.form(max_files=0, max_fields=20)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if session is None or not same_token(session.csrf, fields.get("csrf")):
        raise FormRefused("this form has expired or was not sent from this page; reload and try again")
    return session, fields
