"""The exception tree of the provisioning library: one root, narrow subclasses.

Callers catch `ProvisionError` to tell a user's mistake from a bug; every subclass carries a
message written for the person who has to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provision.spec.problems import Problem


class ProvisionError(Exception):
    """Root of every error the library raises on purpose."""


class SpecError(ProvisionError, ValueError):
    """The challenge spec could not be loaded; `problems` says every reason at once."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = errors[0].render() if errors else "invalid challenge spec"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ChallengeTypeError(ProvisionError, LookupError):
    """A challenge type is not registered or does not load."""
