"""The single writer of the central bucket, with group commit and a compact index.

Requests hand the writer a *builder* (a function of the current state, the next sequence number
and the time) and wait. The writer thread takes whatever requests are waiting, builds their
entries in order (so checks such as "is this agent id free" see the writes before them), then:

1. writes one new index segment holding those entries (the durable point: a request is answered
   201 only after this succeeded);
2. writes the entries' files (board message, inbox copies, registration...), retried with the next
   commit if the store fails;
3. now and then merges small segments, once their files are confirmed, so that a restart reads a
   few large files instead of listing the whole record.

At start the index is read back; the files of entries in unmerged segments are checked and any
missing one rewritten, so a crash between steps 1 and 2 loses nothing, and since every path is
derived from the entry, nothing is written twice.
"""

from __future__ import annotations

import gc
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson

from collab_backend import naming
from collab_backend.errors import APIError
from collab_backend.record.entries import Entry, decode_data, encode
from collab_backend.record.state import State
from collab_backend.storage import Add, Delete, PartialWrite, Storage, StorageError, Unavailable

log = logging.getLogger("collab_backend.record")

Builder = Callable[[State, int, float], Entry]
E = TypeVar("E", bound=Entry)
_SEGMENT = re.compile(r"^(\d{12})-(\d{12})-(\d)\.jsonl$")
MERGE_AT = 64
FREEZE_AT = 100_000  # entries loaded at start above which they are exempted from collections
RETRIES = (0.1, 0.3, 1.0, 3.0)


@dataclass
class _Pending:
    build: Builder | None
    done: Future[Any]
    files: dict[str, bytes] | None = None


@dataclass
class Segment:
    first: int
    last: int
    level: int

    @property
    def path(self) -> str:
        return f"{naming.INDEX_PREFIX}{self.first:012d}-{self.last:012d}-{self.level}.jsonl"


def parse_segment(data: bytes) -> list[dict[str, Any]]:
    """The entries of one index segment, in one parse.

    JSON strings escape newlines, so raw ones only separate entries: the lines joined with
    commas are one JSON array (a parse per line costs twice as much). orjson parses it in about
    half the time of the standard library; the standard library still reads what orjson refuses
    (a NaN, which `json.dumps` would have written).
    """
    array = b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]"
    try:
        return cast(list[dict[str, Any]], orjson.loads(array))
    except orjson.JSONDecodeError:
        return cast(list[dict[str, Any]], json.loads(array))


