"""What each direction holds: its results, posts, agents and last activity, from one pass over the record's log.

The pass resumes where it stopped, so a read costs the entries written since the last one; a
record taken back past that point (a failed write's undo) starts it over.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from collab_backend.errors import APIError
from collab_backend.record.entries import DirectionEntry, MessageEntry, ResultEntry
from collab_backend.record.lines import decode_line
from collab_backend.record.state import State


def check_direction(state: State, value: Any) -> str | None:
    """The direction a result or a post names (None when it names none), or DIRECTION_UNKNOWN listing them."""
    if value is None:
        return None
    if isinstance(value, str) and value in state.directions:
        return value
    known = ", ".join(list(state.directions)[:50]) or "none yet"
    raise APIError("DIRECTION_UNKNOWN", f"no direction {value!r}",
                   f"name one of: {known} (GET /v1/directions); or open it first: POST /v1/directions")  # fmt: skip


@dataclass
class Activity:
    """One direction's activity: its results (ids, in order), posts, agents and last times."""

    results: list[str] = field(default_factory=list)
    posts: int = 0
    last: float = 0.0
    last_result: float | None = None
    agents: dict[str, None] = field(default_factory=dict)  # in order of first activity


_NAMED = b'"direction"'  # in every index line whose entry names a direction (as a JSON key)
QUICK = 1_000  # new entries the event loop takes in itself; more go to a worker thread


class DirectionIndex:
    """Per direction, its results, posts, agents and last activity: a pass over the log resuming where it stopped."""

    def __init__(self) -> None:
        self._state_id: int | None = None
        self._seen = 0  # entries of the log looked at
        self._last: object = None  # the last entry (or line) looked at, as the log holds it
        self.activity: dict[str, Activity] = {}
        self._lock = threading.Lock()

    def get(self, state: State) -> dict[str, Activity]:
        with self._lock:
            return self._update(state)

    def quick(self, state: State) -> dict[str, Activity] | None:
        """`get` when it costs the caller no wait: nobody else is updating and at most `QUICK` entries are new.

        The event loop asks this first; None sends it to a worker thread for `get`.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._state_id != id(state) or len(state.log) - self._seen > QUICK:
                return None
            return self._update(state)
        finally:
            self._lock.release()

    def save(self, state: State) -> dict[str, Any]:
        """What each direction holds, up to the state's last entry, as data for a snapshot (`restore`)."""
        with self._lock:
            activity = self._update(state)
            return {
                "seen": self._seen,
                "activity": {
                    name: [a.results, a.posts, a.last, a.last_result, list(a.agents)] for name, a in activity.items()
                },
            }

    def restore(self, state: State, data: dict[str, Any]) -> None:
        """Take back what `save` gave, the state standing at the entry it was saved at; ValueError etc. if not."""
        seen = data["seen"]
        if seen != len(state.log):
            raise ValueError(f"the saved activity runs to entry {seen}, the record to {len(state.log)}")
        activity = {
            str(name): Activity(list(results), int(posts), float(last), None if at is None else float(at),
                                dict.fromkeys(agents))
            for name, (results, posts, last, at, agents) in data["activity"].items()
        }  # fmt: skip
        with self._lock:
            self._state_id, self._seen, self.activity = id(state), seen, activity
            self._last = state.log.held(seen - 1, seen)[0] if seen else None

    def _update(self, state: State) -> dict[str, Activity]:
        """Take in the entries written since the last call (all of them for another state).

        A message read back from the index stays its line unless the line names a direction:
        the first pass over a million messages decodes the few that do, not all of them (and
        lines kept in whole segments are found by searching the segments, `Entries.held_with`).
        """
        log = state.log
        stale = self._state_id != id(state) or len(log) < self._seen
        if not stale and self._seen:
            held = log.held(self._seen - 1, self._seen)[0]  # a line read back is sliced anew: equal, not the same
            stale = held is not self._last and not (type(held) is bytes and held == self._last)
            # stale: an entry taken back and another written in its place
        if stale:
            self._state_id, self._seen, self.activity = id(state), 0, {}
        size = len(log)  # the writer may append meanwhile: this pass stops here
        for item in log.held_with(_NAMED, self._seen, size):
            if type(item) is bytes:
                if _NAMED not in item:
                    continue
                item = decode_line(item)
            self._add(item)
        if size > self._seen:
            self._seen, self._last = size, log.held(size - 1, size)[0]
        return self.activity

    def _add(self, entry: Any) -> None:
        if isinstance(entry, DirectionEntry):
            found = self.activity.setdefault(entry.name, Activity())
            found.last = max(found.last, entry.ts)
            return
        if not isinstance(entry, ResultEntry | MessageEntry):
            return
        name = entry.client_fields.get("direction")
        if not isinstance(name, str):
            return
        found = self.activity.setdefault(name, Activity())
        found.last = max(found.last, entry.ts)
        if isinstance(entry, ResultEntry):
            found.results.append(entry.id)
            found.last_result = entry.ts
            found.agents.setdefault(entry.agent)
        else:
            found.posts += 1
            found.agents.setdefault(entry.author)
