"""Challenge types as plug-ins: the contract a type declares, the helpers its hooks use, the scaffold.

`provision.challenge_types` is the registry in front of this package; the contract itself is
documented hook by hook in docs/challenge-types.md.
"""

from provision.challenge_types.contract import ChallengeType, CheapCheck, CheckResult, Verdict
from provision.challenge_types.registry import load_type
from provision.spec.type_names import ENTRY_POINT_GROUP, registered, unknown_type_hint

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
