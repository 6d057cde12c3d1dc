"""A stateful fake of the huggingface_hub calls the kit makes, with failure switches.

It stands in at the function boundary (the methods of `HfApi`, same names and keywords), keeps
real state (buckets with content-addressed files, users and their org roles, Spaces with their
settings, variables, secrets, files and a build that moves through the runtime stages; Jobs, which
a test moves through their stages), enforces who may write where the way the Hub does, and raises
the library's own exception types, so code under test cannot tell it from the Hub except by
speed. Failure switches make any call fail with a status, lose its connection, time out, fail
some operations of a batch, be slow, or make a Space's next build fail with a log; `calls`
counts every call.

It fails the way the library fails, not the way one might guess: a bucket write that adds files
asks hf_xet for a write token first, so its refusals (no rights, a missing bucket, a bad token,
any switched-on status) and lost connections are builtins `ConnectionError`s naming the status
(`xet_error`), while deletes and copies fail with HTTP errors; a lost connection elsewhere is
httpx2's `ConnectError` and a timeout its `ReadTimeout`, neither an `OSError`. The contract test
(tests/hub/test_fake_contract.py) drives the real huggingface_hub against a scripted HTTP server
on 127.0.0.1 through each of these failures and holds the fake to the same exception types and
return types.

Why a fake and not an HTTP stub: bucket writes go through Xet, whose CAS server hf_xet reaches
in Rust at the URL the token request returns; it cannot be scripted offline (only the token
request can), so the contract test stops there and the boundary to fake is the library's API.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import (
    BucketUrl,
    CommitInfo,
    JobInfo,
    RepoUrl,
    SpaceInfo,
    SpaceRuntime,
    SpaceSecret,
    SpaceVariable,
    Volume,
)
from huggingface_hub._buckets import BucketFile, BucketFolder  # the types list_bucket_tree yields
from huggingface_hub._jobs_api import _default_job_name_from_image  # run_job's default `name` label
from huggingface_hub.errors import (
    BucketBatchError,
    BucketNotFoundError,
    EntryNotFoundError,
    HfHubHTTPError,
    JobNotFoundError,
    RepositoryNotFoundError,
)

from provision.hub.token_scopes import COLLAB_PERMISSIONS  # the permission names are assumed in one place

ENDPOINT = "https://huggingface.co"
ADMIN_TOKEN = "hf_test_organizer_token"  # a conventional token for tests that seed an organizer
WRITE_ROLES = {"admin", "write"}


def _response(status: int, method: str, url: str, message: str) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request(method, url), json={"error": message})


def http_error(status: int, message: str, *, url: str = f"{ENDPOINT}/api", method: str = "GET") -> HfHubHTTPError:
    """The library's HTTP error for a status, carrying a real response object."""
    return HfHubHTTPError(message, response=_response(status, method, url, message))


def xet_error(status: int | None, url: str) -> ConnectionError:
    """What hf_xet raises when the Xet token request (`.../xet-write-token`) is refused or gets no answer.

    A bucket write that adds files asks for that token before anything else, in Rust: the refusal
    comes back as a builtins `ConnectionError` whose message names the status, as hf_xet 1.8
    words it (observed against a scripted server; the contract test holds the fake to it).
    """
    if status is None:
        return ConnectionError(f"Network error: Request middleware error: error sending request for url ({url})")
    phrase = HTTPStatus(status).phrase
    side = "server" if status >= 500 else "client"
    prefix = "Server error" if status >= 500 else "Rate limited" if status == 429 else "Network error"
    return ConnectionError(f"{prefix}: Request error: HTTP status {side} error ({status} {phrase}), domain: {url}")


def space_not_found(space_id: str) -> RepositoryNotFoundError:
    """What the library raises for a missing (or invisible) Space."""
    url = f"{ENDPOINT}/api/spaces/{space_id}"
    error = RepositoryNotFoundError(
        f"Repository Not Found for url: {url}.", response=_response(404, "GET", url, "Repository not found")
    )
    error.repo_id = space_id
    error.repo_type = "space"
    return error


def bucket_not_found(bucket_id: str) -> BucketNotFoundError:
    """What the library raises for a missing (or invisible) bucket."""
    url = f"{ENDPOINT}/api/buckets/{bucket_id}"
    error = BucketNotFoundError(f"Bucket {bucket_id} not found", response=_response(404, "GET", url, "not found"))
    error.bucket_id = bucket_id
    return error


