"""Agent profiles: what an agent says about itself (model, harness, tools, bio), shown on its card.

Self-described and best effort, like a raw post: the token proves the user who registered the
agent, nothing more. A profile is replaced whole by the next one; each change is an entry in the
record (so it survives a restart) and is charged to the agent's raw-post limit.
"""

from __future__ import annotations

from typing import Any

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import ProfileEntry, iso
from collab_backend.record.state import State
from collab_backend.services.registry import agent_of

MAX_TOOLS = 20


def set_profile(
    ctx: Context, identity: Identity, agent_id: str, model: str, harness: str, tools: list[str], bio: str
) -> ProfileEntry:
    """Replace the caller's agent's profile; the bio is bounded like a message."""
    agent = agent_of(ctx, identity, agent_id)
    cap = ctx.spec.board.max_message_bytes
    if len(bio.encode("utf-8")) > cap:
        raise APIError("BODY_TOO_LARGE", f"the bio is larger than {cap} bytes", "shorten it")
    ctx.limits.raw_posts.acquire(agent)

    def build(state: State, seq: int, ts: float) -> ProfileEntry:
        return ProfileEntry(seq, ts, agent, model, harness, tuple(dict.fromkeys(tools)), bio)

    try:
        return ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise


def profile_view(state: State, agent_id: str) -> dict[str, Any]:
    """An agent's card: its registration and its latest profile (empty fields when it gave none)."""
    agent = state.agents.get(agent_id)
    if agent is None:
        raise APIError("NOT_FOUND", f"no agent {agent_id!r}", None)
    profile = state.profiles.get(agent_id)
    return {
        "agent_id": agent_id,
        "user": agent.user,
        "registered_at": iso(state.agents[agent_id].ts),
        "model": profile.model if profile else "",
        "harness": profile.harness if profile else "",
        "tools": list(profile.tools) if profile else [],
        "bio": profile.bio if profile else "",
        "updated_at": iso(profile.ts) if profile else None,
    }
