"""A child process that applies the local adapter's large batches of writes.

Every system call of a file write (open, write, close, rename) lets the interpreter's lock go and
takes it back. While the event loop keeps the lock busy with requests, each of those hand-overs
waits and switches threads, and a file cost the backend several times its own cost under load:
the record's files, a thousand a second in a burst, halved its throughput. A child process has a
lock of its own. The parent hands it a whole batch in one message over a pipe, the child applies
it with the same `LocalStorage.batch` (the same path checks, the same rename into place), and
answers with the outcome.

`WriterProcess` is the parent's side (`writer_child.py` is the child's): started on first use,
stopped by PID at `close()`, and started again if it died (the batch in flight is then written in
the parent instead, so nothing is lost). The child ends by itself when its parent's end of the
pipe closes.

Messages are `marshal`-encoded tuples (bytes, text, numbers: nothing that runs code), each
preceded by its length; both ends are this module.
"""

from __future__ import annotations

import logging
import marshal
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from collab_backend.storage.base import (
    AccessDenied,
    Add,
    Copy,
    Delete,
    InvalidPath,
    NotFound,
    Op,
    PartialWrite,
    StorageError,
    TooLarge,
    Unavailable,
)

log = logging.getLogger("collab_backend.storage")
_LENGTH = struct.Struct(">I")
_ERRORS: dict[str, type[StorageError]] = {
    cls.__name__: cls for cls in (StorageError, InvalidPath, NotFound, AccessDenied, Unavailable, TooLarge)
}
STOP_WAIT = 5.0  # seconds the child has to end after its pipe closed, before it is killed


def send(out: IO[bytes], message: Any) -> None:
    data = marshal.dumps(message)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def receive(source: IO[bytes]) -> Any:
    """The next message, or None at the end of the pipe."""
    head = source.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    data = source.read(length)
    if len(data) < length:
        return None
    return marshal.loads(data)  # noqa: S302  # from this module's other end of a private pipe


def encode_ops(ops: Sequence[Op]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for op in ops:
        if isinstance(op, Add):
            out.append(("add", op.path, bytes(op.data)))
        elif isinstance(op, Copy):
            out.append(("copy", op.src_bucket, op.src_path, op.src_hash, op.path))
        else:
            out.append(("delete", op.path))
    return out


def decode_ops(items: list[tuple[Any, ...]]) -> list[Op]:
    ops: list[Op] = []
    for item in items:
        if item[0] == "add":
            ops.append(Add(item[1], item[2]))
        elif item[0] == "copy":
            ops.append(Copy(item[1], item[2], item[3], item[4]))
        else:
            ops.append(Delete(item[1]))
    return ops


def outcome_of(apply: Callable[[], None]) -> tuple[Any, ...]:
    """What the child answers: ("ok",), the failures of a partial write, or a storage error's class and text."""
    try:
        apply()
    except PartialWrite as exc:
        return ("partial", [tuple(f) for f in exc.failures])
    except StorageError as exc:
        return ("error", type(exc).__name__, str(exc))
    except OSError as exc:
        return ("error", "Unavailable", f"the local store failed: {exc}")
    return ("ok",)


def raise_outcome(outcome: tuple[Any, ...]) -> None:
    """The parent's side of `outcome_of`: raise what the child's batch raised."""
    if outcome[0] == "partial":
        raise PartialWrite([(str(p), str(e)) for p, e in outcome[1]])
    if outcome[0] == "error":
        raise _ERRORS.get(outcome[1], StorageError)(outcome[2])


class WriterProcess:
    """The parent's handle on the child: one batch at a time, over its stdin and stdout."""

    def __init__(self, root: Path, max_hashed_bytes: int) -> None:
        self.root, self.max_hashed_bytes = root, max_hashed_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.closed = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _start(self) -> subprocess.Popen[bytes]:
        package_parent = str(Path(__file__).resolve().parents[2])  # the folder that holds collab_backend/
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_parent + (os.pathsep + path if path else "")}
        return subprocess.Popen(
            [sys.executable, "-m", "collab_backend.storage.writer_child", str(self.root), str(self.max_hashed_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the backend, which stops the child itself
        )  # fmt: skip

    def apply(self, bucket: str, ops: Sequence[Op]) -> bool:
        """Apply a batch in the child; False when the child could not take it (the caller writes it itself)."""
        with self._lock:
            if self.closed:
                return False
            try:
                if self._process is None or self._process.poll() is not None:
                    self._process = self._start()
                pipe_in, pipe_out = self._process.stdin, self._process.stdout
                if pipe_in is None or pipe_out is None:  # Popen gives both: stdin and stdout are PIPE
                    raise OSError("the writer process has no pipes")
                send(pipe_in, (bucket, encode_ops(ops)))
                outcome = receive(pipe_out)
            except (OSError, struct.error) as exc:  # a pipe that broke, or a batch too large for one message
                log.warning("the local writer process failed (%s); this batch is written in-process", exc)
                self._stop()
                return False
            if outcome is None:
                log.warning("the local writer process ended; this batch is written in-process")
                self._stop()
                return False
        raise_outcome(outcome)
        return True

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the child (its pipe closes; killed by PID if it does not end) and start none again."""
        with self._lock:
            self.closed = True
            self._stop()
