"""Rate limits exactly as the spec states them: at most `limit` events in any `window_seconds`.

Per key, as a sliding log (not fixed buckets, which allow twice the limit across a boundary).

Keys are bounded (least recently used dropped), so unknown callers cannot grow memory.

Windows survive a restart: the record holds every accepted event with its time, so at start
`replay` charges the limiters with the events still inside their windows (a refused or failed
request was released, so it is in neither place). `charge_of` is the one statement of which
entry counted against which limiter and key; a test checks it against every service.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collab_backend import naming
from collab_backend.errors import APIError
from collab_backend.record.entries import (
    AgentEntry,
    ChannelEntry,
    Entry,
    FileCopyEntry,
    FollowEntry,
    JobEntry,
    MessageEntry,
    ProfileEntry,
    ResultEntry,
    RunRequestEntry,
    TaskforceEntry,
    TaskforceNoteEntry,
    TokenStatsEntry,
)
from collab_backend.spec import ChallengeSpec, Rate

if TYPE_CHECKING:
    from collab_backend.record.state import State

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

    def seed(self, key: str, at: float) -> None:
        """Count a past event (read back at start); events are seeded oldest first."""
        with self._lock:
            self._events.setdefault(key, deque()).append(at)
            self._events.move_to_end(key)
            while len(self._events) > MAX_KEYS:
                self._events.popitem(last=False)

    def release(self, key: str) -> None:
        """Give back the last event (the action it counted failed before taking effect)."""
        with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()


@dataclass(frozen=True)
class Limits:
    """The spec's rate limits, enforced per key."""

    raw_posts: RateLimiter
    promotions: RateLimiter
    registrations: RateLimiter

    @classmethod
    def from_spec(cls, spec: ChallengeSpec, clock: Callable[[], float] = time.monotonic) -> Limits:
        board = spec.board
        return cls(
            RateLimiter("raw posts", board.raw_posts, clock),
            RateLimiter("promotions", board.promotions, clock),
            RateLimiter("registrations", board.registrations, clock),
        )


def charge_of(entry: Entry, state: State) -> tuple[str, str] | None:
    """Which limiter (`raw_posts`, `promotions`, `registrations`) and key the entry was charged to."""
    if isinstance(entry, MessageEntry):
        if entry.attribution == "promoted" and entry.source:
            return "promotions", entry.source["bucket"]
        return ("raw_posts", entry.author) if entry.role in ("agent", "human") else None  # broadcasts are free
    if isinstance(entry, ResultEntry | TaskforceEntry):
        return "promotions", entry.source["bucket"]
    if isinstance(entry, FileCopyEntry):
        agent = state.agents.get(entry.agent)
        return ("promotions", agent.bucket) if agent else None
    if isinstance(entry, TaskforceNoteEntry):
        return "raw_posts", entry.author
    if isinstance(entry, TokenStatsEntry | FollowEntry | ProfileEntry | RunRequestEntry):
        return "raw_posts", entry.agent
    if isinstance(entry, ChannelEntry):
        return None if entry.creator == naming.ORGANIZERS else ("raw_posts", entry.creator)
    if isinstance(entry, JobEntry):  # an attempt, charged or refunded later; its other events are free
        return ("raw_posts", entry.agent) if entry.event == "launch" else None
    if isinstance(entry, AgentEntry):  # only a first binding is charged, not a re-registration
        return ("registrations", entry.user) if state.registered_seq.get(entry.agent_id) == entry.seq else None
    return None


def replay(limits: Limits, state: State, wall_now: float) -> int:
    """Charge the limiters with the record's events still inside their windows; return how many.

    Entries carry wall-clock times and limiters count on their own clock: an event `age` seconds
    old is seeded at `limiter clock now - age`. Only the tail of the log is read.
    """
    limiters = {"raw_posts": limits.raw_posts, "promotions": limits.promotions, "registrations": limits.registrations}
    horizon = wall_now - max(limiter.rate.window_seconds for limiter in limiters.values())
    start = len(state.log)
    while start > 0 and state.log[start - 1].ts > horizon:
        start -= 1
    counted = 0
    for entry in state.log[start:]:
        charge = charge_of(entry, state)
        if charge is None:
            continue
        limiter = limiters[charge[0]]
        age = wall_now - entry.ts
        if age < limiter.rate.window_seconds:
            limiter.seed(charge[1], limiter.clock() - age)
            counted += 1
    return counted
