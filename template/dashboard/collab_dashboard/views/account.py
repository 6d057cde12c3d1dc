"""Signing in and out (the same routes for Hugging Face OAuth and the local identity file)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collab_dashboard.auth import SignInError
from collab_dashboard.security import safe_next
from collab_dashboard.sessions import Session
from collab_dashboard.site import FormRefused, Site, SiteDep, checked_form, render, session_of, set_session_cookie

router = APIRouter()
Next = Annotated[str | None, Query(max_length=512)]


@router.get("/login", response_class=HTMLResponse, response_model=None)
async def login(request: Request, site: SiteDep, next: Next = None) -> Response:
    """Start signing in: to the Hub's consent page, or the local token form."""
    session = session_of(site, request) or site.sessions.create()
    session.pending["next"] = safe_next(next)
    try:
        target = await site.sign_in.start(session)
    except SignInError as exc:
        response: Response = render(site, request, "login.html", status=503, error=str(exc), seq=None)
    else:
        if target is not None:
            response = RedirectResponse(target, status_code=303)
        else:
            response = render(site, request, "login.html", session=session, error=None, seq=None)
    set_session_cookie(site, response, session)
    return response


@router.get("/login/callback", response_model=None)
async def callback(request: Request, site: SiteDep) -> Response:
    """The Hub sends the browser back here with a code and the state it was given."""
    session = session_of(site, request)
    if session is None:
        return render(site, request, "login.html", status=400, error="the sign-in expired; sign in again", seq=None)
    return await _finish(request, site, session, dict(request.query_params))


@router.post("/login", response_model=None)
async def local_login(request: Request, site: SiteDep) -> Response:
    """The local token form."""
    try:
        session, fields = await checked_form(site, request)
    except FormRefused as exc:
        return render(site, request, "login.html", status=403, error=str(exc), seq=None)
    return await _finish(request, site, session, fields)


async def _finish(request: Request, site: Site, session: Session, params: dict[str, str]) -> Response:
    try:
        viewer, expires = await site.sign_in.finish(session, params)
    except SignInError as exc:
        return render(site, request, "login.html", status=400, error=str(exc), seq=None)
    target = session.pending.get("next", "/")
    site.sessions.drop(session.id)  # a new id once signed in: a planted session id is worth nothing
    fresh = site.sessions.create(viewer, expires)
    response = RedirectResponse(safe_next(target), status_code=303)
    set_session_cookie(site, response, fresh)
    return response


@router.post("/logout", response_model=None)
async def logout(request: Request, site: SiteDep) -> Response:
    """Sign out: the session and its token are forgotten here."""
    try:
        session, fields = await checked_form(site, request)
    except FormRefused as exc:
        return render(site, request, "error.html", status=403, message=str(exc), hint=None, seq=None)
    site.sessions.drop(session.id)
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    response.delete_cookie(site.cookie, path="/", secure=site.settings.secure, httponly=True, samesite="lax")
    return response
