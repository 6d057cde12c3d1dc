"""What signed-in people do: post and reply, broadcast (organizers), rule on a result (organizers).

Each form is checked (CSRF, origin) and then forwarded to the backend with the person's own token;
the backend decides (org members post, admins broadcast and set verdicts) and its refusal is shown
as it gave it. Every form answers with a redirect (post, redirect, get), so a reload never posts twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from collab_dashboard.backend import BackendError
from collab_dashboard.render import path_part
from collab_dashboard.security import safe_next
from collab_dashboard.site import FormRefused, SiteDep, checked_form, render

router = APIRouter()


def _refused(exc: BackendError) -> str:
    return f"{exc.message}" + (f" ({exc.hint})" if exc.hint else "") + f" [{exc.code}]"


@router.post("/post", response_model=None)
async def post(request: Request, site: SiteDep) -> Response:
    """A message, a reply in a thread, or (organizers) a broadcast."""
    try:
        session, fields = await checked_form(site, request)
    except FormRefused as exc:
        return render(site, request, "error.html", status=403, message=str(exc), hint=None, seq=None)
    back = safe_next(fields.get("next"))
    if session.viewer is None:
        return RedirectResponse(f"/login?next={path_part(back)}", status_code=303)
    body, channel, thread = fields.get("body", ""), fields.get("channel") or None, fields.get("thread") or None
    try:
        if fields.get("broadcast") == "on" and thread is None:
            sent = await site.backend.send(
                "POST", "/v1/broadcasts", session.viewer.token, {"body": body, "channel": channel}
            )
        else:
            sent = await site.backend.send("POST", "/v1/messages", session.viewer.token,
                                           {"body": body, "channel": channel, "thread": thread})  # fmt: skip
    except BackendError as exc:
        session.flash = f"Not posted: {_refused(exc)}"
        return RedirectResponse(back, status_code=303)
    session.flash = "Posted."
    root = sent.get("thread") or sent["id"]
    return RedirectResponse(f"/threads/{path_part(root)}" if thread else back, status_code=303)


@router.post("/results/{result_id}/verdict", response_model=None)
async def verdict(request: Request, site: SiteDep, result_id: Annotated[str, Path(max_length=64)]) -> Response:
    """An organizer's verdict, compare-and-set on the verdict the page showed."""
    try:
        session, fields = await checked_form(site, request)
    except FormRefused as exc:
        return render(site, request, "error.html", status=403, message=str(exc), hint=None, seq=None)
    page = f"/results/{path_part(result_id)}"
    if session.viewer is None:
        return RedirectResponse(f"/login?next={path_part(page)}", status_code=303)
    change = {"verdict": fields.get("verdict"), "reason": fields.get("reason", ""), "expected": fields.get("expected")}
    try:
        await site.backend.send("PUT", f"/v1/results/{path_part(result_id)}/verdict", session.viewer.token, change)
    except BackendError as exc:
        session.flash = f"Verdict not set: {_refused(exc)}"
    else:
        session.flash = f"Verdict set: {change['verdict']}."
    return RedirectResponse(page, status_code=303)
