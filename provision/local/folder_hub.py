"""Buckets as folders, answering the few huggingface_hub bucket calls the seeding makes.

The local target keeps its buckets at `<collab>/.collab/hub/buckets/<namespace>/<name>/` (the
layout the backend's local storage reads), so seeding works the same on both targets: the seed
code talks to this class exactly as it talks to the Hub. Hashes are SHA-256 of the content.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provision.errors import ProvisionError

if TYPE_CHECKING:
    from huggingface_hub._buckets import BucketFile


class FolderPathError(ProvisionError, ValueError):
    """A path would leave its bucket folder."""


@dataclass(frozen=True)
class FolderFile:
    """What `get_bucket_paths_info` yields: the fields the seed code reads."""

    path: str
    size: int
    xet_hash: str


class FolderBuckets:
    """The bucket calls of `HfApi` that seeding uses, over the local target's folders."""

    def __init__(self, hub_dir: Path) -> None:
        self.root = hub_dir / "buckets"

    def _file(self, bucket_id: str, path: str) -> Path:
        base = (self.root / bucket_id).resolve()
        target = (base / path).resolve()
        parts = path.split("/")
        if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
            raise FolderPathError(f"not a relative file path: {path!r}")
        if not target.is_relative_to(base):
            raise FolderPathError(f"{path!r} leaves bucket {bucket_id}")
        return target

    def local_path(self, bucket_id: str, path: str) -> Path:
        """Where a bucket file lies on disk.

        Raises:
            FolderPathError: the path is not relative, or it leaves the bucket's folder.
        """
        return self._file(bucket_id, path)

    def get_bucket_paths_info(
        self, bucket_id: str, paths: list[str], *, token: bool | str | None = None
    ) -> Iterator[FolderFile]:
        """Info for the paths that exist (missing ones are omitted, as on the Hub)."""
        for path in paths:
            file = self._file(bucket_id, path)
            if file.is_file():
                data = file.read_bytes()
                yield FolderFile(path, len(data), hashlib.sha256(data).hexdigest())

    def download_bucket_files(
        self,
        bucket_id: str,
        files: list[tuple[str | BucketFile, str | Path]],
        *,
        raise_on_missing_files: bool = False,
        token: bool | str | None = None,
    ) -> None:
        """Copy files out to local paths."""
        for source, dest in files:
            path = source if isinstance(source, str) else source.path
            file = self._file(bucket_id, path)
            if not file.is_file():
                if raise_on_missing_files:
                    raise FileNotFoundError(f"{bucket_id}/{path}")
                continue
            Path(dest).write_bytes(file.read_bytes())

    def batch_bucket_files(
        self,
        bucket_id: str,
        *,
        add: list[tuple[str | Path | bytes, str]] | None = None,
        delete: list[str] | None = None,
        token: bool | str | None = None,
    ) -> None:
        """Write and delete files (atomically per file)."""
        for source, path in add or []:
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            target = self._file(bucket_id, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".collab-tmp-", dir=target.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        for path in delete or []:
            self._file(bucket_id, path).unlink(missing_ok=True)
