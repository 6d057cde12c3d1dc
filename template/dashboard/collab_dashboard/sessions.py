"""Sessions kept on the server: the browser holds only a random id.

A signed-in person's Hugging Face token (an OAuth access token, or a local token) is needed to
post on their behalf, so it must be somewhere; it stays here, in memory, and never reaches a
cookie, a page or a script. The cookie is `HttpOnly`, `SameSite=Lax`, and on a Space `Secure`
with the `__Host-` prefix. A session expires after `session_hours` (or when its OAuth token
does), signing in replaces the session id (no fixation), signing out deletes it, and at most
`max_sessions` signed-in sessions and as many anonymous ones (a form's CSRF token before sign-in)
are kept, each kind apart, the least recently used going first: a flood of anonymous visits can
never push a signed-in person out. A restart of the dashboard signs everyone out.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: their HF user, their role in each org, and their token (server-side only)."""

    user: str
    orgs: dict[str, str]
    token: str = field(repr=False)

    @property
    def handle(self) -> str:
        """Their board handle, as the backend composes it."""
        return f"human-{self.user.lower()}"

    def is_member(self, org: str) -> bool:
        return org in self.orgs

    def is_admin(self, org: str) -> bool:
        return self.orgs.get(org) == "admin"


@dataclass
class Session:
    """One browser's session: its CSRF token, the person once signed in, and sign-in state in flight."""

    id: str
    csrf: str
    expires: float
    viewer: Viewer | None = None
    pending: dict[str, str] = field(default_factory=dict, repr=False)  # OAuth state, PKCE verifier, next
    flash: str | None = None  # one message for the next page (a refused post, a verdict changed)


class SessionStore:
    """Sessions by id, in memory, bounded and expiring."""

    def __init__(self, lifetime_s: float, max_sessions: int, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s, self.max_sessions, self.clock = lifetime_s, max_sessions, clock
        self._signed: OrderedDict[str, Session] = OrderedDict()
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None."""
        if not session_id:
            return None
        with self._lock:
            for items in (self._signed, self._anonymous):
                session = items.get(session_id)
                if session is None:
                    continue
                if session.expires < self.clock():
                    del items[session_id]
                    return None
                items.move_to_end(session_id)
                return session
            return None

    def create(self, viewer: Viewer | None = None, expires: float | None = None) -> Session:
        """A new session (anonymous, or signed in as `viewer`) with fresh id and CSRF token."""
        lifetime_end = self.clock() + self.lifetime_s
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires=min(lifetime_end, expires) if expires else lifetime_end,
            viewer=viewer,
        )
        items = self._signed if viewer is not None else self._anonymous
        with self._lock:
            items[session.id] = session
            while len(items) > self.max_sessions:
                items.popitem(last=False)
        return session

    def drop(self, session_id: str) -> None:
        """Forget a session (sign-out, or its id being replaced at sign-in)."""
        with self._lock:
            self._signed.pop(session_id, None)
            self._anonymous.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._signed) + len(self._anonymous)
