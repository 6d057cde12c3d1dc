"""Teacher-forced perplexity on reference continuations, and the sanity checks every value must pass.

Each record is sent as one prefill of context + target; only the target positions are scored
(context positions never count), and the aggregate is token-weighted: exp(Σ NLL / Σ tokens). A
scored value that is not finite, is above zero, belongs to another token, or comes back in the
wrong number makes the measurement untrustworthy, and the run invalid. PPL sees only the prefill
path, which is why the decode checks exist beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gemma_eval.budget import Deadline
from gemma_eval.data import RecordNll, Reference
from gemma_eval.engines.base import Engine, TokenScore


@dataclass
class PplResult:
    """Aggregate and per-record perplexity, and every sanity problem found."""

    nll_sum: float = 0.0
    num_tokens: int = 0
    records: dict[str, RecordNll] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ppl(self) -> float | None:
        if self.problems or not self.num_tokens:
            return None
        return _exp(self.nll_sum / self.num_tokens)

    def mean_record_ppl(self) -> float | None:
        if self.problems or not self.records:
            return None
        return sum(_exp(r.nll_sum / r.num_tokens) for r in self.records.values()) / len(self.records)

    def max_record_ratio(self, baseline: Mapping[str, RecordNll]) -> tuple[float, str] | None:
        """The largest per-record PPL ratio to the baseline's, and its record id."""
        if self.problems:
            return None
        ratios = [
            (_exp(r.nll_sum / r.num_tokens - baseline[i].nll_sum / baseline[i].num_tokens), i)
            for i, r in self.records.items()
            if i in baseline
        ]
        return max(ratios) if ratios else None


def check_scores(scores: Sequence[TokenScore], expected: Sequence[int], where: str) -> list[str]:
    """Every problem with the scores of `expected` tokens: count, identity, finiteness, sign, rank.

    Args:
        scores: What the engine returned for the scored positions.
        expected: The tokens at those positions.
        where: Names the record in messages.
    """
    if len(scores) != len(expected):
        return [f"{where}: {len(scores)} scored positions returned for {len(expected)} tokens"]
    problems = []
    for offset, (score, token) in enumerate(zip(scores, expected, strict=True)):
        if score.token_id != token:
            problems.append(f"{where}: position {offset} scored token {score.token_id} instead of {token}")
        elif not math.isfinite(score.logprob) or score.logprob > 0:
            problems.append(f"{where}: position {offset} has log-probability {score.logprob}, not finite and <= 0")
        elif score.rank < 1 or not math.isfinite(score.top1_logprob) or score.top1_logprob < score.logprob:
            problems.append(f"{where}: position {offset} has an inconsistent rank or top-1 log-probability")
        if len(problems) >= 3:
            break
    return problems


def score_references(engine: Engine, references: Sequence[Reference], deadline: Deadline) -> PplResult:
    """Teacher-forced PPL over the reference set.

    Raises:
        BudgetExceeded: The time budget ran out.
        EngineFailure: The engine failed on a request.
    """
    result = PplResult()
    for ref in references:
        deadline.check("perplexity")
        scores = engine.score((*ref.context, *ref.target), len(ref.context))
        problems = check_scores(scores, ref.target, f"reference {ref.id}")
        if problems:
            result.problems += problems
            continue
        nll = -sum(s.logprob for s in scores)
        result.records[ref.id] = RecordNll(nll, len(scores))
        result.nll_sum += nll
        result.num_tokens += len(scores)
    return result


def _exp(value: float) -> float:
    # A broken engine can return finite but absurd log-probabilities; infinity fails every cap.
    return math.exp(value) if value < 700 else math.inf
