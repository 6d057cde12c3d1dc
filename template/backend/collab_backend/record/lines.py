"""The record's lists of entries, where an entry read back from the index stays its index line until read.

A large record is nearly all messages, and decoding each line into an entry object was most of a
restart's time and most of the memory (a decoded message costs about five times its line). So
`State.log` and `State.messages` hold an entry read back from the index as its line and decode it
each time it is read; entries written since the start are held as they are. Reading a page decodes
that page only (a few microseconds an entry); what scans many messages (search, the thread
index's first build) pays the decode for each.

A start from a snapshot goes further: the index segments up to the snapshot's entry stay whole, as
read (`Stream`), and the snapshot says where each entry's line starts in them, so the million lines
are not even split apart. Those entries are the first of each list (`Entries.starts`); a line is
sliced out when its entry is read (a bisect and a search for its newline). Everything after is
held in `Entries.items`, as a line (bytes) or an entry.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar, cast, overload

import orjson

from collab_backend.record.entries import Entry, decode_data, encode

T = TypeVar("T")


def parse_lines(lines: list[bytes]) -> list[dict[str, Any]]:
    """Index lines parsed, one orjson call each.

    Over 125,000 lines of results, or of messages, one call per line took about two thirds of the
    time of one call over the lines joined into a JSON array. The standard library still reads
    what orjson refuses (a NaN, which `json.dumps` would have written).
    """
    try:
        return list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return [_parse_line(line) for line in lines]


def _parse_line(line: bytes) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], orjson.loads(line))
    except orjson.JSONDecodeError:
        return cast(dict[str, Any], json.loads(line))


def split_lines(data: bytes) -> list[bytes]:
    """The lines of an index segment (raw newlines only separate entries: JSON escapes those in strings)."""
    lines = data.split(b"\n")
    while lines and not lines[-1]:  # the newline ending the last line (no copy of the data to strip it)
        lines.pop()
    return lines


def decode_line(line: bytes) -> Entry:
    """The entry one index line holds."""
    return decode_data(parse_lines([line])[0])


class Stream:
    """Index segments kept whole, in order: the index as one stream of bytes, a line found by where it starts."""

    __slots__ = ("blobs", "bounds")

    def __init__(self) -> None:
        self.blobs: list[bytes] = []
        self.bounds: list[int] = []  # where in the stream each blob starts

    @property
    def size(self) -> int:
        return self.bounds[-1] + len(self.blobs[-1]) if self.blobs else 0

    def add(self, blob: bytes) -> None:
        """Add the next segment (whole lines, each ended by a newline)."""
        self.bounds.append(self.size)
        self.blobs.append(blob)

    def line(self, start: int) -> bytes:
        """The line starting at offset `start`; ValueError if no line starts there."""
        k = bisect_right(self.bounds, start) - 1
        if k < 0:
            raise ValueError(f"no index line starts at offset {start}")
        blob, at = self.blobs[k], start - self.bounds[k]
        end = blob.find(b"\n", at)
        if end < 0 or (at and blob[at - 1] != 0x0A):
            raise ValueError(f"no index line starts at offset {start}")
        return blob[at:end]

    def lines_at(self, starts: array[int], positions: Sequence[int]) -> list[bytes]:
        """The lines of the entries at `positions` (ascending), each ending where the next entry's starts.

        One pass over the segments, no search: the next entry's offset says where a line ends.
        ValueError if a line does not start and end at a line's bounds.
        """
        out, blobs, bounds, k, last = [], self.blobs, self.bounds, 0, len(starts) - 1
        for at in positions:
            start = starts[at]
            while k + 1 < len(bounds) and bounds[k + 1] <= start:
                k += 1
            blob, base = blobs[k], bounds[k]
            low = start - base
            high = starts[at + 1] - 1 - base if at < last else blob.find(b"\n", low)  # where its newline is
            if not (0 <= low <= high < len(blob)) or blob[high] != 0x0A or (low and blob[low - 1] != 0x0A):
                raise ValueError(f"no index line starts at offset {start}")
            out.append(blob[low:high])
        return out


_NO_STARTS = array("Q")


class Entries(Sequence[T], Generic[T]):
    """A list of entries: the first as lines of a `Stream` (`starts`), the rest in `items` (a line or an entry)."""

    __slots__ = ("items", "starts", "stream", "suffix")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.stream: Stream | None = None
        self.starts: array[int] = _NO_STARTS  # where the first entries' lines start in `stream`
        self.suffix = b""  # how each of those lines ends (a check that the offsets are the ones meant)

    def adopt_stream(self, stream: Stream, starts: array[int], suffix: bytes = b"") -> None:
        """Put the entries whose lines start at `starts` in `stream` first (into an empty list)."""
        if self.items or self.starts:
            raise ValueError("a stream goes first, into an empty list")
        self.stream, self.starts, self.suffix = stream, starts, suffix

    def stream_end(self) -> int:
        """Where in the stream the entries after the first ones start (0 without a stream)."""
        if self.stream is None or not self.starts:
            return 0
        return self.starts[-1] + len(self._line(len(self.starts) - 1)) + 1

    def _line(self, at: int) -> bytes:
        line = self.stream.line(self.starts[at])  # type: ignore[union-attr]  # set with `starts`
        if not line.endswith(self.suffix):
            raise ValueError(f"entry {at} is not where the snapshot put it (offset {self.starts[at]})")
        return line

    def _held(self, at: int) -> Any:
        first = len(self.starts)
        return self._line(at) if at < first else self.items[at - first]

    def __len__(self) -> int:
        return len(self.starts) + len(self.items)

    @overload
    def __getitem__(self, at: int) -> T: ...

    @overload
    def __getitem__(self, at: slice) -> list[T]: ...

    def __getitem__(self, at: int | slice) -> T | list[T]:
        if isinstance(at, slice):
            start, stop, step = at.indices(len(self))
            held = self.held(start, stop) if step == 1 else [self._held(i) for i in range(start, stop, step)]
            return [cast(T, decode_line(i) if type(i) is bytes else i) for i in held]
        size = len(self)
        if at < 0:
            at += size
        if not 0 <= at < size:
            raise IndexError("entry index out of range")
        item = self._held(at)
        return cast(T, decode_line(item)) if type(item) is bytes else cast(T, item)

    def __iter__(self) -> Iterator[T]:
        for at in range(len(self.starts)):
            yield cast(T, decode_line(self._line(at)))
        for item in self.items:
            yield cast(T, decode_line(item)) if type(item) is bytes else item

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entries) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entries({len(self)} entries)"

    def append(self, entry: T) -> None:
        self.items.append(entry)

    def pop(self) -> T:
        if not self.items:  # only what was written since the start is ever taken back
            raise IndexError("pop from the entries read back at start")
        item = self.items.pop()
        return cast(T, decode_line(item)) if type(item) is bytes else cast(T, item)

    def held(self, start: int, stop: int | None = None) -> list[T | bytes]:
        """items[start:stop] as they are held: an entry, or the index line (bytes) it is read from."""
        first = len(self.starts)
        start, stop, _ = slice(start, stop).indices(len(self))
        lines = [self._line(at) for at in range(start, min(stop, first))]
        return lines + self.items[max(start - first, 0) : max(stop - first, 0)]

    def held_with(self, needle: bytes, start: int, stop: int) -> list[T | bytes]:
        """`held(start, stop)`, leaving out the lines kept in the stream that do not contain `needle`.

        The stream's segments are searched for it (in C) instead of slicing out every line.
        """
        first = len(self.starts)
        found: list[T | bytes] = []
        if start < min(stop, first) and self.stream is not None:
            low, high = self.starts[start], (self.starts[stop] if stop < first else self.stream_end())
            for blob, bound in zip(self.stream.blobs, self.stream.bounds, strict=True):
                at = max(low - bound, 0)
                while at < len(blob) and (hit := blob.find(needle, at)) >= 0 and bound + hit < high:
                    k = bisect_right(self.starts, bound + hit) - 1  # the entry whose line may hold it
                    line = self._line(k)
                    if bound + hit < self.starts[k] + len(line):  # not a line of the stream this list leaves out
                        found.append(line)
                    at = blob.find(b"\n", hit) + 1 or len(blob)
                if bound + len(blob) >= high:
                    break
        return found + self.items[max(start - first, 0) : max(stop - first, 0)]

    def held_line(self, at: int) -> str | None:
        """The index line item `at` is held as, as text; None if it is held as an entry."""
        item = self._held(at if at >= 0 else at + len(self))
        return item.decode() if type(item) is bytes else None

    def lines(self, start: int, stop: int) -> list[bytes]:
        """The index lines of items[start:stop] (a line held is given as it is, an entry is encoded)."""
        return [i if type(i) is bytes else encode(cast(Entry, i)).encode() for i in self.held(start, stop)]
