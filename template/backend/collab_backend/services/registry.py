"""Registration: bind an agent id to one HF user, for good.

The token is checked first (the caller learns nothing about buckets without a valid one); then
the id's rules; then the scratch bucket `{org}/{slug}-{agent_id}` must exist and hold the
handshake file naming the caller, which only someone who can write that bucket could have put
there. The binding itself is decided inside the writer, so two racing registrations of one id
cannot both win.
"""

from __future__ import annotations

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import AgentEntry
from collab_backend.record.state import State
from collab_backend.record.store import Unchanged
from collab_backend.storage import NotFound, TooLarge

MAX_HANDSHAKE_BYTES = 1024


def register_agent(ctx: Context, identity: Identity, agent_id: str) -> tuple[AgentEntry, bool]:
    """Register `agent_id` for the caller (True), or confirm the caller's own binding (False).

    A confirmation writes nothing and costs no storage call: the binding is for good, so asking
    again, however often, cannot grow the record.
    """
    problem = naming.agent_id_problem(agent_id)
    if problem:
        raise APIError(problem, f"cannot register {agent_id!r}", "agent ids look like `my-agent-7`")
    existing = ctx.record.state.agents.get(agent_id)
    if existing and existing.user != identity.user:
        raise APIError("AGENT_TAKEN", f"{agent_id} belongs to another user", "choose another agent id")
    if existing:
        return existing, False
    bucket = naming.scratch_bucket(ctx.spec, agent_id)
    _check_handshake(ctx, bucket, identity.user)

    def build(state: State, seq: int, ts: float) -> AgentEntry:
        current = state.agents.get(agent_id)
        if current and current.user != identity.user:
            raise APIError("AGENT_TAKEN", f"{agent_id} belongs to another user", "choose another agent id")
        if current:  # a concurrent registration of the same id by the same user won
            raise Unchanged(current)
        return AgentEntry(seq, ts, agent_id, identity.user, bucket)

    return ctx.limits.registrations.charged(identity.user, lambda: ctx.record.write_new(build))


def _check_handshake(ctx: Context, bucket: str, user: str) -> None:
    if not ctx.storage.bucket_exists(bucket):
        raise APIError(
            "SCRATCH_BUCKET_MISSING", f"bucket {bucket} does not exist", f"create it: hf buckets create {bucket}"
        )
    info = ctx.storage.stat(bucket, [naming.HANDSHAKE_FILE]).get(naming.HANDSHAKE_FILE)
    if info is None:
        raise APIError(
            "HANDSHAKE_MISSING",
            f"{bucket} has no {naming.HANDSHAKE_FILE}",
            f"write your HF user name into {naming.HANDSHAKE_FILE} in {bucket}",
        )
    if info.size > MAX_HANDSHAKE_BYTES:
        raise APIError("HANDSHAKE_MISMATCH", "the handshake file is too large", "it holds only your HF user name")
    try:
        raw = ctx.storage.read(bucket, naming.HANDSHAKE_FILE, max_bytes=MAX_HANDSHAKE_BYTES)
        named = raw.decode("utf-8", "replace").strip()
    except TooLarge:
        raise APIError(
            "HANDSHAKE_MISMATCH", "the handshake file is too large", "it holds only your HF user name"
        ) from None
    except NotFound:
        raise APIError("HANDSHAKE_MISSING", f"{bucket} has no {naming.HANDSHAKE_FILE}", None) from None
    if named != user:
        raise APIError(
            "HANDSHAKE_MISMATCH",
            "the handshake file names another user",
            f"write exactly `{user}` into {naming.HANDSHAKE_FILE}",
        )


def agent_of(ctx: Context, identity: Identity, agent_id: str) -> str:
    """The agent id, if it is registered to the caller; else AGENT_NOT_REGISTERED."""
    entry = ctx.record.state.agents.get(agent_id)
    if entry is None or entry.user != identity.user:
        raise APIError(
            "AGENT_NOT_REGISTERED", f"{agent_id!r} is not registered to your user", "register it: POST /v1/agents"
        )
    return agent_id
