"""The record in memory: every entry in write order plus the lookups the API serves from.

Reads never touch storage. Lists are kept as positions into `messages`, which only grows, so a
page is a bisect plus a slice: O(log n + page) whatever the size of the record. Entries read back
from the index are held as their index lines until read (`lines.py`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, ClassVar

from collab_backend.record.entries import (
    AgentEntry,
    ChannelEntry,
    DirectionEntry,
    Entry,
    FileCopyEntry,
    FlagEntry,
    FollowEntry,
    JobEntry,
    MessageEntry,
    ProfileEntry,
    ResultEntry,
    RulingEntry,
    RunRequestEntry,
    TaskforceEntry,
    TaskforceNoteEntry,
    TokenStatsEntry,
    VerdictEntry,
    decode_data,
    encode,
)
from collab_backend.record.lines import Entries, Stream, parse_lines
from collab_backend.record.positions import Positions

Undo = Callable[[], None]
_MESSAGE_END = b',"kind":"message"}'  # how `encode` ends a message's line: kind is its last field


def positions() -> array[int]:
    """A list of positions into `State.messages`, ascending: 4 bytes each (a list of ints costs 36)."""
    return array("I")


@dataclass
class State:
    """Everything the backend knows, rebuilt from the index at start."""

    seq: int = 0
    last_ts: float = 0.0
    agents: dict[str, AgentEntry] = field(default_factory=dict)
    channels: dict[str, ChannelEntry] = field(default_factory=dict)
    messages: Entries[MessageEntry] = field(default_factory=Entries)
    position: Positions = field(default_factory=Positions)
    by_channel: defaultdict[str, array[int]] = field(default_factory=lambda: defaultdict(positions))
    by_thread: defaultdict[str, array[int]] = field(default_factory=lambda: defaultdict(positions))
    by_author: defaultdict[str, array[int]] = field(default_factory=lambda: defaultdict(positions))
    inbox: defaultdict[str, array[int]] = field(default_factory=lambda: defaultdict(positions))
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
    flags: dict[str, FlagEntry] = field(default_factory=dict)  # flag id -> flag, in the record's order
    rulings: dict[str, RulingEntry] = field(default_factory=dict)  # ruling id -> ruling, in the record's order
    # run request id -> its events in order (the opening first); opening order; the jobs launched for it
    run_requests: dict[str, list[RunRequestEntry]] = field(default_factory=dict)
    run_request_order: list[str] = field(default_factory=list)
    run_request_jobs: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    directions: dict[str, DirectionEntry] = field(default_factory=dict)  # declared or opened, in opening order
    log: Entries[Entry] = field(default_factory=Entries)
    # The entries read from a snapshot's stream that are no message, by position (`load_stream`, `layout`).
    base_others: array[int] = field(default_factory=lambda: array("I"), compare=False, repr=False)
    # Each message's channel by position, as a number into `channel_names` (numbered as first posted in):
    # what `channels_posted` reads, where decoding the messages was half a digest's cost.
    message_channels: array[int] = field(default_factory=lambda: array("I"), repr=False)
    channel_names: list[str] = field(default_factory=list, repr=False)
    _channel_numbers: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    # The lookups a snapshot holds (`snapshot.py`): built from the messages, costly to rebuild.
    LOOKUPS: ClassVar[tuple[str, ...]] = ("by_channel", "by_thread", "by_author", "inbox")

    def lookups(self) -> dict[str, Any]:
        """What a snapshot holds (`snapshot.py`): the message lookups, and where each entry's line is in the index."""
        found: dict[str, Any] = {name: dict(getattr(self, name)) for name in self.LOOKUPS}
        starts, others = self.layout()
        return found | {
            "seq": self.seq,
            "last_ts": self.last_ts,
            "messages": len(self.messages),
            "ids": list(self.position),  # in position order: a message's id is added when it is appended
            "announcements": self.announcements,
            "channel_names": self.channel_names,
            "message_channels": self.message_channels,
            "promoted": [[*key, message_id] for key, message_id in self.promoted.items()],
            "starts": starts,
            "others": others,
        }

    def layout(self) -> tuple[array[int], array[int]]:
        """Where each entry's line starts in the index as one stream, and which entries are no message.

        `others` are the entries (by position in the log) that are no message. Entries read back
        are held as their lines, and those written since the start are encoded as the writer
        wrote them, so the lengths are the index's own.
        """
        starts, others, offset = array("Q", self.log.starts), array("I", self.base_others), self.log.stream_end()
        for at, item in enumerate(self.log.items, start=len(starts)):
            line = item if type(item) is bytes else encode(item).encode()
            starts.append(offset)
            if not line.endswith(_MESSAGE_END):
                others.append(at)
            offset += len(line) + 1
        if len(starts) - len(others) != len(self.messages):
            raise ValueError("the log's messages are not the messages")
        return starts, others

    def load_stream(self, stream: Stream, starts: array[int], others: array[int]) -> bool:
        """Take the first entries as lines of index segments kept whole, where a snapshot says they start.

        The entries that are no message (`others`, by position, ascending) are parsed and folded
        as usual; the rest are the messages, only placed (`adopt` brings their lookups and
        positions), each line's kind checked when it is read. False if a line is not the entry
        expected there.
        """
        is_message = bytearray(b"\x01") * len(starts)
        try:
            for at in others:
                is_message[at] = 0
        except IndexError:  # an entry past the last
            return False
        if self.seq or len(self.log) or is_message.count(0) != len(others):
            return False  # not into an empty state, or an entry named twice
        try:
            parsed = parse_lines(stream.lines_at(starts, others))
        except (ValueError, IndexError):  # offsets that are no line's, a line that does not parse
            return False
        for at, data in zip(others, parsed, strict=True):
            if not isinstance(data, dict) or data.get("seq") != at + 1 or data.get("kind") in (None, "message"):
                return False
            try:
                entry = decode_data(data)
            except (KeyError, TypeError, ValueError):
                return False
            self.seq, self.last_ts = entry.seq, max(self.last_ts, entry.ts)
            self._apply_kind(entry)  # durable: nothing to undo
        self.log.adopt_stream(stream, starts)
        self.messages.adopt_stream(stream, array("Q", compress(starts, is_message)), _MESSAGE_END)
        self.base_others, self.seq = others, len(starts)
        return True

    def adopt(self, lookups: dict[str, Any]) -> bool:
        """Take a snapshot's message lookups, if they describe the messages loaded so far."""
        ids = lookups["ids"]
        if lookups["seq"] != self.seq or lookups["messages"] != len(self.messages) or len(ids) != len(self.messages):
            return False
        try:
            if ids and ids[-1] != self.messages[-1].id:
                return False
            promoted = {(bucket, path, digest): message for bucket, path, digest, message in lookups["promoted"]}
        except (ValueError, TypeError, KeyError):  # a line that is no message, a promotion that is no 4 strings
            return False
        names, numbers = lookups["channel_names"], lookups["message_channels"]
        if any(names[numbers[held[-1]]] != channel for channel, held in lookups["by_channel"].items() if held):
            return False  # each channel's latest message is numbered as another channel's
        for name in self.LOOKUPS:
            setattr(self, name, defaultdict(positions, lookups[name]))
        self.announcements, self.promoted = lookups["announcements"], promoted
        self.message_channels, self.channel_names = lookups["message_channels"], lookups["channel_names"]
        self._channel_numbers = {name: number for number, name in enumerate(self.channel_names)}
        self.position = Positions.of(ids)
        self.last_ts = max(self.last_ts, lookups["last_ts"])
        return True

    def apply(self, entry: Entry) -> Undo:
        """Add an entry (the next in sequence) and return how to take it back."""
        return self._apply(entry)

    def load_parsed(self, lines: list[bytes], parsed: list[dict[str, Any]]) -> None:
        """Add entries read back from the index (each line and its parse), in order; nothing to undo.

        Entries already loaded (the overlap of a merge interrupted by a crash) are skipped. A
        message is indexed from its parse and kept as its line: no entry object is built. Spelled
        out with local names: a restart without a snapshot runs this loop a million times.
        """
        log, messages, position = self.log.items, self.messages.items, self.position.recent
        first = len(self.messages.starts)  # messages placed from a snapshot's stream come before `items`
        by_channel, by_author, by_thread, inbox = self.by_channel, self.by_author, self.by_thread, self.inbox
        message_channels, numbers = self.message_channels, self._channel_numbers
        for line, data in zip(lines, parsed, strict=True):
            if data["seq"] != self.seq + 1:
                continue
            if data["kind"] != "message":  # folded as usual, and held as its line, as read (`layout`)
                entry = decode_data(data)
                self.seq, self.last_ts = entry.seq, max(self.last_ts, entry.ts)
                log.append(line)
                self._apply_kind(entry)
                continue
            self.seq, self.last_ts = data["seq"], max(self.last_ts, data["ts"])
            at = first + len(messages)
            log.append(line)
            messages.append(line)
            position[data["id"]] = at
            channel = data["channel"]
            by_channel[channel].append(at)
            number = numbers.get(channel)
            message_channels.append(self._number_channel(channel) if number is None else number)
            by_author[data["author"]].append(at)
            if thread := data.get("thread"):
                by_thread[thread].append(at)
            for handle in data.get("notify", ()):
                inbox[handle].append(at)
            if data.get("role") == "organizer":
                self.announcements.append(at)
            if source := data.get("source"):
                self.promoted[(source["bucket"], source["path"], source["hash"])] = data["id"]

    def _apply(self, entry: Entry) -> Undo:
        if entry.seq != self.seq + 1:
            raise ValueError(f"entry {entry.seq} applied after {self.seq}")
        previous_seq, previous_ts = self.seq, self.last_ts
        self.seq, self.last_ts = entry.seq, max(self.last_ts, entry.ts)
        self.log.append(entry)
        undo_kind = self._apply_kind(entry)

        def undo() -> None:
            undo_kind()
            self.results_version += isinstance(entry, ResultEntry | VerdictEntry | RulingEntry)
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
        if isinstance(entry, ResultEntry | VerdictEntry | RulingEntry):
            self.results_version += 1
        if isinstance(entry, FlagEntry | RulingEntry):
            return self._apply_ruling(entry)
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
        if isinstance(entry, RunRequestEntry):
            return self._apply_run_request(entry)
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

    def _apply_ruling(self, entry: FlagEntry | RulingEntry) -> Undo:
        kept: dict[str, Any] = self.flags if isinstance(entry, FlagEntry) else self.rulings
        kept[entry.id] = entry

        def undo_ruling() -> None:
            kept.pop(entry.id, None)

        return undo_ruling

    def _apply_run_request(self, entry: RunRequestEntry) -> Undo:
        if entry.event == "open":
            self.run_requests[entry.request_id] = [entry]
            self.run_request_order.append(entry.request_id)

            def undo_open() -> None:
                self.run_request_order.pop()
                del self.run_requests[entry.request_id]

            return undo_open
        events = self.run_requests.get(entry.request_id)
        if events is None:  # an event of a request the index never opened
            return lambda: None
        events.append(entry)

        def undo_event() -> None:
            events.pop()

        return undo_event

    def _apply_job(self, entry: JobEntry) -> Undo:
        if entry.event == "launch":
            lists = [self.job_order, self.jobs_by_agent[entry.agent], self.jobs_by_user[entry.user]]
            if entry.run_request is not None:
                lists.append(self.run_request_jobs[entry.run_request])
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
        source = message.source
        earlier = self.promoted.get((source["bucket"], source["path"], source["hash"])) if source else None
        key = self._index_message(message)

        def undo_message() -> None:
            for positions in self._message_lists(message):
                positions.pop()
            for table, name in self._message_keys(message):  # a list the message began goes with it
                if not table.get(name, True):
                    del table[name]
            number = self.message_channels.pop()
            if number == len(self.channel_names) - 1 and message.channel not in self.by_channel:
                del self._channel_numbers[self.channel_names.pop()]  # numbered by this message: as if never posted
            del self.position[message.id]
            self.messages.pop()
            if key and earlier is not None:
                self.promoted[key] = earlier  # the message promoted from the same file before it
            elif key:
                self.promoted.pop(key, None)

        return undo_message

    def _message_keys(self, message: MessageEntry) -> list[tuple[defaultdict[str, array[int]], str]]:
        """Each lookup the message is in, and its key there."""
        keys = [(self.by_channel, message.channel), (self.by_author, message.author)]
        if message.thread:
            keys.append((self.by_thread, message.thread))
        return keys + [(self.inbox, handle) for handle in message.notify]

    def _message_lists(self, message: MessageEntry) -> list[MutableSequence[int]]:
        """Every list of positions the message belongs to."""
        lists: list[MutableSequence[int]] = [table[name] for table, name in self._message_keys(message)]
        return [*lists, self.announcements] if message.role == "organizer" else lists

    def _index_message(self, message: MessageEntry) -> tuple[str, str, str] | None:
        """Add a message to every list it belongs to; return its promotion key, if promoted."""
        at = len(self.messages)
        self.messages.append(message)
        self.position[message.id] = at
        self.by_channel[message.channel].append(at)
        number = self._channel_numbers.get(message.channel)
        self.message_channels.append(self._number_channel(message.channel) if number is None else number)
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

    def _number_channel(self, name: str) -> int:
        """The number of a channel posted in for the first time."""
        self._channel_numbers[name] = number = len(self.channel_names)
        self.channel_names.append(name)
        return number

    def channels_posted(self, author: str, last: int) -> list[str]:
        """The channels of the author's `last` latest messages, that of the latest first, each once."""
        names, numbers = self.channel_names, self.message_channels
        own: Sequence[int] = self.by_author.get(author, [])[-last:] if last > 0 else []
        # A message the writer undid meanwhile (a failed index write) is skipped, not read past the end.
        return list(dict.fromkeys(names[numbers[at]] for at in reversed(own) if at < len(numbers)))

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
        end = bisect_left(positions, self.position[before]) if before and before in self.position else len(positions)
        chosen = positions[max(0, end - limit) : end]
        items = [self.messages[p] for p in reversed(chosen)]
        return items, (items[-1].id if end - limit > 0 and items else None)
