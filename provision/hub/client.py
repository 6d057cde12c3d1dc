"""The Hub as provisioning sees it: exactly the `HfApi` methods it calls, and how their errors read.

`HubClient` is a Protocol that `huggingface_hub.HfApi` and the test fake
(`collab_testing.hub.FakeHub`) both satisfy; mypy checks both at the bottom of this module.
`hub_errors` turns every failure of the library (HTTP errors, a refused Xet write, transport
errors, timeouts; read by `provision.hub.failures`) into `HubAccessError` with a hint, so no
command prints a traceback for the Hub's sake. Its invariant: only "not found" means absent, and
that is decided by the caller, which catches the not-found types first; a 401, a 403, a rate
limit, a 5xx or no answer at all is never read as absent. `connect` bounds every wait.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from provision.errors import ProvisionError
from provision.hub.failures import DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_READ_TIMEOUT_S, classify, install_timeouts

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, RepoUrl, SpaceInfo, SpaceRuntime, SpaceSecret, SpaceVariable
    from huggingface_hub._buckets import BucketFile


class HubAccessError(ProvisionError):
    """The Hub refused or failed a call; `status` is the HTTP status (None when there was no response)."""

    def __init__(self, message: str, *, status: int | None, hint: str) -> None:
        self.status = status
        self.hint = hint
        super().__init__(f"{message}\n    hint: {hint}")


class BucketFilesClient(Protocol):
    """The bucket file calls seeding makes: `HfApi` has them, and so has the local target's folder hub."""

    def get_bucket_paths_info(
        self, bucket_id: str, paths: list[str], *, token: bool | str | None = None
    ) -> Iterable[Any]: ...  # items with .path and .xet_hash

    def download_bucket_files(
        self,
        bucket_id: str,
        files: list[tuple[str | BucketFile, str | Path]],
        *,
        raise_on_missing_files: bool = False,
        token: bool | str | None = None,
    ) -> None: ...

    def batch_bucket_files(
        self,
        bucket_id: str,
        *,
        add: list[tuple[str | Path | bytes, str]] | None = None,
        delete: list[str] | None = None,
        token: bool | str | None = None,
    ) -> None: ...


class HubClient(BucketFilesClient, Protocol):
    """The `HfApi` methods provisioning calls, with the keywords it passes."""

    def whoami(self, token: bool | str | None = None, *, cache: bool = False) -> dict[str, Any]: ...

    def bucket_info(self, bucket_id: str, *, token: bool | str | None = None) -> Any: ...

    def create_bucket(
        self, bucket_id: str, *, private: bool | None = None, exist_ok: bool = False, token: bool | str | None = None
    ) -> Any: ...

    def update_bucket_settings(self, bucket_id: str, *, private: bool, token: bool | str | None = None) -> None: ...

    def delete_bucket(self, bucket_id: str, *, missing_ok: bool = False, token: bool | str | None = None) -> None: ...

    def delete_repo(
        self, repo_id: str, *, token: str | bool | None = None, repo_type: str | None = None, missing_ok: bool = False
    ) -> None: ...

    def space_info(
        self, repo_id: str, *, files_metadata: bool = False, token: bool | str | None = None
    ) -> SpaceInfo: ...

    def create_repo(
        self,
        repo_id: str,
        *,
        token: str | bool | None = None,
        private: bool | None = None,
        repo_type: str | None = None,
        exist_ok: bool = False,
        space_sdk: str | None = None,
        space_variables: list[dict[str, str]] | None = None,
    ) -> RepoUrl: ...

    def update_repo_settings(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        repo_type: str | None = None,
    ) -> None: ...

    def get_space_runtime(self, repo_id: str, *, token: bool | str | None = None) -> SpaceRuntime: ...

    def request_space_hardware(
        self, repo_id: str, hardware: Any, *, token: bool | str | None = None
    ) -> SpaceRuntime: ...

    def set_space_sleep_time(
        self, repo_id: str, sleep_time: int, *, token: bool | str | None = None
    ) -> SpaceRuntime: ...

    def restart_space(self, repo_id: str, *, token: bool | str | None = None) -> SpaceRuntime: ...

    def get_space_variables(self, repo_id: str, *, token: bool | str | None = None) -> dict[str, SpaceVariable]: ...

    def add_space_variable(
        self, repo_id: str, key: str, value: str, *, token: bool | str | None = None
    ) -> dict[str, SpaceVariable]: ...

    def get_space_secrets(self, repo_id: str, *, token: bool | str | None = None) -> dict[str, SpaceSecret]: ...

    def add_space_secret(self, repo_id: str, key: str, value: str, *, token: bool | str | None = None) -> None: ...

    def upload_folder(
        self,
        *,
        repo_id: str,
        folder_path: str | Path,
        commit_message: str | None = None,
        token: str | bool | None = None,
        repo_type: str | None = None,
        ignore_patterns: list[str] | str | None = None,
        delete_patterns: list[str] | str | None = None,
    ) -> CommitInfo: ...

    def fetch_space_logs(
        self, repo_id: str, *, build: bool = False, token: bool | str | None = None
    ) -> Iterable[str]: ...


