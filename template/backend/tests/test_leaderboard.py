"""The leaderboard as a pure function: direction, best per agent, guardrails, tracks, verdicts, ties."""

from __future__ import annotations

from typing import Any

import pytest
from backend_world import CHALLENGE_TYPE, make_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import ResultEntry, VerdictEntry
from collab_backend.services.leaderboard import board_of, rank, tally, tie_margin
from collab_backend.spec import Noise, Scoring

BASE = (
    "spec_version: 2\n"
    f"challenge: {{org: acme, slug: fast, title: Fast, type: {CHALLENGE_TYPE}}}\n"
    """\
scoring:
  score_field: tps
  direction: %s
  metrics: [{field: ppl, guardrail: {max: 2.42}}]
  noise: %s
"""
)


def scoring(direction: str = "maximize", noise: str = "{kind: none}", tracks: str = "") -> Scoring:
    text = BASE % (direction, noise) + (f"  tracks: {tracks}\n" if tracks else "")
    return make_spec(text).scoring


_seq = iter(range(1, 10_000))


def result(rid: str, agent: str, score: float, **kw: Any) -> ResultEntry:
    seq = next(_seq)
    return ResultEntry(
        seq, float(seq), rid, agent, agent, score, kw.pop("status", "agent-run"), kw.pop("metrics", {"ppl": 2.3}),
        kw.pop("track", None), tuple(kw.pop("parents", ())), "sha256:x", "", {"bucket": "b", "path": rid, "hash": rid},
    )  # fmt: skip


def verdict(rid: str, value: str, by: str = "human:org") -> VerdictEntry:
    return VerdictEntry(next(_seq), 0.0, rid, value, by)  # type: ignore[arg-type]


def standings(board: dict[str, Any], track: str | None = None) -> list[tuple[int, str, bool]]:
    [chosen] = [b for b in board["boards"] if b["track"] == track]
    return [(s["rank"], s["result_id"], s["tied"]) for s in chosen["standings"]]


def test_direction_and_best_per_agent() -> None:
    rs = [result("a1", "a", 100), result("a2", "a", 120), result("b1", "b", 110)]
    assert standings(rank(rs, {}, scoring())) == [(1, "a2", False), (2, "b1", False)]
    assert standings(rank(rs, {}, scoring("minimize"))) == [(1, "a1", False), (2, "b1", False)]


def test_guardrails_negative_results_and_pending_flags() -> None:
    rs = [
        result("fast-but-lossy", "a", 500, metrics={"ppl": 2.5}),
        result("no-ppl", "b", 400, metrics={}),
        result("dead-end", "c", 900, status="negative"),
        result("honest", "d", 300),
    ]
    board = rank(rs, {}, scoring())
    assert standings(board) == [(1, "honest", False)]
    assert board["boards"][0]["standings"][0]["pending"] is True
    reasons = {e["result_id"]: e["reason"] for e in board["excluded"]}
    assert reasons == {"fast-but-lossy": "ppl outside its guardrail", "no-ppl": "ppl outside its guardrail"}


def test_invalid_results_and_their_descendants_are_hidden() -> None:
    rs = [
        result("root", "a", 300),
        result("child", "b", 320, parents=["root"]),
        result("grandchild", "c", 330, parents=["child"]),
        result("other", "d", 310),
    ]
    board = rank(rs, {"root": verdict("root", "invalid"), "other": verdict("other", "valid")}, scoring())
    assert standings(board) == [(1, "other", False)]
    assert board["boards"][0]["standings"][0]["verdict"] == "valid"
    assert {e["result_id"]: e["reason"] for e in board["excluded"]} == {
        "root": "invalid",
        "child": "descends from an invalid result",
        "grandchild": "descends from an invalid result",
    }


