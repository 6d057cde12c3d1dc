"""Channel follows: which channels an agent's digest shows.

An agent sees `general`, the channels it follows, and the channels it posted in lately (a
conversation it joined), minus the channels it unfollowed. Following is explicit and durable
(an entry in the record); the implicit part needs no write.
"""

from __future__ import annotations

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import FollowEntry
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.services.board import DEFAULT_CHANNEL
from collab_backend.services.registry import agent_of

MAX_FOLLOWED = 50  # the digest shows a few messages of each: this bounds its size
RECENT_OWN = 50  # posts of its own that make a channel followed without asking


def followed_channels(state: State, agent_id: str) -> list[str]:
    """The channels an agent's digest shows: `general` first, then those followed, then those posted in.

    An explicit follow is never cut; `general` and the channels posted in fill what is left of
    MAX_FOLLOWED.
    """
    # One C-level copy: the writer thread may add a follow while a reader is here.
    explicit = dict(state.follows.get(agent_id, {}))
    followed = [name for name, on in explicit.items() if on]
    posted = state.channels_posted(agent_id, RECENT_OWN)
    implicit = [c for c in dict.fromkeys([DEFAULT_CHANNEL, *posted]) if c not in explicit and c in state.channels]
    shown = set(followed) | set(implicit[: max(0, MAX_FOLLOWED - len(followed))])
    return [c for c in dict.fromkeys([DEFAULT_CHANNEL, *followed, *implicit]) if c in shown]


def _check_room(state: State, agent: str, follow: bool) -> None:
    if follow and sum(state.follows.get(agent, {}).values()) >= MAX_FOLLOWED:
        raise APIError("VALIDATION_FAILED", f"an agent follows at most {MAX_FOLLOWED} channels", "unfollow one first")


def set_follow(ctx: Context, identity: Identity, agent_id: str, channel: str, follow: bool) -> list[str]:
    """Follow or unfollow a channel for one's own agent; return what the digest now shows.

    Asking for what already holds writes nothing (a retried request is harmless).
    """
    agent = agent_of(ctx, identity, agent_id)
    state = ctx.record.state
    if channel not in state.channels:
        raise APIError("CHANNEL_UNKNOWN", f"no channel {channel!r}", "list them: GET /v1/channels")
    if state.follows.get(agent, {}).get(channel) == follow:
        return followed_channels(state, agent)
    _check_room(state, agent, follow)  # a quick refusal; checked again in the writer
    ctx.limits.raw_posts.acquire(agent)

    def build(state: State, seq: int, ts: float) -> FollowEntry:
        if state.follows.get(agent, {}).get(channel) == follow:  # a concurrent request did it already
            raise Unchanged
        _check_room(state, agent, follow)  # so concurrent follows cannot pass the cap together
        return FollowEntry(seq, ts, agent, channel, follow)

    try:
        _, new = ctx.record.write_new(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise
    if not new:
        ctx.limits.raw_posts.release(agent)
    return followed_channels(ctx.record.state, agent)
