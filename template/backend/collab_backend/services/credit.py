"""Credit along lineage: a pure function of results, verdicts and the spec's scoring direction.

The rule (CREDIT_RULE says it to agents): a result *earns* when it ranks (`leaderboard.exclusion`
finds nothing: not negative, not proxy, not invalid nor below an invalid result, within its
guardrails) and its figure is measured, by its own job (basis `job`) or by a verification re-run
(a `valid` verdict); a claim earns once verified, a proxy never. Its *improvement* is how far its
ranked figure beats its reference in the track's direction, never below zero. The reference is its
best parent that ranks (the best figure among its parents; ties: the earliest); a result with no
parent that ranks is measured against the best ranked figure of its track before it, and the first
of a track earns nothing. The improvement is shared: its best parent's author gets 1/4, that
parent's best parent's author 1/8, the next 1/16 (three generations at most, each an earning
result; the chain stops at the first that does not earn), and the result's author keeps the rest
(at least half). A part that goes to a sponsored result (one with an `originator` other than the
agent who ran it, its sponsor) goes 3/4 to the originator and 1/4 to the sponsor. Every part is an
exact fraction, so an agent's credit summed over the collab equals the sum of the improvements.

The proxy view (`draw(..., proxies=True)`, `GET /v1/credit?view=proxy`) is a rehearsal: the same
rule with every proxy result taken as if its stand-in's figure were measured by a job, its
guardrails not applied (a stand-in's metrics say nothing of quality, as the verifier's rehearsal
applies no guard to them). It shows how credit would flow along a lineage of stand-in runs; it
never counts (the digest's credit line and the ledger read the real view only).

New results extend the kept ledger (`draw(..., previous=)`): C-level copies of its lookups (as
`result_views.extend` does) plus O(generations) per new result; a verdict draws it anew.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from starlette.concurrency import run_in_threadpool

from collab_backend.record.entries import ResultEntry, VerdictEntry
from collab_backend.services.leaderboard import (
    _ranked_score,
    appended_only,
    descendants,
    drawn_from,
    exclusion,
    ruled,
    verdicts_key,
)
from collab_backend.spec import Scoring

ANCESTOR_SHARES = (Fraction(1, 4), Fraction(1, 8), Fraction(1, 16))  # best parent, its best parent, the next
SPONSOR_SHARE = Fraction(1, 4)  # of a sponsored result's part: the sponsor's; the originator gets the rest
PROXY_VIEW = (
    "rehearsal: the credit rule applied to proxy results (a stand-in's figures) as if they were measured, their "
    "guardrails not applied (a stand-in's metrics say nothing of quality); it never counts: the real ledger "
    "(GET /v1/credit) and the digest's credit line take no proxy"
)
DIGITS = 6  # figures in answers are rounded to this many decimals (the ledger itself is exact)
MAX_PARTS = 100  # parts an agent's ledger answer lists (the newest)
CREDIT_RULE = (
    "a result earns when it ranks and its figure is measured (by its own job, or a verification re-run for a "
    "claim; a proxy never); its improvement is how far its figure beats its best ranked parent in the track's "
    "direction (never below zero; without a ranked parent: the track's best figure before it; the track's first "
    "result earns nothing); the best parent's author gets 1/4 of it, that parent's best parent's author 1/8, the "
    "next 1/16 (earning results only), and the author keeps the rest; a sponsored result's part goes 3/4 to its "
    "originator and 1/4 to its sponsor; credit is in the score's unit, and the collab's total equals the sum of the "
    "improvements"
)


@dataclass(frozen=True)
class Part:
    """Credit one agent receives from one result's improvement."""

    agent: str
    amount: Fraction
    result: str  # the result whose improvement it is a share of
    via: str  # the result that earned it for `agent`: `result` itself, or an ancestor of it
    generation: int  # 0: its own improvement; 1: its best parent's share; 2, 3: further up
    role: str  # `author`, `originator` or `sponsor`

    def public(self) -> dict[str, Any]:
        return {"result_id": self.result, "via": self.via, "generation": self.generation, "role": self.role,
                "credit": rounded(self.amount)}  # fmt: skip


def rounded(amount: Fraction) -> float:
    return float(round(amount, DIGITS))


def sponsorship(result: ResultEntry) -> tuple[str, str | None]:
    """Who a result's part goes to: (the agent credited, the sponsor who takes a share, or None).

    A sponsored run's result names its `originator` (and its `sponsor`, the agent whose quota ran
    it, else its author); a result without an originator is its author's alone.
    """
    originator = getattr(result, "originator", None)
    if not isinstance(originator, str) or not originator:
        return result.agent, None
    sponsor = getattr(result, "sponsor", None)
    sponsor = sponsor if isinstance(sponsor, str) and sponsor else result.agent
    return originator, (sponsor if sponsor != originator else None)


