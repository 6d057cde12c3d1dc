"""The single writer of the central bucket, with group commit and a compact index.

Requests hand the writer a *builder* (a function of the current state, the next sequence number
and the time) and wait. The writer thread takes whatever requests are waiting (group commit
without a wait: a lone request is committed at once, and the requests that queue during one
commit form the next batch), builds their entries in order (so checks such as "is this agent id
free" see the writes before them), then:

1. writes one new index segment holding those entries (the durable point: a request is answered
   201 only after this succeeded);
2. hands the entries' files (board message, inbox copies, registration...) to the file writer,
   a second thread, and answers the requests;
3. now and then merges small segments whose files are confirmed, so that a restart reads a few
   large files instead of listing the whole record.

The file writer takes every file handed to it since its last round and writes them in one
storage call, off the requests' path: a burst of writes costs one file round per round, not one
per commit, and a write is answered as soon as it is durable. What it cannot write stays queued
and is tried again; `settle()` waits until what was handed to it was tried. Each round also
writes the mark (`naming.FILES_MARK`): the last entry whose files earlier rounds confirmed.

At start the index is read back, and the files of the unmerged entries after the mark are
written again (all of them: a later entry may have rewritten a path, so a file that is there may
be stale), so a crash between steps 1 and 2 loses nothing; every path is derived from its entry.

The writer survives whatever one batch does: an entry that cannot be encoded, a builder's bug, a
storage adapter's bug. The requests of that batch get an error, the state is rolled back to
before them, and the writer takes the next batch. `problem()` says when it cannot write (it
stopped, one batch has held it too long, or its last index write failed); `/v1/healthz` reports it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from collab_backend import naming
from collab_backend.errors import APIError
from collab_backend.record import snapshot
from collab_backend.record.entries import Entry, decode_data, encode
from collab_backend.record.lines import Stream, parse_lines, split_lines
from collab_backend.record.state import State
from collab_backend.storage import (
    AccessDenied,
    Add,
    Delete,
    InvalidPath,
    PartialWrite,
    Storage,
    StorageError,
    Unavailable,
)

log = logging.getLogger("collab_backend.record")

Builder = Callable[[State, int, float], Entry]
E = TypeVar("E", bound=Entry)
_SEGMENT = re.compile(r"^(\d{12})-(\d{12})-(\d)\.jsonl$")
MERGE_AT = 64
SNAPSHOT_EVERY = 100_000  # entries written between two snapshots (and one at every clean stop); 0: none
READ_AHEAD = 4  # threads reading index segments at start (from the Hub: downloads)
WRITES_IN_FLIGHT = 8  # writes of the event loop waiting for the writer at once (`Record.write_async`)
FREEZE_AT = 10_000  # entries loaded at start above which they are exempted from collections
RETRIES = (0.1, 0.3, 1.0, 3.0)
STALL_AFTER = 30.0  # seconds one batch may hold the writer before it counts as stalled (retries take ~10 s)
RETRY_FILES_AFTER = 1.0  # seconds before the file writer tries again files it could not write
POLL = 1.0  # how often a waiting request looks whether the writer is still alive
# The sequence numbers of the entries written on behalf of the current request (set by the
# audit middleware around a request; a writer's thread copies the context, so it sees the list).
request_writes: ContextVar[list[int] | None] = ContextVar("collab_request_writes", default=None)


class Unchanged(Exception):
    """Raised by a builder to write nothing: what it would write already holds (`found`, if any)."""

    def __init__(self, found: Any = None) -> None:
        super().__init__("unchanged")
        self.found = found


def _writer_error(message: str) -> APIError:
    return APIError("STORAGE_UNAVAILABLE", message, "retry in a few seconds; organizers: see the backend's log")


@dataclass
class _Pending:
    build: Builder
    done: Future[Any]


@dataclass
class _Files:
    """Files handed to the file writer: an entry batch's (`upto`: its last entry) or a file-only write (0)."""

    files: dict[str, bytes]
    upto: int = 0
    done: Future[None] | None = None


@dataclass
class _Built:
    pending: _Pending
    entry: Entry
    undo: Callable[[], None]
    line: bytes
    files: dict[str, bytes]


