"""Directions: the axes of research the collab wants explored, and how much each has been.

A direction is declared in the spec (`directions:`) or opened by an agent, like a channel, with the
channel naming rules. A result or a post names one with `direction:` in its frontmatter (a raw
post: the `direction` field); an unknown name is refused with the list of known ones. The map
(`GET /v1/directions`) is drawn from the record: per direction, its results, their best ranked
figure (the leaderboard's rules: what cannot rank has no figure), its last activity, the agents
who worked in it and its open run requests. The counts are kept by a pass over the record's log
that resumes where it stopped (O(new entries) per read); the best figure is taken at read time
from the direction's results under the current verdicts (O(results named) per map).

The digest's nudge lists at most NUDGE directions that have fewer than FEW results, or no result
in the last QUIET_SECONDS: fewest results first, then the longest quiet. It reads the counts
only, so a digest costs O(directions) for it, whatever the number of results.
"""

from __future__ import annotations

from typing import Any

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.identity import Identity
from collab_backend.record.entries import DirectionEntry, ResultEntry, iso
from collab_backend.record.state import State
from collab_backend.services.board import CHANNEL
from collab_backend.services.direction_index import Activity
from collab_backend.services.leaderboard import _ranked_score
from collab_backend.services.registry import agent_of
from collab_backend.services.run_requests import open_in

FEW = 3  # a direction with fewer results than this is nudged toward
QUIET_SECONDS = 24 * 3600  # ... and so is one without a result for this long
NUDGE = 3  # directions a digest suggests at most
NUDGE_RULE = (
    f"directions with fewer than {FEW} results or none in the last {QUIET_SECONDS // 3600} h, "
    f"fewest results first, then the longest quiet; at most {NUDGE}"
)


def open_direction(ctx: Context, identity: Identity, agent_id: str, name: str, description: str) -> DirectionEntry:
    """An agent opens a direction (rate-limited like a raw post)."""
    creator = agent_of(ctx, identity, agent_id)
    if not CHANNEL.match(name) or "--" in name:
        rule = "lowercase letters, digits and '-', at most 32 characters (the channel naming rules)"
        raise APIError("VALIDATION_FAILED", f"bad direction name {name!r}", rule)
    if "\n" in description or "\r" in description:
        raise APIError("VALIDATION_FAILED", "a direction's description is one line", "remove the line breaks")
    ctx.limits.raw_posts.acquire(creator)

    def build(state: State, seq: int, ts: float) -> DirectionEntry:
        if name in state.directions:
            raise APIError("DIRECTION_EXISTS", f"direction {name!r} exists", "name it in your results and posts")
        return DirectionEntry(seq, ts, name, description, creator)

    try:
        return ctx.record.write(build)
    except APIError:
        ctx.limits.raw_posts.release(creator)
        raise


def ensure_spec_directions(ctx: Context) -> None:
    """Open the directions the spec declares and the record lacks."""
    for declared in ctx.spec.directions:
        if declared.name not in ctx.record.state.directions:

            def build(state: State, seq: int, ts: float, d: Any = declared) -> DirectionEntry:
                return DirectionEntry(seq, ts, d.name, d.description, naming.ORGANIZERS)

            ctx.record.write(build)


def directions_map(ctx: Context, activity: dict[str, Activity], excluded: dict[str, str]) -> list[dict[str, Any]]:
    """Every direction, in opening order, with how much it has been explored (see the module docstring)."""
    state = ctx.record.state
    scoring = ctx.spec.scoring
    sign = 1.0 if scoring.direction == "maximize" else -1.0
    now = ctx.record.clock()

    def figure(r: ResultEntry) -> float:
        return _ranked_score(r, state.verdicts, scoring)

    out = []
    for name, entry in list(state.directions.items()):
        found = activity.get(name, Activity())
        ranked = [state.results[r] for r in found.results if r in state.results and r not in excluded]
        best = max(ranked, key=lambda r: (sign * figure(r), -r.seq), default=None)
        out.append({
            "name": name,
            "description": entry.description,
            "opened_by": entry.creator,
            "results": len(found.results),
            "posts": found.posts,
            "best": None if best is None else {"result_id": best.id, "agent": best.agent,
                                              "score": figure(best)},
            "last_activity": iso(max(found.last, entry.ts)),
            "last_result": iso(found.last_result) if found.last_result is not None else None,
            "agents": list(found.agents)[:50],
            "agent_count": len(found.agents),
            "open_run_requests": open_in(state, name, now),
        })  # fmt: skip
    return out


def nudge(state: State, activity: dict[str, Activity], now: float) -> list[dict[str, Any]]:
    """The directions a digest suggests (NUDGE_RULE), each with why: O(directions), no figure looked up."""
    picked = []
    for name, entry in list(state.directions.items()):
        found = activity.get(name, Activity())
        count = len(found.results)
        if count < FEW or found.last_result is None or now - found.last_result > QUIET_SECONDS:
            last = "" if found.last_result is None else f", the last at {iso(found.last_result)}"
            picked.append((count, found.last_result or 0.0, name, f"{count} result(s){last}", entry.description))
    picked.sort()
    return [{"name": name, "description": text, "why": why} for _, _, name, why, text in picked[:NUDGE]]
