"""Checks every cheap check shares: what the spec alone says a claimed result must look like.

Pure functions over a result's frontmatter and the loaded spec, so a type's cheap check can run
them first and spend its own effort only on claims that are well-formed. They never raise on
what a participant wrote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

from provision.challenge_types.contract import CheckResult

if TYPE_CHECKING:
    from provision.spec.model import Bounds, ChallengeSpec


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether `value` is an int or float that a float can hold, and finite.

    YAML's `true`, `.nan` and `.inf` are not numbers, nor is an integer too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_claimed_fields(frontmatter: Mapping[str, Any], spec: ChallengeSpec) -> CheckResult | None:
    """Check a result's frontmatter against the spec's scoring section.

    The score field must hold a finite number, every required field must be present, every metric
    that is present must be a finite number inside its guardrail, and the track (when the spec
    has tracks) must be one of them.

    Args:
        frontmatter: The result's YAML frontmatter, as parsed.
        spec: The collab's loaded challenge spec.

    Returns:
        An `invalid` result naming every problem found, or None when the fields are sound (the
        type's own check decides then).
    """
    if not isinstance(frontmatter, Mapping):
        return CheckResult("invalid", "the result has no YAML frontmatter mapping")
    scoring = spec.scoring
    problems = []
    score = frontmatter.get(scoring.score_field)
    if not is_number(score):
        problems.append(f"the score field `{scoring.score_field}` must be a finite number")
    missing = [f for f in scoring.required_fields if f not in frontmatter]
    if missing:
        problems.append(f"required field(s) missing: {', '.join(missing)}")
    for metric in scoring.metrics:
        if metric.field not in frontmatter:
            continue
        value = frontmatter[metric.field]
        if not is_number(value):
            problems.append(f"the metric `{metric.field}` must be a finite number")
        elif metric.guardrail is not None and not metric.guardrail.admits(value):
            problems.append(f"`{metric.field}` = {value} is outside its guardrail {_bounds(metric.guardrail)}")
    if scoring.tracks:
        names = [t.name for t in scoring.tracks]
        track = frontmatter.get("track")
        if track not in names:
            problems.append(f"`track` must be one of {', '.join(names)}")
    if problems:
        return CheckResult("invalid", "; ".join(problems))
    return None


def _bounds(bounds: Bounds) -> str:
    parts = []
    if bounds.min is not None:
        parts.append(f">= {bounds.min}")
    if bounds.max is not None:
        parts.append(f"<= {bounds.max}")
    return " and ".join(parts)
