"""The challenge type a test spec names: one this environment has registered.

A rendered collab registers only its own type, the kit every bundled one; a test that builds a
spec from text names this type, so the same test passes in both. What a test checks of the
backend or the dashboard never depends on which type it is.
"""

from __future__ import annotations

from provision.challenge_types import registered


def any_type() -> str:
    """The first registered challenge type by name (the collab's own type, in a rendered collab)."""
    names = sorted(registered())
    if not names:
        raise RuntimeError("no challenge type is registered: install the collab first (`pip install -e .`)")
    return names[0]
