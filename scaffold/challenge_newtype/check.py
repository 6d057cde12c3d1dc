"""The newtype cheap check: recompute the claimed error from the predictions the result carries.

It runs in the eval Space on every claimed result when verification is `eval-space`. It must
never raise on what a participant wrote: return `invalid` with a reason instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from challenge_newtype.harness.run import TARGETS_FILE, load_targets, mean_absolute_error, prediction_problems
from provision.challenge_types import CheckResult
from provision.challenge_types.claims import check_claimed_fields

if TYPE_CHECKING:
    from provision.spec import ChallengeSpec


def cheap_check(filename: str, frontmatter: Mapping[str, Any], body: str, spec: ChallengeSpec) -> CheckResult:
    """Decide a claimed result from its frontmatter alone.

    Args:
        filename: The result's file name.
        frontmatter: The result's YAML frontmatter; `predictions` is the submitted list.
        body: The result's Markdown body.
        spec: The collab's spec; the claim is read from its score field.

    Returns:
        `valid` when the recomputed error equals the claim, `invalid` with the reason otherwise.
    """
    shared = check_claimed_fields(frontmatter, spec)
    if shared is not None:
        return shared
    targets = load_targets(TARGETS_FILE)
    predictions = frontmatter.get("predictions")
    problems = prediction_problems(predictions, len(targets))
    if problems or not isinstance(predictions, list):
        return CheckResult("invalid", "`predictions`: " + "; ".join(problems))
    field = spec.scoring.score_field
    error, claimed = mean_absolute_error(targets, predictions), frontmatter[field]
    if abs(claimed - error) > 1e-9:
        return CheckResult("invalid", f"the predictions' error is {error}, not the claimed {claimed}")
    return CheckResult("valid", f"recomputed: the error is {error}, as claimed")
