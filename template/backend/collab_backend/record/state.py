"""The record in memory: every entry in write order plus the lookups the API serves from.

Reads never touch storage. Lists are kept as positions into `messages`, which only grows, so a
page is a bisect plus a slice: O(log n + page) whatever the size of the record.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from collab_backend.record.entries import (
    AgentEntry,
    ChannelEntry,
    DirectionEntry,
    Entry,
    FileCopyEntry,
    FollowEntry,
    JobEntry,
    MessageEntry,
    ProfileEntry,
    ResultEntry,
    TaskforceEntry,
    TaskforceNoteEntry,
    TokenStatsEntry,
    VerdictEntry,
)

Undo = Callable[[], None]


@dataclass
class State:
    """Everything the backend knows, rebuilt from the index at start."""

    seq: int = 0
    last_ts: float = 0.0
    agents: dict[str, AgentEntry] = field(default_factory=dict)
    channels: dict[str, ChannelEntry] = field(default_factory=dict)
    messages: list[MessageEntry] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    by_channel: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_thread: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    by_author: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    inbox: defaultdict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    announcements: list[int] = field(default_factory=list)
    results: dict[str, ResultEntry] = field(default_factory=dict)
    result_order: list[str] = field(default_factory=list)
    verdicts: dict[str, VerdictEntry] = field(default_factory=dict)
    promoted_results: dict[tuple[str, str, str], str] = field(default_factory=dict)
    taskforces: dict[str, TaskforceEntry] = field(default_factory=dict)
    taskforce_created: dict[str, TaskforceEntry] = field(default_factory=dict)
    taskforce_notes: defaultdict[str, list[TaskforceNoteEntry]] = field(default_factory=lambda: defaultdict(list))
    copies: dict[str, tuple[str, str, str, int]] = field(
        default_factory=dict
    )  # central path -> (agent, src, hash, size)
    # agent -> model -> [input tokens, output tokens, cost in USD, reports]
    token_stats: defaultdict[str, dict[str, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    usage_version: int = 0  # bumped by every usage report: the usage ranking's cache key
    results_version: int = 0  # bumped by every result or verdict: the leaderboard cache key
    promoted: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # job id -> its events in order (the launch first); launch order overall, per agent, per user
    jobs: dict[str, list[JobEntry]] = field(default_factory=dict)
    job_order: list[str] = field(default_factory=list)
    jobs_by_agent: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    jobs_by_user: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    follows: defaultdict[str, dict[str, bool]] = field(default_factory=lambda: defaultdict(dict))  # agent -> channel
    registered_seq: dict[str, int] = field(default_factory=dict)  # agent id -> seq of its first binding
    profiles: dict[str, ProfileEntry] = field(default_factory=dict)  # agent id -> its latest self-description
    directions: dict[str, DirectionEntry] = field(default_factory=dict)  # declared or opened, in opening order
    log: list[Entry] = field(default_factory=list)

    # The lookups a snapshot holds (`snapshot.py`): built from the messages, costly to rebuild.
    LOOKUPS: ClassVar[frozenset[str]] = frozenset(
        {"by_channel", "by_thread", "by_author", "inbox", "announcements", "promoted"}
    )

    def lookups(self) -> dict[str, Any]:
        """The message lookups as plain containers, with what they describe (for a snapshot)."""
        found: dict[str, Any] = {name: getattr(self, name) for name in self.LOOKUPS}
        last = self.messages[-1].id if self.messages else ""
        return found | {"seq": self.seq, "messages": len(self.messages), "last_message": last}

    def load_bare(self, entries: Iterable[Entry]) -> None:
        """Add entries read back from the index whose message lookups a snapshot holds.

        Messages are only appended (`adopt` brings their lookups); every other kind is folded as usual.
        """
        for entry in entries:
            if entry.seq != self.seq + 1:
                continue
            if type(entry) is MessageEntry:
                self.seq, self.last_ts = entry.seq, max(self.last_ts, entry.ts)
                self.log.append(entry)
                self.messages.append(entry)
            else:
                self._apply(entry)

    def adopt(self, lookups: dict[str, Any]) -> bool:
        """Take a snapshot's message lookups, if they describe the messages loaded so far."""
        last = self.messages[-1].id if self.messages else ""
        if lookups["seq"] != self.seq or lookups["messages"] != len(self.messages) or lookups["last_message"] != last:
            return False
        for name in ("by_channel", "by_thread", "by_author", "inbox"):
            setattr(self, name, defaultdict(list, lookups[name]))
        self.announcements, self.promoted = list(lookups["announcements"]), dict(lookups["promoted"])
        self.position = {message.id: at for at, message in enumerate(self.messages)}
        return True

    def apply(self, entry: Entry) -> Undo:
        """Add an entry (the next in sequence) and return how to take it back."""
        return self._apply(entry)

    def load_many(self, entries: Iterable[Entry]) -> None:
        """Add entries read back from the index, in order (nothing to undo: they are durable).

        Entries already loaded (the overlap of a merge interrupted by a crash) are skipped.
        """
        index, log = self._index_message, self.log
        seq, last_ts = self.seq, self.last_ts
        for entry in entries:
            if entry.seq != seq + 1:
                continue
            if type(entry) is MessageEntry:  # nearly all of a large record: no undo bookkeeping
                seq, last_ts = entry.seq, max(last_ts, entry.ts)
                log.append(entry)
                index(entry)
                continue
            self.seq, self.last_ts = seq, last_ts
            self._apply(entry)
            seq, last_ts = self.seq, self.last_ts
        self.seq, self.last_ts = seq, last_ts

    def _apply(self, entry: Entry) -> Undo:
        if entry.seq != self.seq + 1:
            raise ValueError(f"entry {entry.seq} applied after {self.seq}")
        previous_seq, previous_ts = self.seq, self.last_ts
        self.seq, self.last_ts = entry.seq, max(self.last_ts, entry.ts)
        self.log.append(entry)
        undo_kind = self._apply_kind(entry)

        def undo() -> None:
            undo_kind()
            self.results_version += isinstance(entry, ResultEntry | VerdictEntry)
            self.log.pop()
            self.seq, self.last_ts = previous_seq, previous_ts

        return undo

    def _apply_kind(self, entry: Entry) -> Undo:
        if isinstance(entry, AgentEntry):
            before = self.agents.get(entry.agent_id)
            self.agents[entry.agent_id] = entry
            self.registered_seq.setdefault(entry.agent_id, entry.seq)

            def undo_agent() -> None:
                if before is None:
                    del self.agents[entry.agent_id]
                    del self.registered_seq[entry.agent_id]
                else:
                    self.agents[entry.agent_id] = before

            return undo_agent
        if isinstance(entry, ResultEntry | VerdictEntry):
            self.results_version += 1
        if isinstance(entry, ResultEntry):
            self.results[entry.id] = entry
            self.result_order.append(entry.id)
            key = (entry.source["bucket"], entry.source["path"], entry.source["hash"])
            self.promoted_results[key] = entry.id

            def undo_result() -> None:
                self.result_order.pop()
                del self.results[entry.id]
                self.promoted_results.pop(key, None)

            return undo_result
        if isinstance(entry, VerdictEntry):
            previous = self.verdicts.get(entry.result_id)
            self.verdicts[entry.result_id] = entry

            def undo_verdict() -> None:
                if previous is None:
                    self.verdicts.pop(entry.result_id, None)
                else:
                    self.verdicts[entry.result_id] = previous

            return undo_verdict
        if isinstance(entry, TaskforceEntry):
            before_tf = self.taskforces.get(entry.name)
            self.taskforces[entry.name] = entry
            self.taskforce_created.setdefault(entry.name, entry)

            def undo_taskforce() -> None:
                if before_tf is None:
                    del self.taskforces[entry.name]
                    del self.taskforce_created[entry.name]
                else:
                    self.taskforces[entry.name] = before_tf

            return undo_taskforce
        if isinstance(entry, TaskforceNoteEntry):
            self.taskforce_notes[entry.taskforce].append(entry)

            def undo_note() -> None:
                self.taskforce_notes[entry.taskforce].pop()

            return undo_note
        if isinstance(entry, FileCopyEntry):
            before_copies = {path: self.copies.get(path) for path, *_ in entry.copies}
            for path, source, digest, size in entry.copies:
                self.copies[path] = (entry.agent, source, digest, size)

            def undo_copies() -> None:
                for path, old in before_copies.items():
                    if old is None:
                        self.copies.pop(path, None)
                    else:
                        self.copies[path] = old

            return undo_copies
        if isinstance(entry, TokenStatsEntry):
            self.usage_version += 1
            totals = self.token_stats[entry.agent].setdefault(entry.model, [0, 0, 0.0, 0])
            delta = (entry.input_tokens, entry.output_tokens, entry.cost_usd, 1)
            for i, value in enumerate(delta):
                totals[i] += value

            def undo_tokens() -> None:
                self.usage_version += 1
                for i, value in enumerate(delta):
                    totals[i] -= value

            return undo_tokens
        if isinstance(entry, JobEntry):
            return self._apply_job(entry)
        if isinstance(entry, FollowEntry):
            followed = self.follows[entry.agent]
            previous_follow = followed.get(entry.channel)
            followed[entry.channel] = entry.follow

            def undo_follow() -> None:
                if previous_follow is None:
                    followed.pop(entry.channel, None)
                else:
                    followed[entry.channel] = previous_follow

            return undo_follow
        if isinstance(entry, ProfileEntry):
            previous_profile = self.profiles.get(entry.agent)
            self.profiles[entry.agent] = entry

            def undo_profile() -> None:
                if previous_profile is None:
                    self.profiles.pop(entry.agent, None)
                else:
                    self.profiles[entry.agent] = previous_profile

            return undo_profile
        if isinstance(entry, ChannelEntry):
            self.channels[entry.name] = entry

            def undo_channel() -> None:
                self.channels.pop(entry.name, None)

            return undo_channel
        if isinstance(entry, DirectionEntry):
            self.directions[entry.name] = entry

            def undo_direction() -> None:
                self.directions.pop(entry.name, None)

            return undo_direction
        return self._apply_message(entry)

    def _apply_job(self, entry: JobEntry) -> Undo:
        if entry.event == "launch":
            lists = [self.job_order, self.jobs_by_agent[entry.agent], self.jobs_by_user[entry.user]]
            self.jobs[entry.job_id] = [entry]
            for ids in lists:
                ids.append(entry.job_id)

            def undo_launch() -> None:
                for ids in lists:
                    ids.pop()
                del self.jobs[entry.job_id]

            return undo_launch
        events = self.jobs.get(entry.job_id)
        if events is None:  # an event of a job the index never launched: nothing to attach it to
            return lambda: None
        events.append(entry)

        def undo_event() -> None:
            events.pop()

        return undo_event

    def _apply_message(self, message: MessageEntry) -> Undo:
        key = self._index_message(message)

        def undo_message() -> None:
            for positions in self._message_lists(message):
                positions.pop()
            del self.position[message.id]
            self.messages.pop()
            if key:
                self.promoted.pop(key, None)

        return undo_message

    def _message_lists(self, message: MessageEntry) -> list[list[int]]:
        """Every list of positions the message belongs to."""
        lists = [self.by_channel[message.channel], self.by_author[message.author]]
        if message.thread:
            lists.append(self.by_thread[message.thread])
        lists += [self.inbox[handle] for handle in message.notify]
        if message.role == "organizer":
            lists.append(self.announcements)
        return lists

    def _index_message(self, message: MessageEntry) -> tuple[str, str, str] | None:
        """Add a message to every list it belongs to; return its promotion key, if promoted.

        Spelled out rather than built on `_message_lists`: a restart runs this a million times.
        """
        at = len(self.messages)
        self.messages.append(message)
        self.position[message.id] = at
        self.by_channel[message.channel].append(at)
        self.by_author[message.author].append(at)
        if message.thread:
            self.by_thread[message.thread].append(at)
        for handle in message.notify:
            self.inbox[handle].append(at)
        if message.role == "organizer":
            self.announcements.append(at)
        if not message.source:
            return None
        key = (message.source["bucket"], message.source["path"], message.source["hash"])
        self.promoted[key] = message.id
        return key

    def positions_of(self, channel: str | None = None, author: str | None = None) -> Sequence[int]:
        """The positions of a channel's messages, else an author's, else all, oldest first."""
        if channel is not None:
            return self.by_channel.get(channel, [])
        if author is not None:
            return self.by_author.get(author, [])
        return range(len(self.messages))

    def page(
        self, positions: Sequence[int], *, limit: int, before: str | None = None, after: str | None = None
    ) -> tuple[list[MessageEntry], str | None]:
        """Newest first below `before`, or oldest first above `after`; and the cursor for more."""
        if after is not None:
            start = bisect_right(positions, self.position.get(after, -1))
            chosen = positions[start : start + limit]
            more = start + limit < len(positions)
            items = [self.messages[p] for p in chosen]
            return items, (items[-1].id if more and items else None)
        end = bisect_left(positions, self.position[before]) if before in self.position else len(positions)
        chosen = positions[max(0, end - limit) : end]
        items = [self.messages[p] for p in reversed(chosen)]
        return items, (items[-1].id if end - limit > 0 and items else None)
