"""`collab bucket`: the local folders acted on as `hf buckets` acts on the Hub, for a rehearsal.

A participant of a local collab runs the same bucket commands as on the Hub with `collab bucket`
in place of `hf buckets`, and the same `hf://buckets/<namespace>/<name>/<path>` addresses. Who
calls is the local user of the token in `HF_TOKEN` (the identity file `collab apply --target
local` writes). A bucket made with `create` is owned by its creator, recorded beside the bucket's
visibility in `.collab/hub/bucket-settings/`; only its owner writes it. Buckets with no owner,
the central bucket above all, are the collab's: everyone may read them, nobody writes them here
(on the Hub only the backend writes the central bucket). Reads of a public bucket are allowed to
everyone, as the README's buckets are public; a private bucket (the audit bucket, which holds
the private set) is read only by its owner and the members of its namespace, as on the Hub, so
no participant reaches it. Every path is checked to stay inside its bucket folder.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from provision.errors import ProvisionError
from provision.local.folder_hub import FolderBuckets
from provision.local.target import LocalTarget, read_identities

PREFIX = "hf://buckets/"
_BUCKET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}\Z")
_TMP_PREFIX = ".collab-tmp-"


class BucketCommandError(ProvisionError):
    """A `collab bucket` command that cannot be done: what was wrong, and how to fix it."""


@dataclass(frozen=True)
class Address:
    """A parsed `hf://buckets/<namespace>/<name>[/<path>]`."""

    bucket: str
    path: str  # "" for the bucket itself; may end with "/"


def parse_address(text: str) -> Address:
    """Split an `hf://buckets/...` address into its bucket and its path.

    Raises:
        BucketCommandError: it does not start with `hf://buckets/`, or names no valid bucket.
    """
    if not text.startswith(PREFIX):
        raise BucketCommandError(f"{text!r} is not a bucket address; write hf://buckets/<namespace>/<name>/<path>")
    parts = text.removeprefix(PREFIX).split("/", 2)
    bucket = "/".join(parts[:2])
    if len(parts) < 2 or not _BUCKET_ID.match(bucket):
        raise BucketCommandError(f"{text!r} names no bucket; write hf://buckets/<namespace>/<name>/<path>")
    return Address(bucket, parts[2] if len(parts) == 3 else "")


class LocalBuckets:
    """The bucket commands of one local collab, as one local user."""

    def __init__(self, target: LocalTarget, token: str | None) -> None:
        self.target = target
        self.files = FolderBuckets(target.hub_dir)
        table = read_identities(target.identity_file) or {}
        entry = table.get(token or "")
        if entry is None:
            raise BucketCommandError(
                "HF_TOKEN is not a token of this local collab; export the token the organizer gave you "
                f"(one per local user in {target.identity_file.name}, written by `collab apply --target local`)"
            )
        self.user: str = entry["user"]
        self.orgs: dict[str, str] = dict(entry.get("orgs", {}))

    # -- ownership ------------------------------------------------------------------------

    def _settings(self, bucket: str) -> dict[str, object]:
        try:
            data = json.loads(self.target.settings_file(bucket).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def owner(self, bucket: str) -> str | None:
        """The local user who created the bucket with `create`; None for the collab's own buckets."""
        owner = self._settings(bucket).get("owner")
        return owner if isinstance(owner, str) else None

    def _folder(self, bucket: str) -> Path:
        folder = self.target.bucket_dir(bucket)
        if not folder.is_dir():
            raise BucketCommandError(f"bucket {bucket} does not exist; create it with `collab bucket create {bucket}`")
        return folder

    def _readable(self, bucket: str) -> Path:
        folder = self._folder(bucket)
        namespace = bucket.split("/")[0]
        if self._settings(bucket).get("private") is True and self.user not in (self.owner(bucket), namespace) \
                and namespace not in self.orgs:  # fmt: skip
            raise BucketCommandError(
                f"bucket {bucket} is private: only members of {namespace} read it, and you ({self.user}) are not one"
            )
        return folder

    def _writable(self, bucket: str) -> None:
        self._folder(bucket)
        owner = self.owner(bucket)
        if owner != self.user:
            whose = f"belongs to {owner}" if owner else "is the collab's: only the backend writes it"
            raise BucketCommandError(
                f"bucket {bucket} {whose}; you ({self.user}) may write only the buckets you created"
            )

    # -- commands -------------------------------------------------------------------------

    def create(self, bucket: str) -> str:
        """Make a bucket owned by the caller (a no-op for one the caller owns already)."""
        address = parse_address(PREFIX + bucket) if not bucket.startswith(PREFIX) else parse_address(bucket)
        name = address.bucket
        namespace = name.split("/")[0]
        if namespace != self.user and namespace not in self.orgs:
            raise BucketCommandError(
                f"you ({self.user}) cannot create a bucket in {namespace!r}: use your own name or an org you belong "
                f"to ({', '.join(sorted(self.orgs)) or 'none'})"
            )
        folder = self.target.bucket_dir(name)
        if folder.is_dir():
            self._writable(name)
            return f"Bucket {name} exists; it is yours."
        folder.mkdir(parents=True)
        settings = self.target.settings_file(name)
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps({"private": False, "owner": self.user}) + "\n", encoding="utf-8")
        return f"Created bucket {name} (owner {self.user})."

    def write(self, address: Address, data: bytes) -> None:
        """Write one file into a bucket the caller owns."""
        self._writable(address.bucket)
        self.files.batch_bucket_files(address.bucket, add=[(data, address.path)])

    def read(self, address: Address) -> bytes:
        """One file of a bucket the caller may read (any public bucket)."""
        self._readable(address.bucket)
        file = self.files.local_path(address.bucket, address.path)
        if not file.is_file() or file.is_symlink():
            raise BucketCommandError(f"no file {address.path!r} in bucket {address.bucket}")
        return file.read_bytes()

    def listing(self, address: Address) -> list[tuple[str, int]]:
        """Every file under the address's path (a folder, a file, or the whole bucket), with its size."""
        folder = self._readable(address.bucket)
        prefix = address.path
        out = []
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if not path.is_file() or path.is_symlink() or path.name.startswith(_TMP_PREFIX):
                continue
            if prefix and not (rel == prefix or rel.startswith(prefix.rstrip("/") + "/")):
                continue
            out.append((rel, path.stat().st_size))
        return out

    def cp(self, source: str, dest: str, *, stdin: BinaryIO, stdout: BinaryIO) -> str:
        """Copy one file: local (or `-`, standard input) to a bucket, or a bucket file to local (or `-`)."""
        if dest.startswith(PREFIX):
            address = parse_address(dest)
            data = stdin.read() if source == "-" else _read_local(source)
            if not address.path or address.path.endswith("/"):
                if source == "-":
                    raise BucketCommandError(f"{dest!r} names a folder; standard input needs a file name after it")
                address = Address(address.bucket, address.path + Path(source).name)
            self.write(address, data)
            return f"Copied {source} to {PREFIX}{address.bucket}/{address.path}"
        address = parse_address(source)
        data = self.read(address)
        if dest == "-":
            stdout.write(data)
            return ""
        target = Path(dest)
        if target.is_dir():
            target = target / Path(address.path).name
        _write_local(target, data)
        return f"Copied {source} to {target}"

    def sync(self, source: str, dest: str) -> str:
        """Copy a folder's files to a bucket folder, or a bucket folder's files to a local folder."""
        if dest.startswith(PREFIX):
            address = parse_address(dest)
            folder = Path(source)
            if not folder.is_dir():
                raise BucketCommandError(f"{source!r} is not a folder")
            self._writable(address.bucket)
            base = address.path.rstrip("/") + "/" if address.path.strip("/") else ""
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            adds: list[tuple[str | Path | bytes, str]] = [(p, base + p.relative_to(folder).as_posix()) for p in files]
            self.files.batch_bucket_files(address.bucket, add=adds)
            return f"Synced {len(adds)} file(s) to {PREFIX}{address.bucket}/{base}"
        address = parse_address(source)
        base = address.path.rstrip("/") + "/" if address.path.strip("/") else ""
        listed = self.listing(Address(address.bucket, base))
        for rel, _ in listed:
            _write_local(Path(dest) / rel.removeprefix(base), self.read(Address(address.bucket, rel)))
        return f"Synced {len(listed)} file(s) to {dest}"


def _read_local(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BucketCommandError(f"cannot read {path}: {exc.strerror or exc}") from None


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def stdio() -> tuple[BinaryIO, BinaryIO]:
    """The process's standard input and output, as bytes."""
    return sys.stdin.buffer, sys.stdout.buffer