def job_not_found(namespace: str, job_id: str) -> JobNotFoundError:
    """What the library raises for a job the Hub does not know (in that namespace)."""
    url = f"{ENDPOINT}/api/jobs/{namespace}/{job_id}"
    error = JobNotFoundError(f"Job {job_id} not found", response=_response(404, "GET", url, "Job not found"))
    error.job_id = job_id
    return error


JOB_TERMINAL = frozenset({"COMPLETED", "CANCELED", "ERROR", "DELETED"})


@dataclass
class FakeJob:
    """A job: what it was started with (env and secrets kept so tests can check them) and its stage."""

    id: str
    namespace: str
    creator: str
    image: str
    command: list[str]
    env: dict[str, Any]
    secrets: dict[str, Any]
    flavor: str
    timeout: Any
    labels: dict[str, str]
    volumes: list[Volume]
    created_at: datetime
    stage: str = "SCHEDULING"
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    logs: list[str] = field(default_factory=list)


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
class FakeSpace:
    """A Space: settings, variables, secrets (values kept so tests can check them), files, runtime."""

    id: str
    sdk: str
    private: bool
    creator: str
    hardware: str = "cpu-basic"
    requested_hardware: str | None = None
    sleep_time: int | None = None
    variables: dict[str, tuple[str, str | None, datetime]] = field(default_factory=dict)
    secrets: dict[str, tuple[str, str | None, datetime]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    stage: str = "NO_APP_FILE"
    polls_left: int = 0  # polls of get_space_runtime before a build finishes
    build_log: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str | None:
        return self.commits[-1] if self.commits else None


def git_blob_id(data: bytes) -> str:
    """The id git (and the Hub's `blobId`) gives a file's content: sha1 of a blob header plus the bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class FakeUser:
    """A user and their token, as whoami describes them.

    The token has the role `token_role`; a fine-grained one carries `fine_grained` as it is, or by
    default the permissions the kit's token holds (SETUP.md, step 2) in the user's own namespace
    and in every org of theirs. `scopes_reported=False` leaves the scopes out of whoami.
    """

    name: str
    token: str
    orgs: dict[str, str]  # org -> role (admin | write | contributor | read)
    token_role: str = "fineGrained"  # read | write | fineGrained
    fine_grained: dict[str, Any] | None = None  # auth.accessToken.fineGrained; None: the default scopes
    scopes_reported: bool = True

    def default_scopes(self) -> dict[str, Any]:
        entities = [("user", self.name), *(("org", org) for org in self.orgs)]
        return {
            "canReadGatedRepos": True,
            "global": ["discussion.write"],
            "scoped": [
                {"entity": {"type": kind, "name": name}, "permissions": list(COLLAB_PERMISSIONS)}
                for kind, name in entities
            ],
        }

    def whoami(self) -> dict[str, Any]:
        access: dict[str, Any] = {"displayName": f"{self.name}-token", "role": self.token_role}
        if self.token_role == "fineGrained" and self.scopes_reported:
            access["fineGrained"] = self.fine_grained if self.fine_grained is not None else self.default_scopes()
        return {
            "type": "user",
            "name": self.name,
            "fullname": self.name.title(),
            "orgs": [{"name": org, "roleInOrg": role} for org, role in self.orgs.items()],
            "auth": {"type": "access_token", "accessToken": access},
        }


NO_ANSWER = 0  # a _Failure status: the connection failed
TIMED_OUT = -1  # a _Failure status: the Hub did not answer in time


@dataclass
class _Failure:
    status: int  # an HTTP status, NO_ANSWER or TIMED_OUT
    times: int
    message: str


class FakeHub:
    """The Hub, in memory. Construct, seed users and buckets, pass it where `HfApi` goes."""

    def __init__(self, *, enforce_auth: bool = True, build_polls: int = 1) -> None:
        self.enforce_auth = enforce_auth
        self.build_polls = build_polls
        self.buckets: dict[str, FakeBucket] = {}
        self.spaces: dict[str, FakeSpace] = {}
        self._failing_builds: dict[str, list[str]] = {}
        self.users: dict[str, FakeUser] = {}
        self.calls: Counter[str] = Counter()
        self._failures: dict[str, list[_Failure]] = {}
        self._failing_paths: dict[str, str] = {}
        self._delays: dict[str, float] = {}
        self._lock = threading.RLock()
        self.jobs: dict[str, FakeJob] = {}

    # -- seeding and switches ---------------------------------------------------------------
    def add_user(
        self,
        name: str,
        token: str,
        orgs: dict[str, str] | None = None,
        *,
        token_role: str = "fineGrained",  # noqa: S107  # a role name, not a secret
        fine_grained: dict[str, Any] | None = None,
    ) -> FakeUser:
        """Register a user and the token that authenticates as them (see `FakeUser` for the token's scopes)."""
        user = FakeUser(name, token, dict(orgs or {}), token_role, fine_grained)
        self.users[token] = user
        return user

    def fail(self, method: str, status: int, *, times: int = 1, message: str = "injected failure") -> None:
        """Make the next `times` calls of `method` raise the library's error for `status`."""
        self._failures.setdefault(method, []).append(_Failure(status, times, message))

    def fail_network(self, method: str, *, times: int = 1, message: str = "injected connection failure") -> None:
        """Make the next `times` calls of `method` raise a transport error (not an HTTP answer, not an OSError).

        A bucket write that adds files fails as hf_xet does instead: a `ConnectionError` without a status.
        """
        self._failures.setdefault(method, []).append(_Failure(NO_ANSWER, times, message))

    def fail_timeout(self, method: str, *, times: int = 1, message: str = "injected read timeout") -> None:
        """Make the next `times` calls of `method` time out, as the library's bounded client does on a hung Hub."""
        self._failures.setdefault(method, []).append(_Failure(TIMED_OUT, times, message))

    def fail_paths(self, paths: Iterable[str], error: str = "injected operation failure") -> None:
        """Make batch operations on these destination paths fail while the others apply."""
        for path in paths:
            self._failing_paths[path] = error

    def fail_build(self, space_id: str, log: Iterable[str] = ("ERROR: failed to build the image",)) -> None:
        """Make the next build of this Space end in BUILD_ERROR, with `log` as its build log."""
        self._failing_builds[space_id] = list(log)

    def slow(self, method: str, seconds: float) -> None:
        """Delay every call of `method`."""
        self._delays[method] = seconds

    def reset_switches(self) -> None:
        """Clear all failure switches and delays."""
        self._failures.clear()
        self._failing_paths.clear()
        self._failing_builds.clear()
        self._delays.clear()

    def _enter(self, method: str, url: str, *, xet: bool = False) -> None:
        """Count the call, then apply its delay and the next failure switched on for it.

        `xet`: the call asks for a Xet write token first (a batch that adds files), so a refusal
        or a lost connection surfaces as hf_xet's `ConnectionError`, not as an HTTP error.
        """
        self.calls[method] += 1
        if method in self._delays:
            time.sleep(self._delays[method])
        pending = self._failures.get(method)
        if pending:
            failure = pending[0]
            failure.times -= 1
            if failure.times <= 0:
                pending.pop(0)
            if xet:
                raise xet_error(failure.status if failure.status > 0 else None, _xet_token_url(url))
            if failure.status == NO_ANSWER:
                raise httpx2.ConnectError(failure.message, request=httpx2.Request("GET", url))
            if failure.status == TIMED_OUT:
                raise httpx2.ReadTimeout(failure.message, request=httpx2.Request("GET", url))
            if failure.status == 404 and "/buckets/" in url:
                raise bucket_not_found(url.split("/api/buckets/", 1)[1])
            if failure.status == 404 and "/spaces/" in url:
                raise space_not_found(url.split("/api/spaces/", 1)[1])
            if failure.status == 404 and "/api/jobs/" in url:
                namespace, _, job_id = url.split("/api/jobs/", 1)[1].partition("/")
                raise job_not_found(namespace, job_id.split("/", 1)[0])
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

    def _bucket(
        self, bucket_id: str, token: str | bool | None, method: str, *, write: bool = False, xet: bool = False
    ) -> FakeBucket:
        """The bucket, as the token may see it; `xet`: refusals come from the Xet token request (see `_enter`)."""
        url = f"{ENDPOINT}/api/buckets/{bucket_id}"
        self._enter(method, url, xet=xet)
        try:
            user = self._user(token, url)
        except HfHubHTTPError:
            if xet:
                raise xet_error(401, _xet_token_url(url)) from None
            raise
        bucket = self.buckets.get(bucket_id)
        if bucket is None or not self._visible(user, bucket):
            if xet:
                raise xet_error(404, _xet_token_url(url))
            raise bucket_not_found(bucket_id)
        if write and not self._can_write(user, bucket, bucket_id.split("/", 1)[0]):
            if xet:
                raise xet_error(403, _xet_token_url(url))
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
    ) -> BucketUrl:
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
            return BucketUrl(f"{ENDPOINT}/buckets/{bucket_id}", endpoint=ENDPOINT)

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
            bucket = self._bucket(bucket_id, token, "batch_bucket_files", write=True, xet=bool(add))
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

    def update_bucket_settings(self, bucket_id: str, *, private: bool, token: str | bool | None = None) -> None:
        """Change a bucket's visibility (its only setting)."""
        with self._lock:
            bucket = self._bucket(bucket_id, token, "update_bucket_settings", write=True)
            bucket.private = private

    # -- Spaces -----------------------------------------------------------------------------
    def _space(self, space_id: str, token: str | bool | None, method: str, *, write: bool = False) -> FakeSpace:
        url = f"{ENDPOINT}/api/spaces/{space_id}"
        self._enter(method, url)
        user = self._user(token, url)
        space = self.spaces.get(space_id)
        namespace = space_id.split("/", 1)[0]
        visible = space is not None and (
            not space.private
            or not self.enforce_auth
            or (user is not None and (user.name == namespace or namespace in user.orgs))
        )
        if space is None or not visible:
            raise space_not_found(space_id)
        if write and not self._can_write_space(user, space, namespace):
            raise http_error(403, f"You don't have the rights to change {space_id}", url=url, method="POST")
        return space

    def _can_write_space(self, user: FakeUser | None, space: FakeSpace | None, namespace: str) -> bool:
        if not self.enforce_auth:
            return True
        if user is None:
            return False
        if namespace == user.name or user.orgs.get(namespace) in WRITE_ROLES:
            return True
        return user.orgs.get(namespace) == "contributor" and (space is None or space.creator == user.name)

    def _rebuild(self, space: FakeSpace) -> None:
        """A change that restarts the Space: a build starts when there is code to build."""
        if space.files:
            space.stage = "BUILDING"
            space.polls_left = self.build_polls

    def _runtime(self, space: FakeSpace) -> SpaceRuntime:
        return SpaceRuntime(
            {
                "stage": space.stage,
                "hardware": {"current": space.hardware, "requested": space.requested_hardware},
                "gcTimeout": space.sleep_time,
            }
        )

    def delete_repo(
        self, repo_id: str, *, token: str | bool | None = None, repo_type: str | None = None, missing_ok: bool = False
    ) -> None:
        """Delete a Space (the only repo type the kit deletes)."""
        with self._lock:
            if repo_type != "space":
                raise http_error(400, f"the fake deletes Spaces only, not {repo_type!r}")
            if repo_id not in self.spaces and missing_ok:
                self.calls["delete_repo"] += 1
                return
            self._space(repo_id, token, "delete_repo", write=True)
            del self.spaces[repo_id]

    def delete_bucket(self, bucket_id: str, *, missing_ok: bool = False, token: str | bool | None = None) -> None:
        """Delete a bucket and everything in it."""
        with self._lock:
            if bucket_id not in self.buckets and missing_ok:
                self.calls["delete_bucket"] += 1
                return
            self._bucket(bucket_id, token, "delete_bucket", write=True)
            del self.buckets[bucket_id]

    def create_repo(
        self,
        repo_id: str,
        *,
        token: str | bool | None = None,
        private: bool | None = None,
        visibility: str | None = None,
        repo_type: str | None = None,
        exist_ok: bool = False,
        resource_group_id: str | None = None,
        region: str | None = None,
        space_sdk: str | None = None,
        space_hardware: str | None = None,
        space_sleep_time: int | None = None,
        space_secrets: list[dict[str, str]] | None = None,
        space_variables: list[dict[str, str]] | None = None,
        space_volumes: list[Any] | None = None,
        space_template: str | None = None,
    ) -> RepoUrl:
        """Create a Space (the only repo type faked); the payload is ignored when it exists, like the Hub."""
        url = f"{ENDPOINT}/api/repos/create"
        if repo_type != "space":
            raise ValueError("the fake Hub only knows Spaces among repositories")
        if space_sdk not in {"gradio", "streamlit", "docker", "static"}:
            raise ValueError(f"Invalid space_sdk: {space_sdk!r}")
        with self._lock:
            self._enter("create_repo", url)
            user = self._user(token, url)
            namespace = repo_id.split("/", 1)[0]
            if not self._can_write_space(user, None, namespace):
                raise http_error(403, f"You don't have the rights to create a Space in {namespace}", url=url)
            if repo_id in self.spaces:
                if not exist_ok:
                    raise http_error(409, f"You already created this space repo: {repo_id}", url=url, method="POST")
            else:
                now = datetime.now(UTC)
                space = FakeSpace(repo_id, space_sdk, bool(private), user.name if user else "anonymous")
                space.hardware = space_hardware or "cpu-basic"
                space.requested_hardware = space_hardware
                space.sleep_time = space_sleep_time
                for item in space_variables or []:
                    space.variables[item["key"]] = (item["value"], item.get("description"), now)
                for item in space_secrets or []:
                    space.secrets[item["key"]] = (item["value"], item.get("description"), now)
                self.spaces[repo_id] = space
            return RepoUrl(f"{ENDPOINT}/spaces/{repo_id}", endpoint=ENDPOINT)

    def update_repo_settings(
        self,
        repo_id: str,
        *,
        gated: Any = None,
        private: bool | None = None,
        visibility: str | None = None,
        token: str | bool | None = None,
        repo_type: str | None = None,
    ) -> None:
        """Change a Space's visibility."""
        with self._lock:
            space = self._space(repo_id, token, "update_repo_settings", write=True)
            if private is not None:
                space.private = private
            elif visibility is not None:
                space.private = visibility != "public"

    def space_info(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        timeout: float | None = None,
        files_metadata: bool = False,
        expand: list[str] | None = None,
        token: str | bool | None = None,
    ) -> SpaceInfo:
        """Id, sdk, visibility, head commit, files and runtime.

        As on the Hub, a file's size and `blobId` come only with `files_metadata`, and a file kept
        in LFS (`in_lfs`) has the blob id of its pointer, with the content's sha256 under `lfs`.
        """
        with self._lock:
            space = self._space(repo_id, token, "space_info")
            self._advance(space)
            siblings = [
                _sibling(path, data) if files_metadata else {"rfilename": path}
                for path, data in sorted(space.files.items())
            ]
            runtime = self._runtime(space).raw
            return SpaceInfo(  # type: ignore[no-untyped-call]  # untyped upstream
                id=space.id,
                author=space.id.split("/", 1)[0],
                sha=space.sha,
                private=space.private,
                sdk=space.sdk,
                siblings=siblings,
                runtime=runtime,
            )

    def _advance(self, space: FakeSpace) -> None:
        """Time passes for a build: each observation brings it one poll closer to its end."""
        if space.stage != "BUILDING":
            return
        if space.polls_left > 0:
            space.polls_left -= 1
            return
        log = self._failing_builds.pop(space.id, None)
        if log is not None:
            space.stage, space.build_log = "BUILD_ERROR", log
        else:
            space.stage, space.build_log = "RUNNING", ["Successfully built the image"]
            space.hardware = space.requested_hardware or space.hardware

    def get_space_runtime(self, repo_id: str, *, token: str | bool | None = None) -> SpaceRuntime:
        """The stage, current and requested hardware and sleep time."""
        with self._lock:
            space = self._space(repo_id, token, "get_space_runtime")
            self._advance(space)
            return self._runtime(space)

    def request_space_hardware(
        self, repo_id: str, hardware: str, *, token: str | bool | None = None, sleep_time: int | None = None
    ) -> SpaceRuntime:
        """Request new hardware (current hardware changes when the Space restarts on it)."""
        with self._lock:
            space = self._space(repo_id, token, "request_space_hardware", write=True)
            space.requested_hardware = hardware
            if sleep_time is not None:
                space.sleep_time = sleep_time
            self._rebuild(space)
            return self._runtime(space)

    def set_space_sleep_time(self, repo_id: str, sleep_time: int, *, token: str | bool | None = None) -> SpaceRuntime:
        """Seconds of inactivity before the Space sleeps (-1: never)."""
        with self._lock:
            space = self._space(repo_id, token, "set_space_sleep_time", write=True)
            space.sleep_time = sleep_time
            return self._runtime(space)

    def restart_space(
        self, repo_id: str, *, token: str | bool | None = None, factory_reboot: bool = False
    ) -> SpaceRuntime:
        """Restart: a new build."""
        with self._lock:
            space = self._space(repo_id, token, "restart_space", write=True)
            self._rebuild(space)
            return self._runtime(space)

    def get_space_variables(self, repo_id: str, *, token: str | bool | None = None) -> dict[str, SpaceVariable]:
        """Every variable, with its value."""
        with self._lock:
            space = self._space(repo_id, token, "get_space_variables")
            return _variables(space)

    def add_space_variable(
        self, repo_id: str, key: str, value: str, *, description: str | None = None, token: str | bool | None = None
    ) -> dict[str, SpaceVariable]:
        """Add or update a variable; the Space restarts."""
        with self._lock:
            space = self._space(repo_id, token, "add_space_variable", write=True)
            space.variables[key] = (value, description, datetime.now(UTC))
            self._rebuild(space)
            return _variables(space)

    def delete_space_variable(
        self, repo_id: str, key: str, *, token: str | bool | None = None
    ) -> dict[str, SpaceVariable]:
        """Remove a variable."""
        with self._lock:
            space = self._space(repo_id, token, "delete_space_variable", write=True)
            space.variables.pop(key, None)
            self._rebuild(space)
            return _variables(space)

    def get_space_secrets(self, repo_id: str, *, token: str | bool | None = None) -> dict[str, SpaceSecret]:
        """Every secret's key, description and update time; never the value."""
        with self._lock:
            space = self._space(repo_id, token, "get_space_secrets", write=True)
            return {
                key: SpaceSecret(key, {"description": description, "updatedAt": _iso(at)})
                for key, (_, description, at) in space.secrets.items()
            }

    def add_space_secret(
        self, repo_id: str, key: str, value: str, *, description: str | None = None, token: str | bool | None = None
    ) -> None:
        """Add or update a secret; the Space restarts."""
        with self._lock:
            space = self._space(repo_id, token, "add_space_secret", write=True)
            space.secrets[key] = (value, description, datetime.now(UTC))
            self._rebuild(space)

    def delete_space_secret(self, repo_id: str, key: str, *, token: str | bool | None = None) -> None:
        """Remove a secret."""
        with self._lock:
            space = self._space(repo_id, token, "delete_space_secret", write=True)
            space.secrets.pop(key, None)
            self._rebuild(space)

    def upload_folder(
        self,
        *,
        repo_id: str,
        folder_path: str | Path,
        path_in_repo: str | None = None,
        commit_message: str | None = None,
        commit_description: str | None = None,
        token: str | bool | None = None,
        repo_type: str | None = None,
        revision: str | None = None,
        create_pr: bool | None = None,
        parent_commit: str | None = None,
        allow_patterns: list[str] | str | None = None,
        ignore_patterns: list[str] | str | None = None,
        delete_patterns: list[str] | str | None = None,
        run_as_future: bool = False,
    ) -> CommitInfo:
        """One commit: the folder's files (filtered by the patterns) in, remote files matching delete_patterns out.

        A README.md front matter's `sdk:` sets the Space's SDK, as on the Hub. The Space rebuilds.
        """
        if repo_type != "space":
            raise ValueError("the fake Hub only knows Spaces among repositories")
        root = Path(folder_path)
        local = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and ".git" not in path.relative_to(root).parts
        }
        local = {
            name: data
            for name, data in local.items()
            if _matches(name, allow_patterns, default=True) and not _matches(name, ignore_patterns, default=False)
        }
        with self._lock:
            space = self._space(repo_id, token, "upload_folder", write=True)
            prefix = f"{path_in_repo.strip('/')}/" if path_in_repo else ""
            for name in list(space.files):
                rest = name[len(prefix) :]
                if name.startswith(prefix) and rest not in local and _matches(rest, delete_patterns, default=False):
                    del space.files[name]
            for name, data in local.items():
                space.files[prefix + name] = data
            readme = space.files.get("README.md", b"").decode("utf-8", "replace")
            for line in readme.split("---")[1].splitlines() if readme.startswith("---") else []:
                if line.startswith("sdk:"):
                    space.sdk = line.split(":", 1)[1].strip()
            digest = hashlib.sha1(  # a commit id: anything unique per commit will do
                repr((space.sha, sorted((n, git_blob_id(d)) for n, d in space.files.items()))).encode(),
                usedforsecurity=False,
            ).hexdigest()
            space.commits.append(digest)
            self._rebuild(space)
            return CommitInfo(
                commit_url=f"{ENDPOINT}/spaces/{repo_id}/commit/{digest}",
                commit_message=commit_message or "Upload folder using huggingface_hub",
                commit_description=commit_description or "",
                oid=digest,
            )

    def fetch_space_logs(
        self, repo_id: str, *, build: bool = False, follow: bool = False, token: str | bool | None = None
    ) -> Iterable[str]:
        """The build log (build=True) or the run log of the last build."""
        with self._lock:
            space = self._space(repo_id, token, "fetch_space_logs", write=True)
            lines = list(space.build_log) if build else [f"stage {space.stage}"]
        return iter(lines)

    # -- Jobs -------------------------------------------------------------------------------
    def run_job(
        self,
        *,
        image: str,
        command: list[str],
        env: dict[str, Any] | None = None,
        secrets: dict[str, Any] | None = None,
        flavor: Any = None,
        timeout: int | float | str | None = None,
        attempts: int | None = None,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        volumes: list[Volume] | None = None,
        expose: Any = None,
        expose_public: Any = None,
        ssh: bool = False,
        network_group: str | None = None,
        network_aliases: list[str] | None = None,
        resource_group_id: str | None = None,
        namespace: str | None = None,
        token: str | bool | None = None,
    ) -> JobInfo:
        """Start a job in a namespace the token may write; bucket volumes must exist and be visible.

        A mounted bucket folder that holds no file fails the job at once (stage ERROR), as on the Hub.
        """
        with self._lock:
            url = f"{ENDPOINT}/api/jobs/{namespace}"
            self._enter("run_job", url)
            user = self._user(token, url)
            namespace = namespace or (user.name if user else "anonymous")
            if self.enforce_auth and (user is None or not (
                namespace == user.name or user.orgs.get(namespace) in WRITE_ROLES
            )):  # fmt: skip
                raise http_error(403, f"You don't have the rights to run jobs in {namespace}", url=url, method="POST")
            if name is not None and labels is not None and "name" in labels:
                raise ValueError("`name` and the `name` key in `labels` cannot both be provided.")
            if name is None and not (labels and "name" in labels):
                name = _default_job_name_from_image(image, command)  # the library's own default name
            labels = {**(labels or {}), "name": name} if name is not None else dict(labels or {})
            for key, value in labels.items():
                if not all(c.isalnum() or c in "-_" for c in key + value):
                    raise http_error(400, f"invalid label {key}={value}", url=url, method="POST")
            problem = None
            for volume in volumes or []:
                bucket = self.buckets.get(volume.source) if volume.type == "bucket" else None
                if bucket is None or not self._visible(user, bucket):
                    raise http_error(400, f"volume source {volume.source} not found", url=url, method="POST")
                if not volume.mount_path.startswith("/"):
                    raise http_error(400, f"mount path {volume.mount_path} is not absolute", url=url, method="POST")
                folder = (volume.path or "").strip("/")
                if folder and not any(p.startswith(folder + "/") for p in bucket.files):
                    problem = f"failed to mount {volume.source}/{folder}: the folder is empty"
            job_id = hashlib.sha1(f"job-{len(self.jobs)}".encode(), usedforsecurity=False).hexdigest()[:24]
            job = FakeJob(
                job_id, namespace, user.name if user else "anonymous", image, list(command), dict(env or {}),
                dict(secrets or {}), str(flavor or "cpu-basic"), timeout, dict(labels or {}), list(volumes or []),
                datetime.now(UTC),
            )  # fmt: skip
            if problem:
                job.stage, job.message, job.finished_at = "ERROR", problem, job.created_at
            self.jobs[job_id] = job
            return self._job_info(job)

    def _job(self, job_id: str, namespace: str | None, token: str | bool | None, method: str) -> FakeJob:
        url = f"{ENDPOINT}/api/jobs/{namespace}/{job_id}"
        self._enter(method, url)
        user = self._user(token, url)
        job = self.jobs.get(job_id)
        if job is None or (namespace is not None and job.namespace != namespace):
            raise job_not_found(str(namespace), job_id)
        if self.enforce_auth and (user is None or not (job.namespace == user.name or job.namespace in user.orgs)):
            raise job_not_found(str(namespace), job_id)
        return job

    def _job_info(self, job: FakeJob) -> JobInfo:
        return JobInfo(
            id=job.id,
            createdAt=_iso(job.created_at),
            startedAt=_iso(job.started_at) if job.started_at else None,
            finishedAt=_iso(job.finished_at) if job.finished_at else None,
            dockerImage=job.image,
            command=list(job.command),
            arguments=[],
            environment=dict(job.env),
            secrets=dict.fromkeys(job.secrets, "encrypted"),
            flavor=job.flavor,
            labels=dict(job.labels),
            volumes=[v.to_dict() for v in job.volumes],
            status={"stage": job.stage, "message": job.message},
            owner={"id": f"id-{job.namespace}", "name": job.namespace, "type": "org"},
            endpoint=ENDPOINT,
        )

    def inspect_job(self, *, job_id: str, namespace: str | None = None, token: str | bool | None = None) -> JobInfo:
        """The job's spec and status; JobNotFoundError for a job the namespace does not hold."""
        with self._lock:
            return self._job_info(self._job(job_id, namespace, token, "inspect_job"))

    def fetch_job_logs(
        self,
        *,
        job_id: str,
        namespace: str | None = None,
        follow: bool = False,
        tail: int | None = None,
        token: str | bool | None = None,
    ) -> Iterable[str]:
        """The job's log lines so far (the last `tail` of them)."""
        with self._lock:
            lines = list(self._job(job_id, namespace, token, "fetch_job_logs").logs)
        return iter(lines[-tail:] if tail else lines)

    def cancel_job(self, *, job_id: str, namespace: str | None = None, token: str | bool | None = None) -> None:
        """Stop a job that has not ended."""
        with self._lock:
            job = self._job(job_id, namespace, token, "cancel_job")
            if job.stage not in JOB_TERMINAL:
                job.stage, job.finished_at = "CANCELED", datetime.now(UTC)

    def list_jobs(
        self,
        *,
        status: Any = None,
        labels: dict[str, str] | None = None,
        timeout: int | None = None,
        namespace: str | None = None,
        token: str | bool | None = None,
    ) -> Iterator[JobInfo]:
        """The namespace's jobs, filtered by stage and labels: lazily, as the library pages them.

        Like the library's generator, nothing is asked (and nothing fails) before the first item is taken.
        """
        with self._lock:
            url = f"{ENDPOINT}/api/jobs/{namespace}"
            self._enter("list_jobs", url)
            user = self._user(token, url)
            if self.enforce_auth and (user is None or not (namespace == user.name or namespace in user.orgs)):
                raise http_error(403, f"You don't have the rights to list jobs of {namespace}", url=url)
            stages = None if status is None else {str(s) for s in ([status] if isinstance(status, str) else status)}
            found = [
                self._job_info(job)
                for job in self.jobs.values()
                if job.namespace == namespace
                and (stages is None or job.stage in stages)
                and all(job.labels.get(k) == v for k, v in (labels or {}).items())
            ]
        yield from found

    def advance_job(
        self,
        job_id: str,
        stage: str,
        *,
        logs: Iterable[str] = (),
        message: str | None = None,
        exit_status: int | None = None,
        ran_s: float | None = None,
    ) -> None:
        """Move a job to `stage` (RUNNING, COMPLETED, ERROR...), adding log lines: what its container did.

        `exit_status` is what the job's command wrote to `/state/exit_status` (the file lands in the
        bucket folder mounted at `/state`); `ran_s` backdates its start so it ran that long.
        """
        with self._lock:
            job = self.jobs[job_id]
            now = datetime.now(UTC)
            job.stage, job.message = stage, message
            job.logs += list(logs)
            if stage != "SCHEDULING" and job.started_at is None and stage != "CANCELED":
                job.started_at = now
            if ran_s is not None:
                job.started_at = now - timedelta(seconds=ran_s)
            if stage in JOB_TERMINAL:
                job.finished_at = now
            if exit_status is not None:
                volume = next(v for v in job.volumes if v.mount_path == "/state")
                folder = (volume.path or "").strip("/")
                path = f"{folder}/exit_status" if folder else "exit_status"
                self._store(self.buckets[volume.source], path, f"{exit_status}\n".encode(), now)


