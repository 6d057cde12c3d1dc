"""Files an agent asks the backend to take from its own scratch bucket (posts, results, READMEs).

The agent names only a path inside its own bucket; the bucket comes from its registration. A
source is located once (its content hash is what gets recorded and deduplicated), then read
with a size cap and as UTF-8 text.
"""

from __future__ import annotations

from dataclasses import dataclass

from collab_backend import naming
from collab_backend.context import Context
from collab_backend.errors import APIError
from collab_backend.storage import FileInfo, NotFound, TooLarge, check_path


@dataclass(frozen=True)
class Source:
    """A file of an agent's bucket, as it was when located."""

    bucket: str
    path: str
    info: FileInfo

    @property
    def key(self) -> tuple[str, str, str]:
        """What deduplication compares: the same content of the same file."""
        return (self.bucket, self.path, self.info.hash)

    def record(self) -> dict[str, str]:
        """The source as entries store it."""
        return {"bucket": self.bucket, "path": self.path, "hash": self.info.hash}


def locate(ctx: Context, agent: str, path: str) -> Source:
    """Find `path` in the agent's own bucket, or SOURCE_NOT_FOUND."""
    check_path(path)
    bucket = naming.scratch_bucket(ctx.spec, agent)
    info = ctx.storage.stat(bucket, [path]).get(path)
    if info is None:
        raise APIError("SOURCE_NOT_FOUND", f"{path} is not in {bucket}", "write the file to your bucket first")
    return Source(bucket, path, info)


def read_text(ctx: Context, source: Source) -> str:
    """The source's text, refused when over the spec's message size, not UTF-8, or holding a NUL.

    The size is checked against the located size and again by the store before it reads (the
    file may have grown since), so no more than the cap is ever read.
    """
    cap = ctx.spec.board.max_message_bytes
    too_large = APIError("BODY_TOO_LARGE", f"{source.path} is larger than {cap} bytes", None)
    if source.info.size > cap:
        raise too_large
    try:
        raw = ctx.storage.read(source.bucket, source.path, max_bytes=cap)
    except NotFound:
        raise APIError("SOURCE_NOT_FOUND", f"{source.path} vanished from {source.bucket}", None) from None
    except TooLarge:
        raise too_large from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise APIError("NOT_UTF8", f"{source.path} is not UTF-8 text", "save it as UTF-8") from None
    if "\x00" in text:
        raise APIError("VALIDATION_FAILED", f"{source.path} holds a NUL character (byte 0)", "save it as text")
    return text


def list_bounded(ctx: Context, bucket: str, folder: str, *, too_many: str, hint: str | None) -> list[FileInfo]:
    """Every file under `folder` (ending in '/'), refused with the code `too_many` past the sync cap.

    The listing stops at the first page over `storage.max_sync_files`: a huge folder costs a few
    pages, not all of them.
    """
    cap = ctx.spec.storage.max_sync_files
    found: list[FileInfo] = []
    cursor = None
    while True:
        page = ctx.storage.list(bucket, folder, cursor=cursor)
        found += page.items
        if len(found) > cap:
            raise APIError(too_many, f"{folder} holds more than {cap} files", hint)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def check_sizes(ctx: Context, files: list[FileInfo], *, hint: str | None) -> None:
    """BODY_TOO_LARGE for a file over `storage.max_file_bytes` or a total over `max_sync_bytes`."""
    limits = ctx.spec.storage
    too_big = [f.path for f in files if f.size > limits.max_file_bytes]
    if too_big:
        raise APIError("BODY_TOO_LARGE", f"{too_big[0]} is over {limits.max_file_bytes} bytes", hint)
    if sum(f.size for f in files) > limits.max_sync_bytes:
        raise APIError("BODY_TOO_LARGE", f"the files total more than {limits.max_sync_bytes} bytes", hint)
