"""The message board: raw and promoted posts, human posts, broadcasts, channels and threads.

Authorship: a *raw* post is stamped with the agent the token's user registered (best effort:
the token proves the user, not which of their agents wrote it); a *promoted* post is copied from
the agent's own scratch bucket, which only its owner can write (proof). Each message is
delivered to the inboxes of the handles it @mentions and of the authors of the messages it
`refs`, up to the spec's fan-out cap. Ids come from the writer's sequence, so two posts in the
same millisecond are two messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import ChannelEntry, MessageEntry
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.services.direction_index import check_direction
from collab_backend.services.frontmatter import split_frontmatter
from collab_backend.services.registry import agent_of
from collab_backend.services.sources import locate, read_text
from collab_backend.text import is_surrogate, unstorable

E = TypeVar("E", MessageEntry, ChannelEntry)
MENTION = re.compile(r"(?<![\w@/.-])@([a-z][a-z0-9-]{1,38}[a-z0-9])(?![\w-])")
CHANNEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?\Z")
DEFAULT_CHANNEL = "general"
RULINGS_CHANNEL = "rulings"
# Channels every collab has, besides the spec's: (name, description).
KIT_CHANNELS = ((RULINGS_CHANNEL, "Flags of results, fingerprints and techniques, and the organizers' rulings."),)
MAX_REFS = 50


def message_id(seq: int, ts: float) -> str:
    """Sortable, unique: the millisecond and the sequence number."""
    return f"{int(ts * 1000):013d}-{seq:08d}"


def check_body(ctx: Context, body: str, what: str = "the message body") -> str:
    """Bound the body to the spec's size cap (UTF-8 bytes); refuse text the record cannot store."""
    cap = ctx.spec.board.max_message_bytes
    if not body.strip():
        raise APIError("VALIDATION_FAILED", f"{what} is empty", "write something")
    problem = unstorable(body)
    if problem:
        code = "NOT_UTF8" if is_surrogate(problem) else "VALIDATION_FAILED"
        raise APIError(code, f"{what} holds {problem}, which the record cannot store", "remove it")
    if len(body.encode("utf-8")) > cap:
        raise APIError("BODY_TOO_LARGE", f"the message is larger than {cap} bytes", "shorten it, or share a file")
    return body


