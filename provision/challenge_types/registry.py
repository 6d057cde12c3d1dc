"""The registry of challenge types: plug-ins found through the `collab.challenge_types` entry point.

A bundled type registers exactly like a third-party one, in its distribution's metadata, so the
registry never names a package. Looking names up reads metadata only; a type is imported, and its
declaration checked, when it is loaded. The contract itself lives in `provision.challenge_types.contract`
and is re-exported here, so a type needs only this module.
"""

from __future__ import annotations

from dataclasses import fields
from importlib.metadata import EntryPoint, entry_points

from provision.challenge_types.contract import ChallengeType, CheapCheck, CheckResult, Verdict
from provision.errors import ChallengeTypeError
from provision.spec.problems import did_you_mean

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChallengeType",
    "CheapCheck",
    "CheckResult",
    "Verdict",
    "load_type",
    "registered",
    "unknown_type_hint",
]

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


def load_type(name: str) -> ChallengeType:
    """Import a registered challenge type and check its declaration.

    Args:
        name: The registered name, as written in `challenge.type`.

    Returns:
        The type's declaration.

    Raises:
        ChallengeTypeError: the name is not registered, its entry point does not import, or what
            it points at is not a sound `ChallengeType` named `name`.
    """
    entry = registered().get(name)
    if entry is None:
        raise ChallengeTypeError(f"unknown challenge type '{name}'; {unknown_type_hint(name)}")
    return check_entry_point(entry)


def check_entry_point(entry: EntryPoint) -> ChallengeType:
    """Load one entry point and check that it declares the type it is registered as.

    Args:
        entry: An entry point of the `collab.challenge_types` group.

    Returns:
        The declaration it points at.

    Raises:
        ChallengeTypeError: as for `load_type`.
    """
    name, target = entry.name, entry.value
    try:
        loaded = entry.load()
    except ChallengeTypeError as exc:
        raise ChallengeTypeError(f"entry point {target}: {exc}") from exc
    except Exception as exc:  # a plug-in's import may fail in any way; it is the plug-in's fault, not ours
        raise ChallengeTypeError(
            f"challenge type '{name}' is registered as {target} but does not import: "
            f"{type(exc).__name__}: {exc}; fix the package, or remove its entry point and reinstall"
        ) from exc
    if not isinstance(loaded, ChallengeType):
        hooks = [f.name for f in fields(ChallengeType)]
        missing = [h for h in hooks if not hasattr(loaded, h)]
        lacking = f"; it lacks {', '.join(missing)}" if missing else ""
        raise ChallengeTypeError(
            f"entry point {target} for '{name}' is a {type(loaded).__name__}, not a ChallengeType{lacking}: "
            "declare `challenge_type = ChallengeType(...)` (see docs/challenge-types.md)"
        )
    if loaded.name != name:
        raise ChallengeTypeError(
            f"entry point '{name}' points at a type that calls itself '{loaded.name}': "
            "the registered name and ChallengeType.name must be the same"
        )
    return loaded
