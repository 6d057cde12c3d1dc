"""The challenge type names a spec may name: those registered under the `collab.challenge_types` entry point.

Read from package metadata alone, so the loader checks `challenge.type` without importing any
type. Loading a type and checking its declaration is the registry's (`provision.challenge_types`),
which looks names up here; a test that registers a type for a while patches `registered` here.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from provision.spec.problems import did_you_mean

ENTRY_POINT_GROUP = "collab.challenge_types"


def registered() -> dict[str, EntryPoint]:
    """Every registered challenge type by name, without importing any."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def unknown_type_hint(name: str) -> str:
    """Say what to write instead of an unregistered type name."""
    names = sorted(registered())
    if not names:
        return "no challenge type is registered: install this collab with `pip install -e .` first"
    guess = did_you_mean(name, names)
    prefix = f"did you mean '{guess}'? " if guess else ""
    return f"{prefix}registered types: {', '.join(names)}"
