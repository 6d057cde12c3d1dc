"""The storage interface every adapter implements, and the rules every path obeys.

Semantics are the Hub's, because that is where a collab runs: a batch is not atomic (some
operations may apply and others fail), the last writer wins, there are no folders (a prefix
exists while a file sits under it), and copies go by content hash so that what was checked is
exactly what is copied. Paths are checked here, once, before any adapter sees them: relative,
no `.`/`..` segments, no empty segments, no backslashes or control characters.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

MAX_PATH_CHARS = 512
MAX_PAGE = 1000
_BUCKET_ID = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?\Z"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StorageError(Exception):
    """Root of storage failures; the message is safe to show to a client."""


class InvalidPath(StorageError, ValueError):
    """A path or bucket id breaks the path rules (traversal, control characters, ...)."""


class NotFound(StorageError):
    """The file or the bucket does not exist (or is not visible to the credentials in use)."""


class AccessDenied(StorageError):
    """The credentials were refused (401) or lack a permission (403)."""


class Unavailable(StorageError):
    """The store failed or timed out (5xx, 429, network); retrying later may work."""


class TooLarge(StorageError):
    """The file is larger than the reader asked to read (`read(..., max_bytes=)`)."""


class PartialWrite(StorageError):
    """Some operations of a batch failed; the others may have applied."""

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = list(failures)
        super().__init__(
            f"{len(self.failures)} operation(s) of the batch failed: "
            + "; ".join(f"{p}: {e}" for p, e in self.failures[:5])
        )


@dataclass(frozen=True)
class FileInfo:
    """One stored file. `hash` is opaque and only comparable within one adapter."""

    path: str
    size: int
    hash: str
    mtime: float | None = None


@dataclass(frozen=True)
class Page:
    """A page of a listing, and the cursor to pass for the next one (None at the end)."""

    items: list[FileInfo]
    next_cursor: str | None = None


@dataclass(frozen=True)
class Add:
    """Write `data` at `path` (replacing what was there)."""

    path: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Copy:
    """Copy the content with `src_hash`, found at `src_path` in `src_bucket`, to `path`."""

    src_bucket: str
    src_path: str
    src_hash: str
    path: str


@dataclass(frozen=True)
class Delete:
    """Remove `path` (a missing path is not an error)."""

    path: str


Op = Add | Copy | Delete


class Storage(Protocol):
    """What the backend needs from bucket storage."""

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket exists; only "not found" means False."""
        ...

    def list(self, bucket: str, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_PAGE) -> Page:
        """Files under `prefix` (a folder: `a/` matches `a/x`, never `ab`), in path order, after `cursor`."""
        ...

    def paths(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        """Every file's path under `prefix`, in path order, as `list` pages them, but without their info.

        A start lists the index and the snapshots this way: the local adapter would otherwise hash
        every file it lists (the whole index, hundreds of MB at a million messages) for nothing.
        """
        ...

    def stat(self, bucket: str, paths: Iterable[str]) -> dict[str, FileInfo]:
        """Info for the paths that exist; missing ones are simply absent from the result."""
        ...

    def read(self, bucket: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """The content of one file; raises NotFound, or TooLarge when it holds more than `max_bytes`."""
        ...

    def batch(self, bucket: str, ops: Sequence[Op]) -> None:
        """Apply adds, copies and deletes; not atomic; raises PartialWrite naming what failed."""
        ...


def check_bucket(bucket: str) -> str:
    """Return `bucket` if it is a well-formed `namespace/name` id, else raise InvalidPath."""
    if not isinstance(bucket, str) or not _BUCKET_ID.match(bucket) or "--" in bucket or ".." in bucket:
        raise InvalidPath(f"not a bucket id: {bucket!r}")
    return bucket


def check_path(path: str) -> str:
    """Return `path` if it is a safe relative file path inside a bucket, else raise InvalidPath."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS:
        raise InvalidPath(f"a path is 1 to {MAX_PATH_CHARS} characters")
    if path.startswith("/") or path.endswith("/") or "\\" in path or _CONTROL.search(path):
        raise InvalidPath(f"not a relative file path: {path!r}")
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise InvalidPath(f"a path may not contain empty, '.' or '..' segments: {path!r}")
    return path


def check_prefix(prefix: str) -> str:
    """Return a listing prefix: '' for everything, else a folder ending in '/'."""
    if prefix == "":
        return prefix
    if not prefix.endswith("/"):
        raise InvalidPath(f"a listing prefix is a folder ending in '/': {prefix!r}")
    check_path(prefix[:-1])
    return prefix


def check_limit(limit: int) -> int:
    """Page sizes are bounded so one request cannot ask for the whole store."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}")
    return limit
