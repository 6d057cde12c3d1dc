"""Buckets as folders: the storage of the local mode, with the Hub's semantics.

Layout under the root: `buckets/<namespace>/<name>/<path>`. A bucket exists when its folder
does. Writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half a file; a batch is applied operation by operation, like the Hub's. Hashes are
SHA-256 of the content, cached per (size, mtime) so repeated stats do not reread files.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from collab_backend.storage.base import (
    MAX_PAGE,
    Add,
    Copy,
    Delete,
    FileInfo,
    InvalidPath,
    NotFound,
    Op,
    Page,
    PartialWrite,
    check_bucket,
    check_limit,
    check_path,
    check_prefix,
)

_TMP_PREFIX = ".collab-tmp-"


class LocalStorage:
    """A folder standing in for the org's buckets."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._hashes: dict[Path, tuple[int, int, str]] = {}

    # -- paths ------------------------------------------------------------------------------
    def bucket_dir(self, bucket: str) -> Path:
        """The folder of a bucket (which may not exist)."""
        return self.root / "buckets" / check_bucket(bucket)

    def _file(self, bucket: str, path: str) -> Path:
        """The file of a bucket path; no part of it below the hub's root may be a symlink.

        The path rules already refuse `..` and absolute paths; a symlink planted inside the
        folder could still lead outside it. The root is resolved once, so only the few parts
        below it are looked at (resolving the whole path twice per call cost a fifth of a
        promotion's time).
        """
        return self._no_symlink(self.bucket_dir(bucket) / check_path(path), path)

    def _no_symlink(self, target: Path, named: str) -> Path:
        probe = self.root
        for part in target.relative_to(self.root).parts:
            probe = probe / part
            if probe.is_symlink():
                raise InvalidPath(f"path leads through a symlink: {named!r}")
        return target

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket folder (local mode's stand-in for `create_bucket`)."""
        self.bucket_dir(bucket).mkdir(parents=True, exist_ok=True)

    # -- reads ------------------------------------------------------------------------------
    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket's folder exists."""
        return self.bucket_dir(bucket).is_dir()

    def _info(self, base: Path, file: Path) -> FileInfo:
        st = file.stat()
        cached = self._hashes.get(file)
        if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
            digest = cached[2]
        else:
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            self._hashes[file] = (st.st_size, st.st_mtime_ns, digest)
        return FileInfo(file.relative_to(base).as_posix(), st.st_size, digest, st.st_mtime)

    def _walk(self, folder: Path) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in filenames:
                file = Path(dirpath) / name
                if not name.startswith(_TMP_PREFIX) and not file.is_symlink():  # never followed out
                    yield file

    def list(self, bucket: str, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_PAGE) -> Page:
        """Files under `prefix` in path order, after `cursor`, at most `limit`."""
        check_prefix(prefix)
        check_limit(limit)
        base = self.bucket_dir(bucket)
        if not base.is_dir():
            raise NotFound(f"bucket {bucket} not found")
        folder = self._no_symlink(base / prefix if prefix else base, prefix or bucket)
        paths = sorted(p.relative_to(base).as_posix() for p in self._walk(folder)) if folder.is_dir() else []
        if cursor is not None:
            paths = [p for p in paths if p > cursor]
        page = paths[:limit]
        items = [self._info(base, base / p) for p in page]
        return Page(items, page[-1] if len(paths) > limit else None)

    def stat(self, bucket: str, paths: Iterable[str]) -> dict[str, FileInfo]:
        """Info for the given paths that exist."""
        base = self.bucket_dir(bucket)
        found = {}
        for path in paths:
            file = self._file(bucket, path)
            if file.is_file():
                found[path] = self._info(base, file)
        return found

    def read(self, bucket: str, path: str) -> bytes:
        """The content of a file."""
        file = self._file(bucket, path)
        try:
            return file.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"{bucket}/{path} not found") from None

    # -- writes -----------------------------------------------------------------------------
    def batch(self, bucket: str, ops: Sequence[Op]) -> None:
        """Apply each operation in turn; collect failures instead of stopping at the first."""
        targets = [self._file(bucket, op.path) for op in ops]  # refuse a bad path before writing anything
        for op in ops:
            if isinstance(op, Copy):
                check_bucket(op.src_bucket)
                check_path(op.src_path)
        if not self.bucket_exists(bucket):
            raise NotFound(f"bucket {bucket} not found")
        failures: list[tuple[str, str]] = []
        for op, target in zip(ops, targets, strict=True):
            try:
                if isinstance(op, Add):
                    self._write(target, op.data)
                elif isinstance(op, Copy):
                    self._copy(op, target)
                elif isinstance(op, Delete):
                    target.unlink(missing_ok=True)
            except (OSError, NotFound, InvalidPath) as exc:
                failures.append((op.path, str(exc)))
        if failures:
            raise PartialWrite(failures)

    def _copy(self, op: Copy, target: Path) -> None:
        source = self._file(op.src_bucket, op.src_path)
        try:
            data = source.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{op.src_bucket}/{op.src_path} not found") from None
        if hashlib.sha256(data).hexdigest() != op.src_hash:
            raise NotFound(f"{op.src_bucket}/{op.src_path} no longer has content {op.src_hash[:12]}")
        self._write(target, data)

    def _write(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
