"""The record's lists of entries, where an entry read back from the index stays its index line until read.

A large record is nearly all messages, and decoding each line into an entry object was most of a
restart's time and most of the memory (a decoded message costs about five times its line). So
`State.log` and `State.messages` hold an entry read back from the index as its line (bytes) and
decode it each time it is read; entries written since the start are held as they are. Reading a
page decodes that page only (a few microseconds an entry); what scans many messages (search, the
thread index's first build) pays the decode for each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar, cast, overload

import orjson

from collab_backend.record.entries import Entry, decode_data, encode

T = TypeVar("T")


def parse_lines(lines: list[bytes]) -> list[dict[str, Any]]:
    """Index lines parsed in one call.

    JSON strings escape newlines, so the lines joined with commas are one JSON array (a parse per
    line costs twice as much). orjson parses it in about half the time of the standard library;
    the standard library still reads what orjson refuses (a NaN, which `json.dumps` would have written).
    """
    array = b"[" + b",".join(lines) + b"]"
    try:
        return cast(list[dict[str, Any]], orjson.loads(array))
    except orjson.JSONDecodeError:
        return cast(list[dict[str, Any]], json.loads(array))


def split_lines(data: bytes) -> list[bytes]:
    """The lines of an index segment (raw newlines only separate entries: JSON escapes those in strings)."""
    lines = data.split(b"\n")
    while lines and not lines[-1]:  # the newline ending the last line (no copy of the data to strip it)
        lines.pop()
    return lines


def decode_line(line: bytes) -> Entry:
    """The entry one index line holds."""
    return decode_data(parse_lines([line])[0])


class Entries(Sequence[T], Generic[T]):
    """A list of entries, some held as their index line (`items` holds both kinds)."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, at: int) -> T: ...

    @overload
    def __getitem__(self, at: slice) -> list[T]: ...

    def __getitem__(self, at: int | slice) -> T | list[T]:
        if isinstance(at, slice):
            return [cast(T, decode_line(i)) if type(i) is bytes else i for i in self.items[at]]
        item = self.items[at]
        return cast(T, decode_line(item)) if type(item) is bytes else cast(T, item)

    def __iter__(self) -> Iterator[T]:
        for item in self.items:
            yield cast(T, decode_line(item)) if type(item) is bytes else item

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entries) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Entries({len(self.items)} entries)"

    def append(self, entry: T) -> None:
        self.items.append(entry)

    def pop(self) -> T:
        item = self.items.pop()
        return cast(T, decode_line(item)) if type(item) is bytes else cast(T, item)

    def held(self, start: int, stop: int | None = None) -> list[T | bytes]:
        """items[start:stop] as they are held: an entry, or the index line (bytes) it is read from."""
        return self.items[start:stop]

    def held_line(self, at: int) -> str | None:
        """The index line item `at` is held as, as text; None if it is held as an entry."""
        item = self.items[at]
        return item.decode() if type(item) is bytes else None

    def lines(self, start: int, stop: int) -> list[bytes]:
        """The index lines of items[start:stop] (a line held is given as it is, an entry is encoded)."""
        return [i if type(i) is bytes else encode(i).encode() for i in self.items[start:stop]]
