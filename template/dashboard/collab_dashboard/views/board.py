"""The board: channels, threads folded and unfolded, search, the @me filter, and the fragments live pages add."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from collab_dashboard.render import path_part
from collab_dashboard.site import SiteDep, render, seq_now, viewer_of

router = APIRouter()
Name = Annotated[str | None, Query(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=64)]
MessageId = Annotated[str, Path(max_length=64)]
THREADS = 30
REPLIES = 100


@router.get("/board", response_class=HTMLResponse)
async def board(request: Request, site: SiteDep, channel: Name = None, before: Cursor = None) -> HTMLResponse:
    """Threads newest first, folded (the first message, the reply count, the latest reply)."""
    api = site.backend
    channels, threads, newest, seq = await asyncio.gather(
        api.get("/v1/channels"), api.get("/v1/threads", channel=channel or None, limit=THREADS, before=before),
        api.get("/v1/messages", channel=channel or None, limit=1), seq_now(site),
    )  # fmt: skip
    after = newest["items"][0]["id"] if newest["items"] and before is None else ""
    return render(site, request, "board.html", channels=channels["items"], channel=channel or "", threads=threads,
                  after=after, seq=seq)  # fmt: skip


@router.get("/board/search", response_class=HTMLResponse)
async def search(
    request: Request,
    site: SiteDep,
    q: Annotated[str, Query(max_length=100)] = "",
    channel: Name = None,
    before: Cursor = None,
) -> HTMLResponse:
    """Messages containing some text, newest first."""
    found = None
    if len(q.strip()) >= 2:
        found = await site.backend.get("/v1/search", q=q.strip(), channel=channel or None, before=before, limit=50)
    channels = await site.backend.get("/v1/channels")
    return render(site, request, "search.html", q=q, channel=channel or "", found=found, channels=channels["items"],
                  seq=None)  # fmt: skip


@router.get("/board/me", response_class=HTMLResponse)
async def mentions_of_me(request: Request, site: SiteDep, before: Cursor = None) -> HTMLResponse:
    """The @me filter: messages that mention the signed-in person or reply to their posts."""
    viewer = viewer_of(site, request)
    inbox = None
    if viewer is not None:
        inbox = await site.backend.get(f"/v1/inbox/{path_part(viewer.handle)}", before=before, limit=50)
    return render(site, request, "me.html", inbox=inbox, seq=None)


@router.get("/threads/{message_id}", response_class=HTMLResponse)
async def thread(request: Request, site: SiteDep, message_id: MessageId, after: Cursor = None) -> HTMLResponse:
    """A thread unfolded: its first message and the replies, oldest first."""
    shown, seq = await asyncio.gather(
        site.backend.get(f"/v1/messages/{path_part(message_id)}/thread", after=after, limit=REPLIES), seq_now(site)
    )
    return render(site, request, "thread.html", thread=shown, seq=seq)


@router.get("/fragments/thread/{message_id}", response_class=HTMLResponse)
async def thread_fragment(request: Request, site: SiteDep, message_id: MessageId, after: Cursor = None) -> HTMLResponse:
    """Replies of a thread (after a cursor) as list items: what unfolding and live updates insert."""
    shown = await site.backend.get(f"/v1/messages/{path_part(message_id)}/thread", after=after, limit=REPLIES)
    return render(site, request, "fragments/messages.html", messages=shown["items"])


@router.get("/fragments/messages", response_class=HTMLResponse)
async def new_messages(
    request: Request, site: SiteDep, after: Annotated[str, Query(max_length=64)], channel: Name = None
) -> HTMLResponse:
    """Messages posted after a cursor (oldest first): what a live board adds without drawing the page again."""
    shown = await site.backend.get("/v1/messages", channel=channel or None, after=after, limit=50)
    return render(site, request, "fragments/messages.html", messages=shown["items"])
