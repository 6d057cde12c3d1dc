"""Entries read back from the index are held as their lines: what is read from them is what the entries say."""

from __future__ import annotations

import json
from dataclasses import asdict

from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import Entry, FileCopyEntry, MessageEntry, ResultEntry, encode
from collab_backend.record.lines import decode_line, parse_lines
from collab_backend.record.state import State
from collab_backend.services.threads import search

# Letters Unicode case folding ties to ASCII ones (long s, Kelvin sign, dotted and dotless i), what
# JSON escapes, and what it keeps raw.
TRICKY = st.sampled_from(list('sSkKiI\u017f\u212a\u0130\u0131aB"\\\n\t\x01 \u20ac\u2028'))


def _states(bodies: list[str]) -> tuple[State, State]:
    """The same messages in one state held as index lines (as after a restart) and in one as entries."""
    entries = [MessageEntry(i + 1, 1.0 + i, f"m{i}", f"a{i % 2}", "u", "general", b) for i, b in enumerate(bodies)]
    held, decoded = State(), State()
    lines = [encode(e).encode() for e in entries]
    held.load_parsed(lines, parse_lines(lines))
    for entry in entries:
        decoded.apply(entry)
    assert all(type(item) is bytes for item in held.messages.items)
    return held, decoded


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(TRICKY, max_size=12), min_size=1, max_size=8), st.text(TRICKY, min_size=1, max_size=3))
def test_search_over_index_lines_finds_what_it_finds_over_entries(bodies: list[str], query: str) -> None:
    held, decoded = _states(bodies)
    positions = range(len(bodies))
    assert search(held, positions, query, 50, None) == search(decoded, positions, query, 50, None)


def test_a_state_held_as_lines_reads_and_compares_as_its_entries() -> None:
    held, decoded = _states(["one", "two @a0", "three"])
    assert held == decoded
    assert held.messages[1] == decoded.messages[1] and held.log[0:2] == decoded.log[0:2]
    assert list(held.messages) == list(decoded.messages)
    assert held.log.lines(0, 3) == decoded.log.lines(0, 3)  # what a merge writes: the same lines
    assert held.messages.pop() == decoded.messages.pop()


def test_an_index_line_is_the_entry_s_fields_as_asdict_gives_them() -> None:
    entries: list[Entry] = [
        MessageEntry(3, 1.5, "1500-3", "speedy", "alice", "general", "h\u2028i \"q\"", thread="t",
                     mentions=("bob",), notify=("bob",), source={"bucket": "b", "path": "p", "hash": "h"},
                     client_fields={"k": [1, {"x": 2}]}),
        FileCopyEntry(4, 2.0, "speedy", "artifacts", (("a/p", "p", "h", 3), ("a/q", "q", "h2", 4))),
        ResultEntry(5, 2.5, "r1", "speedy", "alice", 1e16, "agent-run", {"ppl": 2.25}, None, ("r0",), None, "",
                    {"b": "c"}),
    ]  # fmt: skip
    for entry in entries:
        expected = json.dumps(asdict(entry), ensure_ascii=False, separators=(",", ":"))
        assert encode(entry) == expected and decode_line(expected.encode()) == entry
