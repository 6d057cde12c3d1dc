"""The registry of challenge types: plug-ins found through the `collab.challenge_types` entry point.

A bundled type registers exactly like a third-party one, in its distribution's metadata, so the
registry never names a package. Looking names up does not import the plug-ins.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from provision.errors import ChallengeTypeError
from provision.spec.problems import did_you_mean

ENTRY_POINT_GROUP = "collab.challenge_types"


@dataclass(frozen=True)
class ChallengeType:
    """What a challenge type declares about itself.

    Attributes:
        name: The registered name, used as `challenge.type` in challenge.yaml.
        title: A short human title.
        summary: One sentence on what participants optimise.
    """

    name: str
    title: str
    summary: str


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


def load_type(name: str) -> ChallengeType:
    """Import a registered challenge type.

    Raises:
        ChallengeTypeError: the name is not registered, or its entry point does not load.
    """
    entry = registered().get(name)
    if entry is None:
        raise ChallengeTypeError(f"unknown challenge type '{name}'; {unknown_type_hint(name)}")
    try:
        loaded = entry.load()
    except ImportError as exc:
        raise ChallengeTypeError(f"challenge type '{name}' is registered but does not import: {exc}") from exc
    if not isinstance(loaded, ChallengeType):
        raise ChallengeTypeError(f"entry point {entry.value} for '{name}' is not a ChallengeType")
    return loaded