def test_ties_within_the_noise_model_share_a_rank_and_do_not_chain() -> None:
    # relative sigma 0.4%, z 2.5: margin = 2.5 * 0.004 * sqrt2 ~= 1.41% of the larger score
    spec = scoring(noise="{kind: relative, sigma: 0.004, z: 2.5}")
    rs = [result("a", "a", 315.0), result("b", "b", 312.0), result("c", "c", 310.0), result("d", "d", 300.0)]
    assert standings(rank(rs, {}, spec)) == [(1, "a", True), (1, "b", True), (3, "c", False), (4, "d", False)]
    # c is within 1.41% of b but not of a (the group's best): ties do not chain


def test_tie_margin_values() -> None:
    absolute = Noise(kind="absolute", sigma=1.16, z=2.5, min_margin=0)
    assert tie_margin(absolute, 300, 305) == pytest.approx(2.5 * 1.16 * 2**0.5)
    relative = Noise(kind="relative", sigma=0.004, z=2.5, min_margin=0.01)
    assert tie_margin(relative, 300, 310) == pytest.approx(0.01414 * 310, rel=1e-3)
    floor = Noise(kind="relative", sigma=0.001, z=2.5, min_margin=0.01)
    assert tie_margin(floor, 100, 100) == pytest.approx(1.0)
    assert tie_margin(Noise(kind="none", sigma=5, z=2.5, min_margin=1), 1, 2) == 0


def test_exact_equality_ties_without_a_noise_model() -> None:
    rs = [result("a", "a", 10), result("b", "b", 10), result("c", "c", 9)]
    assert standings(rank(rs, {}, scoring())) == [(1, "a", True), (1, "b", True), (3, "c", False)]


def test_tracks_rank_separately() -> None:
    spec = scoring(tracks="[{name: lossless}, {name: lossy}]")
    rs = [
        result("l1", "a", 300, track="lossless"),
        result("y1", "a", 480, track="lossy"),
        result("l2", "b", 310, track="lossless"),
    ]
    board = rank(rs, {}, spec)
    assert standings(board, "lossless") == [(1, "l2", False), (2, "l1", False)]
    assert standings(board, "lossy") == [(1, "y1", False)]


def test_the_response_says_how_it_ranked() -> None:
    ranking = rank([], {}, scoring("minimize", "{kind: absolute, sigma: 1.0}"))["ranking"]
    assert ranking["direction"] == "minimize" and ranking["score_field"] == "tps"
    assert ranking["tie_rule"]["kind"] == "absolute"
    assert (
        ranking["tie_rule"]["rule"]
        == "a score ties with its group's best score when the two differ by at most max(0.0, 2.5 x 1.0 x sqrt 2), "
        "and shares its rank; a result whose job measured a 95% interval of its score ties when that interval and "
        "the other's overlap (the other's being its own measured interval, or its score plus or minus half the margin)"
    )
    assert ranking["guardrails"] == [{"field": "ppl", "min": None, "max": 2.42}]


