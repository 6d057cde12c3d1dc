"""Where the organizers' token comes from, who it says it is, and what it may do.

Order: the `HF_TOKEN` environment variable, then `HF_TOKEN=` in the collab's `.env` (git-ignored),
then the Hub's own token file (`huggingface_hub.get_token()`). Invariant: the token's value never
reaches output, logs or files; a `Token` prints as its source only, and code that needs the value
asks for `.reveal()` at the one place it is sent.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.hub.client import HubAccessError, HubClient, hub_errors
from provision.hub.token_scopes import TokenScopes, parse_whoami


class CredentialsError(ProvisionError):
    """No token was found, or the Hub refused it."""


@dataclass(frozen=True)
class Token:
    """A token and where it was read from; its repr never shows the value."""

    _value: str = field(repr=False)
    source: str

    def reveal(self) -> str:
        """The value, for the one call that sends it (a request, or the Space secret)."""
        return self._value

    def __str__(self) -> str:
        return f"<token from {self.source}>"


@dataclass(frozen=True)
class Identity:
    """The token's user, its role in each org (None: the Hub did not say), and the token's own scopes."""

    user: str
    roles: Mapping[str, str | None]
    token: TokenScopes = field(default_factory=TokenScopes)

    def as_json(self) -> dict[str, Any]:
        return {"user": self.user, "roles": dict(self.roles), "token": self.token.as_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        """The inverse of `as_json`; a missing `token` reads as a token whoami said nothing about."""
        return cls(str(data["user"]), dict(data["roles"]), TokenScopes.from_json(data.get("token")))


def read_dotenv(path: Path) -> dict[str, str]:
    """The `KEY=value` lines of a .env file (comments, blank lines and `export ` prefixes allowed)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def find_token(collab_dir: Path, environ: Mapping[str, str] | None = None) -> Token:
    """Find the token (see the module docstring for the order).

    Args:
        collab_dir: The collab folder, where a `.env` may hold `HF_TOKEN`.
        environ: The environment to read (default: the process environment).

    Returns:
        The token, labelled with its source.

    Raises:
        CredentialsError: when no source has a token.
    """
    env = os.environ if environ is None else environ
    if env.get("HF_TOKEN", "").strip():
        return Token(env["HF_TOKEN"].strip(), "HF_TOKEN")
    dotenv = collab_dir / ".env"
    if dotenv.is_file():
        value = read_dotenv(dotenv).get("HF_TOKEN", "").strip()
        if value:
            return Token(value, f"{dotenv.name} in the collab")
    from huggingface_hub import get_token

    stored = get_token()
    if stored:
        return Token(stored, "the Hub's token file")
    raise CredentialsError(
        "no Hugging Face token found\n"
        "    hint: export HF_TOKEN, put HF_TOKEN=... in the collab's .env (git-ignored), or run `hf auth login`"
    )


def check_identity(hub: HubClient, token: Token) -> Identity:
    """Ask the Hub who the token belongs to, before anything else is read.

    Raises:
        CredentialsError: when the Hub refuses the token (401).
        HubAccessError: on any other failure (rate limit, 5xx).
    """
    try:
        with hub_errors("check the token with whoami"):
            info = hub.whoami(token=token.reveal(), cache=True)
    except HubAccessError as exc:
        if exc.status == 401:
            raise CredentialsError(
                f"the Hub refused the token ({token.source}): HTTP 401\n"
                "    hint: create a new fine-grained token (SETUP.md, step 2) and set HF_TOKEN"
            ) from exc
        raise
    roles: dict[str, str | None] = {}
    for org in info.get("orgs") or []:
        if isinstance(org, dict) and isinstance(org.get("name"), str):
            role = org.get("roleInOrg")
            roles[org["name"]] = role if isinstance(role, str) else None
    return Identity(str(info.get("name", "")), roles, parse_whoami(info))
