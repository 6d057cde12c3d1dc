"""The challenge spec: loading, validating and typed access (see loader.py for the stages)."""

from provision.spec.loader import CURRENT_SPEC_VERSION, LoadedSpec, check_spec, load_spec
from provision.spec.model import ChallengeSpec

__all__ = ["CURRENT_SPEC_VERSION", "ChallengeSpec", "LoadedSpec", "check_spec", "load_spec"]
