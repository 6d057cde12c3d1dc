"""Fixtures for the challenge types' tests; the conformance suite itself is in type_conformance.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from type_conformance import render_spec

from provision.challenge_types import load_type
from provision.spec import ChallengeSpec, load_spec


@pytest.fixture(scope="session")
def spec_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., ChallengeSpec]:
    """`spec_of(name, **answers)`: the spec Copier's defaults give a collab of a registered type."""

    def make(name: str, **answers: object) -> ChallengeSpec:
        folder: Path = tmp_path_factory.mktemp(f"{name}-spec")
        return load_spec(render_spec(load_type(name), folder, **answers)).spec

    return make