CONNECT_TIMEOUT_ENV = "COLLAB_HUB_CONNECT_TIMEOUT_S"
READ_TIMEOUT_ENV = "COLLAB_HUB_READ_TIMEOUT_S"


def hub_timeouts(environ: Mapping[str, str]) -> tuple[float, float]:
    """The connect and read timeouts for Hub calls: the environment's, else the defaults (10 s, 60 s).

    Raises:
        ProvisionError: when a value is not a positive number of seconds.
    """
    values = []
    for name, default in ((CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S), (READ_TIMEOUT_ENV, DEFAULT_READ_TIMEOUT_S)):
        raw = environ.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = -1.0
        if not 0 < value <= 3600:
            raise ProvisionError(f"{name}={raw!r} is not a number of seconds\n    hint: set it to e.g. {default:g}")
        values.append(value)
    return values[0], values[1]


def connect() -> HubClient:
    """The real Hub client, every wait bounded (huggingface_hub is imported here only, so validation stays light)."""
    from huggingface_hub import HfApi

    install_timeouts(*hub_timeouts(os.environ))
    return HfApi(library_name="agent-collab-kit")


def _hint(status: int | None, what: str) -> str:
    if status is None:
        return (
            "the Hub did not answer (network down, a proxy, or a hung connection; waits are bounded by "
            f"{CONNECT_TIMEOUT_ENV} and {READ_TIMEOUT_ENV}): check the connection and run the command again"
        )
    if status == 401:
        return "the token was refused: create a new one (SETUP.md, step 2) and set HF_TOKEN"
    if status == 403:
        return (
            f"the token may not do this ({what}): it needs write access to repositories and buckets of both "
            "orgs (fine-grained token scopes) and its user must be an admin of both orgs"
        )
    if status == 429:
        return "the Hub is rate limiting this token: wait a minute and run the command again"
    if status is not None and status >= 500:
        return "the Hub failed; nothing was assumed from it: run the command again (apply resumes where it stopped)"
    return "see the Hub's message above"


@contextmanager
def hub_errors(what: str, *, absent: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn any failure of the library inside the block into a `HubAccessError` naming `what`.

    Args:
        what: The operation, for the message, e.g. "read Space org/name".
        absent: The library's not-found types that mean "absent" here; they pass through for the
            caller to catch. Everything else, 401/403/5xx included, becomes a `HubAccessError`.

    Raises:
        HubAccessError: with the status and a hint that holds the fix.
    """
    try:
        yield
    except absent:
        raise
    except Exception as exc:
        failure = classify(exc)
        if failure is None:  # not the Hub's failure: a bug, with its traceback
            raise
        answer = f"HTTP {failure.status}" if failure.status else "no answer"
        raise HubAccessError(
            f"cannot {what}: {answer}: {failure.detail}", status=failure.status, hint=_hint(failure.status, what)
        ) from exc


if TYPE_CHECKING:  # both implementations satisfy the Protocol, checked by mypy
    from huggingface_hub import HfApi

    from collab_testing.hub import FakeHub

    _real: HubClient = HfApi()
    _fake: HubClient = FakeHub()
