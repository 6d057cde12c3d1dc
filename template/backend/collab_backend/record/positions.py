"""Each message's position by its id, without hashing a million ids at start.

A dict of a million ids cost a restart half a second to build. Message ids sort in the order they
are written (`services/board.message_id`: the millisecond, then the sequence number), so the ids a
snapshot gives, in position order, are usually sorted already: a lookup among them is a bisect
(about twenty comparisons), and only the messages written since the start go in a dict. Ids that
are not sorted (a clock set back while the record was written) go in the dict, as before.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Iterator, MutableMapping
from itertools import chain, islice


class Positions(MutableMapping[str, int]):
    """Message id -> position in `State.messages`: sorted ids for the first positions, then a dict."""

    __slots__ = ("recent", "sorted_ids")

    def __init__(self) -> None:
        self.sorted_ids: list[str] = []  # the ids of positions 0, 1, ..., ascending
        self.recent: dict[str, int] = {}  # every other message's id

    @classmethod
    def of(cls, ids: list[str]) -> Positions:
        """The positions of `ids`, in position order (a bisect over them when they are sorted)."""
        out = cls()
        if all(map(operator.lt, ids, islice(ids, 1, None))):
            out.sorted_ids = ids
        else:
            out.recent = dict(zip(ids, range(len(ids)), strict=True))
        return out

    def _sorted(self, key: object) -> int:
        ids = self.sorted_ids
        if type(key) is not str or not ids:
            return -1
        at = bisect_left(ids, key)
        return at if at < len(ids) and ids[at] == key else -1

    def __getitem__(self, key: str) -> int:
        found = self.recent.get(key)
        if found is not None:
            return found
        at = self._sorted(key)
        if at < 0:
            raise KeyError(key)
        return at

    def __contains__(self, key: object) -> bool:
        return key in self.recent or self._sorted(key) >= 0

    def __setitem__(self, key: str, position: int) -> None:
        self.recent[key] = position

    def __delitem__(self, key: str) -> None:
        del self.recent[key]  # only a message written since the start is ever taken back

    def __iter__(self) -> Iterator[str]:
        return chain(self.sorted_ids, self.recent)

    def __len__(self) -> int:
        return len(self.sorted_ids) + len(self.recent)

    def __repr__(self) -> str:
        return f"Positions({len(self)} messages)"
