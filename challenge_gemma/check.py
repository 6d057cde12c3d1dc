"""The Gemma cheap check: refuse claims that cannot be right; leave tokens/s to a GPU re-run.

Tokens/s can only be measured on the challenge's GPU, so in `eval-space` mode this check decides
only what the result file itself shows: the spec's fields (score, required fields, the perplexity
cap, the track) and that a perplexity is at least 1, as every perplexity is. Everything else stays
pending for a jobs re-run or the organizers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from provision.challenge_types import CheckResult
from provision.challenge_types.claims import check_claimed_fields, is_number

if TYPE_CHECKING:
    from provision.spec import ChallengeSpec


def cheap_check(filename: str, frontmatter: Mapping[str, Any], body: str, spec: ChallengeSpec) -> CheckResult:
    """Decide what a Gemma result file alone can show.

    Args:
        filename: The result's file name (not used).
        frontmatter: The result's YAML frontmatter.
        body: The result's Markdown body (not used).
        spec: The collab's spec: score field, required fields, metric guardrails, tracks.

    Returns:
        `invalid` with the reason when a field is missing or impossible; otherwise no verdict.
    """
    shared = check_claimed_fields(frontmatter, spec)
    if shared is not None:
        return shared
    score = frontmatter[spec.scoring.score_field]
    if score <= 0:
        return CheckResult("invalid", f"`{spec.scoring.score_field}` must be above 0, not {score}")
    ppl = frontmatter.get("ppl")
    if is_number(ppl) and ppl < 1:
        return CheckResult("invalid", f"`ppl` = {ppl} is below 1, which no perplexity can be")
    return CheckResult(None, "the fields are sound; tokens/s needs a re-run on the GPU (jobs) or an organizer")
