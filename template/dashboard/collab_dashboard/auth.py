"""Signing people in: Hugging Face OAuth on a Space, the local identity file in local mode.

Both sit behind one interface (`SignIn`): `start` says where to send the browser (the Hub's
consent page) or None (a form of this site asks for a local token), and `finish` checks what came
back and returns the `Viewer`. Neither decides what a person may do: the backend does, on every
write, with the person's own token (members of the challenge org post, its admins broadcast and
rule on results). The dashboard only hides the forms a person could not use.

Why not huggingface_hub's `attach_huggingface_oauth`: it keeps the whole token response in a
signed but readable cookie, follows an unchecked `_target_url`, and sets `SameSite=None`. Here
Authlib runs the authorization-code flow with PKCE and a `state` bound to the server-side session,
the token stays on the server, and the redirect target is checked (`security.safe_next`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from collab_dashboard.security import same_token
from collab_dashboard.sessions import Session, Viewer

CALLBACK_PATH = "/login/callback"  # one of the two redirect paths a Space's OAuth app allows by default


class SignInError(Exception):
    """Signing in failed; the message is safe to show."""


class SignIn(Protocol):
    """One way of signing people in."""

    async def start(self, session: Session) -> str | None:
        """Where to send the browser to sign in, or None when a form of this site asks."""
        ...

    async def finish(self, session: Session, params: Mapping[str, str]) -> tuple[Viewer, float | None]:
        """Who signed in (and when their token expires, if it does), from a callback or a form."""
        ...


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LocalSignIn:
    """Local mode: a person pastes their token from the local identity file (`{token: {user, orgs}}`).

    The file is the one the local backend reads, so the backend accepts the same token; it is
    read again when it changes. Attempts are limited (a token is a password).
    """

    ATTEMPTS, WINDOW_S = 20, 60.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._table: tuple[float, dict[str, tuple[str, dict[str, str]]]] = (-1.0, {})
        self._attempts: list[float] = []

    def _lookup(self, token: str) -> tuple[str, dict[str, str]] | None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._table[0]:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                table = {_digest(t): (str(v["user"]), dict(v.get("orgs", {}))) for t, v in raw.items()}
                self._table = (mtime, table)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise SignInError("the local identity file cannot be read; run `collab up` again") from None
        return self._table[1].get(_digest(token))

    async def start(self, session: Session) -> str | None:
        return None

    async def finish(self, session: Session, params: Mapping[str, str]) -> tuple[Viewer, float | None]:
        now = time.monotonic()
        self._attempts = [t for t in self._attempts if t > now - self.WINDOW_S]
        if len(self._attempts) >= self.ATTEMPTS:
            raise SignInError("too many sign-in attempts; wait a minute")
        self._attempts.append(now)
        token = params.get("token", "").strip()
        found = self._lookup(token) if 0 < len(token) <= 512 else None
        if found is None:
            raise SignInError("unknown token: use one listed in .collab/identities.json")
        user, orgs = found
        return Viewer(user, orgs, token), None


class HubSignIn:
    """Hugging Face OAuth (OpenID Connect): authorization code with PKCE, token kept server-side."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        scopes: str,
        provider_url: str,
        redirect_uri: str,
        http: httpx.AsyncClient,
    ) -> None:
        self.client_id, self.client_secret, self.scopes = client_id, client_secret, scopes
        self.provider_url, self.redirect_uri, self.http = provider_url.rstrip("/"), redirect_uri, http
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        """The provider's OpenID configuration (read once)."""
        if self._metadata is None:
            try:
                response = await self.http.get(f"{self.provider_url}/.well-known/openid-configuration")
                response.raise_for_status()
                self._metadata = dict(response.json())
            except (httpx.HTTPError, ValueError):
                raise SignInError("the Hugging Face sign-in cannot be reached; retry shortly") from None
        return self._metadata

    def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id, client_secret=self.client_secret, scope=self.scopes,
            redirect_uri=self.redirect_uri, code_challenge_method="S256", timeout=10,
        )  # fmt: skip

    async def start(self, session: Session) -> str | None:
        meta = await self.metadata()
        state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        session.pending.update(state=state, verifier=verifier)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=state, code_verifier=verifier
            )
        return str(url)

    async def finish(self, session: Session, params: Mapping[str, str]) -> tuple[Viewer, float | None]:
        state, verifier = session.pending.pop("state", ""), session.pending.pop("verifier", "")
        if not state or not same_token(state, params.get("state")):
            raise SignInError("this sign-in was not started here (or was already used); sign in again")
        if "error" in params or not params.get("code"):
            raise SignInError("the sign-in was declined or failed at Hugging Face")
        meta = await self.metadata()
        try:
            async with self._client() as client:
                token = await client.fetch_token(meta["token_endpoint"], code=params["code"], code_verifier=verifier)
                info = (await client.get(meta["userinfo_endpoint"])).raise_for_status().json()
        except (AuthlibBaseError, httpx.HTTPError, ValueError, KeyError) as exc:
            raise SignInError(f"the sign-in could not be completed ({type(exc).__name__})") from None
        user = info.get("preferred_username")
        if not isinstance(user, str) or not user:
            raise SignInError("Hugging Face did not say who signed in")
        orgs = {
            str(o.get("preferred_username")): str(o.get("roleInOrg") or "member")
            for o in info.get("orgs") or []
            if isinstance(o, dict) and o.get("preferred_username")
        }
        expires = token.get("expires_at")
        return Viewer(user, orgs, str(token["access_token"])), float(expires) if expires else None
