"""The tsp cheap check recomputes every claim exactly, and nothing a participant writes makes it raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from challenge_tsp.check import cheap_check, public_instance
from challenge_tsp.harness.run import tour_length
from provision.spec import ChallengeSpec


@pytest.fixture(scope="module")
def spec(spec_of: Callable[..., ChallengeSpec]) -> ChallengeSpec:
    return spec_of("tsp")


def _claim(tour: Any, length: Any, **more: Any) -> dict[str, Any]:
    return {"tour_length": length, "tour": tour, "method": "test", **more}


def _identity() -> list[int]:
    return list(range(public_instance().cities))


def test_a_true_claim_is_valid(spec: ChallengeSpec) -> None:
    tour = _identity()
    length = tour_length(public_instance().coordinates, tour)
    result = cheap_check("r.md", _claim(tour, length), "", spec)
    assert result.verdict == "valid" and str(length) in result.reason
    assert cheap_check("r.md", _claim(tour, float(length)), "", spec).verdict == "valid"


@pytest.mark.parametrize("delta", [-1, 1, 0.5])
def test_a_claim_off_by_anything_is_invalid(spec: ChallengeSpec, delta: float) -> None:
    tour = _identity()
    length = tour_length(public_instance().coordinates, tour)
    result = cheap_check("r.md", _claim(tour, length + delta), "", spec)
    assert result.verdict == "invalid"
    assert f"the tour's length is {length}, not the claimed {length + delta}" in result.reason


@pytest.mark.parametrize(
    ("frontmatter", "reason"),
    [
        (_claim(list(range(999)), 1), "the tour lists 999 cities; the instance has 1000"),
        (_claim([0, *range(999)], 1), "city 0 is visited more than once"),
        (_claim(list(range(2_000_000)), 1), "the tour lists 2000000 cities"),
        (_claim("0 1 2", 1), "the tour must be a list of city ids, not str"),
        (_claim([True] * 1000, 1), "entry 0 (True) is not a city id (999 more like it)"),
        ({"tour_length": 1, "method": "no tour"}, "required field(s) missing: tour"),
        (_claim(list(range(1000)), "short"), "the score field `tour_length` must be a finite number"),
    ],
)
def test_malformed_claims_are_invalid_with_the_reason(
    spec: ChallengeSpec, frontmatter: dict[str, Any], reason: str
) -> None:
    result = cheap_check("r.md", frontmatter, "", spec)
    assert result.verdict == "invalid"
    assert reason in result.reason