class Record:
    """The shared record: state in memory, persisted through one writer thread."""

    def __init__(
        self,
        storage: Storage,
        bucket: str,
        *,
        clock: Callable[[], float] = time.time,
        commit_interval: float = 0.005,
        max_batch: int = 256,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.storage, self.bucket, self.clock = storage, bucket, clock
        self.commit_interval, self.max_batch, self.sleep = commit_interval, max_batch, sleep
        self.state = State()
        self.segments: list[Segment] = []
        self._unwritten: dict[str, bytes] = {}
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.commits = 0

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Load the index, repair missing files, and start the writer."""
        self._load()
        self._thread = threading.Thread(target=self._run, name="record-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Finish queued writes and stop the writer."""
        if self._thread:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _load(self) -> None:
        found: list[Segment] = []
        cursor = None
        while True:
            page = self.storage.list(self.bucket, naming.INDEX_PREFIX, cursor=cursor)
            for info in page.items:
                match = _SEGMENT.match(info.path.removeprefix(naming.INDEX_PREFIX))
                if match:
                    found.append(Segment(int(match[1]), int(match[2]), int(match[3])))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        # A crash during a merge can leave both the merged segment and its parts: prefer the widest.
        found.sort(key=lambda s: (s.first, -s.last))
        # A million long-lived objects arrive here: the cyclic collector would rescan the growing
        # heap again and again (half the load time), and none of these objects form cycles.
        collecting = gc.isenabled()
        gc.disable()
        before = self.state.seq
        try:
            for segment in found:
                if segment.last <= self.state.seq:
                    continue
                segment_start = self.state.seq  # a wider segment read before may cover part of this one
                parsed = parse_segment(self.storage.read(self.bucket, segment.path))
                self.state.load_many(decode_data(data) for data in parsed if data["seq"] > segment_start)
                if self.state.seq < segment.last:  # a gap: an index segment is missing or damaged
                    log.error("index segment %s does not continue entry %d", segment.path, segment_start)
                self.segments.append(segment)
        finally:
            if self.state.seq - before >= FREEZE_AT:
                gc.freeze()  # what was loaded lives as long as the process: later collections skip it
            if collecting:
                gc.enable()
        self._repair()

    def _repair(self) -> None:
        """Rewrite files of entries whose segment is unmerged and whose files are missing."""
        recent = [s for s in self.segments if s.level == 0]
        if not recent:
            return
        wanted: dict[str, bytes] = {}
        for entry in self.state.log[recent[0].first - 1 :]:
            wanted.update(entry.files())
        present = self.storage.stat(self.bucket, list(wanted))
        missing = {p: d for p, d in wanted.items() if p not in present}
        if missing:
            log.warning("rewriting %d file(s) the index holds but the bucket lacks", len(missing))
            self.storage.batch(self.bucket, [Add(p, d) for p, d in missing.items()])

    # -- writing ----------------------------------------------------------------------------
    def write(self, build: Callable[[State, int, float], E], timeout: float = 60.0) -> E:
        """Queue one write and wait until it is durable; errors from `build` are re-raised."""
        if self._thread is None:
            raise RuntimeError("the record is not open")
        pending = _Pending(build, Future())
        self._queue.put(pending)
        return cast(E, pending.done.result(timeout=timeout))

    def write_files(self, files: dict[str, bytes], timeout: float = 60.0) -> None:
        """Write derived files (e.g. the verification index) in order with the entries' writes."""
        if self._thread is None:
            raise RuntimeError("the record is not open")
        pending = _Pending(None, Future(), files)
        self._queue.put(pending)
        pending.done.result(timeout=timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.commit_interval
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    self._commit(batch)
                    return
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        built: list[tuple[_Pending, Entry, Callable[[], None]]] = []
        for pending in batch:
            if pending.build is None:  # a file-only write
                self._unwritten.update(pending.files or {})
                self._flush_files()
                pending.done.set_result(None)
                continue
            ts = max(self.clock(), self.state.last_ts)
            try:
                entry = pending.build(self.state, self.state.seq + 1, ts)
            except Exception as exc:  # an APIError for the requester, or a bug in one builder
                pending.done.set_exception(exc)
                continue
            built.append((pending, entry, self.state.apply(entry)))
        if not built:
            return
        entries = [entry for _, entry, _ in built]
        segment = Segment(entries[0].seq, entries[-1].seq, 0)
        data = ("\n".join(encode(e) for e in entries) + "\n").encode()
        try:
            self._retrying(lambda: self.storage.batch(self.bucket, [Add(segment.path, data)]))
        except StorageError as exc:
            for pending, _, undo in reversed(built):
                undo()
                pending.done.set_exception(
                    APIError("STORAGE_UNAVAILABLE", "the write could not be stored", "retry in a few seconds")
                )
            log.error("index write failed, %d request(s) refused: %s", len(built), exc)
            return
        self.segments.append(segment)
        self.commits += 1
        for entry in entries:
            self._unwritten.update(entry.files())
        self._flush_files()
        for pending, entry, _ in built:
            pending.done.set_result(entry)
        if not self._unwritten:
            self._maybe_merge()

    def _flush_files(self) -> None:
        files = dict(self._unwritten)
        try:
            self._retrying(lambda: self.storage.batch(self.bucket, [Add(p, d) for p, d in files.items()]))
        except StorageError as exc:
            log.warning("%d file(s) not written yet, retried with the next commit: %s", len(files), exc)
            return
        for path in files:
            self._unwritten.pop(path, None)

    def _retrying(self, call: Callable[[], None]) -> None:
        for wait in (*RETRIES, None):
            try:
                call()
                return
            except (Unavailable, PartialWrite):  # worth another try; AccessDenied is not
                if wait is None:
                    raise
                self.sleep(wait)

    def _maybe_merge(self) -> None:
        """Merge the oldest run of same-level segments once there are too many of them."""
        for level in (0, 1):
            run = [s for s in self.segments if s.level == level]
            if len(run) < MERGE_AT:
                continue
            merged = Segment(run[0].first, run[-1].last, level + 1)
            lines = (encode(e) for e in self.state.log[merged.first - 1 : merged.last])
            try:
                self.storage.batch(self.bucket, [Add(merged.path, ("\n".join(lines) + "\n").encode())])
                self.storage.batch(self.bucket, [Delete(s.path) for s in run])
            except StorageError as exc:
                log.warning("index merge postponed: %s", exc)
                return
            self.segments = sorted([s for s in self.segments if s not in run] + [merged], key=lambda s: s.first)
