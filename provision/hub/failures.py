"""How a call into huggingface_hub 2.4 fails, read one way for the whole kit, and how long it may wait.

The library fails in more shapes than its HTTP errors, and each caller used to guess a few:

- `HfHubHTTPError` and its subclasses carry the Hub's answer: not-found types
  (`BucketNotFoundError`, `RepositoryNotFoundError`, `JobNotFoundError`, `EntryNotFoundError` and
  `RevisionNotFoundError`), else a status;
- httpx2's transport errors (`ConnectError`, `ReadTimeout`, ... all `httpx2.TransportError`) are
  not `OSError`s: they derive from `Exception` only;
- a bucket write that adds files goes through hf_xet, whose token request (`xet-write-token`) and
  CAS traffic are made in Rust: a refusal surfaces as a builtins `ConnectionError` whose message
  names the status (`... 403 Forbidden ...`), and an unreachable Hub as one without a status;
- `OfflineModeIsEnabled` (`HF_HUB_OFFLINE=1`) is a `ConnectionError`, socket failures `OSError`s,
  the library's own waits (`wait_for_job`) `TimeoutError`s.

`classify` turns each into a `HubFailure` of one of four kinds: `not_found` (the thing is absent,
or invisible to the token), `denied` (401/403: the token was refused or lacks a permission),
`unavailable` (the Hub failed, rate limited or could not be reached in time; retrying may work)
and `rejected` (the Hub refused the request itself: 400, 409, 422). Anything else is not a Hub
failure but a bug, and `classify` says None. Provisioning (`provision/hub/client.py`), the
backend's storage adapter, identity lookup and job launcher all read failures through here; this
file is also the backend's `collab_backend/hub_failures.py` (a link, as the spec model is), so it
imports nothing but the library.

The library's own HTTP client waits forever (`timeout=None`): `install_timeouts` replaces it with
one that gives up connecting after `connect` seconds and waiting for data after `read` seconds.
Calls the library retries (paginated listings, path info, a batch's final POST) try 5 times with
1 to 8 s between tries, so they fail after about 5 timeouts and 23 s. hf_xet's traffic (the Xet
token request and the CAS) does not use that client: it reads its own settings from the
environment once, when the process's first transfer starts (`HF_XET_CLIENT_CONNECT_TIMEOUT`,
`HF_XET_CLIENT_READ_TIMEOUT`, durations such as `10s`; without them a hung token request waits
forever, observed with hf_xet 1.8), so `install_timeouts` sets those too unless they are set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["not_found", "denied", "unavailable", "rejected"]

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 60.0
# Statuses an hf_xet error message may name, as reqwest prints them: "403 Forbidden".
_XET_STATUS = re.compile(
    r"\b(401 Unauthorized|403 Forbidden|404 Not Found|408 Request Timeout|429 Too Many Requests|5\d\d [A-Z][a-z]+)"
)
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class HubFailure:
    """What a failed Hub call means for the kit: its kind, the HTTP status when there was one, one line."""

    kind: Kind
    status: int | None
    detail: str
    retry_after: int | None = None  # seconds, from the Hub's Retry-After header on a 429 or 503

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later without anyone changing anything."""
        return self.kind == "unavailable"


def _line(exc: BaseException) -> str:
    server = getattr(exc, "server_message", None)
    text = (server or str(exc) or type(exc).__name__).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:_DETAIL_CHARS]


def _by_status(status: int | None) -> Kind:
    if status in (401, 403):
        return "denied"
    if status == 404:
        return "not_found"
    if status is None or status in (408, 429) or status >= 500:
        return "unavailable"
    return "rejected"


def _retry_after(response: object) -> int | None:
    headers = getattr(response, "headers", None)
    raw = headers.get("Retry-After") if headers is not None else None
    return int(raw) if isinstance(raw, str) and raw.isdecimal() else None


def classify(exc: BaseException) -> HubFailure | None:
    """What a failure of a huggingface_hub call means; None when it is not a Hub failure (a bug).

    A `BucketBatchError` (some operations of a batch failed) is an HTTP error here like any other;
    the storage adapter reads its per-path failures before asking.
    """
    import httpx2
    from huggingface_hub.errors import (
        BucketNotFoundError,
        EntryNotFoundError,
        HfHubHTTPError,
        JobNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(
        exc, (BucketNotFoundError, RepositoryNotFoundError, JobNotFoundError, EntryNotFoundError, RevisionNotFoundError)
    ):
        return HubFailure("not_found", 404, _line(exc))
    if isinstance(exc, HfHubHTTPError):
        response = exc.response
        status = int(response.status_code) if response is not None else None
        return HubFailure(_by_status(status), status, _line(exc), _retry_after(response))
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return HubFailure("unavailable", None, f"the Hub did not answer in time ({_line(exc)})")
    if isinstance(exc, httpx2.TransportError):
        return HubFailure("unavailable", None, f"the Hub could not be reached ({_line(exc)})")
    if isinstance(exc, ConnectionError):  # hf_xet's failures, and offline mode
        found = _XET_STATUS.search(str(exc))
        named = int(found.group(1)[:3]) if found else None
        return HubFailure(_by_status(named), named, _line(exc))
    if isinstance(exc, OSError):
        return HubFailure("unavailable", None, f"the Hub could not be reached ({_line(exc)})")
    return None


def install_timeouts(connect: float = DEFAULT_CONNECT_TIMEOUT_S, read: float = DEFAULT_READ_TIMEOUT_S) -> None:
    """Bound every wait of huggingface_hub's HTTP client in this process, and of hf_xet's from its first transfer.

    Args:
        connect: Seconds to open a connection (and to get one from the pool).
        read: Seconds to wait for the next bytes of an answer (and to send the next bytes of a request).
    """
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook  # offline mode and request ids live there

    if connect <= 0 or read <= 0:
        raise ValueError("Hub timeouts are positive numbers of seconds")
    timeout = httpx2.Timeout(read, connect=connect, pool=connect)

    def factory() -> httpx2.Client:
        # The library's own factory, with the timeouts it leaves out.
        return httpx2.Client(event_hooks={"request": [hf_request_event_hook]}, follow_redirects=True, timeout=timeout)

    set_client_factory(factory)
    os.environ.setdefault("HF_XET_CLIENT_CONNECT_TIMEOUT", f"{connect:g}s")
    os.environ.setdefault("HF_XET_CLIENT_READ_TIMEOUT", f"{read:g}s")
