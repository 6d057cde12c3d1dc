"""The audit log: every write request, accepted or refused, in the organizers' private bucket.

Events are buffered and written as new append-only segments (`audit/{day}/{time}-{n}.jsonl`),
never by downloading and rewriting a growing file. An event holds who (HF user, agent), what
(method, route, status, error code) and when; never a token or a request body.
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


class AuditLog:
    """Buffers events and flushes them as segments, from a background thread."""

    def __init__(
        self, storage: Storage, bucket: str, *, clock: Callable[[], float] = time.time, interval: float = 2.0
    ) -> None:
        self.storage, self.bucket, self.clock, self.interval = storage, bucket, clock, interval
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._segments = 0
        self.dropped = 0

    def record(self, **event: Any) -> None:
        """Queue one event (bounded: under a storage outage the oldest are counted and dropped)."""
        event["at"] = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
        with self._lock:
            if len(self._events) >= MAX_BUFFER:
                self._events.pop(0)
                self.dropped += 1
            self._events.append(event)

    def flush(self) -> int:
        """Write buffered events as one new segment; return how many were written."""
        with self._lock:
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
                self._events[:0] = events[-MAX_BUFFER:]
            return 0
        return len(events)

    def start(self) -> None:
        """Flush every `interval` seconds until stopped."""
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def stop(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.flush()
