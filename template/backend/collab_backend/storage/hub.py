"""Buckets on the Hub through huggingface_hub 2.4: the only module that calls the bucket API.

Errors are read by `collab_backend.hub_failures`, the kit's one reading of how the library fails,
and mapped narrowly: only "not found" becomes NotFound; 401/403 (a refused Xet write token too)
become AccessDenied; 5xx, 429, timeouts and transport errors Unavailable, so a failing token is
never mistaken for an empty bucket, and an unreachable Hub never reads as a bug. Listing is
lexical on the Hub (prefix `logs` also returns `logs.json`), so results are filtered to the folder
here.
"""

from __future__ import annotations

import builtins
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from huggingface_hub.errors import BucketBatchError

from collab_backend.hub_failures import classify
from collab_backend.storage.base import (
    MAX_PAGE,
    AccessDenied,
    Add,
    Copy,
    Delete,
    FileInfo,
    NotFound,
    Op,
    Page,
    PartialWrite,
    StorageError,
    TooLarge,
    Unavailable,
    check_bucket,
    check_limit,
    check_path,
    check_prefix,
)

T = TypeVar("T")


class HubClient(Protocol):
    """The huggingface_hub calls this adapter makes (`HfApi` satisfies it, and so does the test fake)."""

    def bucket_info(self, bucket_id: str, *, token: str | bool | None = None) -> Any: ...

    def list_bucket_tree(
        self,
        bucket_id: str,
        prefix: str | None = None,
        *,
        recursive: bool | None = None,
        token: str | bool | None = None,
    ) -> Iterable[Any]: ...

    def get_bucket_paths_info(
        self, bucket_id: str, paths: Iterable[str], *, token: str | bool | None = None
    ) -> Iterable[Any]: ...

    def download_bucket_files(
        self,
        bucket_id: str,
        files: list[tuple[Any, str | Path]],
        *,
        raise_on_missing_files: bool = False,
        token: str | bool | None = None,
    ) -> None: ...

    def batch_bucket_files(
        self,
        bucket_id: str,
        *,
        add: list[tuple[str | Path | bytes, str]] | None = None,
        copy: list[tuple[str, str, str, str]] | None = None,
        delete: list[str] | None = None,
        token: str | bool | None = None,
    ) -> None: ...


def _mapped(what: str, call: Callable[[], T]) -> T:
    """Run a Hub call, turning its failures into storage errors."""
    try:
        return call()
    except BucketBatchError as exc:
        raise PartialWrite([(f.get("path", "?"), f.get("error", "failed")) for f in exc.failures]) from exc
    except Exception as exc:
        failure = classify(exc)
        if failure is None:  # not a failure of the Hub: a bug, reported as one
            raise
        if failure.kind == "not_found":
            raise NotFound(f"{what} not found") from exc
        if failure.kind == "denied":
            raise AccessDenied(f"the Hub refused access to {what} ({failure.status})") from exc
        if failure.kind == "rejected":  # the Hub refused the request itself: trying again will not help
            raise StorageError(f"the Hub rejected the call on {what} ({failure.status}): {failure.detail}") from exc
        status = failure.status or "no answer"
        raise Unavailable(f"the Hub failed on {what} ({status}): {failure.detail}") from exc


def _info(item: Any) -> FileInfo:
    mtime = item.mtime.timestamp() if getattr(item, "mtime", None) else None
    return FileInfo(item.path, int(item.size), str(item.xet_hash), mtime)


class HubStorage:
    """Buckets on the Hub, read and written with the backend's token."""

    def __init__(self, client: HubClient, *, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket exists and is visible to the token."""
        check_bucket(bucket)
        try:
            _mapped(bucket, lambda: self.client.bucket_info(bucket, token=self.token))
        except NotFound:
            return False
        return True

    def list(self, bucket: str, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_PAGE) -> Page:
        """Files under a folder in path order. The Hub pages sequentially, so this walks the prefix."""
        check_limit(limit)
        files = self._files(bucket, prefix)
        if cursor is not None:
            files = [f for f in files if f.path > cursor]
        page = files[:limit]
        return Page(page, page[-1].path if len(files) > limit else None)

    def _files(self, bucket: str, prefix: str) -> builtins.list[FileInfo]:
        check_bucket(bucket)
        check_prefix(prefix)
        entries = _mapped(
            bucket,
            lambda: list(
                self.client.list_bucket_tree(bucket, prefix.rstrip("/") or None, recursive=True, token=self.token)
            ),
        )
        return sorted(
            (_info(e) for e in entries if getattr(e, "type", "file") == "file" and e.path.startswith(prefix)),
            key=lambda f: f.path,
        )

    def paths(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        """Every file's path under a folder, in path order, from one walk of the folder."""
        return [f.path for f in self._files(bucket, prefix)]

    def stat(self, bucket: str, paths: Iterable[str]) -> dict[str, FileInfo]:
        """Info for the paths that exist, in one round trip per thousand paths."""
        check_bucket(bucket)
        wanted = [check_path(p) for p in paths]
        if not wanted:
            return {}
        found = _mapped(bucket, lambda: list(self.client.get_bucket_paths_info(bucket, wanted, token=self.token)))
        return {f.path: _info(f) for f in found if f.path in set(wanted)}

    def read(self, bucket: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """Download one file through a private temporary folder; TooLarge past `max_bytes`, unread."""
        check_bucket(bucket)
        check_path(path)
        with tempfile.TemporaryDirectory(prefix="collab-read-") as tmp:
            target = Path(tmp) / "content"
            _mapped(
                f"{bucket}/{path}",
                lambda: self.client.download_bucket_files(
                    bucket, [(path, target)], raise_on_missing_files=True, token=self.token
                ),
            )
            try:
                with target.open("rb") as source:
                    size = source.seek(0, 2)
                    if max_bytes is not None and size > max_bytes:
                        raise TooLarge(f"{bucket}/{path} is larger than {max_bytes} bytes")
                    source.seek(0)
                    return source.read(size)
            except FileNotFoundError:
                raise NotFound(f"{bucket}/{path} not found") from None

    def batch(self, bucket: str, ops: Sequence[Op]) -> None:
        """One `batch_bucket_files` call (the library chunks above 1000 operations)."""
        check_bucket(bucket)
        add: list[tuple[str | Path | bytes, str]] = []
        copy: list[tuple[str, str, str, str]] = []
        delete: list[str] = []
        for op in ops:
            check_path(op.path)
            if isinstance(op, Add):
                add.append((op.data, op.path))
            elif isinstance(op, Copy):
                check_bucket(op.src_bucket)
                copy.append(("bucket", op.src_bucket, op.src_hash, op.path))
            elif isinstance(op, Delete):
                delete.append(op.path)
            else:  # pragma: no cover - the Op union is closed
                raise StorageError(f"unknown operation {op!r}")
        if not ops:
            return
        try:
            _mapped(
                bucket,
                lambda: self.client.batch_bucket_files(
                    bucket, add=add or None, copy=copy or None, delete=delete or None, token=self.token
                ),
            )
        except PartialWrite as exc:
            # The Hub reports deleting an absent file as a failure (a retried POST re-applies its
            # deletes); absent is what a delete wants, so only failures that left a file count.
            written = {p for p, _ in add} | {c[3] for c in copy}
            left = self.stat(bucket, [p for p, _ in exc.failures if p in delete and p not in written])
            real = [(p, e) for p, e in exc.failures if p not in delete or p in written or p in left]
            if real:
                raise PartialWrite(real) from exc