@dataclass
class Ledger:
    """The credit drawn from a prefix of the results, kept so new results extend it."""

    count: int = 0
    last: ResultEntry | None = None
    verdicts: dict[str, VerdictEntry] = field(default_factory=dict)
    invalid: set[str] = field(default_factory=set)
    tainted: set[str] = field(default_factory=set)
    figure: dict[str, float] = field(default_factory=dict)  # results that rank -> their ranked figure
    earns: set[str] = field(default_factory=set)
    owners: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # earning result -> `sponsorship`
    best_parent: dict[str, str] = field(default_factory=dict)  # result -> the parent it is measured against
    best_before: dict[str | None, float] = field(default_factory=dict)  # track -> its best figure so far
    improvement: dict[str, Fraction] = field(default_factory=dict)  # earning results with a positive one
    totals: defaultdict[str, Fraction] = field(default_factory=lambda: defaultdict(Fraction))
    parts: defaultdict[str, list[Part]] = field(default_factory=lambda: defaultdict(list))
    total: Fraction = Fraction(0)  # the sum of the improvements: the credit handed out
    copied: set[str] = field(default_factory=set)  # agents whose parts list is this ledger's own (not `previous`'s)
    proxies: bool = False  # the proxy view: proxy results taken as if measured (a rehearsal, never counted)


def draw(
    results: list[ResultEntry],
    verdicts: dict[str, VerdictEntry],
    scoring: Scoring,
    previous: Ledger | None = None,
    proxies: bool = False,
) -> Ledger:
    """The ledger of `results` (in the record's order) under `verdicts`; `previous` is extended when it can be.

    `proxies`: the proxy view, every proxy result taken as if measured by its own job (a rehearsal).
    """
    extends = previous is not None and previous.proxies == proxies and appended_only(previous, results, verdicts)
    if previous is not None and extends:
        out = Ledger(previous.count, previous.last, previous.verdicts, previous.invalid, set(previous.tainted),
                     dict(previous.figure), set(previous.earns), dict(previous.owners), dict(previous.best_parent),
                     dict(previous.best_before), dict(previous.improvement),
                     defaultdict(Fraction, previous.totals), defaultdict(list, previous.parts),
                     previous.total, proxies=proxies)  # fmt: skip
        new = results[previous.count :]
    else:
        by_id = {r.id: r for r in results}
        invalid = {rid for rid, v in verdicts.items() if v.verdict == "invalid"}  # results to come included
        out = Ledger(verdicts=verdicts, invalid=invalid, tainted=descendants(by_id, invalid), proxies=proxies)
        new = results
    sign = 1 if scoring.direction == "maximize" else -1
    unguarded = unguard(scoring) if proxies else None
    for result in new:
        if extends and any(p in out.tainted or p in out.invalid for p in result.parents):
            out.tainted.add(result.id)
        _add(out, result, verdicts, scoring, sign, unguarded)
    out.count, out.last = len(results), (results[-1] if results else None)
    return out


def unguard(scoring: Scoring) -> Scoring:
    """`scoring` without guardrails: what the proxy view judges a stand-in's figures by."""
    metrics = tuple(m.model_copy(update={"guardrail": None}) for m in scoring.metrics)
    return scoring.model_copy(update={"metrics": metrics})


def _add(out: Ledger, result: ResultEntry, verdicts: Mapping[str, VerdictEntry], scoring: Scoring, sign: int,
         unguarded: Scoring | None = None) -> None:  # fmt: skip
    verdict = verdicts[result.id].verdict if result.id in verdicts else "pending"
    judged = scoring
    if unguarded is not None and result.basis == "proxy":
        result, judged = replace(result, basis="job"), unguarded  # the proxy view: the stand-in's figure as measured
    if exclusion(result, verdict, out.tainted, judged) is not None:
        return
    # Figures are compared as floats (as exact as their Fractions, and far cheaper); the improvement
    # handed out is the exact difference.
    figure = _ranked_score(result, verdicts, scoring)
    ranked = [p for p in result.parents if p in out.figure]
    if ranked:
        best = max(ranked, key=lambda p: sign * out.figure[p])  # max keeps the first of equals: the earliest named
        out.best_parent[result.id] = best
        reference: float | None = out.figure[best]
    else:
        reference = out.best_before.get(result.track)
    held = out.best_before.get(result.track)
    if held is None or (figure > held if sign > 0 else figure < held):
        out.best_before[result.track] = figure
    out.figure[result.id] = figure
    if result.basis != "job" and verdict != "valid":
        return  # a claim earns once verified, and a proxy never reaches here
    out.earns.add(result.id)
    out.owners[result.id] = sponsorship(result)
    if reference is None or not (figure > reference if sign > 0 else figure < reference):
        return
    improvement = out.improvement[result.id] = sign * (Fraction(figure) - Fraction(reference))
    out.total += improvement
    kept = improvement
    via, generation = out.best_parent.get(result.id), 1
    while via is not None and via in out.earns and generation <= len(ANCESTOR_SHARES):
        share = improvement * ANCESTOR_SHARES[generation - 1]
        _credit(out, share, result.id, via, generation)
        kept -= share
        via, generation = out.best_parent.get(via), generation + 1
    _credit(out, kept, result.id, result.id, 0)


