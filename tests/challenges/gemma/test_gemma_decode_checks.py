"""PPL masking and the decode checks on a tiny random Gemma 4, and the attack they exist for.

A sabotaged engine that changes only the decode path (relaxed draft acceptance, decode-only
vocabulary pruning) leaves teacher-forced PPL exactly where it was, and must fail the greedy
self-consistency check. Weight damage passes self-consistency and must fail the bf16 agreement.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from gemma_eval import consistency, ppl
from gemma_eval.budget import Deadline
from gemma_eval.data import Reference, load_baseline, load_eval_data
from gemma_eval.engines.base import TokenScore
from gemma_eval.engines.fake import FakeEngine
from gemma_eval.errors import BudgetExceeded
from gemma_helpers import SAMPLE

torch = pytest.importorskip("torch", reason="the tiny Gemma needs the gemma-cpu extra (torch, transformers)")
from gemma_eval.engines.transformers_engine import TransformersEngine  # noqa: E402 - after the skip

OUTPUT_LEN = 48
MARGIN = 0.1


class RelaxedAcceptance(TransformersEngine):
    """Decode path only: takes the runner-up whenever it is within 0.5 nats, as margin-gated acceptance does."""

    def _pick_next(self, logits: Any) -> int:
        top = torch.log_softmax(logits, -1).topk(2)
        close = float(top.values[0] - top.values[1]) < 0.5
        return int(top.indices[1] if close else top.indices[0])


class PrunedVocabulary(TransformersEngine):
    """Decode path only: picks among the byte tokens, a vocabulary pruned for speed."""

    def _pick_next(self, logits: Any) -> int:
        return int(logits[:272].argmax())


@pytest.fixture(scope="module")
def data() -> Any:
    return load_eval_data(SAMPLE)


@pytest.fixture(scope="module")
def honest() -> TransformersEngine:
    return TransformersEngine()


@pytest.fixture(scope="module")
def honest_outputs(honest: TransformersEngine, data: Any) -> list[tuple[int, ...]]:
    return outputs(honest, data)


def outputs(engine: Any, data: Any) -> list[tuple[int, ...]]:
    return [engine.generate(p.token_ids, OUTPUT_LEN, ignore_eos=True).token_ids for p in data.prompts.items]


def forever(engine: Any) -> Deadline:
    return Deadline(engine.clock, math.inf)


def test_greedy_decoding_equals_the_prefill_argmax(honest: TransformersEngine, data: Any, honest_outputs: Any) -> None:
    result = consistency.self_consistency(honest, data.prompts.items, honest_outputs, MARGIN, forever(honest))
    assert result.problems == []
    assert result.positions == OUTPUT_LEN * len(data.prompts.items)
    assert result.violations == 0 and result.near_ties == 0


def test_ppl_scores_only_the_target_positions(honest: TransformersEngine, data: Any) -> None:
    ref = data.references.items[0]
    result = ppl.score_references(honest, [ref], forever(honest))
    ids = torch.tensor([[*ref.context, *ref.target]])
    with torch.inference_mode():
        logprobs = torch.log_softmax(honest._model(input_ids=ids).logits[0].float(), -1)
    start = len(ref.context)
    target_nll = -sum(float(logprobs[t - 1, ids[0, t]]) for t in range(start, ids.shape[1]))
    all_nll = -sum(float(logprobs[t - 1, ids[0, t]]) for t in range(1, ids.shape[1]))
    assert result.num_tokens == len(ref.target)
    assert result.ppl == pytest.approx(math.exp(target_nll / len(ref.target)), rel=1e-5)
    assert result.ppl != pytest.approx(math.exp(all_nll / (ids.shape[1] - 1)), rel=1e-3), "context must not count"
    # Changing the context changes the conditional scores, but never adds positions.
    other = Reference(ref.id, (*ref.context, *ref.context[:5]), ref.target)
    assert ppl.score_references(honest, [other], forever(honest)).num_tokens == len(ref.target)


def test_aggregate_ppl_is_token_weighted(honest: TransformersEngine, data: Any) -> None:
    result = ppl.score_references(honest, data.references.items, forever(honest))
    records = result.records.values()
    assert result.ppl == pytest.approx(math.exp(sum(r.nll_sum for r in records) / sum(r.num_tokens for r in records)))
    assert result.num_tokens == sum(len(r.target) for r in data.references.items)
    baseline = load_baseline(SAMPLE, data, honest.info.family)
    assert baseline is not None
    assert result.ppl == pytest.approx(baseline.ppl, rel=1e-4), "the stored sample baseline is this model's"
    worst = result.max_record_ratio(baseline.ppl_records)
    assert worst is not None and worst[0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("saboteur", [RelaxedAcceptance, PrunedVocabulary])
def test_decode_only_sabotage_fails_consistency_while_ppl_passes(
    honest: TransformersEngine, data: Any, honest_outputs: Any, saboteur: type[TransformersEngine]
) -> None:
    sabotaged = saboteur()
    produced = outputs(sabotaged, data)
    assert produced != honest_outputs, "the sabotage changes what is generated"
    # Teacher-forced PPL only runs the prefill path: identical to the honest engine's, far below its cap.
    honest_ppl = ppl.score_references(honest, data.references.items, forever(honest)).ppl
    sabotaged_ppl = ppl.score_references(sabotaged, data.references.items, forever(sabotaged)).ppl
    assert sabotaged_ppl == honest_ppl
    assert sabotaged_ppl is not None and honest_ppl is not None and sabotaged_ppl <= honest_ppl * 1.05
    # Re-scoring its own greedy output exposes it.
    result = consistency.self_consistency(sabotaged, data.prompts.items, produced, MARGIN, forever(sabotaged))
    figures = result.figures(max_rate=0.002, max_per_prompt=3)
    assert figures["ok"] is False
    assert result.violation_rate is not None and result.violation_rate > 0.05
    assert max(result.per_prompt) > 3


def test_weight_damage_fails_agreement_though_it_is_self_consistent(data: Any) -> None:
    damaged = TransformersEngine(seed=1)  # other weights, same architecture: a broken quantization
    baseline = load_baseline(SAMPLE, data, damaged.info.family)
    assert baseline is not None
    produced = outputs(damaged, data)
    checked = consistency.self_consistency(damaged, data.prompts.items, produced, MARGIN, forever(damaged))
    assert checked.violations == 0, "its decode path is faithful to its own (wrong) weights"
    agreed = consistency.bf16_agreement(damaged, data.prompts.items, produced, baseline.outputs, forever(damaged))
    figures = agreed.figures(top1_min=0.9)
    assert figures["ok"] is False and figures["top1"] < 0.5
    assert figures["exact_sequence_rate"] == 0.0


def test_the_baseline_model_agrees_with_its_own_stored_outputs(
    honest: TransformersEngine, data: Any, honest_outputs: Any
) -> None:
    baseline = load_baseline(SAMPLE, data, honest.info.family)
    assert baseline is not None
    agreed = consistency.bf16_agreement(honest, data.prompts.items, honest_outputs, baseline.outputs, forever(honest))
    figures = agreed.figures(top1_min=0.9)
    assert figures["top1"] == 1.0 and figures["ok"] is True
    assert figures["exact_sequence_rate"] == 1.0 and figures["mean_common_prefix"] == OUTPUT_LEN


def score(rank: int, margin: float) -> TokenScore:
    return TokenScore(7, -margin, rank, 3 if rank > 1 else 7, 0.0)


def test_near_ties_are_tolerated_and_counted_apart() -> None:
    counts = consistency.classify(
        [score(1, 0.0), score(2, 0.0005), score(2, 0.05), score(2, 0.1), score(2, 0.1001), score(3, 2.0)], MARGIN
    )
    assert (counts.positions, counts.violations, counts.near_ties) == (6, 2, 3)
    # Histogram buckets: [0, .001), [.001, .01), [.01, .03), [.03, .1), [.1, .3), [.3, 1), [1, 3), [3, inf).
    assert counts.histogram == (1, 0, 0, 1, 2, 0, 1, 0)


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        (TokenScore(7, math.nan, 1, 7, math.nan), "not finite"),
        (TokenScore(7, math.inf, 1, 7, math.inf), "not finite"),
        (TokenScore(7, 0.25, 1, 7, 0.25), "<= 0"),
        (TokenScore(8, -1.0, 1, 8, -1.0), "scored token 8 instead of 7"),
        (TokenScore(7, -1.0, 0, 7, -1.0), "inconsistent rank"),
        (TokenScore(7, -1.0, 2, 3, -2.0), "inconsistent rank"),
    ],
)
def test_score_sanity_checks(bad: TokenScore, fragment: str) -> None:
    problems = ppl.check_scores([TokenScore(7, -0.5, 1, 7, -0.5), bad], [7, 7], "ref")
    assert len(problems) == 1 and fragment in problems[0]
    assert "returned for 3 tokens" in ppl.check_scores([bad], [7, 7, 7], "ref")[0]


class Lying(FakeEngine):
    """Scores returned short and with a NaN: the PPL must refuse to aggregate them."""

    def score(self, token_ids: Any, start: int) -> list[TokenScore]:
        scores = super().score(token_ids, start)
        return (
            scores[:-1] if len(token_ids) % 2 else [*scores[:-1], TokenScore(scores[-1].token_id, math.nan, 1, 0, 0.0)]
        )


def test_untrustworthy_scores_invalidate_ppl(data: Any) -> None:
    engine = Lying()
    result = ppl.score_references(engine, data.references.items, forever(engine))
    assert result.problems and result.ppl is None
    assert result.records == {}


def test_phases_stop_at_the_deadline(data: Any) -> None:
    engine = FakeEngine()
    past = Deadline(engine.clock, 0.0)
    with pytest.raises(BudgetExceeded, match="perplexity"):
        ppl.score_references(engine, data.references.items, past)
    with pytest.raises(BudgetExceeded, match="self-consistency"):
        consistency.self_consistency(engine, data.prompts.items, [(5,)] * 12, MARGIN, past)


def test_fake_engine_is_self_consistent_too(data: Any, tmp_path: Path) -> None:
    engine = FakeEngine()
    produced = outputs(engine, data)
    result = consistency.self_consistency(engine, data.prompts.items, produced, MARGIN, forever(engine))
    assert result.violations == 0 and result.positions == OUTPUT_LEN * len(data.prompts.items)
