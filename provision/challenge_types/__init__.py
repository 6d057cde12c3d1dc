"""Challenge types as plug-ins: the contract a type declares, the registry, claim helpers, the scaffold.

`contract` is what a type declares and how the declaration is checked (docs/challenge-types.md
describes it hook by hook); `demo` is what the local demo's agents say and do in a collab of the
type; `registry` loads a registered type; `claims` holds checks a type's cheap check may reuse;
`scaffold` writes a new type (`collab new-type`). A type imports its names from here. Imports the
spec (the names it may take live in `provision.spec.type_names`), `provision.errors` and
`provision.paths`.
"""

from provision.challenge_types.contract import ChallengeType, CheapCheck, CheckResult, Verdict
from provision.challenge_types.demo import DemoScript, DemoVariant
from provision.challenge_types.registry import load_type
from provision.spec.type_names import ENTRY_POINT_GROUP, registered, unknown_type_hint

__all__ = [
    "ENTRY_POINT_GROUP",
    "ChallengeType",
    "CheapCheck",
    "CheckResult",
    "DemoScript",
    "DemoVariant",
    "Verdict",
    "load_type",
    "registered",
    "unknown_type_hint",
]