def _credit(out: Ledger, amount: Fraction, result: str, via: str, generation: int) -> None:
    owner, sponsor = out.owners[via]
    if sponsor is None:
        _give(out, Part(owner, amount, result, via, generation, "author"))
        return
    _give(out, Part(owner, amount * (1 - SPONSOR_SHARE), result, via, generation, "originator"))
    _give(out, Part(sponsor, amount * SPONSOR_SHARE, result, via, generation, "sponsor"))


def _give(out: Ledger, part: Part) -> None:
    out.totals[part.agent] += part.amount
    if part.agent not in out.copied:  # copied before the first append: the ledger extended is left as it was
        out.parts[part.agent] = list(out.parts.get(part.agent, ()))
        out.copied.add(part.agent)
    out.parts[part.agent].append(part)


def board(ledger: Ledger) -> list[tuple[str, Fraction]]:
    """Every agent with credit, most first (equal credit: by agent id)."""
    return sorted(ledger.totals.items(), key=lambda item: (-item[1], item[0]))


class CreditCache:
    """The ledger and its ordering, drawn again only when a result or a verdict changed (like the leaderboard).

    `proxies`: this cache draws the proxy view (a rehearsal; `draw(..., proxies=True)`).
    """

    def __init__(self, proxies: bool = False) -> None:
        self.proxies = proxies
        self._key: tuple[int, int] | None = None
        self._drawn: tuple[Ledger, list[tuple[str, Fraction]], dict[str, int]] | None = None

    async def current(self, state: Any, scoring: Scoring) -> tuple[Ledger, list[tuple[str, Fraction]], dict[str, int]]:
        """The ledger, its board and each agent's place on it; a redraw runs in a worker thread."""
        if (id(state), state.results_version) != self._key or self._drawn is None:
            return await run_in_threadpool(self.get, state, scoring)
        return self._drawn

    def get(self, state: Any, scoring: Scoring) -> tuple[Ledger, list[tuple[str, Fraction]], dict[str, int]]:
        key = (id(state), state.results_version)
        if key != self._key or self._drawn is None:
            before = self._drawn[0] if self._drawn is not None and self._key and self._key[0] == id(state) else None
            verdicts = ruled(state.verdicts, list(state.rulings.values()))  # rulings applied, as the ranking does
            ledger = draw(list(state.results.values()), verdicts, scoring, before, self.proxies)
            ordered = board(ledger)
            self._drawn = (ledger, ordered, {agent: at for at, (agent, _) in enumerate(ordered, start=1)})
            self._key = key
        return self._drawn

    def save(self, state: Any, scoring: Scoring) -> dict[str, Any]:
        """The ledger of the state as it stands (drawn now if stale), as data for a snapshot (`restore`).

        Fractions are kept exact, as "numerator/denominator".
        """
        ledger = self.get(state, scoring)[0]
        return {
            "count": ledger.count,
            "last": ledger.last.id if ledger.last is not None else None,
            "verdicts": verdicts_key(ledger.verdicts),
            "proxies": ledger.proxies,
            "invalid": sorted(ledger.invalid),
            "tainted": sorted(ledger.tainted),
            "figure": ledger.figure,
            "earns": sorted(ledger.earns),
            "owners": ledger.owners,
            "best_parent": ledger.best_parent,
            "best_before": [[track, figure] for track, figure in ledger.best_before.items()],
            "improvement": {rid: _exact(amount) for rid, amount in ledger.improvement.items()},
            "parts": {
                agent: [[_exact(p.amount), p.result, p.via, p.generation, p.role] for p in parts]
                for agent, parts in ledger.parts.items()
            },
            "total": _exact(ledger.total),
        }

    def restore(self, state: Any, scoring: Scoring, data: dict[str, Any]) -> None:
        """Take back what `save` gave, the state holding the same results and verdicts; KeyError etc. if it does not."""
        if data["proxies"] is not self.proxies:
            raise ValueError("the saved ledger is of the other view")
        results, last, verdicts = drawn_from(state, data)
        known = state.results.keys()
        figure = {rid: float(value) for rid, value in data["figure"].items()}
        earns = set(data["earns"])
        if not figure.keys() <= known or not earns <= figure.keys():
            raise ValueError("the saved ledger names results the record does not hold")
        parts: defaultdict[str, list[Part]] = defaultdict(list)
        totals: defaultdict[str, Fraction] = defaultdict(Fraction)
        for agent, held in data["parts"].items():
            for amount, result, via, generation, role in held:
                part = Part(agent, _fraction(amount), result, via, int(generation), str(role))
                parts[agent].append(part)
                totals[agent] += part.amount
        ledger = Ledger(
            len(results), last, verdicts, set(data["invalid"]),
            set(data["tainted"]), figure, earns, {rid: (o, s) for rid, (o, s) in data["owners"].items()},
            dict(data["best_parent"]), {track: float(value) for track, value in data["best_before"]},
            {rid: _fraction(amount) for rid, amount in data["improvement"].items()}, totals, parts,
            _fraction(data["total"]), proxies=self.proxies,
        )  # fmt: skip
        ordered = board(ledger)
        self._drawn = (ledger, ordered, {agent: at for at, (agent, _) in enumerate(ordered, start=1)})
        self._key = (id(state), state.results_version)


