"""Token usage as the API shows it: one agent's totals, and the ranking of all agents (cached)."""

from __future__ import annotations

from typing import Any

from collab_backend.record.state import State


def usage_of(state: State, agent: str) -> dict[str, Any]:
    """One agent's totals, per model and overall."""
    models = state.token_stats.get(agent, {})
    per_model = {
        model: {"input_tokens": int(t[0]), "output_tokens": int(t[1]), "cost_usd": round(t[2], 6), "reports": int(t[3])}
        for model, t in sorted(models.items())
    }
    return {
        "agent": agent,
        "input_tokens": sum(m["input_tokens"] for m in per_model.values()),
        "output_tokens": sum(m["output_tokens"] for m in per_model.values()),
        "cost_usd": round(sum(m["cost_usd"] for m in per_model.values()), 6),
        "models": per_model,
    }


class UsageRanking:
    """Agents ordered by reported tokens, rebuilt only after a new report (reads are O(page))."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self.items: list[dict[str, Any]] = []
        self.totals: dict[str, Any] = {}

    def get(self, state: State) -> UsageRanking:
        key = (id(state), state.usage_version)
        if key != self._key:
            everyone = [usage_of(state, agent) for agent in list(state.token_stats)]  # a C-level copy: writes go on
            everyone.sort(key=lambda u: -(u["input_tokens"] + u["output_tokens"]))
            self.items, self._key = everyone, key
            self.totals = {
                "input_tokens": sum(u["input_tokens"] for u in everyone),
                "output_tokens": sum(u["output_tokens"] for u in everyone),
                "cost_usd": round(sum(u["cost_usd"] for u in everyone), 6),
                "agents": len(everyone),
            }
        return self
