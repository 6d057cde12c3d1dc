"""The rankings a snapshot keeps (services/snapshot_parts.py): given back at a restart they are what a fresh draw
gives, before and after results, verdicts and rulings follow; a part saved by other code or under another scoring,
or whose data does not fit the record, is drawn afresh; a part that cannot be saved costs only that part."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from backend_world import CHALLENGE_TYPE, make_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record import snapshot
from collab_backend.record.entries import DirectionEntry, Entry, MessageEntry, ResultEntry, RulingEntry, VerdictEntry
from collab_backend.record.state import State
from collab_backend.record.store import Record
from collab_backend.services.credit import CreditCache, Ledger
from collab_backend.services.direction_index import DirectionIndex
from collab_backend.services.leaderboard import LeaderboardCache, Tally
from collab_backend.services.snapshot_parts import register
from collab_backend.spec import Scoring
from collab_backend.storage import Add
from collab_backend.storage.local import LocalStorage

BUCKET = "acme/fast-main"
SPEC = (
    "spec_version: 2\n"
    f"challenge: {{org: acme, slug: fast, title: Fast, type: {CHALLENGE_TYPE}}}\n"
    "scoring:\n  score_field: tps\n  direction: %s\n  metrics: [{field: ppl, guardrail: {max: 2.42}}]\n"
    "  tracks: [{name: a}, {name: b}]\n  noise: {kind: relative, sigma: %s, z: 2.5, min_margin: 0.01}\n"
)


def scoring(direction: str = "maximize", sigma: float = 0.004) -> Scoring:
    return make_spec(SPEC % (direction, sigma)).scoring


Build = Callable[[State, int, float], Entry]


def _result(n: int, agent: str, score: float, parents: tuple[str, ...], basis: str, track: str, ppl: float,
            direction: str | None, sponsored: bool) -> Build:  # fmt: skip
    def build(state: State, seq: int, ts: float) -> Entry:
        known = tuple(p for p in parents if p in state.results)
        extra = {"originator": "cy", "sponsor": agent} if sponsored else {}
        return ResultEntry(seq, ts, f"r{n}", agent, agent, score, "agent-run", {"ppl": ppl}, track, known, "sha256:x",
                           "", {"bucket": "b", "path": f"r{n}.md", "hash": f"{n:064x}"}, basis=basis,  # type: ignore[arg-type]
                           client_fields={"direction": direction} if direction else {}, **extra)  # fmt: skip

    return build


def _verdict(n: int, value: str) -> Build:
    def build(state: State, seq: int, ts: float) -> Entry:
        return VerdictEntry(seq, ts, f"r{n}", value, "human:org")  # type: ignore[arg-type]

    return build


def _ruling(n: int, covers: tuple[int, ...]) -> Build:
    def build(state: State, seq: int, ts: float) -> Entry:
        return RulingEntry(seq, ts, f"ruling-{n}", "human:org", "accepted", "not allowed",
                           covers=tuple(f"r{c}" for c in covers))  # fmt: skip

    return build


def _direction(name: str) -> Build:
    return lambda state, seq, ts: DirectionEntry(seq, ts, name, "a way to try", "ada")


def _post(agent: str, direction: str | None) -> Build:
    def build(state: State, seq: int, ts: float) -> Entry:
        return MessageEntry(seq, ts, f"{int(ts * 1000):013d}-{seq:08d}", agent, agent, "general", "tried it",
                            client_fields={"direction": direction} if direction else {})  # fmt: skip

    return build


@st.composite
def histories(draw: st.DrawFn, start: int = 0, size: int = 14) -> list[Build]:
    """Results in lineages, posts, directions, verdicts and rulings, in some order (result ids from `start` on)."""
    out: list[Build] = [_direction("quant"), _direction("spec")]
    made: list[int] = []
    for n in range(start, start + draw(st.integers(1, size))):
        parents = tuple(f"r{p}" for p in draw(st.lists(st.sampled_from(made or [0]), max_size=2)))
        out.append(_result(n, draw(st.sampled_from("abcd")), draw(st.integers(0, 40)) / 4, parents,
                           draw(st.sampled_from(["job", "job", "claim", "proxy"])), draw(st.sampled_from("ab")),
                           draw(st.sampled_from([2.0, 2.3, 3.0])), draw(st.sampled_from([None, "quant", "spec"])),
                           draw(st.booleans())))  # fmt: skip
        made.append(n)
        if draw(st.booleans()):
            out.append(_post(draw(st.sampled_from("abcd")), draw(st.sampled_from([None, "quant", "spec"]))))
        if draw(st.integers(0, 3)) == 0:
            out.append(_verdict(draw(st.sampled_from(made)), draw(st.sampled_from(["valid", "invalid"]))))
        if draw(st.integers(0, 7)) == 0:
            out.append(_ruling(n, tuple(draw(st.lists(st.sampled_from(made), min_size=1, max_size=2)))))
    return out


@dataclass
class Served:
    """A record and the rankings kept in its snapshots, as the backend wires them."""

    record: Record
    scoring: Scoring
    board: LeaderboardCache = field(default_factory=LeaderboardCache)
    ledger: CreditCache = field(default_factory=CreditCache)
    directions: DirectionIndex = field(default_factory=DirectionIndex)

    def draw(self) -> None:
        self.board.get(self.record.state, self.scoring)
        self.ledger.get(self.record.state, self.scoring)
        self.directions.get(self.record.state)


@contextmanager
def served(root: Path, rules: Scoring, *, snapshot_at_stop: bool = True) -> Iterator[Served]:
    storage = LocalStorage(root)
    storage.bucket_dir(BUCKET).mkdir(parents=True, exist_ok=True)
    record = Record(storage, BUCKET, snapshot_every=10**9 if snapshot_at_stop else 0)
    out = Served(record, rules)
    register(record, rules, out.board, out.ledger, out.directions)
    record.open()
    try:
        yield out
    finally:
        record.close()


def _write(record: Record, builds: list[Build]) -> None:
    for build in builds:
        record.write(build)


def _tally(t: Tally) -> dict[str, Any]:
    return {"count": t.count, "last": t.last, "verdicts": t.verdicts, "invalid": t.invalid, "tainted": t.tainted,
            "best": t.best, "excluded": t.excluded}  # fmt: skip


def _ledger(ledger: Ledger) -> dict[str, Any]:
    fields = ("count", "last", "verdicts", "invalid", "tainted", "figure", "earns", "owners", "best_parent",
              "best_before", "improvement", "totals", "parts", "total", "proxies")  # fmt: skip
    return {name: getattr(ledger, name) for name in fields}


def assert_as_drawn_afresh(kept: Served) -> None:
    """The kept rankings, brought up to date, equal rankings drawn anew from the same record."""
    state, fresh = kept.record.state, Served(kept.record, kept.scoring)
    kept.draw()
    fresh.draw()
    assert kept.board.board == fresh.board.board
    assert kept.board.by_agent == fresh.board.by_agent and kept.board.body == fresh.board.body
    assert _tally(kept.board._drawn[0]) == _tally(fresh.board._drawn[0])  # type: ignore[index]
    assert _ledger(kept.ledger.get(state, kept.scoring)[0]) == _ledger(fresh.ledger.get(state, kept.scoring)[0])
    assert kept.ledger.get(state, kept.scoring)[1:] == fresh.ledger.get(state, kept.scoring)[1:]
    assert kept.directions.activity == fresh.directions.activity


def _restored(kept: Served) -> set[str]:
    """The rankings given back by the snapshot at start (not drawn since)."""
    state = kept.record.state
    current = (id(state), state.results_version)
    found = {name for name, cache in (("leaderboard", kept.board), ("credit", kept.ledger)) if cache._key == current}
    return found | ({"directions"} if kept.directions._state_id == id(state) else set())


@settings(max_examples=30, deadline=None)
@given(histories(), histories(start=100, size=6), st.sampled_from(["maximize", "minimize"]), st.booleans())
def test_rankings_given_back_by_a_snapshot_are_those_drawn_afresh(
    before: list[Build], after: list[Build], direction: str, drawn: bool
) -> None:
    rules = scoring(direction)
    with tempfile.TemporaryDirectory() as tmp:
        with served(Path(tmp), rules) as first:
            _write(first.record, before)
            if drawn:  # else drawn by the snapshot at the stop
                first.draw()
        with served(Path(tmp), rules, snapshot_at_stop=False) as second:
            assert _restored(second) == {"leaderboard", "credit", "directions"}
            assert_as_drawn_afresh(second)
            _write(second.record, after)  # results, verdicts and rulings after the snapshot
            assert_as_drawn_afresh(second)
        with served(Path(tmp), rules) as third:  # the snapshot's entry, then the entries written after it
            assert third.record._snapshot_seq < third.record.state.seq
            assert_as_drawn_afresh(third)


def _history() -> list[Build]:
    return [_direction("quant"), _result(0, "a", 10.0, (), "job", "a", 2.0, "quant", False),
            _result(1, "b", 12.0, ("r0",), "job", "a", 2.0, None, True), _post("c", "quant"),
            _result(2, "c", 15.0, ("r1",), "claim", "b", 2.0, None, False), _verdict(2, "valid")]  # fmt: skip


def test_rankings_saved_by_other_code_or_under_another_scoring_are_drawn_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with served(tmp_path, scoring()) as first:
        _write(first.record, _history())
    with caplog.at_level(logging.INFO, "collab_backend.record"), served(tmp_path, scoring(sigma=0.01)) as other:
        assert _restored(other) == {"directions"}  # the directions' activity does not depend on the scoring
        assert_as_drawn_afresh(other)
    assert "no leaderboard drawn by this code and these settings" in caplog.text
    with served(tmp_path, scoring()) as same:
        assert _restored(same) == {"leaderboard", "credit", "directions"}
        same.record.parts["credit"].key = "0" * 64  # type: ignore[misc]  # as another version's code would hash
        _write(same.record, [_post("a", None)])  # the stop writes a snapshot again
    with served(tmp_path, scoring()) as again:
        assert _restored(again) == {"leaderboard", "directions"}
        assert_as_drawn_afresh(again)


_DEEP = "(nested 1015 levels deep)"  # written into the JSON as such (orjson writes no more than 255 levels)


def _planted(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """The newest snapshot with its parts changed (and hashed again, as one planted would be)."""
    storage = LocalStorage(root)
    path = sorted(storage.paths(BUCKET, snapshot.PREFIX))[-1]
    data = storage.read(BUCKET, path)
    header, _, payload = data[len(snapshot.MAGIC) :].partition(b"\n")
    document = snapshot.unpack(payload)
    change(document["parts"])
    body = snapshot.pack(document).replace(orjson.dumps(_DEEP), b"[" * 1015 + b"]" * 1015)
    head = json.loads(header) | {"payload": hashlib.sha256(body).hexdigest()}
    storage.batch(BUCKET, [Add(path, snapshot.MAGIC + json.dumps(head).encode() + b"\n" + body)])


@pytest.mark.parametrize(
    ("case", "change", "kept"),
    [
        ("a best result the record lacks", lambda p: p["leaderboard"]["data"]["best"].append(["a", "a", "r99"]),
         {"credit", "directions"}),
        ("a ledger of other results", lambda p: p["credit"]["data"].update(count=1), {"leaderboard", "directions"}),
        ("a fraction that is none", lambda p: p["credit"]["data"].update(total="1.5"), {"leaderboard", "directions"}),
        ("activity up to another entry", lambda p: p["directions"]["data"].update(seen=1), {"leaderboard", "credit"}),
        ("data of another shape", lambda p: p["leaderboard"].update(data=[1, 2]), {"credit", "directions"}),
        ("a ranking drawn under other verdicts", lambda p: p["leaderboard"]["data"].update(verdicts="0" * 64),
         {"credit", "directions"}),
        ("a ledger drawn under other verdicts", lambda p: p["credit"]["data"].update(verdicts="0" * 64),
         {"leaderboard", "directions"}),
        ("a fraction over zero", lambda p: p["credit"]["data"].update(total="1/0"), {"leaderboard", "directions"}),
        ("a board nested past the encoder", lambda p: p["leaderboard"]["data"]["board"].update(ranking=_DEEP),
         {"credit", "directions"}),
    ],
)  # fmt: skip
def test_a_saved_ranking_that_does_not_fit_the_record_is_drawn_afresh_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str, change: Callable[[dict[str, Any]], None],
    kept: set[str],
) -> None:  # fmt: skip
    with served(tmp_path, scoring()) as first:
        _write(first.record, _history())
    _planted(tmp_path, change)
    with caplog.at_level(logging.WARNING, "collab_backend.record"), served(tmp_path, scoring()) as second:
        assert _restored(second) == kept
        assert_as_drawn_afresh(second)
    assert "is ignored, drawn afresh instead" in caplog.text


def test_a_part_that_cannot_be_saved_leaves_the_snapshot_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with served(tmp_path, scoring()) as first:
        _write(first.record, _history())

        def broken(state: Any, rules: Scoring) -> dict[str, Any]:
            raise RuntimeError("cannot draw")

        monkeypatch.setattr(first.ledger, "save", broken)
        caplog.set_level(logging.ERROR, "collab_backend.record")
    assert "leaves out credit" in caplog.text
    with served(tmp_path, scoring()) as second:
        assert second.record._snapshot_seq == second.record.state.seq  # the snapshot was written
        assert _restored(second) == {"leaderboard", "directions"}
        assert_as_drawn_afresh(second)
