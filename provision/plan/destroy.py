"""Tearing a collab down: delete what this collab created, and nothing else.

Only resources that carry this collab's ownership mark are deleted (the `COLLAB_MANAGED_BY`
variable of a Space, `.collab/deployment.json` of a bucket); anything unmarked, or marked by
another collab, is listed as kept. Spaces go first (they read the buckets), then the buckets.
Agents' scratch buckets belong to their owners and are never touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from provision.hub.client import HubClient, hub_errors
from provision.naming import MARKER_KEY
from provision.plan.session import Session


@dataclass(frozen=True)
class Doomed:
    """One resource of the collab and what destroy does with it."""

    address: str
    kind: str  # "space" or "bucket"
    id: str
    delete: bool
    reason: str


def plan_destroy(session: Session) -> list[Doomed]:
    """What destroy would delete (marked by this collab) and keep (absent, unmarked or foreign)."""
    desired, observed = session.desired, session.observed
    out: list[Doomed] = []
    for space in desired.spaces:
        seen = observed.spaces[space.name]
        if not seen.exists:
            continue
        ours = seen.variables.get(MARKER_KEY) == desired.marker
        reason = "marked by this collab" if ours else "not marked by this collab: left alone"
        out.append(Doomed(space.address, "space", space.id, ours, reason))
    for bucket in desired.buckets:
        found = observed.buckets[bucket.name]
        if not found.exists:
            continue
        ours = found.marker == desired.collab
        reason = "marked by this collab" if ours else "not marked by this collab: left alone"
        out.append(Doomed(bucket.address, "bucket", bucket.id, ours, reason))
    return out


def destroy(hub: HubClient, token: str, doomed: list[Doomed], *, progress: Callable[[str], None] = print) -> int:
    """Delete the marked resources, Spaces first; return how many were deleted.

    Raises:
        HubAccessError: a deletion was refused or failed (what was deleted before stays deleted;
            run destroy again to finish).
    """
    done = 0
    for item in sorted((d for d in doomed if d.delete), key=lambda d: d.kind != "space"):
        progress(f"deleting {item.kind} {item.id}")
        with hub_errors(f"delete {item.kind} {item.id}"):
            if item.kind == "space":
                hub.delete_repo(item.id, repo_type="space", missing_ok=True, token=token)
            else:
                hub.delete_bucket(item.id, missing_ok=True, token=token)
        done += 1
    return done
