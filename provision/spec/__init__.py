"""The challenge spec: loading, validating and typed access (see loader.py for the stages).

YAML with positions (`source`), the schema and its errors (`schema`, `problems`), defaults
(`derive`), cross-field rules (`rules`), typed objects (`model`), the names `challenge.type` may
take (`type_names`) and the reference page (`reference`). Imports only `provision.migrations`,
`provision.errors` and `provision.paths`: everything else builds on it.
"""

from provision.migrations import CURRENT_SPEC_VERSION
from provision.spec.loader import LoadedSpec, check_spec, load_spec
from provision.spec.model import ChallengeSpec

__all__ = ["CURRENT_SPEC_VERSION", "ChallengeSpec", "LoadedSpec", "check_spec", "load_spec"]
