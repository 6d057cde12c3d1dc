"""Every registered challenge type passes the conformance suite, on a CPU.

A type that is registered but does not load fails here by name, with the loader's reason.
"""

from __future__ import annotations

import pytest
import yaml
from type_conformance import REPO, ConformanceSuite

from provision.challenge_types import ChallengeType, load_type, registered

TYPES = sorted(registered())


@pytest.fixture(scope="class", params=TYPES)
def ctype(request: pytest.FixtureRequest) -> ChallengeType:
    return load_type(request.param)


def test_types_are_registered() -> None:
    assert TYPES, "no challenge type is registered: is the repository pip-installed (`pip install -e .`)?"


@pytest.mark.parametrize("name", TYPES)
def test_entry_point_names_the_package(name: str) -> None:
    assert registered()[name].value == f"challenge_{name}:challenge_type"


@pytest.mark.parametrize("name", TYPES)
def test_copier_lists_the_type_by_its_summary(name: str) -> None:
    """Copier cannot import the type, so its choice label repeats the summary; this keeps the two equal."""
    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    labels = {value: label for label, value in config["challenge_type"]["choices"].items()}
    assert labels.get(name) == f"{name}: {load_type(name).summary}"


class TestConformance(ConformanceSuite):
    """The suite, once per registered type."""
