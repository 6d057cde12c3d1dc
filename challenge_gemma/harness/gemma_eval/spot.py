"""Generative spot checks: answer multiple-choice questions by decoding, paired against bf16.

They must be generative: a log-likelihood multiple-choice score reads only the prefill path and
is as blind to decode tricks as perplexity. Each item is decoded greedily on the engine under
test (same instance, same config as the timed run) until a stop token, the answer letter is
extracted from the text, and per-item correctness is compared, item by item, with the stored bf16
correctness. A task fails when its accuracy drops by more than `spot_drop_points` with a
significant exact McNemar test, or by more than `spot_drop_points_hard` outright. Items come from
the organizers' private folder; none are in the repository.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gemma_eval import stats
from gemma_eval.budget import Deadline
from gemma_eval.data import LETTERS, SpotItem
from gemma_eval.engines.base import Engine
from gemma_eval.params import Params

# The prompts ask for a final line `ANSWER: X`; the fallback is the common "the answer is (X)".
_PATTERNS = (
    re.compile(r"answer\s*:\s*[*_]*\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"answer\s+is\s*[*_:]*\s*\(?([A-J])\)?(?![A-Za-z])", re.IGNORECASE),
)


def extract_answer(text: str, num_choices: int) -> str | None:
    """The answer letter: the last `ANSWER: X`, else the last `answer is X`; None when absent or out of range.

    The letter must be upper case, so the word "a" in "answer is a guess" is not read as option A.
    """
    valid = LETTERS[:num_choices]
    for pattern in _PATTERNS:
        letters = [m.group(1) for m in pattern.finditer(text) if m.group(1) in valid]
        if letters:
            return letters[-1]
    return None


@dataclass(frozen=True)
class TaskVerdict:
    """One task's paired comparison with bf16."""

    task: str
    n: int
    accuracy: float
    baseline_accuracy: float
    drop_points: float
    worse: int
    better: int
    p_value: float
    ok: bool

    def figures(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "acc": self.accuracy,
            "baseline_acc": self.baseline_accuracy,
            "drop_points": self.drop_points,
            "baseline_only_correct": self.worse,
            "candidate_only_correct": self.better,
            "p_value": self.p_value,
            "ok": self.ok,
        }


def judge_task(task: str, candidate: Mapping[str, bool], baseline: Mapping[str, bool], params: Params) -> TaskVerdict:
    """Paired comparison of per-item correctness on one task.

    Args:
        task: The task name.
        candidate: Item id to correctness, for the submission.
        baseline: Item id to correctness, for bf16; must cover every candidate item.
        params: The drop limits and significance level.
    """
    ids = sorted(candidate)
    n = len(ids)
    correct = sum(candidate[i] for i in ids)
    base_correct = sum(baseline[i] for i in ids)
    worse = sum(1 for i in ids if baseline[i] and not candidate[i])
    better = sum(1 for i in ids if candidate[i] and not baseline[i])
    drop = 100 * (base_correct - correct) / n if n else 0.0
    p_value = stats.mcnemar_exact_one_sided(worse, better)
    significant = drop > params.spot_drop_points and p_value < params.spot_alpha
    ok = not significant and drop <= params.spot_drop_points_hard
    return TaskVerdict(
        task, n, correct / n if n else 0.0, base_correct / n if n else 0.0, drop, worse, better, p_value, ok
    )


@dataclass(frozen=True)
class Graded:
    """One decoded answer: the extracted letter (None when there is none) and its length in tokens."""

    answer: str | None
    tokens: int


def grade_items(
    engine: Engine, items: Sequence[SpotItem], stop_token_ids: Sequence[int], params: Params, deadline: Deadline
) -> dict[str, Graded]:
    """Decode every item greedily to a stop token and extract its answer letter.

    Raises:
        BudgetExceeded: The time budget ran out.
        EngineFailure: The engine failed on a request.
    """
    graded: dict[str, Graded] = {}
    for item in items:
        deadline.check("the spot checks")
        generation = engine.generate(
            item.token_ids, params.spot_max_new_tokens, ignore_eos=False, stop_token_ids=stop_token_ids
        )
        text = engine.decode(_cut(generation.token_ids, stop_token_ids))
        graded[item.id] = Graded(extract_answer(text, item.num_choices), len(generation.token_ids))
    return graded


def run_spot_checks(
    engine: Engine,
    items: Sequence[SpotItem],
    stop_token_ids: Sequence[int],
    baseline: Mapping[str, bool],
    params: Params,
    deadline: Deadline,
) -> tuple[list[TaskVerdict], float]:
    """Grade every item and judge each task against bf16's correctness; also the mean answer length.

    Raises:
        BudgetExceeded: The time budget ran out.
        EngineFailure: The engine failed on a request.
    """
    graded = grade_items(engine, items, stop_token_ids, params, deadline)
    by_task: dict[str, dict[str, bool]] = {}
    for item in items:
        by_task.setdefault(item.task, {})[item.id] = graded[item.id].answer == item.gold
    verdicts = [judge_task(task, correct, baseline, params) for task, correct in sorted(by_task.items())]
    return verdicts, sum(g.tokens for g in graded.values()) / len(graded) if graded else 0.0


def accuracy_at_output_len(
    engine: Engine, golds: Sequence[str | None], outputs: Sequence[Sequence[int]], stop_token_ids: Sequence[int]
) -> tuple[int, int]:
    """(correct, graded) over timed outputs whose prompt has a gold letter, each cut at its first stop token.

    A diagnostic only: the timed run ignores EOS, so this grades what the model said before it.
    """
    graded = correct = 0
    for gold, output in zip(golds, outputs, strict=False):
        if gold is None:
            continue
        graded += 1
        correct += extract_answer(engine.decode(_cut(output, stop_token_ids)), len(LETTERS)) == gold
    return correct, graded


def _cut(token_ids: Sequence[int], stop_token_ids: Sequence[int]) -> list[int]:
    stops = set(stop_token_ids)
    out = []
    for token in token_ids:
        if token in stops:
            break
        out.append(token)
    return out