def _matches(name: str, patterns: list[str] | str | None, *, default: bool) -> bool:
    """The library's pattern rule: fnmatch on the relative path; a pattern ending in '/' means a folder."""
    if patterns is None:
        return default
    items = [patterns] if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatch(name, p + "*" if p.endswith("/") else p) for p in items)


def _variables(space: FakeSpace) -> dict[str, SpaceVariable]:
    return {
        key: SpaceVariable(key, {"value": value, "description": description, "updatedAt": _iso(at)})
        for key, (value, description, at) in space.variables.items()
    }


@dataclass(frozen=True)
class _Info:
    id: str
    private: bool
    size: int
    total_files: int


LFS_THRESHOLD = 10 * 1024 * 1024


def in_lfs(data: bytes) -> bool:
    """Whether the Hub keeps a file in LFS: binary content or over 10 MiB (the fake's rule for the Hub's choice)."""
    return b"\0" in data or len(data) > LFS_THRESHOLD


def _sibling(path: str, data: bytes) -> dict[str, Any]:
    if not in_lfs(data):
        return {"rfilename": path, "size": len(data), "blobId": git_blob_id(data)}
    sha256 = hashlib.sha256(data).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n".encode()
    lfs = {"sha256": sha256, "size": len(data), "pointerSize": len(pointer)}
    return {"rfilename": path, "size": len(data), "blobId": git_blob_id(pointer), "lfs": lfs}


def _xet_token_url(bucket_url: str) -> str:
    return bucket_url.split("?", 1)[0].rstrip("/") + "/xet-write-token"


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
