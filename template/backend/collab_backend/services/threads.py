"""Read views of the board for people: threads folded by channel, search, and the handles to mention.

`ThreadIndex` keeps, per channel, the positions of the messages that start a thread, with each
thread's reply count and latest reply. It is built from the record's lookups (no message is read),
and since the record's message list only grows, it then catches up with the messages added since
its last look (O(new messages)); if a message it saw was taken back (a failed write), it starts
over. Search walks the messages newest first and stops after a bounded number of them, handing
back a cursor to go on from: no request scans a million messages.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from collab_backend.models import message_json
from collab_backend.record.entries import MessageEntry
from collab_backend.record.state import State

SEARCH_BUDGET = 100_000  # messages one search request looks at, at most
CATCH_UP_INLINE = 5_000  # more new messages than this are indexed in a worker thread
_ESCAPED = re.compile(r'["\\\x00-\x1f]')  # what JSON writes escaped


@dataclass
class _Threads:
    roots: dict[str, list[int]] = field(default_factory=dict)  # channel -> positions of thread starts
    all_roots: list[int] = field(default_factory=list)
    replies: dict[str, int] = field(default_factory=dict)  # root id -> replies
    last_reply: dict[str, int] = field(default_factory=dict)  # root id -> position of its latest reply
    seen: int = 0
    last_id: str | None = None
    state_id: int = 0


class ThreadIndex:
    """Threads per channel, kept up to date incrementally."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._t = _Threads()

    async def current(self, state: State) -> _Threads:
        """The index caught up with the record (a long catch-up runs in a worker thread)."""
        t = self._t
        if t.state_id == id(state) and len(state.messages) - t.seen <= CATCH_UP_INLINE:
            return self.get(state)
        return await run_in_threadpool(self.get, state)

    def get(self, state: State) -> _Threads:
        with self._lock:
            t = self._t
            n = len(state.messages)
            stale = t.state_id != id(state) or t.seen > n
            if not stale and t.seen and state.messages[t.seen - 1].id != t.last_id:
                stale = True  # a message seen was taken back and another took its place
            if stale:
                t = self._t = self._build(state, n)
            return self._catch_up(t, state, n)

    @staticmethod
    def _catch_up(t: _Threads, state: State, n: int) -> _Threads:
        """The index `t` with the messages from its last look up to the first `n` folded in, one by one."""
        for position in range(t.seen, n):
            message = state.messages[position]
            if message.thread is None:
                t.roots.setdefault(message.channel, []).append(position)
                t.all_roots.append(position)
            else:
                t.replies[message.thread] = t.replies.get(message.thread, 0) + 1
                t.last_reply[message.thread] = position
        if n:
            t.seen, t.last_id = n, state.messages[n - 1].id
        return t

    @staticmethod
    def _build(state: State, n: int) -> _Threads:
        """The index of the first `n` messages, from the record's lookups: no message is read.

        A reply is a message in a thread's list (`State.by_thread`); every other message starts a thread.
        """
        t = _Threads(state_id=id(state))
        replies_at: set[int] = set()
        for root, positions in list(state.by_thread.items()):
            k = bisect_left(positions, n)  # the writer may append meanwhile: only what the first n hold
            if k:
                t.replies[root], t.last_reply[root] = k, positions[k - 1]
                replies_at.update(positions[:k])
        for channel, positions in list(state.by_channel.items()):
            roots = [p for p in positions[: bisect_left(positions, n)] if p not in replies_at]
            if roots:
                t.roots[channel] = roots
        t.all_roots = [p for p in range(n) if p not in replies_at]
        if n:
            t.seen, t.last_id = n, state.messages[n - 1].id
        return t


def thread_page(state: State, threads: _Threads, channel: str | None, limit: int, before: str | None) -> dict[str, Any]:
    """Thread starts newest first (of one channel, or all), each with its reply count and latest reply."""
    positions = threads.all_roots if channel is None else threads.roots.get(channel, [])
    roots, cursor = state.page(positions, limit=limit, before=before)
    items = []
    for root in roots:
        last = threads.last_reply.get(root.id)
        last_message = state.messages[last] if last is not None and last < len(state.messages) else None
        items.append(
            {
                **message_json(root),
                "replies": threads.replies.get(root.id, 0),
                "last_reply": message_json(last_message) if last_message else None,
            }
        )
    return {"items": items, "next": cursor}


def search(
    state: State, positions: Sequence[int], query: str, limit: int, before: str | None, budget: int = SEARCH_BUDGET
) -> dict[str, Any]:
    """Messages whose text contains `query` (any case), newest first, below the cursor.

    At most `budget` messages are looked at; `next` says where to go on from (the oldest message
    looked at) whether the page filled up or the budget ran out, and is None once the end is reached.
    """
    pattern = re.compile(re.escape(query), re.IGNORECASE)
    # A message held as its index line is decoded only if its line matches: a query with nothing JSON
    # escapes appears in the line as it appears in the body or the author (`ensure_ascii=False`).
    plain = not _ESCAPED.search(query)
    end = len(positions)
    if before is not None and before in state.position:
        end = bisect_left(positions, state.position[before])
    found: list[MessageEntry] = []
    i = end
    stop = max(0, end - budget)
    while i > stop and len(found) < limit:
        i -= 1
        line = state.messages.held_line(positions[i]) if plain else None
        if line is not None and not pattern.search(line):
            continue
        message = state.messages[positions[i]]
        if pattern.search(message.body) or pattern.search(message.author):
            found.append(message)
    oldest = state.messages[positions[i]].id if i > 0 and i < end else None
    return {"items": [message_json(m) for m in found], "next": oldest, "scanned": end - i}


class HandleIndex:
    """Every handle that can be mentioned (registered agents, people who posted), sorted for prefix lookups."""

    def __init__(self) -> None:
        self._key: tuple[int, int, int, str | None] = (0, -1, -1, None)
        self._handles: list[str] = []

    def get(self, state: State) -> list[str]:
        # The authors' count and the newest of them: an undone first post takes its author away again.
        key = (id(state), len(state.agents), len(state.by_author), _newest(state.by_author))
        if key != self._key:
            humans = [h for h in list(state.by_author) if h.startswith("human-")]
            self._handles, self._key = sorted({*list(state.agents), *humans}), key
        return self._handles


def _newest(keys: dict[str, Any]) -> str | None:
    """The key added last, or None (also when the writer thread adds one meanwhile: the next call looks again)."""
    try:
        return next(reversed(keys), None)
    except RuntimeError:  # the dict changed size during the look
        return None


def handles(index: list[str], prefix: str, limit: int) -> list[str]:
    """Handles starting with `prefix`, in order."""
    start = bisect_left(index, prefix)
    return [h for h in index[start : start + limit] if h.startswith(prefix)]
