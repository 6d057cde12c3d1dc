"""The registry of challenge types: plug-ins found through the `collab.challenge_types` entry point.

A bundled type registers exactly like a third-party one, in its distribution's metadata, so the
registry never names a package. Looking names up reads metadata only (`provision.spec.type_names`,
where the spec loader reads them too); a type is imported, and its declaration checked, when it
is loaded.
"""

from __future__ import annotations

from dataclasses import fields
from importlib.metadata import EntryPoint

from provision.challenge_types.contract import ChallengeType
from provision.errors import ChallengeTypeError
from provision.spec import type_names


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
    entry = type_names.registered().get(name)
    if entry is None:
        raise ChallengeTypeError(f"unknown challenge type '{name}'; {type_names.unknown_type_hint(name)}")
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
