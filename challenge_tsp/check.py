"""The tsp cheap check: recompute a claimed tour's length, exactly, from the result's own `tour`.

It runs in the eval Space on every claimed result when verification is `eval-space`, reads
nothing but the public instance, and never raises on what a participant wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from challenge_tsp.harness.run import Instance, load_instance, tour_length, tour_problems
from provision.challenge_types import CheckResult
from provision.challenge_types.claims import check_claimed_fields

if TYPE_CHECKING:
    from provision.spec import ChallengeSpec


@cache
def public_instance() -> Instance:
    """The instance shipped with the harness, read once."""
    return load_instance()


def cheap_check(filename: str, frontmatter: Mapping[str, Any], body: str, spec: ChallengeSpec) -> CheckResult:
    """Decide a claimed result: its `tour` must visit every city once and have the claimed length.

    Args:
        filename: The result's file name (not used: the frontmatter carries everything).
        frontmatter: The result's YAML frontmatter; `tour` is the list of city ids.
        body: The result's Markdown body (not used).
        spec: The collab's spec; the claimed length is read from its score field.

    Returns:
        `valid` when the recomputed length equals the claim, `invalid` with the reason otherwise.
    """
    shared = check_claimed_fields(frontmatter, spec)
    if shared is not None:
        return shared
    instance = public_instance()
    tour = frontmatter.get("tour")
    problems = tour_problems(tour, instance.cities)
    if problems or not isinstance(tour, list):
        return CheckResult("invalid", "`tour` is not a round trip through every city: " + "; ".join(problems))
    field = spec.scoring.score_field
    length, claimed = tour_length(instance.coordinates, tour), frontmatter[field]
    if claimed != length:
        return CheckResult(
            "invalid", f"the tour's length is {length}, not the claimed {claimed}: claim {field}: {length}"
        )
    return CheckResult("valid", f"recomputed on {instance.name}: the tour's length is {length}, as claimed")
