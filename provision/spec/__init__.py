"""The challenge spec: loading, validating and typed access (see loader.py for the stages)."""

from provision.migrations import CURRENT_SPEC_VERSION
from provision.spec.loader import LoadedSpec, check_spec, load_spec
from provision.spec.model import ChallengeSpec

__all__ = ["CURRENT_SPEC_VERSION", "ChallengeSpec", "LoadedSpec", "check_spec", "load_spec"]
