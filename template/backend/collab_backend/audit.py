"""The audit log: every write request, accepted or refused, in the organizers' private bucket.

Events are buffered and written as new append-only segments (`audit/{day}/{time}-{n}.jsonl`),
never by downloading and rewriting a growing file. An event holds who (HF user), what (method,
path, status, error code, the record entries it wrote) and when; never a token or a request body.

A request that changed the record is one event: it cost a rate-limited write, so the log grows
no faster than the record. Any other (refused, unauthenticated, or asking for what already held)
is *tallied*: counted per kind (method, route, status, code, user) and written once per
`tally_window` as one event with its count and first and last time. At most MAX_TALLIES kinds are
told apart in a window, the rest counted together, so a flood of refusals costs a bounded number
of lines whatever its rate.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collab_backend.storage import Add, Storage, StorageError

log = logging.getLogger("collab_backend.audit")
MAX_BUFFER = 10_000
MAX_TALLIES = 64
TALLY_WINDOW = 60.0
_OTHER = (("other", "more kinds than the tally tells apart"),)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class AuditLog:
    """Buffers events and flushes them as segments, from a background thread."""

    def __init__(
        self,
        storage: Storage,
        bucket: str,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = 2.0,
        tally_window: float = TALLY_WINDOW,
    ) -> None:
        self.storage, self.bucket, self.clock, self.interval = storage, bucket, clock, interval
        self.tally_window = tally_window
        self._events: list[dict[str, Any]] = []
        self._tallies: dict[tuple[tuple[str, Any], ...], list[float]] = {}  # kind -> [count, first, last]
        self._tally_since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._segments = 0
        self.dropped = 0

    def record(self, **event: Any) -> None:
        """Queue one event (bounded: under a storage outage the oldest are counted and dropped)."""
        event["at"] = _iso(self.clock())
        with self._lock:
            self._append([event])

    def _append(self, events: list[dict[str, Any]]) -> None:
        self._events += events
        excess = len(self._events) - MAX_BUFFER
        if excess > 0:
            del self._events[:excess]
            self.dropped += excess

    def tally(self, **event: Any) -> None:
        """Count one request that changed nothing, with its kind (values must be hashable)."""
        now = self.clock()
        kind = tuple(sorted(event.items()))
        with self._lock:
            if not self._tallies:
                self._tally_since = now
            if kind not in self._tallies and len(self._tallies) >= MAX_TALLIES:
                kind = _OTHER
            counted = self._tallies.setdefault(kind, [0, now, now])
            counted[0] += 1
            counted[2] = now

    def _take_tallies(self, now: float, all_tallies: bool) -> None:
        """Move the tallies into the events once their window passed (or when asked to); call locked."""
        if not self._tallies or (not all_tallies and now - self._tally_since < self.tally_window):
            return
        at = _iso(now)
        self._append(
            [
                {**dict(kind), "count": int(count), "first": _iso(first), "last": _iso(last), "at": at}
                for kind, (count, first, last) in self._tallies.items()
            ]
        )
        self._tallies = {}

    def flush(self, *, all_tallies: bool = True) -> int:
        """Write buffered events as one new segment; return how many were written.

        Tallies are written too: all of them, or (the periodic flush) those whose window passed.
        """
        with self._lock:
            self._take_tallies(self.clock(), all_tallies)
            events, self._events = self._events, []
        if not events:
            return 0
        now = datetime.fromtimestamp(self.clock(), UTC)
        self._segments += 1
        path = f"audit/{now:%Y-%m-%d}/{now:%H%M%S%f}-{self._segments:06d}.jsonl"
        data = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events).encode()
        try:
            self.storage.batch(self.bucket, [Add(path, data)])
        except StorageError as exc:
            log.warning("audit segment not written yet (%d events kept): %s", len(events), exc)
            with self._lock:
                kept, self._events = self._events, []
                self._append(events + kept)
            return 0
        return len(events)

    def start(self) -> None:
        """Flush every `interval` seconds until stopped."""
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush(all_tallies=False)

    def stop(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.flush()
