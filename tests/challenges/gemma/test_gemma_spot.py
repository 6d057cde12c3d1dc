"""Generative spot checks: answer extraction and the paired comparison with bf16."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from gemma_eval import toy_tokenizer
from gemma_eval.budget import Deadline
from gemma_eval.data import SpotItem
from gemma_eval.engines.base import Generation
from gemma_eval.engines.fake import FakeEngine
from gemma_eval.params import Params
from gemma_eval.spot import accuracy_at_output_len, extract_answer, judge_task, run_spot_checks


@pytest.mark.parametrize(
    ("text", "choices", "expected"),
    [
        ("Reasoning...\nANSWER: C", 4, "C"),
        ("answer: (b)", 4, None),  # a lower-case letter is not an option letter
        ("ANSWER: (B)", 4, "B"),
        ("**ANSWER: D**", 4, "D"),
        ("Answer:  **J**", 10, "J"),
        ("ANSWER: J", 4, None),  # out of range for four options
        ("First I thought ANSWER: A, but no.\nANSWER: B", 4, "B"),  # the last one counts
        ("So the answer is (C).", 4, "C"),
        ("The answer is a guess", 4, None),
        ("ANSWER: A\nthe answer is B", 4, "A"),  # the instructed form wins over the fallback
        ("ANSWER: Apple", 4, None),  # a word, not a letter
        ("no answer here", 4, None),
        ("", 4, None),
    ],
)
def test_extract_answer(text: str, choices: int, expected: str | None) -> None:
    assert extract_answer(text, choices) == expected


def params() -> Params:
    return Params()


def judged(
    correct_candidate: int, correct_baseline: int, n: int, overlap: int
) -> tuple[dict[str, bool], dict[str, bool]]:
    """n items; the baseline gets the first correct_baseline right, the candidate `overlap` of those plus others."""
    ids = [f"i{k}" for k in range(n)]
    base = {i: k < correct_baseline for k, i in enumerate(ids)}
    cand_right = set(ids[:overlap]) | set(ids[correct_baseline : correct_baseline + correct_candidate - overlap])
    return {i: i in cand_right for i in ids}, base


def test_the_lossy_entrys_drop_fails() -> None:
    # A 15-point drop on 64 GPQA items (44% -> 30%): significant and beyond 12 points.
    cand, base = judged(correct_candidate=19, correct_baseline=28, n=64, overlap=17)
    verdict = judge_task("gpqa_diamond", cand, base, params())
    assert verdict.drop_points == pytest.approx(100 * 9 / 64)
    assert (verdict.worse, verdict.better) == (11, 2)
    assert verdict.p_value == pytest.approx(sum(math.comb(13, k) for k in range(11, 14)) / 2**13)
    assert verdict.ok is False


def test_a_small_or_insignificant_drop_passes() -> None:
    cand, base = judged(correct_candidate=26, correct_baseline=28, n=64, overlap=24)  # -3 points
    assert judge_task("gpqa_diamond", cand, base, params()).ok is True
    # 6.25 points down but with as many items won as lost elsewhere: not significant.
    cand, base = judged(correct_candidate=24, correct_baseline=28, n=64, overlap=18)
    verdict = judge_task("gpqa_diamond", cand, base, params())
    assert verdict.drop_points > 5 and verdict.p_value > 0.05 and verdict.ok is True


def test_a_large_drop_fails_even_when_not_significant() -> None:
    cand, base = judged(correct_candidate=2, correct_baseline=4, n=10, overlap=2)  # 20 points on 10 items
    verdict = judge_task("mmlu_pro", cand, base, params())
    assert verdict.p_value > 0.05 and verdict.drop_points == 20.0 and verdict.ok is False


def test_improvement_passes() -> None:
    cand, base = judged(correct_candidate=40, correct_baseline=28, n=64, overlap=28)
    assert judge_task("mmlu_pro", cand, base, params()).ok is True


class Answering(FakeEngine):
    """Answers every item with a fixed letter, then stops."""

    def __init__(self, letter: str) -> None:
        super().__init__()
        self.letter = letter

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        text = toy_tokenizer.encode(f"Let me think.\nANSWER: {self.letter}")
        return Generation(
            tuple([*text, toy_tokenizer.END_OF_TURN, *toy_tokenizer.encode("ANSWER: D")][:max_new_tokens])
        )


def test_run_spot_checks_grades_text_cut_at_the_stop_token() -> None:
    items = [SpotItem(f"s{k}", "mmlu_pro", (2, 20 + k), "B", 4) for k in range(6)]
    baseline = {f"s{k}": k < 3 for k in range(6)}
    engine = Answering("B")
    verdicts, mean_tokens = run_spot_checks(
        engine, items, [toy_tokenizer.END_OF_TURN], baseline, params(), Deadline(engine.clock, 1e9)
    )
    assert [v.task for v in verdicts] == ["mmlu_pro"]
    assert mean_tokens == len(engine.generate((2,), 1024, ignore_eos=False).token_ids)
    assert verdicts[0].accuracy == 1.0, "text after the stop token (ANSWER: D) is never read"
    wrong, _ = run_spot_checks(
        Answering("C"), items, [toy_tokenizer.END_OF_TURN], baseline, params(), Deadline(engine.clock, 1e9)
    )
    assert wrong[0].accuracy == 0.0 and wrong[0].drop_points == 50.0 and wrong[0].ok is False


def test_accuracy_at_output_len_skips_prompts_without_gold() -> None:
    engine = FakeEngine()
    out = [*toy_tokenizer.encode("ANSWER: A"), toy_tokenizer.END_OF_TURN, *toy_tokenizer.encode("ANSWER: B")]
    correct, graded = accuracy_at_output_len(engine, ["A", None, "B"], [out, out, out], [toy_tokenizer.END_OF_TURN])
    assert (correct, graded) == (1, 2)