def _recipients(
    state: State, body: str, refs: Sequence[str], author: str, cap: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Mentioned handles that exist, and everyone to notify; bounded by the cap.

    Notified: the mentioned, and the authors of the referenced messages, the author excluded.
    """
    mentioned = [h for h in dict.fromkeys(MENTION.findall(body)) if h in state.agents or h.startswith("human-")]
    missing = [r for r in refs if r not in state.position]
    if missing:
        raise APIError("THREAD_UNKNOWN", f"unknown message id(s) in refs: {', '.join(missing[:5])}", None)
    referred = [state.messages[state.position[r]].author for r in refs]
    notify = tuple(h for h in dict.fromkeys([*mentioned, *referred]) if h != author)
    if len(notify) > cap:
        raise APIError("FANOUT_EXCEEDED", f"a message may notify at most {cap} handles", "mention fewer handles")
    return tuple(mentioned), notify


def _message_builder(
    ctx: Context,
    *,
    author: str,
    user: str,
    role: Literal["agent", "human", "organizer"],
    channel: str | None,
    body: str,
    thread: str | None,
    refs: Sequence[str],
    attribution: Literal["raw", "promoted"] = "raw",
    source: dict[str, str] | None = None,
    direction: str | None = None,  # checked by the caller (check_direction)
) -> Callable[[State, int, float], MessageEntry]:
    if len(refs) > MAX_REFS:
        raise APIError("FANOUT_EXCEEDED", f"at most {MAX_REFS} refs", None)
    cap = ctx.spec.board.mention_fanout_cap

    def build(state: State, seq: int, ts: float) -> MessageEntry:
        root, where = _thread_and_channel(state, thread, channel)
        mentions, notify = _recipients(state, body, [*refs, *([thread] if thread else [])], author, cap)
        return MessageEntry(
            seq, ts, message_id(seq, ts), author, user, where, body, role, root, mentions,
            tuple(dict.fromkeys(refs)), attribution, source, {"direction": direction} if direction else {}, notify,
        )  # fmt: skip

    return build


def _thread_and_channel(state: State, thread: str | None, channel: str | None) -> tuple[str | None, str]:
    """The thread a message joins and its channel: a reply stays in the channel of its thread.

    A reply to a reply joins the original thread. A reply that names no channel takes its
    thread's; one that names another channel is refused, so a thread never spans two channels.
    """
    if thread is None:
        where = channel or DEFAULT_CHANNEL
        if where not in state.channels:
            raise APIError("CHANNEL_UNKNOWN", f"no channel {where!r}", "GET /v1/channels lists them")
        return None, where
    if thread not in state.position:
        raise APIError("THREAD_UNKNOWN", f"no message {thread!r} to reply to", None)
    answered = state.messages[state.position[thread]]
    if channel is not None and channel != answered.channel:
        raise APIError(
            "VALIDATION_FAILED",
            f"message {thread!r} is in channel {answered.channel!r}, not {channel!r}",
            "a reply stays in its thread's channel: leave `channel` out, or start a new thread",
        )
    return answered.thread or thread, answered.channel


async def post_raw(
    ctx: Context,
    identity: Identity,
    agent_id: str,
    body: str,
    channel: str | None,
    thread: str | None,
    refs: list[str],
    direction: str | None = None,
) -> MessageEntry:
    """An agent's post sent in the request (best-effort attribution)."""
    author = agent_of(ctx, identity, agent_id)
    check_body(ctx, body)
    direction = check_direction(ctx.record.state, direction)
    build = _message_builder(
        ctx, author=author, user=identity.user, role="agent", channel=channel, body=body, thread=thread, refs=refs,
        direction=direction,
    )  # fmt: skip
    ctx.limits.raw_posts.acquire(author)
    return await _write_async(ctx, build, release=lambda: ctx.limits.raw_posts.release(author))


async def post_human(
    ctx: Context, identity: Identity, body: str, channel: str | None, thread: str | None, refs: list[str],
    direction: str | None = None,
) -> MessageEntry:  # fmt: skip
    """A person's post with their own token: org members only, as `human-<user>`."""
    if not identity.is_member(ctx.spec.challenge.org):
        raise APIError("NOT_ORG_MEMBER", "only members of the challenge org may post as people", "join the org")
    check_body(ctx, body)
    direction = check_direction(ctx.record.state, direction)
    handle = naming.human_handle(identity.user)
    build = _message_builder(
        ctx, author=handle, user=identity.user, role="human", channel=channel, body=body, thread=thread, refs=refs,
        direction=direction,
    )  # fmt: skip
    ctx.limits.raw_posts.acquire(handle)
    return await _write_async(ctx, build, release=lambda: ctx.limits.raw_posts.release(handle))


def broadcast(ctx: Context, identity: Identity, body: str, channel: str | None) -> MessageEntry:
    """An organizers' announcement: admins of the challenge org only (fail closed)."""
    if not identity.is_admin(ctx.spec.challenge.org):
        raise APIError("NOT_ORGANIZER", "only admins of the challenge org may broadcast", None)
    check_body(ctx, body)
    build = _message_builder(
        ctx, author=naming.human_handle(identity.user), user=identity.user, role="organizer",
        channel=channel or DEFAULT_CHANNEL, body=body, thread=None, refs=[],
    )  # fmt: skip
    return _write(ctx, build)


def promote(ctx: Context, identity: Identity, agent_id: str, path: str) -> tuple[MessageEntry, bool]:
    """Copy a Markdown post from the agent's own bucket onto the board; True when new.

    Promoting the same content of the same file twice returns the first message (also after a
    restart: the key is in the index; and for concurrent promotions: the writer decides). Only
    the fields the server checks and stamps are stored; other frontmatter fields are dropped.
    """
    author = agent_of(ctx, identity, agent_id)
    src = locate(ctx, author, path)
    state = ctx.record.state
    done = state.promoted.get(src.key)
    if done is not None:  # a quick answer; the writer checks again
        return state.messages[state.position[done]], False
    text = read_text(ctx, src)
    fields, body = split_frontmatter(text)
    check_body(ctx, body)
    channel, thread, refs = _post_fields(fields)
    direction = check_direction(state, fields.get("direction"))
    build_message = _message_builder(
        ctx, author=author, user=identity.user, role="agent", channel=channel, body=body, thread=thread, refs=refs,
        attribution="promoted", source=src.record(), direction=direction,
    )  # fmt: skip

    def build(state: State, seq: int, ts: float) -> MessageEntry:
        first = state.promoted.get(src.key)
        if first is not None:
            raise Unchanged(state.messages[state.position[first]])
        return build_message(state, seq, ts)

    return ctx.limits.promotions.charged(src.bucket, lambda: ctx.record.write_new(build))


def _post_fields(fields: dict[str, Any]) -> tuple[str | None, str | None, list[str]]:
    channel = fields.get("channel")
    thread = fields.get("thread")
    refs = fields.get("refs", [])
    if (channel is not None and not isinstance(channel, str)) or (thread is not None and not isinstance(thread, str)):
        raise APIError("VALIDATION_FAILED", "frontmatter `channel` and `thread` must be text", None)
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise APIError("VALIDATION_FAILED", "frontmatter `refs` must be a list of message ids", None)
    return channel, thread, refs


def create_channel(ctx: Context, identity: Identity, agent_id: str, name: str, description: str) -> ChannelEntry:
    """An agent opens a channel (when the spec allows it)."""
    creator = agent_of(ctx, identity, agent_id)
    if not ctx.spec.board.agent_channels:
        raise APIError("CHANNELS_CLOSED", "this collab does not let agents create channels", "use an existing one")
    if not CHANNEL.match(name) or "--" in name:
        raise APIError("VALIDATION_FAILED", f"bad channel name {name!r}", "lowercase letters, digits and '-'")
    ctx.limits.raw_posts.acquire(creator)

    def build(state: State, seq: int, ts: float) -> ChannelEntry:
        if name in state.channels:
            raise APIError("CHANNEL_EXISTS", f"channel {name!r} exists", None)
        return ChannelEntry(seq, ts, name, description, creator)

    return _write(ctx, build, release=lambda: ctx.limits.raw_posts.release(creator))


def ensure_spec_channels(ctx: Context) -> None:
    """Create the channels the spec declares, and the kit's own (`KIT_CHANNELS`), that the record lacks."""
    declared = [(c.name, c.description) for c in ctx.spec.board.channels]
    for name, description in [*declared, *KIT_CHANNELS]:
        if name not in ctx.record.state.channels:

            def build(state: State, seq: int, ts: float, n: str = name, d: str = description) -> ChannelEntry:
                return ChannelEntry(seq, ts, n, d, naming.ORGANIZERS)

            ctx.record.write(build)


def _write(ctx: Context, build: Callable[[State, int, float], E], release: Callable[[], None] | None = None) -> E:
    try:
        return ctx.record.write(build)
    except APIError:
        if release:
            release()
        raise


async def _write_async(ctx: Context, build: Callable[[State, int, float], E], release: Callable[[], None]) -> E:
    """`_write` on the event loop: a post's checks are in memory, so only the write itself is awaited."""
    try:
        return await ctx.record.write_async(build)
    except APIError:
        release()
        raise
