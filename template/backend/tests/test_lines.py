"""Entries read back from the index are held as their lines: what is read from them is what the entries say."""

from __future__ import annotations

import json
from array import array
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_backend.record.entries import Entry, FileCopyEntry, MessageEntry, ResultEntry, encode
from collab_backend.record.lines import Entries, Stream, decode_line, parse_lines
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


def _streamed(lines: list[bytes], cuts: list[int], first: int) -> tuple[Entries[Entry], list[bytes]]:
    """The lines as segments kept whole (cut at `cuts`), the first `first` of them placed from the stream."""
    stream, at, starts, offset = Stream(), 0, array("Q"), 0
    for cut in [*sorted(set(cuts)), len(lines)]:
        if cut > at:
            stream.add(b"".join(line + b"\n" for line in lines[at:cut]))
            at = cut
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    entries: Entries[Entry] = Entries()
    entries.adopt_stream(stream, starts[:first])
    for line in lines[first:]:
        entries.append(line)  # type: ignore[arg-type]  # held as a line, as after a replay
    return entries, lines


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(TRICKY, max_size=10), min_size=1, max_size=12),
    st.lists(st.integers(1, 11), max_size=4),
    st.data(),
)
def test_entries_placed_from_whole_segments_read_as_the_same_entries_held_one_by_one(
    bodies: list[str], cuts: list[int], data: st.DataObject
) -> None:
    named = [{"direction": b} if i % 3 else {} for i, b in enumerate(bodies)]
    lines = [
        encode(MessageEntry(i + 1, 1.0 + i, f"m{i}", "a", "u", "general", b, client_fields=named[i])).encode()
        for i, b in enumerate(bodies)
    ]
    first = data.draw(st.integers(0, len(lines)))
    streamed, _ = _streamed(lines, [c for c in cuts if c < len(lines)], first)
    plain: Entries[Entry] = Entries()
    for line in lines:
        plain.append(line)  # type: ignore[arg-type]
    size = len(lines)
    assert len(streamed) == size and list(streamed) == list(plain) and streamed == plain
    assert [streamed[i] for i in range(-size, size)] == [plain[i] for i in range(-size, size)]
    start, stop = data.draw(st.integers(-size - 1, size + 1)), data.draw(st.integers(-size - 1, size + 1))
    step = data.draw(st.sampled_from([None, 1, 2, -1]))
    assert streamed[start:stop:step] == plain[start:stop:step]
    assert streamed.held(start, stop) == plain.held(start, stop) and streamed.lines(0, size) == lines
    assert [streamed.held_line(i) for i in range(size)] == [line.decode() for line in lines]
    low, high = sorted((data.draw(st.integers(0, size)), data.draw(st.integers(0, size))))
    needle = b'"direction"'
    assert [x for x in streamed.held_with(needle, low, high) if needle in x] == [
        x for x in plain.held(low, high) if needle in x
    ]
    assert streamed.stream_end() == sum(len(line) + 1 for line in lines[:first])


def test_an_offset_that_starts_no_line_is_refused_when_read() -> None:
    lines = [encode(MessageEntry(i + 1, 1.0, f"m{i}", "a", "u", "general", "x")).encode() for i in range(3)]
    streamed, _ = _streamed(lines, [1], 3)
    streamed.starts[1] += 1  # the snapshot's offsets do not fit the index
    assert streamed[0] == decode_line(lines[0])
    with pytest.raises(ValueError, match="no index line starts"):
        streamed[1]
    messages: Entries[Entry] = Entries()
    result = encode(ResultEntry(1, 1.0, "r", "a", "u", 1.0, "agent-run", {}, None, (), None, "", {})).encode()
    stream = Stream()
    stream.add(result + b"\n")
    messages.adopt_stream(stream, array("Q", [0]), b',"kind":"message"}')
    with pytest.raises(ValueError, match="not where the snapshot put it"):
        messages[0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(TRICKY, max_size=10), min_size=1, max_size=12), st.lists(st.integers(1, 11), max_size=4),
       st.data())  # fmt: skip
def test_lines_at_positions_are_the_lines_there_and_offsets_off_a_line_are_refused(
    bodies: list[str], cuts: list[int], data: st.DataObject
) -> None:
    lines = [encode(MessageEntry(i + 1, 1.0, f"m{i}", "a", "u", "general", b)).encode() for i, b in enumerate(bodies)]
    streamed, _ = _streamed(lines, [c for c in cuts if c < len(lines)], len(lines))
    stream, starts = streamed.stream, streamed.starts
    assert stream is not None
    chosen = sorted(data.draw(st.sets(st.integers(0, len(lines) - 1))))
    assert stream.lines_at(starts, chosen) == [lines[at] for at in chosen]
    moved = array("Q", starts)
    at = data.draw(st.integers(0, len(lines) - 1))
    moved[at] += data.draw(st.sampled_from([1, 2, -1])) if at else 1
    if at + 1 < len(lines) and moved[at] >= moved[at + 1]:
        return  # not an offset the check can tell from a line's (it would point into the next line)
    with pytest.raises(ValueError, match="no index line starts"):
        stream.lines_at(moved, [at])


def test_a_search_of_a_list_placed_from_a_stream_finds_only_its_own_lines() -> None:
    """The messages placed from a stream that also holds other entries' lines: a match in those is none of theirs."""

    def result(seq: int, named: str) -> ResultEntry:
        return ResultEntry(seq, 1.0, f"r{seq}", "a", "u", 1.0, "agent-run", {}, None, (), None, "", {},
                           client_fields={"direction": named})  # fmt: skip

    entries = [
        MessageEntry(1, 1.0, "m1", "a", "u", "general", "plain"),
        result(2, "x"),
        MessageEntry(3, 3.0, "m3", "a", "u", "general", "named", client_fields={"direction": "x"}),
        result(4, "y"),
        MessageEntry(5, 5.0, "m5", "a", "u", "general", "plain"),
    ]
    lines = [encode(e).encode() for e in entries]
    stream, starts, offset = Stream(), array("Q"), 0
    stream.add(b"".join(line + b"\n" for line in lines))
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    messages: Entries[Entry] = Entries()
    messages.adopt_stream(stream, array("Q", [starts[0], starts[2], starts[4]]), b',"kind":"message"}')
    assert messages.held_with(b'"direction"', 0, 3) == [lines[2]]
    assert [m.id for m in messages] == ["m1", "m3", "m5"]  # type: ignore[attr-defined]
