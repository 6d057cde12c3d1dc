"""Buckets as folders: the storage of the local mode, with the Hub's semantics.

Layout under the root: `buckets/<namespace>/<name>/<path>`. A bucket exists when its folder
does. Writes go to a temporary file in the same folder and are renamed into place, so a reader
never sees half a file; a batch is applied operation by operation, like the Hub's. Hashes are
SHA-256 of the content, computed in chunks and cached per (size, mtime) so repeated stats do not
reread files.

Participants own folders here, so a bucket may hold what the Hub cannot: a symlink, a hard link
to a file elsewhere, a named pipe, a device, a sparse file of any size. Only regular files with
one name are files: a symlink or a hard link (link count above one) on a path is refused
(InvalidPath); anything not a regular file is absent from stats and listings. A file is opened
without following links and without blocking, checked on the opened descriptor (fstat), and
read no further than the size seen there, after the caller's size cap; a file larger than
`max_hashed_bytes` is never read to hash it (its hash names its size and time, and a copy of it
is refused).
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import itertools
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
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
    TooLarge,
    check_bucket,
    check_limit,
    check_path,
    check_prefix,
)
from collab_backend.storage.local_writer import WriterProcess

_TMP_PREFIX = ".collab-tmp-"
WRITER_PROCESS_AT = 16  # operations in one batch from which the writer process applies it, when there is one
_CHUNK = 1 << 20
# The schema's largest `storage.max_file_bytes`: no file a collab accepts is larger, so no hash
# the backend compares is of a larger file (build_context passes the spec's own, smaller bound).
MAX_HASHED_BYTES = 5 * 2**30
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalStorage:
    """A folder standing in for the org's buckets."""

    def __init__(self, root: Path, *, max_hashed_bytes: int = MAX_HASHED_BYTES, writer_process: bool = False) -> None:
        self.root = root.resolve()
        self.max_hashed_bytes = max_hashed_bytes
        # Batches of at least WRITER_PROCESS_AT operations go to a child process (local_writer.py says why).
        self.writer = WriterProcess(self.root, max_hashed_bytes) if writer_process else None
        self._hashes: dict[Path, tuple[int, int, str]] = {}
        self._tmp_names = itertools.count()  # the temporary files' names: PID and this counter

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
        # Strings and os.lstat: pathlib's own cost was most of this check's, at three files a raw post.
        root, full = str(self.root), str(target)
        parts = (
            full[len(root) + 1 :].split(os.sep) if full.startswith(root + os.sep) else target.relative_to(root).parts
        )
        probe = root
        for part in parts:
            probe = f"{probe}{os.sep}{part}"
            try:
                if stat.S_ISLNK(os.lstat(probe).st_mode):
                    raise InvalidPath(f"path leads through a symlink: {named!r}")
            except (FileNotFoundError, NotADirectoryError):
                return target  # nothing lies below a part that is missing or not a folder
        return target

    def close(self) -> None:
        """Stop the writer process, if one was started (by PID); later batches are written in-process."""
        if self.writer is not None:
            self.writer.close()

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket folder (local mode's stand-in for `create_bucket`)."""
        self.bucket_dir(bucket).mkdir(parents=True, exist_ok=True)

    # -- reads ------------------------------------------------------------------------------
    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket's folder exists."""
        return self.bucket_dir(bucket).is_dir()

    @staticmethod
    def _regular(file: Path, named: str) -> os.stat_result | None:
        """The file's lstat when it is a regular file with one name; None when absent or not a file.

        A hard link is refused like a symlink: its other name may lie outside the bucket.
        """
        try:
            st = os.lstat(file)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_nlink > 1:
            raise InvalidPath(f"path is a hard link (a file with another name): {named!r}")
        return st

    @contextmanager
    def _opened(self, file: Path, named: str) -> Iterator[tuple[int, os.stat_result]]:
        """The file opened for reading (no link followed, never blocking) and its fstat, checked like `_regular`."""
        if self._regular(file, named) is None:
            raise NotFound(f"{named} is not a file")
        try:
            fd = os.open(file, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"{named} not found") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink put in its place since
                raise InvalidPath(f"path leads through a symlink: {named!r}") from None
            raise
        try:
            st = os.fstat(fd)  # what was opened, whatever the path names now
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(f"{named} is not a file")
            if st.st_nlink > 1:
                raise InvalidPath(f"path is a hard link (a file with another name): {named!r}")
            yield fd, st
        finally:
            os.close(fd)

    @staticmethod
    def _chunks(fd: int, size: int) -> Iterator[bytes]:
        """The file's content in chunks, never past `size` bytes (a file growing meanwhile is cut there)."""
        left = size
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def _digest(self, fd: int, st: os.stat_result) -> str:
        if st.st_size > self.max_hashed_bytes:  # never read whole: no copy or check may use it
            return f"unhashed:{st.st_size}:{st.st_mtime_ns}"
        digest = hashlib.sha256()
        for chunk in self._chunks(fd, st.st_size):
            digest.update(chunk)
        return digest.hexdigest()

    def _info(self, base: Path, file: Path) -> FileInfo:
        named = file.relative_to(base).as_posix()
        with self._opened(file, named) as (fd, st):
            cached = self._hashes.get(file)
            if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
                digest = cached[2]
            else:
                digest = self._digest(fd, st)
                self._hashes[file] = (st.st_size, st.st_mtime_ns, digest)
        return FileInfo(named, st.st_size, digest, st.st_mtime)

    def _walk(self, folder: Path) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in filenames:
                file = Path(dirpath) / name
                if name.startswith(_TMP_PREFIX):
                    continue
                try:
                    st = os.lstat(file)
                except FileNotFoundError:
                    continue
                # Symlinks are never followed out, and pipes, devices and hard links are not files here.
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    yield file

    def paths(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        """Every file's path under `prefix`, in path order (nothing read, nothing hashed)."""
        check_prefix(prefix)
        base = self.bucket_dir(bucket)
        if not base.is_dir():
            raise NotFound(f"bucket {bucket} not found")
        folder = self._no_symlink(base / prefix if prefix else base, prefix or bucket)
        return sorted(p.relative_to(base).as_posix() for p in self._walk(folder)) if folder.is_dir() else []

    def list(self, bucket: str, prefix: str = "", *, cursor: str | None = None, limit: int = MAX_PAGE) -> Page:
        """Files under `prefix` in path order, after `cursor`, at most `limit`."""
        check_limit(limit)
        paths = self.paths(bucket, prefix)
        base = self.bucket_dir(bucket)
        if cursor is not None:
            paths = [p for p in paths if p > cursor]
        page = paths[:limit]
        items = []
        for path in page:
            try:
                items.append(self._info(base, base / path))
            except NotFound:  # gone, or replaced by something that is not a file, since the walk
                continue
        return Page(items, page[-1] if len(paths) > limit else None)

    def stat(self, bucket: str, paths: Iterable[str]) -> dict[str, FileInfo]:
        """Info for the given paths that are files."""
        base = self.bucket_dir(bucket)
        found = {}
        for path in paths:
            file = self._file(bucket, path)
            if self._regular(file, path) is None:
                continue
            try:
                found[path] = self._info(base, file)
            except NotFound:
                continue
        return found

    def read(self, bucket: str, path: str, *, max_bytes: int | None = None) -> bytes:
        """The content of a file, its size checked against `max_bytes` before a byte is read."""
        file = self._file(bucket, path)
        with self._opened(file, f"{bucket}/{path}") as (fd, st):
            if max_bytes is not None and st.st_size > max_bytes:
                raise TooLarge(f"{bucket}/{path} is larger than {max_bytes} bytes")
            data = os.read(fd, st.st_size)  # whole in one call (a regular file's read is short only at its end)
            return data + b"".join(self._chunks(fd, st.st_size - len(data))) if 0 < len(data) < st.st_size else data

    # -- writes -----------------------------------------------------------------------------
    def batch(self, bucket: str, ops: Sequence[Op]) -> None:
        """Apply each operation in turn; collect failures instead of stopping at the first.

        Every path is checked before anything is written: each folder of the batch once for
        symlinks (a batch of a thousand board files in one folder costs one check, not a
        thousand), and each target itself.
        """
        if self.writer is not None and len(ops) >= WRITER_PROCESS_AT and self.writer.apply(bucket, ops):
            return
        base = self.bucket_dir(bucket)
        targets = [base / check_path(op.path) for op in ops]
        folders: dict[Path, None] = dict.fromkeys(target.parent for target in targets)
        for folder in folders:
            self._no_symlink(folder, str(folder.relative_to(base)))
        for op, target in zip(ops, targets, strict=True):
            if os.path.islink(target):
                raise InvalidPath(f"path leads through a symlink: {op.path!r}")
            if isinstance(op, Copy):
                check_bucket(op.src_bucket)
                check_path(op.src_path)
        if not base.is_dir():
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
        """Copy in chunks, hashing as it goes; the copy replaces the target only if the hash matches."""
        source = self._file(op.src_bucket, op.src_path)
        named = f"{op.src_bucket}/{op.src_path}"
        with self._opened(source, named) as (fd, st):
            if st.st_size > self.max_hashed_bytes:
                raise NotFound(f"{named} is too large to copy ({st.st_size} bytes)")
            digest = hashlib.sha256()

            def chunks() -> Iterator[bytes]:
                for chunk in self._chunks(fd, st.st_size):
                    digest.update(chunk)
                    yield chunk

            self._write(target, chunks(), check=lambda: digest.hexdigest() == op.src_hash)
        if digest.hexdigest() != op.src_hash:
            raise NotFound(f"{named} no longer has content {op.src_hash[:12]}")

    def _write(self, target: Path, data: bytes | Iterable[bytes], check: Callable[[], bool] | None = None) -> None:
        """Write to a temporary file beside `target`, then rename it into place (unless `check` says no).

        Four system calls for a small file (open, write, close, rename): under load each one hands
        the interpreter's lock to another thread and takes it back, so each one counts.
        """
        folder, made = os.fspath(target.parent), False
        while True:
            tmp = f"{folder}{os.sep}{_TMP_PREFIX}{os.getpid()}-{next(self._tmp_names)}"
            try:
                fd = os.open(tmp, _CREATE_FLAGS, 0o600)
                break
            except FileExistsError:  # left by an earlier process with the same PID: take the next name
                continue
            except FileNotFoundError:  # the folder is new (most writes go to one that exists: no mkdir for them)
                if made:
                    raise
                target.parent.mkdir(parents=True, exist_ok=True)
                made = True
        try:
            try:
                for chunk in [data] if isinstance(data, bytes) else data:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if check is not None and not check():
                os.unlink(tmp)
                return
            os.replace(tmp, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
