"""The collab at a glance, and what changed since a point in the record.

Every entry carries its sequence number, and the record's log holds them in order, so "what
changed since entry N" is the log's tail after N: a page that remembers the sequence number it
was drawn at asks only for that (O(changes), at most MAX_CHANGES entries looked at).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from collab_backend.context import Context
from collab_backend.record.entries import MessageEntry
from collab_backend.record.state import State

MAX_CHANGES = 10_000


def changes_since(state: State, since: int) -> dict[str, Any]:
    """How many entries of each kind were written after entry `since`, and new messages per channel.

    `truncated` is true when more than MAX_CHANGES entries were written since: the counts then
    cover the first MAX_CHANGES of them, and a page should simply be drawn again.
    """
    log = state.log
    first = log[0].seq if log else 1
    start = max(0, since + 1 - first)
    tail = log[start : start + MAX_CHANGES]
    kinds = Counter(entry.kind for entry in tail)
    channels = Counter(entry.channel for entry in tail if isinstance(entry, MessageEntry))
    return {
        "since": since,
        "seq": state.seq,
        "kinds": dict(kinds),
        "channels": dict(channels),
        "truncated": state.seq - since > MAX_CHANGES,
    }


def job_counts(ctx: Context) -> dict[str, int]:
    """Jobs by state: queued, running, ended."""
    counts = {"queued": 0, "running": 0, "ended": 0}
    stages = ctx.runs.stages
    for job_id, events in list(ctx.record.state.jobs.items()):
        if any(e.event == "end" for e in events):
            counts["ended"] += 1
        elif stages.get(job_id) == "RUNNING" or any(e.event == "start" for e in events):
            counts["running"] += 1
        else:
            counts["queued"] += 1
    return counts