def _exact(amount: Fraction) -> str:
    return f"{amount.numerator}/{amount.denominator}"


def _fraction(text: str) -> Fraction:
    numerator, slash, denominator = text.partition("/")
    if not slash or int(denominator) <= 0:
        raise ValueError(f"{text!r} is not a fraction")
    return Fraction(int(numerator), int(denominator))


def collab_page(drawn: tuple[Ledger, list[tuple[str, Fraction]], dict[str, int]], scoring: Scoring, limit: int,
                offset: int) -> dict[str, Any]:  # fmt: skip
    """One page of the collab's ledger: agents by credit, with the rule."""
    ledger, ordered, _ = drawn
    return {
        "view": "proxy" if ledger.proxies else "real",
        **({"rehearsal": PROXY_VIEW} if ledger.proxies else {}),
        "rule": CREDIT_RULE,
        "unit": scoring.unit,
        "total_credit": rounded(ledger.total),
        "results_credited": len(ledger.improvement),
        "limit": limit,
        "offset": offset,
        "total": len(ordered),
        "agents": [{"rank": offset + at, "agent": agent, "credit": rounded(amount)}
                   for at, (agent, amount) in enumerate(ordered[offset : offset + limit], start=1)],
    }  # fmt: skip


def agent_view(drawn: tuple[Ledger, list[tuple[str, Fraction]], dict[str, int]], scoring: Scoring,
               agent: str) -> dict[str, Any]:  # fmt: skip
    """One agent's credit: its total, its place and its newest parts (each: which result, through which, as what)."""
    ledger, _, places = drawn
    parts = ledger.parts.get(agent, [])
    by_role: defaultdict[str, Fraction] = defaultdict(Fraction)
    for part in parts:
        by_role["own" if part.generation == 0 else "lineage"] += part.amount
    return {
        "agent": agent,
        "view": "proxy" if ledger.proxies else "real",
        **({"rehearsal": PROXY_VIEW} if ledger.proxies else {}),
        "credit": rounded(ledger.totals.get(agent, Fraction(0))),
        "own": rounded(by_role["own"]),
        "lineage": rounded(by_role["lineage"]),
        "rank": places.get(agent),
        "unit": scoring.unit,
        "rule": CREDIT_RULE,
        "parts": {"total": len(parts), "items": [p.public() for p in reversed(parts[-MAX_PARTS:])]},
    }


def digest_line(drawn: tuple[Ledger, list[tuple[str, Fraction]], dict[str, int]], agent: str) -> dict[str, Any]:
    """An agent's credit as its digest shows it: its total, its place, and where the detail is."""
    ledger, ordered, places = drawn
    return {"credit": rounded(ledger.totals.get(agent, Fraction(0))), "rank": places.get(agent),
            "agents_with_credit": len(ordered), "detail": f"GET /v1/credit/{agent}"}  # fmt: skip