class _Reader:
    """Index segments for a start, each read once and kept while a snapshot may still need it.

    Those the newest snapshot covers are read ahead in `READ_AHEAD` worker threads while it is
    checked (a read waits on the disk or the network, not on the GIL): it needs them all, kept
    whole. If it is not trusted, they are let go (`forget`) and a full replay reads one at a time.
    """

    def __init__(self, storage: Storage, bucket: str, ahead: list[str]) -> None:
        self.storage, self.bucket = storage, bucket
        self._pool = ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="record-read") if ahead else None
        self._ahead = {path: self._pool.submit(storage.read, bucket, path) for path in ahead} if self._pool else {}
        self._kept: dict[str, bytes] = {}

    def get(self, path: str) -> bytes:
        """The segment, kept for a later `get` or `take`."""
        if path not in self._kept:
            self._kept[path] = self._fetch(path)
        return self._kept[path]

    def take(self, path: str) -> bytes:
        """The segment, no longer kept here."""
        return self._kept.pop(path) if path in self._kept else self._fetch(path)

    def _fetch(self, path: str) -> bytes:
        ahead = self._ahead.pop(path, None)
        return ahead.result() if ahead is not None else self.storage.read(self.bucket, path)

    def forget(self) -> None:
        """Drop what was kept and stop reading ahead: a full replay takes the segments one at a time."""
        for ahead in self._ahead.values():
            ahead.cancel()
        self._ahead.clear()
        self._kept.clear()

    def close(self) -> None:
        """Stop reading ahead (what was not taken is dropped)."""
        self.forget()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Found:
    """A snapshot the index confirms: its entry, what it holds, and the index segments up to its entry, whole."""

    seq: int
    lookups: dict[str, Any]
    stream: Stream


@dataclass
class Segment:
    first: int
    last: int
    level: int

    @property
    def path(self) -> str:
        return f"{naming.INDEX_PREFIX}{self.first:012d}-{self.last:012d}-{self.level}.jsonl"


def parse_segment(data: bytes) -> list[dict[str, Any]]:
    """The entries of one index segment, in one parse (`lines.parse_lines`)."""
    return parse_lines(split_lines(data))


