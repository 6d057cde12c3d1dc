"""The decode checks that perplexity cannot make: greedy self-consistency and agreement with bf16.

Perplexity exercises only the prefill path, so a decode-only trick (relaxed draft acceptance,
decode-only layer skipping or vocabulary pruning) passes it untouched. Two checks close that gap:

- *Self-consistency*: re-score each prompt plus the tokens the engine generated while it was being
  timed, on the same engine. A faithful greedy decoder picked the prefill's top-1 token at every
  position, up to float near-ties; a position whose token is behind the top-1 by more than a
  margin is a violation. One near-tie flip counts once, unlike an exact-match rule, where it would
  break the whole rest of the sequence.
- *Agreement with bf16*: score each prompt plus the stored bf16 greedy output and count the
  positions where that token is also the candidate's top-1 (teacher-forced top-1 agreement). This
  catches damage to the weights or the architecture, which self-consistency cannot see.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gemma_eval.budget import Deadline
from gemma_eval.data import Prompt
from gemma_eval.engines.base import Engine, TokenScore
from gemma_eval.ppl import check_scores

# Edges (nats) of the histogram of margins at positions whose token was not the top-1.
MARGIN_EDGES = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@dataclass(frozen=True)
class PositionCounts:
    """How one sequence's generated positions compare with the prefill's top-1."""

    positions: int
    violations: int
    near_ties: int
    histogram: tuple[int, ...]


def classify(scores: Sequence[TokenScore], margin_nats: float) -> PositionCounts:
    """Count violations (not top-1, behind by more than the margin) and near-ties (behind by at most it)."""
    histogram = [0] * (len(MARGIN_EDGES) + 1)
    violations = near_ties = 0
    for score in scores:
        if score.rank <= 1:
            continue
        margin = score.margin
        histogram[bisect.bisect_right(MARGIN_EDGES, margin)] += 1
        if margin > margin_nats:
            violations += 1
        else:
            near_ties += 1
    return PositionCounts(len(scores), violations, near_ties, tuple(histogram))


@dataclass
class ConsistencyResult:
    positions: int = 0
    violations: int = 0
    near_ties: int = 0
    per_prompt: list[int] = field(default_factory=list)
    histogram: list[int] = field(default_factory=lambda: [0] * (len(MARGIN_EDGES) + 1))
    problems: list[str] = field(default_factory=list)

    @property
    def violation_rate(self) -> float | None:
        return self.violations / self.positions if self.positions else None

    def figures(self, max_rate: float, max_per_prompt: int) -> dict[str, Any]:
        worst = max(self.per_prompt, default=0)
        rate = self.violation_rate
        return {
            "positions": self.positions,
            "violations": self.violations,
            "violation_rate": rate,
            "near_ties": self.near_ties,
            "max_violations_per_prompt": worst,
            "margin_histogram": {"edges_nats": list(MARGIN_EDGES), "counts": self.histogram},
            "ok": not self.problems and rate is not None and rate <= max_rate and worst <= max_per_prompt,
        }


def self_consistency(
    engine: Engine,
    prompts: Sequence[Prompt],
    outputs: Sequence[Sequence[int]],
    margin_nats: float,
    deadline: Deadline,
) -> ConsistencyResult:
    """Re-score each prompt with the tokens it generated, on the same engine.

    Args:
        engine: The engine that generated `outputs`.
        prompts: The timed prompts.
        outputs: Their generated tokens from the first timed pass (prompts without an output are skipped).
        margin_nats: Near-tie tolerance.
        deadline: The run's budget.

    Raises:
        BudgetExceeded: The time budget ran out.
        EngineFailure: The engine failed on a request.
    """
    result = ConsistencyResult()
    for prompt, output in zip(prompts, outputs, strict=False):
        deadline.check("the self-consistency check")
        scores = engine.score((*prompt.token_ids, *output), len(prompt.token_ids))
        if problems := check_scores(scores, output, f"self-consistency of prompt {prompt.id}"):
            result.problems += problems
            continue
        counts = classify(scores, margin_nats)
        result.positions += counts.positions
        result.violations += counts.violations
        result.near_ties += counts.near_ties
        result.per_prompt.append(counts.violations)
        result.histogram = [a + b for a, b in zip(result.histogram, counts.histogram, strict=True)]
    return result


@dataclass
class AgreementResult:
    positions: int = 0
    top1_agreements: int = 0
    exact_sequences: int = 0
    common_prefix_total: int = 0
    sequences: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def top1(self) -> float | None:
        return self.top1_agreements / self.positions if self.positions and not self.problems else None

    def figures(self, top1_min: float) -> dict[str, Any]:
        top1 = self.top1
        return {
            "top1": top1,
            "positions": self.positions,
            "exact_sequence_rate": self.exact_sequences / self.sequences if self.sequences else None,
            "mean_common_prefix": self.common_prefix_total / self.sequences if self.sequences else None,
            "ok": top1 is not None and top1 >= top1_min,
        }


def bf16_agreement(
    engine: Engine,
    prompts: Sequence[Prompt],
    candidate_outputs: Sequence[Sequence[int]],
    baseline_outputs: Mapping[str, Sequence[int]],
    deadline: Deadline,
) -> AgreementResult:
    """Teacher-forced top-1 agreement with the stored bf16 outputs, plus exact-match diagnostics.

    Raises:
        BudgetExceeded: The time budget ran out.
        EngineFailure: The engine failed on a request.
    """
    result = AgreementResult()
    for index, prompt in enumerate(prompts):
        deadline.check("the bf16 agreement check")
        reference = list(baseline_outputs[prompt.id])
        scores = engine.score((*prompt.token_ids, *reference), len(prompt.token_ids))
        if problems := check_scores(scores, reference, f"agreement on prompt {prompt.id}"):
            result.problems += problems
            continue
        result.positions += len(scores)
        result.top1_agreements += sum(1 for s in scores if s.rank == 1)
        if index < len(candidate_outputs):
            produced = list(candidate_outputs[index])
            prefix = _common_prefix(produced, reference)
            result.sequences += 1
            result.common_prefix_total += prefix
            result.exact_sequences += prefix == min(len(produced), len(reference))
    return result


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))
