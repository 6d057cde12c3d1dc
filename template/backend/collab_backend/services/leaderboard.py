"""The leaderboard: a pure function of results, verdicts and the spec's scoring rules.

Rules, in order: negative results never rank; proxy results (a stand-in's figures) never rank,
whatever their figures; an `invalid` verdict, or an accepted ruling in force that covers it
(`ruled`), hides a result and every result descending from it (through `parents`); a metric outside
its guardrail disqualifies; each agent keeps its best eligible result per track; `pending` results
rank but are flagged. Two scores whose difference is within the noise model's margin are a tie, and
ties share a rank (competition ranking: 1, 1, 3). A score is compared with the best score of its tie
group, not with its neighbour, so ties cannot chain down the board.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from collab_backend.record.entries import ResultEntry, RulingEntry, VerdictEntry
from collab_backend.spec import Noise, Scoring

PROXY_RULE = "proxy: a stand-in's figures (a CPU engine, a fake) never rank"


def tie_margin(noise: Noise, a: float, b: float) -> float:
    """How far apart two scores may be and still tie under the noise model."""
    if noise.kind == "none":
        return 0.0
    base = max(noise.min_margin, noise.z * noise.sigma * math.sqrt(2))
    return base * max(abs(a), abs(b)) if noise.kind == "relative" else base


MEASURED = (
    "; a result whose job measured a 95% interval of its score ties when that interval and the other's overlap "
    "(the other's being its own measured interval, or its score plus or minus half the margin)"
)


def tie_rule(noise: Noise) -> str:
    """The tie rule in words, for the response."""
    if noise.kind == "none":
        return "only equal scores tie" + MEASURED.replace(" plus or minus half the margin", "")
    factor = f"max({noise.min_margin}, {noise.z} x {noise.sigma} x sqrt 2)"
    relative = noise.kind == "relative"
    margin = f"{factor} times the larger of the two (in absolute value)" if relative else factor
    return (f"a score ties with its group's best score when the two differ by at most {margin}, and shares its rank"
            + MEASURED)  # fmt: skip


def ties(noise: Noise, a: float, b: float, a_interval: list[float] | None, b_interval: list[float] | None) -> bool:
    """Whether two scores tie: their intervals overlap, or (neither has a measured one) they are within the margin."""
    if a_interval is None and b_interval is None:
        return abs(a - b) <= tie_margin(noise, a, b)
    low_a, high_a = a_interval or _around(noise, a)
    low_b, high_b = b_interval or _around(noise, b)
    return low_a <= high_b and low_b <= high_a


def _around(noise: Noise, score: float) -> list[float]:
    half = tie_margin(noise, score, score) / 2
    return [score - half, score + half]


@dataclass(frozen=True)
class Standing:
    rank: int
    tied: bool
    result_id: str
    agent: str
    score: float
    metrics: dict[str, float]
    verdict: str
    pending: bool
    submitted: float
    margin: float = 0.0  # the noise model's margin around this score: scores within it would tie
    basis: str = "claim"  # `job` (measured by the agent's job) or `claim` (typed by the agent)
    job: str | None = None
    public_score: float | None = None  # the result's own figure (claimed or measured by its job)
    private_score: float | None = None  # the verification re-run's figure, once verified: the one it ranks by
    interval: list[float] | None = None  # the job's measured 95% interval of the score, when it ranks by it
    gap_flag: bool = False  # the gap monitor: its private figure is worse than its public one by more than the noise

    def public(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "tied": self.tied,
            "result_id": self.result_id,
            "agent": self.agent,
            "score": self.score,
            "metrics": self.metrics,
            "verdict": self.verdict,
            "pending": self.pending,
            "margin": self.margin,
            "basis": self.basis,
            "job": self.job,
            "public_score": self.public_score,
            "private_score": self.private_score,
            "interval": self.interval,
            "gap_flag": self.gap_flag,
        }


def ruled(verdicts: Mapping[str, VerdictEntry], rulings: Sequence[RulingEntry]) -> dict[str, VerdictEntry]:
    """The verdicts the ranking uses: the recorded ones, overruled where an accepted ruling in force covers a result.

    A ruling is in force when it was accepted and no later ruling revokes it. On a result it covers,
    it wins over a machine verdict and over a human verdict recorded before it; a human verdict
    recorded after it wins (the organizers' exception for that one result). Of two rulings in force
    that cover a result, the later one is named. The ruling's mark is an `invalid` verdict by
    `ruling:<id>`, so the cascade to descendants is the one an `invalid` verdict has.
    """
    if not rulings:
        return dict(verdicts)
    revoked = {rid for ruling in rulings for rid in ruling.revokes}
    out = dict(verdicts)
    for ruling in rulings:  # in the record's order
        if ruling.decision != "accepted" or ruling.id in revoked:
            continue
        for rid in ruling.covers:
            own = verdicts.get(rid)
            if own is not None and own.human and own.seq > ruling.seq:
                continue
            out[rid] = VerdictEntry(ruling.seq, ruling.ts, rid, "invalid", f"ruling:{ruling.id}", ruling.text[:300])
    return out


def ruling_over(result_id: str, own: VerdictEntry | None, rulings: Sequence[RulingEntry]) -> RulingEntry | None:
    """The ruling that decides one result's verdict under `ruled` (the latest in force covering it), or None."""
    revoked = {rid for ruling in rulings for rid in ruling.revokes}
    for ruling in reversed(rulings):
        if ruling.decision == "accepted" and ruling.id not in revoked and result_id in ruling.covers:
            return None if own is not None and own.human and own.seq > ruling.seq else ruling
    return None


def descendants(results: Mapping[str, ResultEntry], roots: set[str]) -> set[str]:
    """Every result descending from one of `roots` through `parents` (the roots themselves left out)."""
    children: defaultdict[str, list[str]] = defaultdict(list)
    for result in results.values():
        for parent in result.parents:
            children[parent].append(result.id)
    seen, stack = set(), list(roots)
    while stack:
        for child in children[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen - roots


def exclusion(result: ResultEntry, verdict: str, tainted: set[str], scoring: Scoring) -> str | None:
    """Why a result cannot rank, or None."""
    if result.status == "negative":
        return "negative result"
    if result.basis == "proxy":
        return PROXY_RULE
    if verdict == "invalid":
        return "invalid"
    if result.id in tainted:
        return "descends from an invalid result"
    for metric in scoring.metrics:
        if metric.guardrail is None:
            continue
        value = result.metrics.get(metric.field)
        if value is None or not metric.guardrail.admits(value):
            return f"{metric.field} outside its guardrail"
    return None


@dataclass
class Tally:
    """What a ranking is drawn from: each agent's best eligible result per track, and the exclusions.

    Kept between rankings so new results extend it (`tally(..., previous=)`) instead of a pass
    over every result; a verdict, or a result taken back, starts it over.
    """

    count: int  # results tallied, in the record's order
    last: ResultEntry | None  # the last of them
    verdicts: dict[str, VerdictEntry]  # the verdicts it was drawn with
    invalid: set[str]
    tainted: set[str]  # results descending from an invalid one
    best: dict[tuple[str | None, str], ResultEntry]  # (track, agent) -> best eligible result
    excluded: list[dict[str, str]]
    changed: set[str | None] | None = None  # tracks whose best results changed when extended; None: drawn anew


def verdicts_key(verdicts: Mapping[str, VerdictEntry]) -> str:
    """A hash of the verdicts a ranking was drawn with: a saved ranking is given back only under the same ones."""
    return hashlib.sha256(orjson.dumps(sorted(verdicts.items()))).hexdigest()


def drawn_from(state: Any, saved: dict[str, Any]) -> tuple[list[ResultEntry], ResultEntry | None, dict[str, Any]]:
    """The results, the last of them and the ruled verdicts a saved ranking or ledger was drawn from.

    ValueError if `saved` (what `save` gave: `count`, `last`, `verdicts`) was drawn from others.
    """
    results = list(state.results.values())
    last = results[-1] if results else None
    if saved["count"] != len(results) or saved["last"] != (last.id if last is not None else None):
        raise ValueError("it was drawn from other results")
    verdicts = ruled(state.verdicts, list(state.rulings.values()))
    if saved["verdicts"] != verdicts_key(verdicts):
        raise ValueError("it was drawn under other verdicts or rulings")
    return results, last, verdicts


def appended_only(previous: Any, results: Sequence[ResultEntry], verdicts: Mapping[str, VerdictEntry]) -> bool:
    """Whether only results were appended since `previous` was drawn: it can be extended, not drawn anew.

    `previous` is a tally or a credit ledger (both keep `count`, `last` and `verdicts`).
    """
    return (
        len(results) >= previous.count
        and (previous.count == 0 or results[previous.count - 1] is previous.last)
        and verdicts == previous.verdicts
    )


def tally(
    results: list[ResultEntry], verdicts: dict[str, VerdictEntry], scoring: Scoring, previous: Tally | None = None
) -> Tally:
    """The tally of `results` (in the record's order) under `verdicts`.

    `previous` is extended when only results were appended since it was drawn (a copy of it is:
    it is left as it is).
    """
    extends = previous is not None and appended_only(previous, results, verdicts)
    if previous is not None and extends:
        out = Tally(previous.count, previous.last, previous.verdicts, previous.invalid, set(previous.tainted),
                    dict(previous.best), list(previous.excluded), set())  # fmt: skip
        new = results[previous.count :]
    else:
        by_id = {r.id: r for r in results}
        invalid = {rid for rid in by_id if rid in verdicts and verdicts[rid].verdict == "invalid"}
        out = Tally(0, None, verdicts, invalid, descendants(by_id, invalid), {}, [])
        new = list(by_id.values())
    sign = 1.0 if scoring.direction == "maximize" else -1.0
    for result in new:
        if extends and any(p in out.tainted or p in out.invalid for p in result.parents):
            out.tainted.add(result.id)  # extending: a new result below an invalid one (a full pass found these)
        verdict = verdicts[result.id].verdict if result.id in verdicts else "pending"
        reason = exclusion(result, verdict, out.tainted, scoring)
        if reason == "invalid" and verdicts[result.id].by.startswith("ruling:"):
            reason = f"ruled out by {verdicts[result.id].by.removeprefix('ruling:')}"
        if reason:
            if result.status != "negative":
                out.excluded.append({"result_id": result.id, "agent": result.agent, "reason": reason})
            continue
        key = (result.track, result.agent)
        held = out.best.get(key)
        if held is None or sign * _ranked_score(result, verdicts, scoring) > sign * _ranked_score(
            held, verdicts, scoring
        ):
            out.best[key] = result
            if out.changed is not None:
                out.changed.add(result.track)
    out.count, out.last = len(results), (results[-1] if results else None)
    return out


def rank(results: Iterable[ResultEntry], verdicts: Mapping[str, VerdictEntry], scoring: Scoring) -> dict[str, Any]:
    """The whole leaderboard: one board per track, what was excluded and why, and the rules used."""
    return board_of(tally(list(results), dict(verdicts), scoring), scoring)


def board_of(drawn: Tally, scoring: Scoring, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The leaderboard of a tally: O(agents log agents) per track ranked.

    `previous`, the board of the tally `drawn` extends, lends the standings of the tracks whose
    best results did not change.
    """
    sign = 1.0 if scoring.direction == "maximize" else -1.0
    tracks: list[str | None] = [t.name for t in scoring.tracks] or [None]
    kept = {b["track"]: b for b in previous["boards"]} if previous is not None and drawn.changed is not None else {}
    boards = []
    for track in tracks:
        if track in kept and drawn.changed is not None and track not in drawn.changed:
            boards.append(kept[track])
            continue
        entries = sorted(
            (r for (t, _), r in drawn.best.items() if t == track),
            key=lambda r: (-sign * _ranked_score(r, drawn.verdicts, scoring), r.seq),
        )
        verdict_of = {r.id: drawn.verdicts[r.id].verdict if r.id in drawn.verdicts else "pending" for r in entries}
        private = {r.id: _private_score(drawn.verdicts.get(r.id), scoring) for r in entries}
        flagged = {r.id for r in entries if r.id in drawn.verdicts and drawn.verdicts[r.id].gap_flag}
        standings = _standings(entries, verdict_of, private, scoring, flagged)
        boards.append({"track": track, "standings": [s.public() for s in standings]})
    return {
        "ranking": {
            "score_field": scoring.score_field,
            "label": scoring.label,
            "unit": scoring.unit,
            "direction": scoring.direction,
            "best_per_agent": True,
            "tie_rule": {**scoring.noise.model_dump(), "rule": tie_rule(scoring.noise)},
            "guardrails": [
                {"field": m.field, "min": m.guardrail.min, "max": m.guardrail.max}
                for m in scoring.metrics
                if m.guardrail is not None
            ],
            "pending": "ranked and flagged until verified",
            "verified": "a result verified by a re-run ranks by the re-run's figure (`private_score`)",
            "gap": "`gap_flag`: the re-run on the private set measured worse than the public figure by more than "
            "the noise (GET /v1/verification/gaps)",
            "basis": "`job`: figures from the agent's own job's checked summary; `claim`: typed by the agent; "
            "`proxy`: " + PROXY_RULE.split(": ", 1)[1],
        },
        "boards": boards,
        "excluded": drawn.excluded,
    }


def _private_score(verdict: VerdictEntry | None, scoring: Scoring) -> float | None:
    """A verified result's re-run figure (the private one), which it ranks by; None without one."""
    if verdict is None or verdict.verdict != "valid" or not verdict.figures:
        return None
    return verdict.figures.get(scoring.score_field)


def _ranked_score(result: ResultEntry, verdicts: Mapping[str, VerdictEntry], scoring: Scoring) -> float:
    """The figure a result ranks by: its re-run's (private) figure once verified, else its own."""
    private = _private_score(verdicts.get(result.id), scoring)
    return private if private is not None else result.score


def _standings(
    entries: list[ResultEntry], verdict_of: Mapping[str, str], private: Mapping[str, float | None], scoring: Scoring,
    flagged: set[str] | frozenset[str] = frozenset(),
) -> list[Standing]:  # fmt: skip
    leader, leader_interval = 0.0, None
    group_rank = 0
    placed: list[tuple[int, ResultEntry, float, float | None, list[float] | None]] = []
    for position, result in enumerate(entries, start=1):
        own = private[result.id]
        score = own if own is not None else result.score
        interval = result.interval if own is None else None  # a verified result ranks by its re-run's figure
        if position == 1 or not ties(scoring.noise, leader, score, leader_interval, interval):
            leader, leader_interval, group_rank = score, interval, position
        placed.append((group_rank, result, score, own, interval))
    sizes = Counter(group for group, *_ in placed)  # a rank two results share is a tie
    out: list[Standing] = []
    for group_rank, result, score, own, interval in placed:
        verdict = verdict_of[result.id]
        out.append(
            Standing(group_rank, sizes[group_rank] > 1, result.id, result.agent, score, dict(result.metrics), verdict,
                     verdict == "pending", result.ts, tie_margin(scoring.noise, score, score),
                     result.basis, result.job, result.score, own, interval, result.id in flagged)
        )  # fmt: skip
    return out


DEFAULT_PAGE = 50


class LeaderboardCache:
    """The ranking, recomputed only when a result or a verdict changed (reads are frequent).

    New results extend the kept tally, so ranking again costs the new results and a sort of the
    agents' best results, not a pass over every result; a verdict tallies everything again.

    Besides the board it keeps the board's JSON bytes and each agent's standings, so a read
    neither re-serialises nor scans the board.
    """

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        # The tally, its board and the board by agent, set together (concurrent rankings may race).
        self._drawn: tuple[Tally, dict[str, Any], dict[tuple[str | None, str], list[dict[str, Any]]]] | None = None
        self.board: dict[str, Any] = {}
        self.body = b""
        self.by_agent: dict[tuple[str | None, str], list[dict[str, Any]]] = {}

    def stale(self, state: Any) -> bool:
        """Whether `get` would rank again (a result or a verdict changed since the last ranking)."""
        return (id(state), state.results_version) != self._key

    async def current(self, state: Any, scoring: Scoring) -> LeaderboardCache:
        """`get` for async endpoints: a ranking to redo runs in a worker thread, not on the event loop."""
        if self.stale(state):
            return await run_in_threadpool(self.get, state, scoring)
        return self

    def get(self, state: Any, scoring: Scoring) -> LeaderboardCache:
        key = (id(state), state.results_version)
        if key != self._key:
            # list() and dict() copy in one C call: the writer thread may add a result while this ranks.
            before = self._drawn if self._key is not None and self._key[0] == id(state) else None
            results, verdicts = list(state.results.values()), ruled(state.verdicts, list(state.rulings.values()))
            drawn = tally(results, verdicts, scoring, before[0] if before else None)
            board = board_of(drawn, scoring, before[1] if before else None)
            changed = drawn.changed if before is not None else None  # None: every track's standings are new
            by_agent: dict[tuple[str | None, str], list[dict[str, Any]]] = defaultdict(list)
            if before is not None and changed is not None:
                by_agent.update((k, v) for k, v in before[2].items() if k[0] not in changed)
            for b in board["boards"]:
                if changed is None or b["track"] in changed:
                    for standing in b["standings"]:
                        by_agent[(b["track"], standing["agent"])].append(standing)
            self._drawn = (drawn, board, dict(by_agent))
            self.board, self.by_agent, self._key = board, self._drawn[2], key
            self.body = json.dumps(self.page(DEFAULT_PAGE, 0), separators=(",", ":")).encode()
        return self

    def save(self, state: Any, scoring: Scoring) -> dict[str, Any]:
        """The ranking of the state as it stands (drawn now if stale), as data for a snapshot (`restore`)."""
        self.get(state, scoring)
        if self._drawn is None:  # `get` sets it
            raise RuntimeError("no ranking drawn")
        drawn, board, _ = self._drawn
        return {
            "count": drawn.count,
            "last": drawn.last.id if drawn.last is not None else None,
            "verdicts": verdicts_key(drawn.verdicts),
            "invalid": sorted(drawn.invalid),
            "tainted": sorted(drawn.tainted),
            "best": [[track, agent, result.id] for (track, agent), result in drawn.best.items()],
            "board": board,  # its `excluded` is the tally's
        }

    def restore(self, state: Any, scoring: Scoring, data: dict[str, Any]) -> None:
        """Take back what `save` gave, the state holding the same results and verdicts; KeyError etc. if it does not."""
        results, last, verdicts = drawn_from(state, data)
        best: dict[tuple[str | None, str], ResultEntry] = {}
        for track, agent, result_id in data["best"]:
            result = state.results[result_id]
            if (result.track, result.agent) != (track, agent):
                raise ValueError(f"the saved ranking's best result {result_id!r} is not of its track and agent")
            best[(track, agent)] = result
        board = data["board"]
        drawn = Tally(len(results), last, verdicts, set(data["invalid"]), set(data["tainted"]), best, board["excluded"])
        by_agent: defaultdict[tuple[str | None, str], list[dict[str, Any]]] = defaultdict(list)
        for b in board["boards"]:
            for standing in b["standings"]:
                by_agent[(b["track"], standing["agent"])].append(standing)
        body = json.dumps(page_of(board, DEFAULT_PAGE, 0), separators=(",", ":")).encode()
        self._drawn = (drawn, board, dict(by_agent))
        self.board, self.by_agent, self.body = board, self._drawn[2], body
        self._key = (id(state), state.results_version)

    @property
    def verdicts(self) -> dict[str, VerdictEntry]:
        """The verdicts of the last ranking (rulings applied, see `ruled`); call `get` first."""
        return self._drawn[0].verdicts if self._drawn is not None else {}

    def page(self, limit: int, offset: int, track: str | None = None) -> dict[str, Any]:
        """One page of every board (or of one track) and of the exclusions: O(page) per read."""
        return page_of(self.board, limit, offset, track)


def page_of(board: dict[str, Any], limit: int, offset: int, track: str | None = None) -> dict[str, Any]:
    """One page of a leaderboard's boards (or of one track's) and of its exclusions."""
    boards = [b for b in board["boards"] if track is None or b["track"] == track]
    excluded = board["excluded"]
    return {
        "ranking": board["ranking"],
        "limit": limit,
        "offset": offset,
        "boards": [
            {
                "track": b["track"],
                "total": len(b["standings"]),
                "standings": b["standings"][offset : offset + limit],
            }
            for b in boards
        ],
        "excluded": {"total": len(excluded), "items": excluded[offset : offset + limit]},
    }
