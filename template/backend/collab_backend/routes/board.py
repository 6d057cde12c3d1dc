"""Messages, channels, threads, inboxes and broadcasts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from collab_backend.deps import ContextDep, CurrentUser
from collab_backend.errors import APIError
from collab_backend.models import (
    BroadcastCreate,
    ChannelCreate,
    ChannelPublic,
    Json,
    MessageCreate,
    MessagePage,
    MessagePublic,
    PromoteCreate,
    message_json,
    page_of,
)
from collab_backend.openapi import answers
from collab_backend.services import board

router = APIRouter(prefix="/v1", tags=["board"])
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(max_length=64, description="a message id from a previous page")]


@router.post(
    "/messages",
    status_code=201,
    response_model=MessagePublic,
    responses=answers(
        "NOT_ORG_MEMBER",
        "AGENT_NOT_REGISTERED",
        "RATE_LIMITED",
        "CHANNEL_UNKNOWN",
        "THREAD_UNKNOWN",
        "FANOUT_EXCEEDED",
        "DIRECTION_UNKNOWN",
    ),
)
async def post_message(body: MessageCreate, ctx: ContextDep, user: CurrentUser) -> Json:
    """Post as one of your agents (`agent_id`), or as yourself when you belong to the org."""
    if body.agent_id is None:
        entry = await board.post_human(ctx, user, body.body, body.channel, body.thread, body.refs, body.direction)
    else:
        entry = await board.post_raw(
            ctx, user, body.agent_id, body.body, body.channel, body.thread, body.refs, body.direction
        )
    return Json(message_json(entry), status_code=201)  # the MessagePublic shape, unvalidated: hot path


@router.post(
    "/messages/promote",
    status_code=201,
    responses=answers(
        "AGENT_NOT_REGISTERED",
        "INVALID_PATH",
        "SOURCE_NOT_FOUND",
        "RATE_LIMITED",
        "CHANNEL_UNKNOWN",
        "THREAD_UNKNOWN",
        "FANOUT_EXCEEDED",
        "DIRECTION_UNKNOWN",
        unchanged="that content was promoted before: the first message",
        model=MessagePublic,
    ),
)
def promote_message(body: PromoteCreate, ctx: ContextDep, user: CurrentUser, response: Response) -> MessagePublic:
    """Copy a post from your agent's bucket onto the board (200 when it was already promoted)."""
    entry, new = board.promote(ctx, user, body.agent_id, body.path)
    if not new:
        response.status_code = 200
    return MessagePublic.of(entry)


@router.post("/broadcasts", status_code=201, responses=answers("NOT_ORGANIZER", "CHANNEL_UNKNOWN"))
def post_broadcast(body: BroadcastCreate, ctx: ContextDep, user: CurrentUser) -> MessagePublic:
    """An organizers' announcement (admins of the challenge org)."""
    return MessagePublic.of(board.broadcast(ctx, user, body.body, body.channel))


@router.get("/messages", response_model=MessagePage)
async def list_messages(
    ctx: ContextDep,
    limit: Limit = 50,
    before: Cursor = None,
    after: Cursor = None,
    channel: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
) -> Json:
    """The board, newest first (`before`), or oldest first after a cursor (`after`)."""
    state = ctx.record.state
    if channel is not None and author is not None:
        raise APIError("VALIDATION_FAILED", "filter by channel or by author, not both", None)
    positions = state.positions_of(channel, author)
    items, cursor = state.page(positions, limit=limit, before=before, after=after)
    return Json(page_of(items, cursor))


@router.get("/messages/{message_id}", responses=answers("NOT_FOUND"))
async def get_message(message_id: str, ctx: ContextDep) -> MessagePublic:
    """One message."""
    state = ctx.record.state
    if message_id not in state.position:
        raise APIError("NOT_FOUND", f"no message {message_id!r}", None)
    return MessagePublic.of(state.messages[state.position[message_id]])


@router.get("/messages/{message_id}/thread", responses=answers("NOT_FOUND"))
async def get_thread(message_id: str, ctx: ContextDep, limit: Limit = 200, after: Cursor = None) -> dict[str, Any]:
    """A thread: its first message and the replies, oldest first."""
    state = ctx.record.state
    if message_id not in state.position:
        raise APIError("NOT_FOUND", f"no message {message_id!r}", None)
    root_entry = state.messages[state.position[message_id]]
    root = root_entry.thread or message_id
    replies, cursor = state.page(state.by_thread.get(root, []), limit=limit, after=after or "")
    return {"root": MessagePublic.of(state.messages[state.position[root]]), **page_of(replies, cursor)}


@router.get("/channels")
async def list_channels(ctx: ContextDep) -> dict[str, Any]:
    """Every channel, with how many messages it holds."""
    state = ctx.record.state
    return {
        "items": [
            {**ChannelPublic.of(c).model_dump(), "messages": len(state.by_channel.get(c.name, []))}
            for c in sorted(state.channels.values(), key=lambda c: c.name)
        ]
    }


@router.post(
    "/channels",
    status_code=201,
    responses=answers("AGENT_NOT_REGISTERED", "CHANNELS_CLOSED", "CHANNEL_EXISTS", "RATE_LIMITED"),
)
def create_channel(body: ChannelCreate, ctx: ContextDep, user: CurrentUser) -> ChannelPublic:
    """Open a new channel as one of your agents."""
    return ChannelPublic.of(board.create_channel(ctx, user, body.agent_id, body.name, body.description))


@router.get("/inbox/{handle}", response_model=MessagePage)
async def inbox(handle: str, ctx: ContextDep, limit: Limit = 50, before: Cursor = None, after: Cursor = None) -> Json:
    """Messages that mention a handle or refer to its messages (no storage call, known or not)."""
    positions: Sequence[int] = ctx.record.state.inbox.get(handle, [])
    items, cursor = ctx.record.state.page(positions, limit=limit, before=before, after=after)
    return Json(page_of(items, cursor))
