"""What the organizers' token may do, read from whoami: the one place that knows permission names.

whoami (`GET /api/whoami-v2`) returns untyped JSON. huggingface_hub itself reads
`auth.accessToken.role`; everything else about the token is ASSUMED, not verified against the
live Hub (the library never reads it):

- the roles `read`, `write` and `fineGrained`;
- for a fine-grained token, `auth.accessToken.fineGrained` shaped as
  `{"global": [perm, ...], "scoped": [{"entity": {"type": "org" | "user", "name": NAME}, "permissions": [perm, ...]}]}`;
- the permission names below, as the Hub's public API description of token permissions spells
  them. Buckets are a repository type on the Hub, so `repo.write` is assumed to cover them.

Invariants: parsing never raises, whatever the shape; a permission is reported missing (a blocker)
only when the token's scopes were read and list only names known here, otherwise it is
"unconfirmed" (a note), so an unexpected format can never block a plan. Nothing here ever holds
the token's value: whoami's answer carries none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# Token roles (auth.accessToken.role). ASSUMED values.
READ_ROLE, WRITE_ROLE, FINE_GRAINED_ROLE = "read", "write", "fineGrained"


@dataclass(frozen=True)
class Permission:
    """A permission the collab needs: the Hub's name for it, the token page's label, what it is for."""

    name: str
    label: str
    purpose: str


# ASSUMED names (see the module docstring).
REPO_WRITE = Permission(
    "repo.write", "Repositories: write, Buckets: write", "create and update the collab's Spaces and buckets"
)
JOB_WRITE = Permission("job.write", "Jobs: write", "start Jobs")
# Every name this module recognises in a token's scopes (ASSUMED too). A scope holding another
# name may grant what is needed under a name not known here, so it makes a check unconfirmed.
KNOWN_PERMISSIONS = frozenset(
    {
        "repo.content.read",
        "repo.access.read",
        "repo.write",
        "job.write",
        "org.read",
        "org.write",
        "collection.read",
        "collection.write",
        "discussion.write",
        "inference.serverless.write",
        "inference.endpoints.infer.write",
        "inference.endpoints.write",
        "resourceGroup.write",
        "user.webhooks.read",
        "user.webhooks.write",
        "user.billing.read",
        "user.notifications.read",
        "user.notifications.write",
    }
)
# What the kit's fine-grained token holds in each org it works in (SETUP.md, step 2).
COLLAB_PERMISSIONS = ("repo.content.read", "repo.write", "job.write", "org.read")

Verdict = Literal["granted", "missing", "unconfirmed"]


@dataclass(frozen=True)
class TokenScopes:
    """The token's role and, for a fine-grained token, its permissions per user or org name.

    `scoped` is None when the scopes could not be read (or do not apply: read and write tokens);
    `problem` says what could not be read, when something could not.
    """

    role: str | None = None
    scoped: Mapping[str, tuple[str, ...]] | None = None
    global_permissions: tuple[str, ...] = ()
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "global": list(self.global_permissions),
            "scoped": None if self.scoped is None else {k: list(v) for k, v in self.scoped.items()},
            "problem": self.problem,
        }

    @classmethod
    def from_json(cls, data: Any) -> TokenScopes:
        """The inverse of `as_json` (a missing or odd value reads as "not reported")."""
        if not isinstance(data, Mapping):
            return cls()
        role = data.get("role")
        scoped = data.get("scoped")
        problem = data.get("problem")
        return cls(
            role if isinstance(role, str) else None,
            None if not isinstance(scoped, Mapping) else {str(k): _strings(v) or () for k, v in scoped.items()},
            _strings(data.get("global")) or (),
            problem if isinstance(problem, str) else None,
        )


def _strings(value: Any) -> tuple[str, ...] | None:
    """The items of a list of strings, or None when `value` is anything else."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def parse_whoami(info: Mapping[str, Any]) -> TokenScopes:
    """The token's role and scopes out of a whoami answer; never raises."""
    auth = info.get("auth")
    token = auth.get("accessToken") if isinstance(auth, Mapping) else None
    if not isinstance(token, Mapping):
        return TokenScopes(problem="whoami did not describe the token (no auth.accessToken)")
    role = token.get("role") if isinstance(token.get("role"), str) else None
    if role != FINE_GRAINED_ROLE:
        return TokenScopes(role)
    fine = token.get("fineGrained")
    if not isinstance(fine, Mapping):
        return TokenScopes(role, problem="whoami did not include the fine-grained token's scopes")
    global_permissions = _strings(fine.get("global", []))
    entries = fine.get("scoped")
    if global_permissions is None or not isinstance(entries, list):
        return TokenScopes(role, problem="the token's scopes have a shape this kit does not know")
    scoped: dict[str, tuple[str, ...]] = {}
    odd = 0
    for entry in entries:
        entity = entry.get("entity") if isinstance(entry, Mapping) else None
        name = entity.get("name") if isinstance(entity, Mapping) else None
        permissions = _strings(entry.get("permissions")) if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or permissions is None:
            odd += 1
            continue
        scoped[name] = tuple(sorted({*scoped.get(name, ()), *permissions}))
    problem = f"{odd} of the token's scope entries have a shape this kit does not know" if odd else None
    return TokenScopes(role, scoped, global_permissions, problem)


def check_permission(token: TokenScopes, permission: Permission, org: str) -> tuple[Verdict, str]:
    """Whether the token holds `permission` in `org`, and why it is or may not be so (for messages)."""
    if token.role == WRITE_ROLE:
        return "granted", "a write token"
    if token.role == READ_ROLE:
        return "missing", "it is a read token"
    if token.role != FINE_GRAINED_ROLE:
        why = "the Hub did not report the token's role" if token.role is None else f"its role '{token.role}'"
        return "unconfirmed", (token.problem or why) + " (read, write and fineGrained are known)"
    if permission.name in token.global_permissions:
        return "granted", f"{permission.name} for everything"
    if token.scoped is None:
        return "unconfirmed", token.problem or "the Hub did not report the token's scopes"
    held = token.scoped.get(org)
    if held is None:
        if token.problem:
            return "unconfirmed", token.problem
        return "missing", f"the token has no permission in {org}"
    if permission.name in held:
        return "granted", f"{permission.name} in {org}"
    unknown = [p for p in held if p not in KNOWN_PERMISSIONS]
    if unknown:
        return "unconfirmed", f"its scope for {org} lists permission names this kit does not know: {', '.join(unknown)}"
    if token.problem:  # an entry this kit could not read may be the one that grants it
        return "unconfirmed", token.problem
    return "missing", f"its scope for {org} holds {', '.join(held) or 'nothing'}"
