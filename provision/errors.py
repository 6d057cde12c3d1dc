"""The root of the provisioning library's exceptions, and the one error more than one room raises.

Callers catch `ProvisionError` to tell a user's mistake from a bug; every subclass carries a
message written for the person who has to fix it. The narrow subclasses live beside the code that
raises them (`SpecError` with the spec's problems, `SeedError` with the seed, ...). Imports nothing
from the kit.
"""

from __future__ import annotations


class ProvisionError(Exception):
    """Root of every error the library raises on purpose."""


class ChallengeTypeError(ProvisionError, LookupError):
    """A challenge type is not registered or does not load."""
