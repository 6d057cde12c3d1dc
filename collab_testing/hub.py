"""A stateful fake of the huggingface_hub calls the kit makes, with failure switches.

It stands in at the function boundary (the methods of `HfApi`, same names and keywords), keeps
real state (buckets with content-addressed files, users and their org roles), enforces who may
write where the way the Hub does, and raises the library's own exception types, so code under
test cannot tell it from the Hub except by speed. Failure switches make any call fail with a
status, fail some operations of a batch, or be slow; `calls` counts every call.

Why a fake and not an HTTP stub: bucket writes go through Xet, which cannot be pointed at a
local server, so the boundary to fake is the library's API.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub._buckets import BucketFile, BucketFolder  # the types list_bucket_tree yields
from huggingface_hub.errors import BucketBatchError, BucketNotFoundError, EntryNotFoundError, HfHubHTTPError

ENDPOINT = "https://huggingface.co"
ADMIN_TOKEN = "hf_test_organizer_token"  # a conventional token for tests that seed an organizer
WRITE_ROLES = {"admin", "write"}


def _response(status: int, method: str, url: str, message: str) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request(method, url), json={"error": message})


def http_error(status: int, message: str, *, url: str = f"{ENDPOINT}/api", method: str = "GET") -> HfHubHTTPError:
    """The library's HTTP error for a status, carrying a real response object."""
    return HfHubHTTPError(message, response=_response(status, method, url, message))


def bucket_not_found(bucket_id: str) -> BucketNotFoundError:
    """What the library raises for a missing (or invisible) bucket."""
    url = f"{ENDPOINT}/api/buckets/{bucket_id}"
    error = BucketNotFoundError(f"Bucket {bucket_id} not found", response=_response(404, "GET", url, "not found"))
    error.bucket_id = bucket_id
    return error


@dataclass
class StoredFile:
    data: bytes
    hash: str
    mtime: datetime
    uploaded_at: datetime


@dataclass
class FakeBucket:
    id: str
    private: bool
    creator: str
    files: dict[str, StoredFile] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)  # every content ever stored, by hash


@dataclass
class FakeUser:
    name: str
    token: str
    orgs: dict[str, str]  # org -> role (admin | write | contributor | read)

    def whoami(self) -> dict[str, Any]:
        return {
            "type": "user",
            "name": self.name,
            "fullname": self.name.title(),
            "orgs": [{"name": org, "roleInOrg": role} for org, role in self.orgs.items()],
            "auth": {"accessToken": {"displayName": f"{self.name}-token", "role": "fineGrained"}},
        }


@dataclass
class _Failure:
    status: int
    times: int
    message: str


