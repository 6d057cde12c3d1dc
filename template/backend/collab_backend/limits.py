"""Rate limits exactly as the spec states them: at most `limit` events in any `window_seconds`.

Per key, as a sliding log (not fixed buckets, which allow twice the limit across a boundary).

Keys are bounded (least recently used dropped), so unknown callers cannot grow memory.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

from collab_backend.errors import APIError
from collab_backend.spec import Rate

MAX_KEYS = 100_000


class RateLimiter:
    """One limiter per kind of event (raw posts, promotions, registrations)."""

    def __init__(self, name: str, rate: Rate, clock: Callable[[], float]) -> None:
        self.name, self.rate, self.clock = name, rate, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> None:
        """Record one event for `key`, or raise RATE_LIMITED with the seconds to wait."""
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(key, deque())
            self._events.move_to_end(key)
            while events and events[0] <= now - self.rate.window_seconds:
                events.popleft()
            if len(events) >= self.rate.limit:
                wait = max(1, math.ceil(events[0] + self.rate.window_seconds - now))
                raise APIError(
                    "RATE_LIMITED",
                    f"at most {self.rate.limit} {self.name} per {self.rate.window_seconds} s",
                    f"retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            events.append(now)
            while len(self._events) > MAX_KEYS:
                self._events.popitem(last=False)

    def release(self, key: str) -> None:
        """Give back the last event (the action it counted failed before taking effect)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()
