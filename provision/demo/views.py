"""What the demo shows of the board: the leaderboard, the proxy view with its ties and lineage, a job's figures.

Each view takes what the API answered and what the demo filed, and prints through `say`; none
calls the API. Proxy numbers (a CPU stand-in's) never rank: the leaderboard view counts them among
the exclusions, and the proxy view orders them with the leaderboard's own tie rule, labelled as
no ranking, to show ties and lineage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from provision.demo.agents import Filed, figure, say
from provision.spec.model import Scoring


def tie_margin(rule: dict[str, Any], a: float, b: float) -> float:
    """The leaderboard's tie margin (`ranking.tie_rule` of GET /v1/leaderboard) for two scores."""
    if rule.get("kind", "none") == "none":
        return 0.0
    base = max(float(rule["min_margin"]), float(rule["z"]) * float(rule["sigma"]) * math.sqrt(2))
    return base * max(abs(a), abs(b)) if rule["kind"] == "relative" else base


def show_leaderboard(board: dict[str, Any], proxies: set[str]) -> None:
    """The leaderboard as GET /v1/leaderboard answered it; `proxies` are the ids of the demo's proxy results."""
    ranking = board["ranking"]
    say(f"  leaderboard ({ranking['label'] or ranking['score_field']}, {ranking['direction']}; "
        f"ties: {ranking['tie_rule']['rule']})")  # fmt: skip
    for b in board["boards"]:
        title = f"track {b['track']}" if b["track"] else "board"
        if not b["standings"]:
            say(f"    {title}: no ranked result yet")
            continue
        say(f"    {title}:")
        for s in b["standings"][:5]:
            rank = f"={s['rank']}" if s["tied"] else f" {s['rank']}"
            flag = " (pending verification)" if s["pending"] else f" ({s['verdict']})"
            say(f"      {rank:>3}  {s['agent']:<6} {figure(s['score'])}{flag}")
    excluded = board["excluded"]["items"]
    for e in excluded:
        if e["result_id"] not in proxies:
            say(f"    excluded: {e['result_id']} by {e['agent']}: {e['reason']}")
    kept_off = [e for e in excluded if e["result_id"] in proxies]
    if kept_off:
        reasons = sorted({e["reason"] for e in kept_off})
        say(f"    excluded: {len(kept_off)} proxy result(s) ({'; '.join(reasons)}): a stand-in's numbers "
            "are recorded and shown, never ranked")  # fmt: skip


def show_proxy_view(
    filed: dict[str, Filed],
    recorded: dict[str, Any],
    rule: dict[str, Any],
    scoring: Scoring,
    cpu_args: Sequence[str],
    source: str,
) -> None:
    """The proxy results, not a ranking: ordered under the tie rule, with their ties and lineage.

    Args:
        filed: The demo's proxy results by id.
        recorded: Every result the results API listed, by id (their parents come from there).
        rule: The leaderboard's tie rule (`ranking.tie_rule`).
        scoring: The spec's scoring section (score field, direction).
        cpu_args: The harness arguments of the CPU stand-in that measured them.
        source: The request the results were read with.
    """
    sign = 1.0 if scoring.direction == "maximize" else -1.0
    ordered = sorted((r for r in filed.values() if not r.negative), key=lambda r: -sign * r.score)
    say(f"  proxy view: every result of a CPU stand-in ({' '.join(cpu_args)}), read from {source}.")
    say("  Proxies never rank: this is no ranking, only their order under the leaderboard's tie rule, to show")
    say("  ties and lineage:")
    place, leader = 0, None
    groups: dict[int, list[Filed]] = {}
    rows: list[tuple[int, Filed]] = []
    for position, r in enumerate(ordered, start=1):
        if leader is None or abs(leader.score - r.score) > tie_margin(rule, leader.score, r.score):
            leader, place = r, position
        groups.setdefault(place, []).append(r)
        rows.append((place, r))
    label = f"{scoring.score_field} (proxy)"
    say(f"      {'#':>3}  {'agent':<6} {label:>12}  {'result':<24} {'builds on':<24} submission")
    for place, r in rows:
        mark = f"={place}" if len(groups[place]) > 1 else f"{place}"
        parents = ", ".join(recorded[r.id]["parents"]) or "-"
        say(f"      {mark:>3}  {r.agent:<6} {r.score:>12.2f}  {r.id:<24} {parents:<24} {r.label}")
    for r in (r for r in filed.values() if r.negative):
        parents = ", ".join(recorded[r.id]["parents"]) or "-"
        say(f"      {'-':>3}  {r.agent:<6} {r.score:>12.2f}  {r.id:<24} {parents:<24} {r.label} (negative)")
    for members in (g for g in groups.values() if len(g) > 1):
        best, rest = members[0], members[1:]
        for r in rest:
            gap = abs(best.score - r.score) / abs(best.score) * 100 if best.score else 0.0
            allowed = tie_margin(rule, best.score, r.score) / abs(best.score) * 100 if best.score else 0.0
            say(f"    tie: {r.agent}'s {r.id} is {gap:.2f}% from {best.agent}'s {best.id}, inside the noise "
                f"margin ({allowed:.2f}%): the same place, not a rank apart")  # fmt: skip
    say(f"    lineage: {lineage(recorded, filed)}")


def lineage(recorded: dict[str, Any], filed: dict[str, Filed]) -> str:
    """The longest chain of parents among the filed results, root first."""

    def chain(result_id: str) -> list[str]:
        parents = recorded.get(result_id, {}).get("parents", [])
        return [*chain(parents[0]), result_id] if parents and parents[0] in recorded else [result_id]

    longest = max((chain(r) for r in filed), key=len)
    return " -> ".join(f"{r} ({filed[r].agent})" if r in filed else r for r in longest)


def figures(summary: dict[str, Any], scoring: Scoring) -> str:
    """A job summary's figures in one line: the score and metrics it has, valid or not, proxy or not."""
    shown = [f"{f} {figure(summary[f])}" for f in (scoring.score_field, *(m.field for m in scoring.metrics))
             if isinstance(summary.get(f), int | float)]  # fmt: skip
    verdict = "valid" if summary.get("valid") else "invalid"
    proxy = "; proxy (a CPU stand-in's numbers: never ranked)" if summary.get("proxy") else ""
    return ", ".join(shown) + f"; {verdict}{proxy}"
