"""Read views of the results for people: the score over time, the lineage graph, the Pareto frontier.

Everything here follows the leaderboard's rules (`leaderboard.exclusion`: negative results, invalid
verdicts and their descendants, guardrails) so that no view disagrees with the ranking; nothing
here ranks. What a page needs is computed once per change of the results or verdicts (the
`results_version` key, as for the leaderboard) into small lookups; each request then builds only
its page: O(page) per read. A verdict rebuilds the lookups, O(n log n); new results (the common
change) extend them (`extend`): the lookups are copied and each new result added, O(n) in C-level
copies plus O(frontier) per result, so the first read after a new result stays cheap at 100k results.

- *record*: a result that beat every eligible result of its track submitted before it.
- *Pareto frontier*: the eligible results of a track that no other eligible result beats on both
  the score and the guarded metric (the first scoring metric with a guardrail), each in its own
  direction.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from collab_backend.record.entries import ResultEntry, VerdictEntry, iso
from collab_backend.record.state import State
from collab_backend.services.leaderboard import exclusion, ruled
from collab_backend.spec import Metric, Scoring

MAX_RECORDS = 1000  # record-setting points a series carries (the newest ones)
MAX_FRONTIER = 500


def guarded_metric(scoring: Scoring) -> Metric | None:
    """The metric the Pareto frontier trades the score against: the first one with a guardrail."""
    return next((m for m in scoring.metrics if m.guardrail is not None), None)


@dataclass
class _Built:
    """The lookups of one version of the results."""

    order: list[str] = field(default_factory=list)
    by_track: dict[str | None, list[str]] = field(default_factory=dict)
    by_agent: dict[str, list[str]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # id -> why it cannot rank
    invalid_root: dict[str, str] = field(default_factory=dict)  # tainted id -> the invalid result above it
    records: set[str] = field(default_factory=set)
    frontier: dict[str | None, list[str]] = field(default_factory=dict)  # best score first
    children: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    best: dict[str | None, float] = field(default_factory=dict)  # the record score of each track
    invalid: list[str] = field(default_factory=list)  # results ruled invalid, in submission order
    verdicts: dict[str, VerdictEntry] = field(default_factory=dict)  # the verdicts these lookups were built on


def _tainted(results: dict[str, ResultEntry], invalid: list[str]) -> dict[str, str]:
    """Every result descending from an invalid one, with the (first found) invalid ancestor."""
    kids: defaultdict[str, list[str]] = defaultdict(list)
    for result in results.values():
        for parent in result.parents:
            kids[parent].append(result.id)
    out: dict[str, str] = {}
    for root in invalid:
        stack = [root]
        while stack:
            for child in kids[stack.pop()]:
                if child not in out and child != root:
                    out[child] = root
                    stack.append(child)
    return out


def build(
    order: list[str], results: dict[str, ResultEntry], verdicts: dict[str, VerdictEntry], scoring: Scoring
) -> _Built:
    """The lookups for one version of the results (pure: the inputs are copies)."""
    built = _Built(order=order, verdicts=verdicts)
    verdict_of = {rid: (verdicts[rid].verdict if rid in verdicts else "pending") for rid in order}
    invalid = built.invalid = [rid for rid in order if verdict_of[rid] == "invalid"]
    built.invalid_root = _tainted(results, invalid)
    tainted = set(built.invalid_root)
    sign = 1.0 if scoring.direction == "maximize" else -1.0
    best = built.best
    for rid in order:
        result = results[rid]
        built.by_track.setdefault(result.track, []).append(rid)
        built.by_agent.setdefault(result.agent, []).append(rid)
        for parent in result.parents:
            built.children[parent] = built.children.get(parent, 0) + 1
        reason = exclusion(result, verdict_of[rid], tainted, scoring)
        if reason:
            built.excluded[rid] = reason
            continue
        if result.track not in best or sign * result.score > sign * best[result.track]:
            best[result.track] = result.score
            built.records.add(rid)
    guard = guarded_metric(scoring)
    for track, ids in built.by_track.items():
        built.frontier[track] = _frontier([results[i] for i in ids if i not in built.excluded], sign, guard)
    built.counts = {
        "results": len(order),
        "negative": sum(1 for rid in order if results[rid].status == "negative"),
        "valid": sum(1 for v in verdict_of.values() if v == "valid"),
        "invalid": len(invalid),
        "pending": sum(1 for v in verdict_of.values() if v == "pending"),
    }
    return built


def extend(
    built: _Built, order: list[str], results: dict[str, ResultEntry], verdicts: dict[str, VerdictEntry],
    scoring: Scoring,
) -> _Built | None:  # fmt: skip
    """The lookups of `built` with the results appended since (the same as `build` would give).

    None when more than appending happened (a verdict changed, or a result was taken back): then
    only `build` can tell. `built` is left as it is: readers may hold it.
    """
    before = len(built.order)
    if len(order) < before or (before and order[before - 1] != built.order[-1]) or verdicts != built.verdicts:
        return None
    out = _Built(
        order=order, by_track=dict(built.by_track), by_agent=dict(built.by_agent), excluded=dict(built.excluded),
        invalid_root=dict(built.invalid_root), records=set(built.records), frontier=dict(built.frontier),
        children=dict(built.children), counts=dict(built.counts), best=dict(built.best), invalid=built.invalid,
        verdicts=built.verdicts,
    )  # fmt: skip
    sign = 1.0 if scoring.direction == "maximize" else -1.0
    guard = guarded_metric(scoring)
    # Lists are copied before the first append: `built`'s own are never changed.
    tracks: set[str | None] = set()
    agents: set[str] = set()
    for rid in order[before:]:
        result = results[rid]
        verdict = verdicts[rid].verdict if rid in verdicts else "pending"
        if result.track not in tracks:
            out.by_track[result.track] = [*out.by_track.get(result.track, [])]
            tracks.add(result.track)
        out.by_track[result.track].append(rid)
        if result.agent not in agents:
            out.by_agent[result.agent] = [*out.by_agent.get(result.agent, [])]
            agents.add(result.agent)
        out.by_agent[result.agent].append(rid)
        out.frontier.setdefault(result.track, [])
        for parent in result.parents:
            out.children[parent] = out.children.get(parent, 0) + 1
        root = _invalid_root(out, result, verdicts)
        if root is not None:
            out.invalid_root[rid] = root
        out.counts["results"] = out.counts.get("results", 0) + 1
        out.counts["negative"] = out.counts.get("negative", 0) + (result.status == "negative")
        out.counts[verdict] = out.counts.get(verdict, 0) + 1
        reason = exclusion(result, verdict, {rid} if root is not None else set(), scoring)
        if reason:
            out.excluded[rid] = reason
            continue
        if result.track not in out.best or sign * result.score > sign * out.best[result.track]:
            out.best[result.track] = result.score
            out.records.add(rid)
        frontier = _frontier_with(out.frontier[result.track], result, results, sign, guard)
        if frontier is None:
            ids = out.by_track[result.track]
            frontier = _frontier([results[i] for i in ids if i not in out.excluded], sign, guard)
        out.frontier[result.track] = frontier
    return out


def _invalid_root(built: _Built, result: ResultEntry, verdicts: dict[str, VerdictEntry]) -> str | None:
    """The invalid result a new result descends from, as `_tainted` picks it: the earliest ruled."""
    found = set()
    for parent in result.parents:
        if parent in built.invalid_root:
            found.add(built.invalid_root[parent])
        if parent in verdicts and verdicts[parent].verdict == "invalid":
            found.add(parent)
    if len(found) < 2:
        return next(iter(found), None)
    return min(found, key=built.invalid.index)


def _frontier_with(
    ids: list[str], new: ResultEntry, results: dict[str, ResultEntry], sign: float, guard: Metric | None
) -> list[str] | None:
    """The frontier `ids` with one more eligible result, newer than all; None when only all of them can tell."""
    if guard is None:
        top = results[ids[0]] if ids else None
        return [new.id] if top is None or sign * new.score > sign * top.score else ids
    if guard.field not in new.metrics:
        return ids
    msign = 1.0 if guard.direction == "maximize" else -1.0

    def key(r: ResultEntry) -> tuple[float, float, int]:
        return (-sign * r.score, -msign * r.metrics[guard.field], r.seq)

    place = bisect_left([key(results[i]) for i in ids], key(new))
    value = msign * new.metrics[guard.field]
    if place == MAX_FRONTIER or (place and value <= msign * results[ids[place - 1]].metrics[guard.field]):
        return ids  # past the shown part, or no better on the metric than a result with a better score
    after = place
    while after < len(ids) and msign * results[ids[after]].metrics[guard.field] <= value:
        after += 1  # now dominated by the new result
    if after > place and len(ids) == MAX_FRONTIER:
        return None  # results past the shown part may move up: recompute
    return [*ids[:place], new.id, *ids[after:]][:MAX_FRONTIER]


def _frontier(eligible: list[ResultEntry], sign: float, guard: Metric | None) -> list[str]:
    """Ids of the non-dominated results, best score first (ties on both: the earlier one)."""
    if guard is None:  # nothing to trade against: the frontier is the best score alone
        top = max(eligible, key=lambda r: (sign * r.score, -r.seq), default=None)
        return [top.id] if top else []
    msign = 1.0 if guard.direction == "maximize" else -1.0
    measured = [r for r in eligible if guard.field in r.metrics]
    measured.sort(key=lambda r: (-sign * r.score, -msign * r.metrics[guard.field], r.seq))
    out: list[str] = []
    best_metric: float | None = None
    for r in measured:
        value = msign * r.metrics[guard.field]
        if best_metric is None or value > best_metric:
            out.append(r.id)
            best_metric = value
    return out[:MAX_FRONTIER]


class ResultViews:
    """The lookups, rebuilt only when a result or a verdict changed (like the leaderboard's cache)."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self.built = _Built()
        self._lock = threading.Lock()  # one rebuild at a time: concurrent readers wait for it, not redo it

    async def current(self, state: State, scoring: Scoring) -> _Built:
        """The lookups for the state as it is; a rebuild runs in a worker thread, off the event loop."""
        if (id(state), state.results_version) != self._key:
            return await run_in_threadpool(self.get, state, scoring)
        return self.built

    def get(self, state: State, scoring: Scoring) -> _Built:
        with self._lock:
            key = (id(state), state.results_version)
            if key != self._key:
                # C-level copies: the writer thread may add a result while this builds.
                order, results = list(state.result_order), dict(state.results)
                verdicts = ruled(state.verdicts, list(state.rulings.values()))  # rulings applied, as the ranking does
                same = self._key is not None and self._key[0] == id(state)
                extended = extend(self.built, order, results, verdicts, scoring) if same else None
                built = extended if extended is not None else build(order, results, verdicts, scoring)
                self.built, self._key = built, key
            return self.built


def node(state: State, built: _Built, rid: str, frontier: set[str] | None = None) -> dict[str, Any]:
    """A result as a node of the lineage graph (no description: the result itself has it)."""
    r = state.results[rid]
    verdict = built.verdicts.get(rid)
    return {
        "id": rid,
        "agent": r.agent,
        "score": r.score,
        "metrics": r.metrics,
        "status": r.status,
        "track": r.track,
        "parents": list(r.parents),
        "children": built.children.get(rid, 0),
        "fingerprint": r.fingerprint,
        "basis": r.basis,
        "job": r.job,
        "source_path": r.source["path"],
        "verdict": verdict.verdict if verdict else "pending",
        "verdict_by": verdict.by if verdict else None,
        "verdict_reason": verdict.reason if verdict else "",
        "excluded": built.excluded.get(rid),
        "invalid_ancestor": built.invalid_root.get(rid),
        "record": rid in built.records,
        "pareto": frontier is not None and rid in frontier,
        "submitted_at": iso(r.ts),
    }


def _position(state: State, ids: list[str], cursor: str | None) -> int:
    """Where to stop (exclusive) when walking `ids` newest first below the result `cursor`."""
    if cursor is None or cursor not in state.results:
        return len(ids)
    return bisect_left(ids, state.results[cursor].seq, key=lambda i: state.results[i].seq)


def lineage(
    state: State,
    built: _Built,
    *,
    track: str | None,
    agent: str | None,
    since: float | None,
    until: float | None,
    limit: int,
    before: str | None,
) -> tuple[list[str], str | None]:
    """Result ids newest first matching the filters, below the cursor; and the cursor for more."""
    ids = built.by_agent.get(agent, []) if agent is not None else built.order

    def keep(r: ResultEntry) -> bool:
        return (
            (track is None or r.track == track) and (since is None or r.ts >= since) and (until is None or r.ts < until)
        )

    out: list[str] = []
    i = _position(state, ids, before)
    while i > 0 and len(out) < limit:
        i -= 1
        if keep(state.results[ids[i]]):
            out.append(ids[i])
    # A full page with older results left: more may follow (the next page may come back empty).
    return out, (out[-1] if len(out) == limit and i > 0 else None)


def series(state: State, built: _Built, track: str | None, limit: int) -> dict[str, Any]:
    """The score over time of one track: its newest points in time order, and every record it set."""
    ids = built.by_track.get(track, [])
    chosen = ids[-limit:]
    records = [rid for rid in ids if rid in built.records][-MAX_RECORDS:]

    def point(rid: str) -> dict[str, Any]:
        r = state.results[rid]
        verdict = built.verdicts.get(rid)
        return {
            "id": rid,
            "agent": r.agent,
            "score": r.score,
            "status": r.status,
            "verdict": verdict.verdict if verdict else "pending",
            "excluded": built.excluded.get(rid),
            "record": rid in built.records,
            "at": iso(r.ts),
        }

    return {
        "track": track,
        "total": len(ids),
        "points": [point(rid) for rid in chosen],
        "records": [point(rid) for rid in records],
    }