class Record:
    """The shared record: state in memory, persisted through one writer thread."""

    def __init__(
        self,
        storage: Storage,
        bucket: str,
        *,
        clock: Callable[[], float] = time.time,
        max_batch: int = 256,
        sleep: Callable[[float], None] = time.sleep,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.storage, self.bucket, self.clock = storage, bucket, clock
        self.max_batch, self.sleep = max_batch, sleep
        self.state = State()
        self.segments: list[Segment] = []
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._files: queue.Queue[_Files | None] = queue.Queue()
        self._file_thread: threading.Thread | None = None
        self.files_confirmed = 0  # every file of the entries up to this one is written
        self.files_waiting = 0  # files the file writer could not write yet
        self._files_lagging_since: float | None = None  # monotonic time files began to wait for a failed round
        self._files_stopped_by: str | None = None  # why the file writer ended, if it ended by an error
        self.commits = 0
        self.stall_after = STALL_AFTER
        self._busy_since: float | None = None  # monotonic time the batch now being committed started
        self._stopped_by: str | None = None  # why the writer thread ended, if it ended by an error
        self.last_failure: str | None = None  # the last index write's failure, until one succeeds
        self.snapshot_every = snapshot_every
        self._snapshot_seq = 0  # the entry the latest snapshot written or loaded ends at
        self._snapshot_tried = 0  # the entry at which the writer last tried to write one
        self._gate_loop: asyncio.AbstractEventLoop | None = None  # the loop `_gate_slots` belongs to
        self._gate_slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        # What services keep in a snapshot beside the lookups, by name (`snapshot.Part`): registered before `open`.
        self.parts: dict[str, snapshot.Part] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Load the index, repair missing files, and start the writer."""
        self._load()
        self.files_confirmed = self.state.seq  # `_load` rewrote what was missing
        self._file_thread = threading.Thread(target=self._run_files, name="record-files", daemon=True)
        self._file_thread.start()
        self._thread = threading.Thread(target=self._run, name="record-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Finish queued writes and their files, stop both threads, and leave a snapshot for the next start."""
        if self._thread:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            if self._file_thread is not None:
                self._files.put(None)
                self._file_thread.join()
                self._file_thread = None
            if self.snapshot_every and self.state.seq > self._snapshot_seq:
                self._guarded(self._snapshot, "writing a snapshot")

    def _load(self) -> None:
        # A million long-lived objects arrive here: the cyclic collector would rescan the growing
        # heap again and again (half the load time), and none of these objects form cycles.
        collecting = gc.isenabled()
        gc.disable()
        read: _Reader | None = None
        try:
            chain = self._chain()
            snapshots = sorted(
                ((n, p) for p in self._listing(snapshot.PREFIX) if (n := snapshot.seq_of(p))), reverse=True
            )
            newest = snapshots[0][0] if snapshots else 0
            # The segments the newest snapshot covers are read in worker threads while it is checked.
            read = _Reader(self.storage, self.bucket, [s.path for s in chain if newest and s.first <= newest])
            found = self._from_snapshot(chain, snapshots, read)
            if found is not None and not self._replay(chain, read, found):
                log.warning(
                    "snapshot %s does not describe the index; the index is read instead", snapshot.path_of(found.seq)
                )
                self.state, self.segments, self._snapshot_seq = State(), [], 0
                found = None  # its segments are let go: the replay reads one at a time
                read.forget()
                self._replay(chain, read, None)
            elif found is None:
                read.forget()
                self._replay(chain, read, None)
        finally:
            if read is not None:
                read.close()
            if self.state.seq >= FREEZE_AT:
                gc.freeze()  # what was loaded lives as long as the process: later collections skip it
            if collecting:
                gc.enable()
        self._repair()

    def _replay(self, chain: list[Segment], read: _Reader, found: _Found | None) -> bool:
        """Read the index into the state: from a snapshot's entry N on if one is `found`, else from the start.

        Up to entry N the segments stay whole and the messages unparsed (`State.load_stream`);
        after it, every line is parsed. False if the snapshot does not describe the index up to N.
        """
        if found is not None:
            lookups = found.lookups
            try:
                taken = self.state.load_stream(found.stream, lookups["starts"], lookups["others"])
                if not taken or not self.state.adopt(lookups):
                    return False
            except Exception:  # whatever a file that passed its checks still holds: never a start that fails
                log.exception("snapshot %s could not be taken in", snapshot.path_of(found.seq))
                return False
            self._snapshot_seq = self._snapshot_tried = found.seq
            log.info("entries up to %d placed, and their message lookups taken, from a snapshot", found.seq)
            self._restore_parts(lookups["parts"])
        for segment in chain:
            self.segments.append(segment)
            if segment.last <= self.state.seq:
                continue
            segment_start = self.state.seq
            data = read.take(segment.path)
            if found is not None and segment.first <= found.seq:  # the snapshot's last segment: the lines after N
                data = data[self.state.log.stream_end() - found.stream.bounds[-1] :]
            lines = split_lines(data)
            self.state.load_parsed(lines, parse_lines(lines))
            if self.state.seq < segment.last:  # a gap: an index segment is missing or damaged
                log.error("index segment %s does not continue entry %d", segment.path, segment_start)
        return True

    def _restore_parts(self, saved: dict[str, Any]) -> None:
        """Give each registered part back what the snapshot kept of it, if it was saved under the same key."""
        for name, part in self.parts.items():
            found = saved.get(name)
            if not isinstance(found, dict) or found.get("key") != part.key:
                log.info("the snapshot holds no %s drawn by this code and these settings: it is drawn afresh", name)
                continue
            try:
                part.restore(self.state, found.get("data"))
            except Exception as exc:  # a part that does not fit is drawn afresh, whatever the data held
                log.warning("the snapshot's %s is ignored, drawn afresh instead: %s: %s", name, type(exc).__name__, exc)

    def _chain(self) -> list[Segment]:
        """The index segments that hold the record, in order."""
        found: list[Segment] = []
        for info in self._listing(naming.INDEX_PREFIX):
            match = _SEGMENT.match(info.removeprefix(naming.INDEX_PREFIX))
            if match:
                found.append(Segment(int(match[1]), int(match[2]), int(match[3])))
        # A crash during a merge can leave both the merged segment and its parts: keep the widest.
        found.sort(key=lambda s: (s.first, -s.last))
        chain: list[Segment] = []
        for segment in found:
            if not chain or segment.last > chain[-1].last:
                chain.append(segment)
        return chain

    def _listing(self, prefix: str) -> list[str]:
        return self.storage.paths(self.bucket, prefix)

    def _from_snapshot(self, chain: list[Segment], snapshots: list[tuple[int, str]], read: _Reader) -> _Found | None:
        """The newest of `snapshots` (entry, path; newest first) the index confirms, with the segments up to it.

        `snapshot.py` says what is checked.
        """
        for seq, path in snapshots:
            try:
                lookups, last = snapshot.load(self.storage.read(self.bucket, path))
                stream = Stream()
                for segment in self._covering(chain, seq):
                    if lookups["starts"][segment.first - 1] != stream.size:
                        raise snapshot.Unusable(f"the index's segment {segment.path} does not start where it says")
                    stream.add(read.get(segment.path))
                line = stream.line(lookups["starts"][seq - 1])
                if snapshot.line_hash(encode(decode_data(parse_segment(line)[0]))) != last:
                    raise snapshot.Unusable(f"the index's entry {seq} is not the one it holds")
            except Exception as exc:  # whatever the file holds, a snapshot not trusted is only passed over
                log.warning("snapshot %s ignored, the index is read instead: %s", path, exc)
                continue
            log.info("starting from snapshot %s (entry %d)", path, seq)
            return _Found(seq, lookups, stream)
        return None

    @staticmethod
    def _covering(chain: list[Segment], seq: int) -> list[Segment]:
        """The segments from entry 1 to the one holding entry `seq`, if the index runs to it without a gap."""
        expected, out = 1, []
        for segment in chain:
            if segment.first != expected:
                raise snapshot.Unusable(f"the index has a gap before entry {segment.first}")
            out.append(segment)
            if segment.last >= seq:
                return out
            expected = segment.last + 1
        raise snapshot.Unusable(f"the index ends before entry {seq}")

    def _repair(self) -> None:
        """Rewrite the files of the unmerged entries after the file writer's last confirmed round.

        All of them, not only the missing ones: a later entry may rewrite a path an earlier one
        wrote (a profile, a taskforce's README), so a file that is there may still be stale.
        Entries up to the mark (`naming.FILES_MARK`) had their files written; without a mark,
        every unmerged entry's files are rewritten.
        """
        recent = [s for s in self.segments if s.level == 0]
        if not recent:
            return
        first = max(recent[0].first, self._files_mark() + 1)
        if first > self.state.seq:
            return
        wanted: dict[str, bytes] = {}
        for entry in self.state.log[first - 1 :]:
            wanted.update(entry.files())
        if wanted:
            log.warning("rewriting the %d file(s) of entries %d to %d, after the last round confirmed written",
                        len(wanted), first, self.state.seq)  # fmt: skip
            self.storage.batch(self.bucket, [Add(p, d) for p, d in wanted.items()])

    def _files_mark(self) -> int:
        """The last entry whose files were confirmed written, from the bucket; 0 if none is readable."""
        try:
            text = self.storage.read(self.bucket, naming.FILES_MARK, max_bytes=64).decode("ascii").strip()
        except (StorageError, UnicodeDecodeError):
            return 0
        return int(text) if text.isdigit() and text.isascii() else 0

    # -- writing ----------------------------------------------------------------------------
    def write(self, build: Callable[[State, int, float], E], timeout: float = 60.0) -> E:
        """Queue one write and wait until it is durable; errors from `build` are re-raised."""
        thread, done = self._enqueue(build)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._written(cast(E, done.result(timeout=max(0.0, min(POLL, deadline - time.monotonic())))))
            except TimeoutError:
                pass
            self._still_waiting(thread, deadline, timeout)

    async def write_async(self, build: Callable[[State, int, float], E], timeout: float = 60.0) -> E:
        """`write` for the event loop: the request waits for the writer without holding a worker thread.

        At most `WRITES_IN_FLIGHT` writes of the loop await the writer's answer at once; the others
        wait their turn here, before any of their work, within the same `timeout`. Under a burst of
        posts the loop then holds a few writes' answers at a time, not one per connection, and a
        read is not queued behind them all (`bench/backend.py`: the digest's p99 during a burst of
        raw posts).

        The writer's answer is handed to the loop with one `call_soon_threadsafe`; a timer looks
        every `POLL` seconds whether the writer is still alive, as `write` does.
        """
        deadline, gate = time.monotonic() + timeout, self._gate()
        try:
            if gate.locked():  # a slot frees when a write ahead is answered: wait for one, within the time
                async with asyncio.timeout(timeout):  # a timer, where `wait_for` made a task of each wait
                    await gate.acquire()
            else:
                await gate.acquire()
        except TimeoutError:  # the writes ahead held every slot for the whole time
            thread = self._thread
            self._still_waiting(thread if thread is not None else threading.current_thread(), deadline, timeout)
            raise _writer_error(f"the record's writer did not answer within {timeout:.0f} s") from None
        try:
            return await self._write_async(build, max(deadline - time.monotonic(), 0.0))
        finally:
            gate.release()

    def _gate(self) -> asyncio.Semaphore:
        """The running loop's bound on writes in flight (a record may serve one loop, then another)."""
        loop = asyncio.get_running_loop()
        if self._gate_loop is not loop:
            self._gate_loop, self._gate_slots = loop, asyncio.Semaphore(WRITES_IN_FLIGHT)
        return self._gate_slots

    async def _write_async(self, build: Callable[[State, int, float], E], timeout: float) -> E:
        thread, done = self._enqueue(build)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[E] = loop.create_future()

        def deliver() -> None:  # on the loop, once the writer answered
            if answer.done():  # the request was cancelled, or the watch below already failed it
                return
            failure = done.exception()
            if failure is not None:
                answer.set_exception(failure)
            else:
                answer.set_result(done.result())

        deadline = time.monotonic() + timeout
        timer: asyncio.TimerHandle | None = None

        def watch() -> None:
            nonlocal timer
            if answer.done():
                return
            try:
                self._still_waiting(thread, deadline, timeout)
            except APIError as exc:
                answer.set_exception(exc)
                return
            timer = loop.call_later(POLL, watch)

        def hand_over(_: Future[Any]) -> None:  # in the writer's thread
            with suppress(RuntimeError):  # the loop has closed: nobody waits for this answer any more
                loop.call_soon_threadsafe(deliver)

        timer = loop.call_later(POLL, watch)
        done.add_done_callback(hand_over)
        try:
            return self._written(await answer)
        finally:
            if timer is not None:
                timer.cancel()

    def write_new(self, build: Callable[[State, int, float], E], timeout: float = 60.0) -> tuple[E, bool]:
        """Like `write`, and True; or what already holds and False when `build` raised Unchanged."""
        try:
            return self.write(build, timeout), True
        except Unchanged as same:
            return cast(E, same.found), False

    def write_files(self, files: dict[str, bytes], timeout: float = 60.0) -> None:
        """Write derived files (e.g. the verification index) after the files of every write answered before.

        Returns once the file writer tried them: what it could not write stays queued and is
        tried again (logged), like the entries' own files.
        """
        thread = self._file_thread
        if thread is None or not thread.is_alive():
            raise _writer_error(f"the record's file writer is not running ({self._files_stopped_by or 'stopped'})")
        done: Future[None] = Future()
        self._files.put(_Files(dict(files), done=done))
        deadline = time.monotonic() + timeout
        while True:
            try:
                done.result(timeout=max(0.0, min(POLL, deadline - time.monotonic())))
                return
            except TimeoutError:
                pass
            if not done.done():  # the file writer may have ended between the check above and the put
                self._still_waiting(thread, deadline, timeout, files=True)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the files of every write answered so far were tried (the board's files, inboxes...)."""
        self.write_files({}, timeout)

    def _enqueue(self, build: Builder) -> tuple[threading.Thread, Future[Any]]:
        """Queue one build for the writer, or refuse at once when the writer is not running."""
        thread = self._thread
        if thread is None:
            raise RuntimeError("the record is not open")
        if not thread.is_alive():
            raise _writer_error(f"the record's writer stopped ({self._stopped_by or 'no reason recorded'})")
        pending = _Pending(build, Future())
        self._queue.put(pending)
        return thread, pending.done

    @staticmethod
    def _written(entry: E) -> E:
        seen = request_writes.get()
        if seen is not None:
            seen.append(entry.seq)
        return entry

    def _still_waiting(self, thread: threading.Thread, deadline: float, timeout: float, *, files: bool = False) -> None:
        """After a poll without an answer: fail fast if the thread waited for stopped meanwhile, or once the time is up.

        `files`: the thread is the file writer (`write_files`), not the writer.
        """
        who = "file writer" if files else "writer"
        if not thread.is_alive():
            why = (self._files_stopped_by if files else self._stopped_by) or "no reason recorded"
            raise _writer_error(f"the record's {who} stopped ({why})")
        if time.monotonic() >= deadline:
            raise APIError(
                "STORAGE_UNAVAILABLE",
                f"the record's {who} did not answer within {timeout:.0f} s",
                "the files are still queued: look before you retry"
                if files
                else "the write may still be recorded: look before you retry",
            )

    def problem(self) -> str | None:
        """Why the writer cannot write now, or None: it stopped, one batch holds it too long, or the store refuses."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return f"the record's writer is not running ({self._stopped_by or 'stopped'})"
        if self._file_thread is None or not self._file_thread.is_alive():
            return f"the record's file writer is not running ({self._files_stopped_by or 'stopped'})"
        lagging = self._files_lagging_since
        if lagging is not None and time.monotonic() - lagging > self.stall_after:
            return (f"the record's files have waited {time.monotonic() - lagging:.0f} s to be written "
                    f"({self.files_waiting} file(s); see the backend's log)")  # fmt: skip
        busy = self._busy_since
        if busy is not None and time.monotonic() - busy > self.stall_after:
            return f"the record's writer has been stuck on one batch for {time.monotonic() - busy:.0f} s"
        if self.last_failure is not None:
            return f"the last index write failed: {self.last_failure}"
        return None

    def _run(self) -> None:
        batch: list[_Pending] = []
        try:
            while True:
                batch, stop = self._take()
                if batch:
                    self._busy_since = time.monotonic()
                    try:
                        self._commit(batch)
                    except Exception as exc:  # a bug in one batch: its requests get an error, the writer goes on
                        log.exception("a batch of %d write(s) failed; the writer goes on", len(batch))
                        self._fail(batch, APIError("INTERNAL", f"the write failed: {type(exc).__name__}", None))
                    finally:
                        self._busy_since = None
                if stop:
                    return
        except BaseException as exc:
            self._stopped_by = f"{type(exc).__name__}: {exc}"
            log.critical("the record's writer stopped: %s", self._stopped_by)
            self._fail(batch, _writer_error(f"the record's writer stopped ({self._stopped_by})"))
            raise
        finally:
            self._drain()

    def _take(self) -> tuple[list[_Pending], bool]:
        """The next batch, and whether to stop after it.

        It waits only for its first request: then it takes whatever else is already queued (the
        requests that arrived while the previous batch was being committed), up to `max_batch`,
        and never waits for company. An idle writer commits a lone request at once; under load,
        each commit carries everything that queued behind the one before.
        """
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                return batch, True
            batch.append(more)
        return batch, False

    def _drain(self) -> None:
        """Answer whatever is still queued once the writer ends (closed, or stopped by an error)."""
        reason = self._stopped_by or "the backend is stopping"
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return
            if pending is not None:
                self._fail([pending], _writer_error(f"the record's writer stopped ({reason})"))

    @staticmethod
    def _fail(batch: list[_Pending], error: Exception) -> None:
        for pending in batch:
            if not pending.done.done():
                pending.done.set_exception(error)

    def _build(self, pending: _Pending, build: Builder) -> _Built | None:
        """Build, encode and apply one entry; on any failure answer its request and return None."""
        ts = max(self.clock(), self.state.last_ts)
        try:
            entry = build(self.state, self.state.seq + 1, ts)
        except Exception as exc:  # an APIError or Unchanged for the requester, or a bug in one builder
            pending.done.set_exception(exc)
            return None
        try:  # what cannot be encoded is refused before it touches the state
            line, files = encode(entry).encode(), entry.files()
            undo = self.state.apply(entry)
        except Exception as exc:
            log.exception("entry %s could not be stored", type(entry).__name__)
            pending.done.set_exception(APIError("INTERNAL", f"the entry could not be stored: {exc}", None))
            return None
        return _Built(pending, entry, undo, line, files)

    def _commit(self, batch: list[_Pending]) -> None:
        built: list[_Built] = []
        for pending in batch:
            done = self._build(pending, pending.build)
            if done is not None:
                built.append(done)
        if not built:
            return
        segment = Segment(built[0].entry.seq, built[-1].entry.seq, 0)
        data = b"\n".join(b.line for b in built) + b"\n"
        try:
            self._retrying(lambda: self.storage.batch(self.bucket, [Add(segment.path, data)]))
        except Exception as exc:  # nothing of the batch is durable: take it all back
            for item in reversed(built):
                item.undo()
            self.last_failure = str(exc) if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, AccessDenied):  # retrying cannot help: the backend's own token is refused
                error = APIError("STORAGE_DENIED", "the backend's Hub token was refused", "organizers: check HF_TOKEN")
            elif isinstance(exc, StorageError):
                error = _writer_error("the write could not be stored")
            else:
                log.exception("index write failed")
                error = APIError("INTERNAL", "the write could not be stored", None)
            self._fail([item.pending for item in built], error)
            log.error("index write failed, %d request(s) refused: %s", len(built), exc)
            return
        self.last_failure = None
        self.segments.append(segment)
        self.commits += 1
        files: dict[str, bytes] = {}
        for item in built:
            files.update(item.files)
        self._files.put(_Files(files, segment.last))  # before any answer: `settle()` after a 201 waits for them
        for item in built:
            item.pending.done.set_result(item.entry)
        self._guarded(self._maybe_merge, "merging index segments")
        if self.snapshot_every and self.state.seq - self._snapshot_tried >= self.snapshot_every:
            self._snapshot_tried = self.state.seq  # one that fails is tried again after as many entries, not at once
            self._guarded(self._snapshot, "writing a snapshot")

    def _snapshot(self) -> None:
        """Write the lookups and parts as a snapshot (from the writer between batches, or once it stopped); keep two."""
        seq, data = self.state.seq, snapshot.dump(self.state, self.parts)
        self._retrying(lambda: self.storage.batch(self.bucket, [Add(snapshot.path_of(seq), data)]))
        self._snapshot_seq = seq
        older = sorted((n, p) for p in self._listing(snapshot.PREFIX) if (n := snapshot.seq_of(p)) and n < seq)
        if len(older) >= snapshot.KEEP:
            self.storage.batch(self.bucket, [Delete(p) for _, p in older[: len(older) - snapshot.KEEP + 1]])
        log.info("snapshot written at entry %d", seq)

    @staticmethod
    def _guarded(step: Callable[[], object], what: str) -> None:
        """Run a step after the durable point: its failure is logged, never turned into a refused write."""
        try:
            step()
        except Exception:
            log.exception("%s failed; retried later", what)

    def _run_files(self) -> None:
        """The file writer's thread: rounds until stopped. Whatever ends it is recorded, and its waiters answered."""
        waiting: list[Future[None]] = []
        try:
            self._file_rounds(waiting)
        except BaseException as exc:
            self._files_stopped_by = f"{type(exc).__name__}: {exc}"
            log.critical("the record's file writer stopped: %s", self._files_stopped_by)
            raise
        finally:
            error = _writer_error(f"the record's file writer stopped ({self._files_stopped_by or 'closed'})")
            while True:
                try:
                    item = self._files.get_nowait()
                except queue.Empty:
                    break
                if item is not None and item.done is not None:
                    waiting.append(item.done)
            for done in waiting:
                if not done.done():
                    done.set_exception(error)

    def _file_rounds(self, waiting: list[Future[None]]) -> None:
        """Each round writes everything handed over since the last in one storage call, with the mark."""
        unwritten: dict[str, tuple[bytes, int]] = {}  # path: (content, the last entry of its batch; 0: file-only)
        latest, marked, stop = self.files_confirmed, self.files_confirmed, False
        while not stop:
            try:  # with files left over from a failed round, come back to them after a while
                items = [self._files.get(timeout=RETRY_FILES_AFTER if unwritten else None)]
            except queue.Empty:
                items = []
            while True:
                try:
                    items.append(self._files.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is None:
                    stop = True
                    continue
                unwritten.update((path, (data, item.upto)) for path, data in item.files.items())
                latest = max(latest, item.upto)
                if item.done is not None:
                    waiting.append(item.done)
            # The mark names what earlier rounds confirmed: written with this round's files, it is never ahead of them.
            mark = self.files_confirmed if self.files_confirmed > marked and unwritten else None
            try:
                if self._flush_files(unwritten, mark) and mark is not None:
                    marked = mark
            except Exception:  # a storage adapter's bug: the files stay queued, the thread goes on
                log.exception("writing %d file(s) failed; tried again later", len(unwritten))
            held = [upto for _, upto in unwritten.values() if upto]
            self.files_confirmed = max(self.files_confirmed, min(held) - 1 if held else latest)
            self.files_waiting = len(unwritten)
            if not unwritten:
                self._files_lagging_since = None
            elif self._files_lagging_since is None:
                self._files_lagging_since = time.monotonic()
            for done in waiting:
                done.set_result(None)
            waiting.clear()
        if unwritten:
            log.error("%d file(s) not written at stop; the next start rewrites the entries' own", len(unwritten))
        elif self.files_confirmed > marked:  # a clean stop leaves the mark where the files are
            self._guarded(lambda: self._flush_files({}, self.files_confirmed), "writing the files' mark")

    def _flush_files(self, unwritten: dict[str, tuple[bytes, int]], mark: int | None) -> bool:
        """Write `unwritten` (and the mark) in one storage call; what was written leaves it, what failed stays.

        A path the store refuses for good (a symlink planted on it, in a local folder) is set
        aside with an error in the log, so it cannot hold back every other file. True when the
        whole call succeeded.
        """
        if not unwritten and mark is None:
            return True
        ops = [Add(p, d) for p, (d, _) in unwritten.items()]
        if mark is not None:
            ops.append(Add(naming.FILES_MARK, str(mark).encode()))
        try:
            self._retrying(lambda: self.storage.batch(self.bucket, ops))
        except PartialWrite as exc:
            failed = {path for path, _ in exc.failures}
            for path in [p for p in unwritten if p not in failed]:
                del unwritten[path]
            log.warning("%d file(s) not written yet, tried again later: %s", len(unwritten), exc)
            return False
        except InvalidPath as exc:
            log.warning("a file's path was refused (%s); the round's files are written one by one", exc)
            self._one_by_one(unwritten)
            return False
        except StorageError as exc:
            log.warning("%d file(s) not written yet, tried again later: %s", len(unwritten), exc)
            return False
        unwritten.clear()
        return True

    def _one_by_one(self, unwritten: dict[str, tuple[bytes, int]]) -> None:
        """Write each file alone: one the store refuses for good is dropped (the index keeps its entry)."""
        for path, (data, _) in list(unwritten.items()):
            try:
                self.storage.batch(self.bucket, [Add(path, data)])
            except InvalidPath as exc:
                log.error("file %s refused by the store and dropped (the index keeps its entry): %s", path, exc)
            except StorageError:
                continue  # tried again with the next round
            del unwritten[path]

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
        for level in (0, 1):  # a new segment is merged once its entries' files are written
            run = [s for s in self.segments if s.level == level and s.last <= self.files_confirmed]
            if len(run) < MERGE_AT:
                continue
            merged = Segment(run[0].first, run[-1].last, level + 1)
            lines = self.state.log.lines(merged.first - 1, merged.last)
            try:
                self.storage.batch(self.bucket, [Add(merged.path, b"\n".join(lines) + b"\n")])
                self.storage.batch(self.bucket, [Delete(s.path) for s in run])
            except StorageError as exc:
                log.warning("index merge postponed: %s", exc)
                return
            self.segments = sorted([s for s in self.segments if s not in run] + [merged], key=lambda s: s.first)
