"""Who is calling: a token becomes an HF user and their roles in orgs.

On the Hub this is `whoami`; in local mode a JSON file maps tokens to users. Lookups are cached
by a hash of the token (never the token itself) for a short time, so a burst of requests costs
one whoami. A failed lookup is never read as "no roles": organizer-only actions fail closed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collab_backend.errors import APIError
from collab_backend.hub_failures import classify

CACHE_SECONDS = 60.0
CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class Identity:
    """An authenticated Hugging Face user and their role in each org they belong to."""

    user: str
    orgs: Mapping[str, str] = field(default_factory=dict)

    def is_member(self, org: str) -> bool:
        """Whether the user belongs to `org` in any role."""
        return org in self.orgs

    def is_admin(self, org: str) -> bool:
        """Whether the user is an admin of `org`."""
        return self.orgs.get(org) == "admin"


class IdentityProvider(Protocol):
    """Resolves a bearer token."""

    def identify(self, token: str) -> Identity:
        """The token's identity; raises APIError UNAUTHENTICATED or ROLE_LOOKUP_FAILED."""
        ...

    def cached(self, token: str) -> Identity | None:
        """The token's identity if it is known without a network call (the event loop asks this first), else None."""
        ...


class WhoamiClient(Protocol):
    def whoami(self, token: str | bool | None = None, *, cache: bool = False) -> dict[str, Any]: ...


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class _Cache:
    """A small LRU with expiry, keyed by token digest."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.items: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> Identity | None:
        with self.lock:
            hit = self.items.get(key)
            if hit is None or hit[0] < self.clock():
                return None
            self.items.move_to_end(key)
            return hit[1]

    def put(self, key: str, identity: Identity) -> None:
        with self.lock:
            self.items[key] = (self.clock() + CACHE_SECONDS, identity)
            self.items.move_to_end(key)
            while len(self.items) > CACHE_ENTRIES:
                self.items.popitem(last=False)


def identity_from_whoami(info: Mapping[str, Any]) -> Identity:
    """Read the user and org roles out of a whoami response (roles may be absent: 'member')."""
    orgs = {o["name"]: str(o.get("roleInOrg") or "member") for o in info.get("orgs", []) if "name" in o}
    return Identity(str(info["name"]), orgs)


class HubIdentity:
    """Identity through the Hub's whoami."""

    def __init__(self, client: WhoamiClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.cache = _Cache(clock)

    def cached(self, token: str) -> Identity | None:
        """The token's identity while its cached whoami is fresh, else None."""
        return self.cache.get(_digest(token))

    def identify(self, token: str) -> Identity:
        """Resolve a token, from cache when fresh."""
        key = _digest(token)
        cached = self.cache.get(key)
        if cached:
            return cached
        try:
            info = self.client.whoami(token=token)
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if failure.status == 401:
                raise APIError(
                    "UNAUTHENTICATED", "the Hub does not accept this token", "use a valid HF token"
                ) from None
            if failure.status is None:  # no answer: unreachable, timed out
                raise APIError(
                    "ROLE_LOOKUP_FAILED", "could not reach the Hub to check the token", "retry shortly"
                ) from None
            raise APIError("ROLE_LOOKUP_FAILED", "could not look the token up on the Hub", "retry shortly") from None
        identity = identity_from_whoami(info)
        self.cache.put(key, identity)
        return identity


class LocalIdentity:
    """Identity from a JSON file `{token: {"user": name, "orgs": {org: role}}}` (local mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded: tuple[float, dict[str, Identity]] = (-1.0, {})
        self._lock = threading.Lock()

    def _table(self) -> dict[str, Identity]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except OSError:
                raise APIError("ROLE_LOOKUP_FAILED", "the local identity file is missing", None) from None
            if mtime != self._loaded[0]:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                table = {_digest(t): Identity(v["user"], dict(v.get("orgs", {}))) for t, v in raw.items()}
                self._loaded = (mtime, table)
            return self._loaded[1]

    def cached(self, token: str) -> Identity | None:
        """The token's identity, or None: a local file is read without a network call, so `identify` answers."""
        try:
            return self.identify(token)
        except APIError:
            return None  # `identify` says why again, off the event loop

    def identify(self, token: str) -> Identity:
        """Look a token up in the file (re-read when it changes)."""
        identity = self._table().get(_digest(token))
        if identity is None:
            raise APIError("UNAUTHENTICATED", "unknown token", "use a token listed in the local identity file")
        return identity