def test_async_reads_rank_again_off_the_event_loop_only_when_something_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import dataclasses
    import threading

    from collab_backend.record.state import State
    from collab_backend.services import leaderboard

    state, spec, cache = State(), scoring(), leaderboard.LeaderboardCache()
    state.apply(dataclasses.replace(result("r1", "a", 300), seq=1))
    ranked_in: list[str] = []
    real_tally = leaderboard.tally

    def spying_tally(*args: Any) -> Any:
        ranked_in.append(threading.current_thread().name)
        return real_tally(*args)

    monkeypatch.setattr(leaderboard, "tally", spying_tally)

    async def read() -> list[dict[str, Any]]:
        board = await cache.current(state, spec)
        return list(board.board["boards"][0]["standings"])

    loop_thread = threading.current_thread().name
    assert [s["result_id"] for s in asyncio.run(read())] == ["r1"]
    assert len(ranked_in) == 1 and ranked_in[0] != loop_thread
    asyncio.run(read())
    assert len(ranked_in) == 1  # nothing changed: no ranking at all
    state.apply(dataclasses.replace(result("r2", "b", 310), seq=2))
    assert cache.stale(state)
    assert [s["result_id"] for s in asyncio.run(read())] == ["r2", "r1"]
    assert len(ranked_in) == 2 and ranked_in[1] != loop_thread


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[ResultEntry], dict[str, VerdictEntry], list[int]]:
    """Results (parents among earlier ones, tied scores, statuses, metrics in and out of the guardrail,
    two tracks), verdicts on some of the first ones, and the points the record was ranked at."""
    results: list[ResultEntry] = []
    for n in range(draw(st.integers(1, 30))):
        parents = draw(st.lists(st.sampled_from([r.id for r in results]), max_size=2, unique=True)) if results else []
        ppl = draw(st.sampled_from([None, 2.2, 2.3, 2.5]))
        results.append(
            ResultEntry(
                n, float(n), f"r{n:03d}", draw(st.sampled_from("abc")), "u", float(draw(st.integers(1, 6))),
                draw(st.sampled_from(["agent-run", "agent-run", "negative"])), {} if ppl is None else {"ppl": ppl},
                draw(st.sampled_from(["lossless", "lossy"])), tuple(parents), "sha256:x", "", {},
            )
        )  # fmt: skip
    cuts = sorted(draw(st.lists(st.integers(0, len(results)), min_size=1, max_size=4)))
    ruled = draw(st.lists(st.sampled_from([r.id for r in results[: cuts[0]]]), unique=True)) if cuts[0] else []
    verdicts = {
        rid: VerdictEntry(100, 0.0, rid, draw(st.sampled_from(["valid", "invalid"])), "human:o") for rid in ruled
    }
    return results, verdicts, cuts


@settings(max_examples=200, deadline=None)
@given(histories())
def test_a_tally_extended_with_new_results_ranks_as_one_drawn_from_scratch(
    history: tuple[list[ResultEntry], dict[str, VerdictEntry], list[int]],
) -> None:
    """The leaderboard cache extends its tally with new results: the board is the same as ranking them all."""
    results, verdicts, cuts = history
    spec = scoring(
        noise="{kind: relative, sigma: 0.05, z: 2, min_margin: 0.01}", tracks="[{name: lossless}, {name: lossy}]"
    )
    drawn, board = None, None
    for cut in [*cuts, len(results)]:
        drawn = tally(results[:cut], verdicts, spec, drawn)
        board = board_of(drawn, spec, board)  # the tracks whose best results did not change are kept
        assert board == rank(results[:cut], verdicts, spec)
    assert drawn is not None and drawn.count == len(results)
    if results:  # a verdict, or a result taken back, tallies everything again
        changed = {**verdicts, results[0].id: VerdictEntry(999, 0.0, results[0].id, "invalid", "human:o", "no")}
        assert board_of(tally(results, changed, spec, drawn), spec) == rank(results, changed, spec)
        assert board_of(tally(results[:-1], verdicts, spec, drawn), spec) == rank(results[:-1], verdicts, spec)


def test_the_cache_keeps_each_agents_standings_through_new_results() -> None:
    import dataclasses

    from collab_backend.record.state import State
    from collab_backend.services.leaderboard import LeaderboardCache

    spec = scoring(tracks="[{name: lossless}, {name: lossy}]")
    state, cache = State(), LeaderboardCache()
    entries = [("r1", "a", 300, "lossless"), ("r2", "b", 310, "lossy"), ("r3", "a", 320, "lossy"),
               ("r4", "b", 100, "lossy"), ("r5", "c", 305, "lossless")]  # fmt: skip
    for seq, (rid, agent, score, track) in enumerate(entries, start=1):
        state.apply(dataclasses.replace(result(rid, agent, score, track=track), seq=seq))
        kept = cache.get(state, spec)
        fresh = LeaderboardCache().get(state, spec)
        assert (kept.board, kept.by_agent, kept.body) == (fresh.board, fresh.by_agent, fresh.body)
    assert [s["agent"] for s in cache.by_agent[("lossy", "a")]] == ["a"]