class FakeHub:
    """The Hub, in memory. Construct, seed users and buckets, pass it where `HfApi` goes."""

    def __init__(self, *, enforce_auth: bool = True) -> None:
        self.enforce_auth = enforce_auth
        self.buckets: dict[str, FakeBucket] = {}
        self.users: dict[str, FakeUser] = {}
        self.calls: Counter[str] = Counter()
        self._failures: dict[str, list[_Failure]] = {}
        self._failing_paths: dict[str, str] = {}
        self._delays: dict[str, float] = {}
        self._lock = threading.RLock()

    # -- seeding and switches ---------------------------------------------------------------
    def add_user(self, name: str, token: str, orgs: dict[str, str] | None = None) -> FakeUser:
        """Register a user and the token that authenticates as them."""
        user = FakeUser(name, token, dict(orgs or {}))
        self.users[token] = user
        return user

    def fail(self, method: str, status: int, *, times: int = 1, message: str = "injected failure") -> None:
        """Make the next `times` calls of `method` raise the library's error for `status`."""
        self._failures.setdefault(method, []).append(_Failure(status, times, message))

    def fail_paths(self, paths: Iterable[str], error: str = "injected operation failure") -> None:
        """Make batch operations on these destination paths fail while the others apply."""
        for path in paths:
            self._failing_paths[path] = error

    def slow(self, method: str, seconds: float) -> None:
        """Delay every call of `method`."""
        self._delays[method] = seconds

    def reset_switches(self) -> None:
        """Clear all failure switches and delays."""
        self._failures.clear()
        self._failing_paths.clear()
        self._delays.clear()

    def _enter(self, method: str, url: str) -> None:
        self.calls[method] += 1
        if method in self._delays:
            time.sleep(self._delays[method])
        pending = self._failures.get(method)
        if pending:
            failure = pending[0]
            failure.times -= 1
            if failure.times <= 0:
                pending.pop(0)
            if failure.status == 404 and "/buckets/" in url:
                raise bucket_not_found(url.split("/api/buckets/", 1)[1])
            raise http_error(failure.status, failure.message, url=url)

    # -- identity ---------------------------------------------------------------------------
    def _user(self, token: str | bool | None, url: str) -> FakeUser | None:
        if isinstance(token, str) and token in self.users:
            return self.users[token]
        if self.enforce_auth and token not in (None, False):
            raise http_error(401, "Invalid credentials in Authorization header", url=url)
        return None

    def whoami(self, token: str | bool | None = None, *, cache: bool = False) -> dict[str, Any]:
        """The token's user and org memberships, as `/api/whoami-v2` returns them."""
        url = f"{ENDPOINT}/api/whoami-v2"
        self._enter("whoami", url)
        user = self._user(token, url)
        if user is None:
            raise http_error(401, "Invalid user token.", url=url)
        return user.whoami()

    def _can_write(self, user: FakeUser | None, bucket: FakeBucket | None, namespace: str) -> bool:
        if not self.enforce_auth:
            return True
        if user is None:
            return False
        if namespace == user.name:
            return True
        role = user.orgs.get(namespace)
        if role in WRITE_ROLES:
            return True
        # Contributors write only the buckets they created.
        return role == "contributor" and (bucket is None or bucket.creator == user.name)

    def _visible(self, user: FakeUser | None, bucket: FakeBucket) -> bool:
        if not bucket.private or not self.enforce_auth:
            return True
        namespace = bucket.id.split("/", 1)[0]
        return user is not None and (user.name == namespace or namespace in user.orgs)

    def _bucket(self, bucket_id: str, token: str | bool | None, method: str, *, write: bool = False) -> FakeBucket:
        url = f"{ENDPOINT}/api/buckets/{bucket_id}"
        self._enter(method, url)
        user = self._user(token, url)
        bucket = self.buckets.get(bucket_id)
        if bucket is None or not self._visible(user, bucket):
            raise bucket_not_found(bucket_id)
        if write and not self._can_write(user, bucket, bucket_id.split("/", 1)[0]):
            raise http_error(403, f"You don't have the rights to write to {bucket_id}", url=url, method="POST")
        return bucket

    # -- buckets ----------------------------------------------------------------------------
    def create_bucket(
        self,
        bucket_id: str,
        *,
        private: bool | None = None,
        visibility: str | None = None,
        resource_group_id: str | None = None,
        region: str | None = None,
        exist_ok: bool = False,
        token: str | bool | None = None,
    ) -> Any:
        """Create a bucket in a namespace the token may write (409 unless `exist_ok`)."""
        url = f"{ENDPOINT}/api/buckets/{bucket_id}"
        with self._lock:
            self._enter("create_bucket", url)
            user = self._user(token, url)
            namespace = bucket_id.split("/", 1)[0]
            if not self._can_write(user, None, namespace):
                raise http_error(403, f"You don't have the rights to create a bucket in {namespace}", url=url)
            if bucket_id in self.buckets:
                if not exist_ok:
                    raise http_error(409, f"Bucket {bucket_id} already exists", url=url, method="POST")
            else:
                is_private = bool(private) if visibility is None else visibility == "private"
                self.buckets[bucket_id] = FakeBucket(bucket_id, is_private, user.name if user else "anonymous")
            return {"url": f"{ENDPOINT}/buckets/{bucket_id}", "bucket_id": bucket_id}

    def bucket_info(self, bucket_id: str, *, token: str | bool | None = None) -> Any:
        """Id, visibility, size and file count."""
        with self._lock:
            bucket = self._bucket(bucket_id, token, "bucket_info")
            size = sum(len(f.data) for f in bucket.files.values())
            return _Info(bucket.id, bucket.private, size, len(bucket.files))

    def list_bucket_tree(
        self,
        bucket_id: str,
        prefix: str | None = None,
        *,
        recursive: bool | None = None,
        token: str | bool | None = None,
    ) -> Iterator[BucketFile | BucketFolder]:
        """Files (and, unless recursive, first-level folders) whose path starts with `prefix`, lexically."""
        with self._lock:
            bucket = self._bucket(bucket_id, token, "list_bucket_tree")
            snapshot = sorted(bucket.files.items())
        folders: set[str] = set()
        for path, stored in snapshot:
            if prefix and not path.startswith(prefix):
                continue
            rest = path[len(prefix.rstrip("/")) + 1 :] if prefix else path
            if not recursive and "/" in rest:
                top = (prefix.rstrip("/") + "/" if prefix else "") + rest.split("/", 1)[0]
                if top not in folders:
                    folders.add(top)
                    yield BucketFolder(  # type: ignore[no-untyped-call]  # untyped upstream
                        type="directory", path=top, uploadedAt=_iso(stored.uploaded_at)
                    )
                continue
            yield _bucket_file(path, stored)

    def get_bucket_paths_info(
        self, bucket_id: str, paths: Iterable[str], *, token: str | bool | None = None
    ) -> Iterator[BucketFile]:
        """Info for the paths that exist; missing ones are omitted."""
        with self._lock:
            bucket = self._bucket(bucket_id, token, "get_bucket_paths_info")
            found = [(p, bucket.files[p]) for p in paths if p in bucket.files]
        for path, stored in found:
            yield _bucket_file(path, stored)

    def download_bucket_files(
        self,
        bucket_id: str,
        files: list[tuple[Any, str | Path]],
        *,
        raise_on_missing_files: bool = False,
        token: str | bool | None = None,
    ) -> None:
        """Write the requested files to local paths."""
        with self._lock:
            bucket = self._bucket(bucket_id, token, "download_bucket_files")
            wanted = [(src if isinstance(src, str) else src.path, Path(dest)) for src, dest in files]
            missing = [p for p, _ in wanted if p not in bucket.files]
            if missing and raise_on_missing_files:
                raise EntryNotFoundError(f"missing in {bucket_id}: {', '.join(missing)}")
            contents = [(bucket.files[p].data, dest) for p, dest in wanted if p in bucket.files]
        for data, dest in contents:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)

    def batch_bucket_files(
        self,
        bucket_id: str,
        *,
        add: list[tuple[str | Path | bytes, str]] | None = None,
        copy: list[tuple[str, str, str, str]] | None = None,
        delete: list[str] | None = None,
        token: str | bool | None = None,
    ) -> None:
        """Adds, then copies, then deletes, each on its own (not atomic), like the Hub."""
        with self._lock:
            bucket = self._bucket(bucket_id, token, "batch_bucket_files", write=True)
            now = datetime.now(UTC)
            failures: list[dict[str, str]] = []
            for source, path in add or []:
                if path in self._failing_paths:
                    failures.append({"path": path, "error": self._failing_paths[path]})
                    continue
                data = source if isinstance(source, bytes) else Path(source).read_bytes()
                self._store(bucket, path, data, now)
            for repo_type, source_id, xet_hash, path in copy or []:
                source_bucket = self.buckets.get(source_id) if repo_type == "bucket" else None
                blob = source_bucket.blobs.get(xet_hash) if source_bucket else None
                if path in self._failing_paths or blob is None:
                    failures.append({"path": path, "error": self._failing_paths.get(path, "source hash not found")})
                    continue
                self._store(bucket, path, blob, now)
            for path in delete or []:
                if path in self._failing_paths or path not in bucket.files:
                    failures.append({"path": path, "error": self._failing_paths.get(path, "file not found")})
                    continue
                del bucket.files[path]
            if failures:
                url = f"{ENDPOINT}/api/buckets/{bucket_id}/batch"
                error = BucketBatchError(
                    f"{len(failures)} operation(s) failed",
                    response=_response(
                        422 if len(failures) == len(add or []) + len(copy or []) + len(delete or []) else 200,
                        "POST",
                        url,
                        "batch failed",
                    ),
                )
                error.failures = failures
                raise error

    @staticmethod
    def _store(bucket: FakeBucket, path: str, data: bytes, now: datetime) -> None:
        digest = hashlib.sha256(data).hexdigest()
        bucket.blobs[digest] = data
        bucket.files[path] = StoredFile(data, digest, now, now)


@dataclass(frozen=True)
class _Info:
    id: str
    private: bool
    size: int
    total_files: int


def _iso(moment: datetime) -> str:
    """The Hub's timestamp format (UTC, 'Z' suffix), which the library's parser insists on."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bucket_file(path: str, stored: StoredFile) -> BucketFile:
    return BucketFile(  # type: ignore[no-untyped-call]  # untyped upstream
        type="file",
        path=path,
        size=len(stored.data),
        xetHash=stored.hash,
        mtime=_iso(stored.mtime),
        uploadedAt=_iso(stored.uploaded_at),
    )
