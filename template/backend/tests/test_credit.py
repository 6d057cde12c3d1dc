"""Credit along lineage as a pure function: a hand-computed lineage, sponsored runs, what earns nothing."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from backend_world import CHALLENGE_TYPE, make_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import ResultEntry, VerdictEntry
from collab_backend.services.credit import agent_view, board, draw
from collab_backend.spec import Scoring

BASE = (
    "spec_version: 2\n"
    f"challenge: {{org: acme, slug: fast, title: Fast, type: {CHALLENGE_TYPE}}}\n"
    "scoring:\n  score_field: tps\n  direction: %s\n  metrics: [{field: ppl, guardrail: {max: 2.42}}]\n"
)


def scoring(direction: str = "maximize") -> Scoring:
    return make_spec(BASE % direction).scoring


@dataclass(frozen=True)
class Sponsored(ResultEntry):
    """A result recorded from a sponsored job: the record names its originator and its sponsor."""

    originator: str | None = None
    sponsor: str | None = None


_seq = iter(range(1, 1_000_000))


def result(rid: str, agent: str, score: float, *parents: str, basis: str = "job", **kw: Any) -> ResultEntry:
    seq = next(_seq)
    cls: Any = Sponsored if "originator" in kw else ResultEntry
    return cls(  # type: ignore[no-any-return]
        seq, float(seq), rid, agent, agent, score, kw.pop("status", "agent-run"), kw.pop("metrics", {"ppl": 2.3}),
        kw.pop("track", None), parents, "sha256:x", "", {"bucket": "b", "path": rid, "hash": rid}, basis=basis, **kw,
    )  # fmt: skip


def verdict(rid: str, value: str) -> VerdictEntry:
    return VerdictEntry(next(_seq), 0.0, rid, value, "human:org")  # type: ignore[arg-type]


def lineage() -> list[ResultEntry]:
    """The worked example of the docs (DESIGN.md, the onboarding README)."""
    return [
        result("r1", "ada", 100),  # the track's first result: nothing to improve on
        result("r2", "bo", 120, "r1"),  # +20
        result("r3", "cy", 150, "r2", "r1"),  # +30 over its best parent r2
        result("r4", "dee", 190, "r3", originator="eve", sponsor="dee"),  # +40, a sponsored run of eve's submission
        result("r5", "ada", 500, "r4", basis="proxy"),  # a stand-in's figure: earns nothing
        result("r6", "bo", 200, "r4", basis="claim"),  # an unverified claim: earns nothing (yet)
    ]


EXPECTED = {"cy": Fraction("28.75"), "bo": Fraction("27.5"), "eve": Fraction("16.875"), "ada": Fraction("11.25"),
            "dee": Fraction("5.625")}  # fmt: skip


def test_hand_computed_lineage() -> None:
    ledger = draw(lineage(), {}, scoring())
    assert board(ledger) == sorted(EXPECTED.items(), key=lambda i: (-i[1], i[0]))
    assert ledger.improvement == {"r2": 20, "r3": 30, "r4": 40}
    assert sum(ledger.totals.values()) == 90
    # r4's improvement of 40: 1/4 to r3's author, 1/8 to r2's, 1/16 to r1's; the rest split originator 3/4, sponsor 1/4
    r4 = sorted((p.agent, p.amount, p.generation, p.role) for a in ledger.parts.values() for p in a if p.result == "r4")
    assert r4 == [("ada", Fraction("2.5"), 3, "author"), ("bo", 5, 2, "author"), ("cy", 10, 1, "author"),
                  ("dee", Fraction("5.625"), 0, "sponsor"), ("eve", Fraction("16.875"), 0, "originator")]  # fmt: skip


def test_the_docs_worked_example_states_these_numbers() -> None:
    ledger = draw(lineage(), {}, scoring())
    said = "Credit: " + ", ".join(f"{agent} {float(amount):g}" for agent, amount in board(ledger))
    total = f"total {float(sum(ledger.totals.values())):g} = 20 + 30 + 40"
    split = "and of the 22.5 left eve 16.875, dee 5.625"
    root = Path(__file__).resolve().parents[2]  # the collab (or the kit's template/)
    design = (root / "backend" / "DESIGN.md").read_text(encoding="utf-8")
    readme = (root / "provision" / "onboarding" / "readme.md.j2").read_text(encoding="utf-8")
    for text in (" ".join(design.split()), readme):
        assert said in text and total in text
    assert split in readme and "and the 22.5 left: eve 16.875, dee 5.625" in " ".join(design.split())


def test_a_verified_claim_earns_and_an_invalid_one_takes_its_lineage_with_it() -> None:
    results = lineage()
    verified = draw(results, {"r6": verdict("r6", "valid")}, scoring())
    assert verified.improvement["r6"] == 10  # 200 over r4's 190
    # bo keeps 10 - 2.5 (r4's side) - 1.25 (cy, r3) - 0.625 (r2, bo's own: it comes back to bo)
    assert verified.totals["bo"] == EXPECTED["bo"] + Fraction("5.625") + Fraction("0.625")
    assert verified.totals["eve"] == EXPECTED["eve"] + Fraction("1.875")  # 3/4 of r4's 2.5
    # r3 ruled invalid: it and every result below it earn nothing, and its share of r2's line is gone
    ruled = draw(results, {"r3": verdict("r3", "invalid")}, scoring())
    assert ruled.improvement == {"r2": 20}
    assert dict(ruled.totals) == {"bo": 15, "ada": 5}


def test_lower_is_better_and_guardrails() -> None:
    results = [result("a", "ada", 10.0), result("b", "bo", 8.0, "a"), result("c", "cy", 6.0, "b", metrics={"ppl": 9})]
    ledger = draw(results, {}, scoring("minimize"))
    assert ledger.improvement == {"b": 2}  # c is outside its guardrail: it does not rank, so it earns nothing
    assert dict(ledger.totals) == {"bo": Fraction("1.5"), "ada": Fraction("0.5")}


def test_a_result_without_a_ranked_parent_is_measured_against_its_track_and_a_worse_one_earns_nothing() -> None:
    results = [result("a", "ada", 100), result("b", "bo", 130), result("c", "cy", 90, "b"), result("d", "dee", 140)]
    ledger = draw(results, {}, scoring())
    assert ledger.improvement == {"b": 30, "d": 10}  # c is below its parent: zero, never negative
    assert dict(ledger.totals) == {"bo": 30, "dee": 10}


def test_the_proxy_view_credits_a_sponsored_proxy_run_and_the_real_ledger_stays_empty() -> None:
    results = [
        result("p1", "ada", 100, basis="proxy"),  # a stand-in's figure, the lineage's root
        result("p2", "cleo", 140, "p1", basis="proxy", originator="ada", sponsor="cleo"),  # +40, sponsored
        result("p3", "bo", 90, "p2", basis="proxy"),  # below its parent: zero, never negative
        result("p4", "cy", 170, "p2", basis="proxy", status="negative"),  # a negative result: never earns
    ]
    real = draw(results, {}, scoring())
    assert (dict(real.totals), real.improvement, real.total) == ({}, {}, 0)  # proxies never earn
    proxy = draw(results, {}, scoring(), proxies=True)
    assert proxy.improvement == {"p2": 40}
    # p2's 40: 1/4 to its parent's author (ada, 10); of the 30 left the originator ada 3/4, the sponsor cleo 1/4
    parts = sorted((p.agent, p.amount, p.generation, p.role) for a in proxy.parts.values() for p in a)
    assert parts == [("ada", 10, 1, "author"), ("ada", Fraction("22.5"), 0, "originator"),
                     ("cleo", Fraction("7.5"), 0, "sponsor")]  # fmt: skip
    assert board(proxy) == [("ada", Fraction("32.5")), ("cleo", Fraction("7.5"))]
    # a ruling invalidating the sponsored run takes it, and what builds on it, out of the rehearsal too
    assert draw(results, {"p2": verdict("p2", "invalid")}, scoring(), proxies=True).totals == {}


def test_the_proxy_view_applies_no_guardrail_to_a_stand_ins_figures_and_every_other_rule_to_the_rest() -> None:
    far = {"ppl": 1532.5}  # a stand-in's perplexity: meaningless, far outside the guardrail (2.42)
    results = [result("a", "ada", 100, basis="proxy", metrics=far), result("b", "bo", 120, "a", basis="proxy",
               metrics=far), result("c", "cy", 200, "b", metrics=far), result("d", "dee", 180, "b")]  # fmt: skip
    proxy = draw(results, {}, scoring(), proxies=True)
    assert proxy.improvement == {"b": 20, "d": 60}  # c, a measured result outside its guardrail, still does not rank
    assert dict(proxy.totals) == {"bo": 15 + 15, "ada": 5 + Fraction("7.5"), "dee": 45 - Fraction("7.5")}


def test_a_kept_ledger_extends_only_the_view_it_was_drawn_for() -> None:
    results = [result("p1", "ada", 100, basis="proxy"), result("p2", "bo", 120, "p1", basis="proxy")]
    real = draw(results[:1], {}, scoring())
    assert draw(results, {}, scoring(), real, proxies=True).totals == draw(results, {}, scoring(), proxies=True).totals
    rehearsal = draw(results[:1], {}, scoring(), proxies=True)
    assert draw(results, {}, scoring(), rehearsal).totals == {}


def test_the_ledger_extended_with_new_results_is_the_ledger_drawn_anew() -> None:
    results = lineage()
    first = draw(results[:3], {}, scoring())
    extended = draw(results, {}, scoring(), first)
    assert extended.totals == draw(results, {}, scoring()).totals
    assert first.totals == draw(results[:3], {}, scoring()).totals  # the kept ledger is left as it was


def test_an_agents_view_lists_its_parts_newest_first() -> None:
    ledger = draw(lineage(), {}, scoring())
    view = agent_view((ledger, board(ledger), {a: i for i, (a, _) in enumerate(board(ledger), 1)}), scoring(), "ada")
    assert (view["credit"], view["own"], view["lineage"], view["rank"]) == (11.25, 0.0, 11.25, 4)
    assert [(p["result_id"], p["generation"], p["credit"]) for p in view["parts"]["items"]] == [
        ("r4", 3, 2.5), ("r3", 2, 3.75), ("r2", 1, 5.0)]  # fmt: skip


@st.composite
def records(draw_: st.DrawFn) -> tuple[list[ResultEntry], dict[str, VerdictEntry]]:
    n = draw_(st.integers(1, 25))
    out: list[ResultEntry] = []
    for i in range(n):
        parents = draw_(st.lists(st.sampled_from([r.id for r in out]), max_size=3)) if out else []
        sponsored = draw_(st.booleans())
        extra: dict[str, Any] = {"originator": draw_(st.sampled_from("abc")), "sponsor": None} if sponsored else {}
        out.append(result(f"x{i}", draw_(st.sampled_from("abcd")), draw_(st.integers(0, 50)) / 4, *parents,
                          basis=draw_(st.sampled_from(["job", "job", "claim", "proxy"])),
                          track=None, metrics={"ppl": draw_(st.sampled_from([2.0, 3.0]))}, **extra))  # fmt: skip
    verdicts = {r.id: verdict(r.id, draw_(st.sampled_from(["valid", "invalid"]))) for r in out if draw_(st.booleans())}
    return out, verdicts


@settings(max_examples=150, deadline=None)
@given(records(), st.sampled_from(["maximize", "minimize"]), st.integers(0, 25))
def test_the_credit_handed_out_is_the_sum_of_the_improvements(
    drawn: tuple[list[ResultEntry], dict[str, VerdictEntry]], direction: str, cut: int
) -> None:
    results, verdicts = drawn
    ledger = draw(results, verdicts, scoring(direction))
    assert sum(ledger.totals.values(), Fraction(0)) == sum(ledger.improvement.values(), Fraction(0)) == ledger.total
    assert all(amount > 0 for amount in ledger.improvement.values())
    assert all(part.amount > 0 for parts in ledger.parts.values() for part in parts)
    earning = {
        r.id for r in results if r.basis == "job" or verdicts.get(r.id, verdict(r.id, "pending")).verdict == "valid"
    }
    assert set(ledger.improvement) <= earning - {r.id for r in results if r.basis == "proxy"}
    assert (
        draw(results, verdicts, scoring(direction), draw(results[:cut], verdicts, scoring(direction))).totals
        == ledger.totals
    )
