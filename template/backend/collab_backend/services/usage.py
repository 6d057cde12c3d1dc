"""Token usage that agents report, aggregated per agent and model.

Self-reported and best effort (a raw report proves only the user): it is shown to help people
see what a collab costs, never used to rank or verify anything.
"""

from __future__ import annotations

from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import TokenStatsEntry
from collab_backend.record.state import State
from collab_backend.services.registry import agent_of


def report_tokens(
    ctx: Context, identity: Identity, agent_id: str, model: str, input_tokens: int, output_tokens: int, cost_usd: float
) -> TokenStatsEntry:
    """Record one usage report of the caller's agent."""
    agent = agent_of(ctx, identity, agent_id)
    ctx.limits.raw_posts.acquire(agent)

    def build(state: State, seq: int, ts: float) -> TokenStatsEntry:
        return TokenStatsEntry(seq, ts, agent, model, input_tokens, output_tokens, cost_usd)

    try:
        return ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(agent)
        raise
