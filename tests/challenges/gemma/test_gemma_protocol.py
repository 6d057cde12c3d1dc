"""The TPS protocol on the fake engine: warmups unscored, exact token counts, pass planning, the score."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from gemma_eval import stats
from gemma_eval.budget import Deadline
from gemma_eval.data import Prompt
from gemma_eval.engines.base import Generation, SpecStats
from gemma_eval.engines.fake import FakeEngine
from gemma_eval.errors import BudgetExceeded
from gemma_eval.params import Params
from gemma_eval.protocol import measure_tps, plan_passes, run_warmup, spec_figures, tps_figures

PROMPTS = [Prompt(f"p{i}", "test", tuple(range(20 + i, 60 + 2 * i))) for i in range(10)]
WARMUP = [Prompt(f"w{i}", "test", (2, 30 + i, 40)) for i in range(3)]


class Recording(FakeEngine):
    """Records every request it serves; can shorten the output of one prompt."""

    def __init__(self, short_prompt: tuple[int, ...] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.requests: list[tuple[tuple[int, ...], int, bool]] = []
        self.short_prompt = short_prompt

    def generate(
        self, prompt_ids: Sequence[int], max_new_tokens: int, *, ignore_eos: bool, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        self.requests.append((tuple(prompt_ids), max_new_tokens, ignore_eos))
        out = super().generate(prompt_ids, max_new_tokens, ignore_eos=ignore_eos, stop_token_ids=stop_token_ids)
        if tuple(prompt_ids) == self.short_prompt:
            return Generation(out.token_ids[:-1], out.ttft_s, out.decode_s)
        return out


def params(**changes: float) -> Params:
    return Params().with_overrides(
        {"output_len": 64, "warmup_requests": 5, "plan_after_prompts": 4, **changes}, source="test"
    )


def test_warmups_are_sent_but_never_timed() -> None:
    engine = Recording()
    p = params()
    deadline = Deadline(engine.clock, 1e9)
    counts = run_warmup(engine, WARMUP, p, deadline)
    assert counts == [64] * 5, "warmups are full-length requests, cycled through the pool"
    assert [r[0] for r in engine.requests] == [w.token_ids for w in (WARMUP * 2)[:5]]
    before = len(engine.requests)
    result = measure_tps(engine, PROMPTS, p, deadline)
    timed = [t for one_pass in result.passes for t in one_pass]
    assert len(timed) == len(engine.requests) - before, "every timed entry is a prompt request, no warmup"
    assert all(r[1] == 64 and r[2] is True for r in engine.requests), "timed and warmup requests ignore EOS"
    # The score is exactly Σ tokens / Σ wall seconds of each pass, median over passes.
    for one_pass, tps in zip(result.passes, result.pass_tps, strict=True):
        assert tps == sum(t.tokens for t in one_pass) / sum(t.wall_s for t in one_pass)
    assert result.score == stats.median(result.pass_tps)


def test_stop_tokens_do_not_end_a_timed_request() -> None:
    """A timed request ignores EOS and stop tokens; an answer (spot check) stops at them."""
    engine = FakeEngine()
    full = engine.generate(PROMPTS[0].token_ids, 400, ignore_eos=True, stop_token_ids=()).token_ids
    stop = full[10]
    assert len(engine.generate(PROMPTS[0].token_ids, 400, ignore_eos=True, stop_token_ids=[stop]).token_ids) == 400
    cut = engine.generate(PROMPTS[0].token_ids, 400, ignore_eos=False, stop_token_ids=[stop]).token_ids
    assert cut == full[: full.index(stop) + 1]


def test_one_short_output_invalidates_the_run() -> None:
    engine = Recording(short_prompt=PROMPTS[6].token_ids)
    result = measure_tps(engine, PROMPTS, params(), Deadline(engine.clock, 1e9))
    assert result.score is None
    assert len(result.count_failures) == 1
    assert "prompt 6 (p6) returned 63 tokens" in result.count_failures[0]
    assert "exactly 64" in result.count_failures[0]
    assert len(engine.requests) == 7, "timing stops at the first wrong count"
    figures = tps_figures(result, params())
    assert figures["tps"] is None and figures["all_outputs_full_length"] is False


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (10.0 * 10 * 3 + 100 + 1, 3),  # room for two more passes beside the reserve
        (10.0 * 10 * 2 + 100 + 1, 1),  # room for one more: two passes are not planned (even count)
        (10.0 * 6 + 100 - 1, 1),  # not even the first pass fits: still one (the deadline stops it)
        (1e9, 3),  # capped at the protocol's maximum
    ],
)
def test_plan_passes(left: float, expected: int) -> None:
    # Four prompts timed at 10 s each; 10 prompts per pass; 100 s reserve; 6 prompts of pass 1 still to go.
    assert plan_passes([10.0] * 4, 10, left, 100.0, 3) == expected


def test_plan_passes_prices_the_spot_checks_at_the_measured_speed() -> None:
    # 10 s per 512-token request: 5120 spot tokens cost 100 s more reserve, which removes the extra passes.
    assert plan_passes([10.0] * 4, 10, 10.0 * 10 * 3 + 101, 0.0, 3, reserve_tokens=0, output_len=512) == 3
    assert plan_passes([10.0] * 4, 10, 10.0 * 10 * 3 + 101, 0.0, 3, reserve_tokens=15000, output_len=512) == 1
    assert plan_passes([], 10, 1e9, 0.0, 5) == 1
    assert plan_passes([1.0], 10, 1e9, 0.0, 5) == 5


def test_a_tight_budget_plans_one_pass_and_a_loose_one_three() -> None:
    p = params(reserve_s=1.0)
    # The fake engine spends ~0.25 simulated s per 64-token request: a pass of 10 prompts is ~2.5 s.
    loose = measure_tps(FakeEngine(), PROMPTS, p, Deadline(FakeEngine().clock, 100.0))
    assert loose.planned_passes == 3 and len(loose.complete_passes) == 3
    tight_engine = FakeEngine()
    tight = measure_tps(tight_engine, PROMPTS, p, Deadline(tight_engine.clock, 6.0))
    assert tight.planned_passes == 1 and len(tight.complete_passes) == 1
    assert tight.score == tight.pass_tps[0]


def test_a_later_pass_that_would_eat_the_reserve_is_dropped() -> None:
    class Slowing(FakeEngine):
        """Gets 3x slower after the first pass, so the planned third pass no longer fits."""

        def generate(
            self,
            prompt_ids: Sequence[int],
            max_new_tokens: int,
            *,
            ignore_eos: bool,
            stop_token_ids: Sequence[int] = (),
        ) -> Generation:
            self._requests_seen = getattr(self, "_requests_seen", 0) + 1
            if self._requests_seen > len(PROMPTS):
                self._decode = 3 * 4e-3
            return super().generate(prompt_ids, max_new_tokens, ignore_eos=ignore_eos, stop_token_ids=stop_token_ids)

    engine = Slowing()
    result = measure_tps(engine, PROMPTS, params(reserve_s=1.0), Deadline(engine.clock, 9.0))
    assert result.planned_passes < 3
    assert len(result.complete_passes) == result.planned_passes >= 1
    assert result.score is not None


def test_the_first_pass_must_fit_the_budget() -> None:
    engine = FakeEngine()
    with pytest.raises(BudgetExceeded, match="timed pass 1"):
        measure_tps(engine, PROMPTS, params(), Deadline(engine.clock, 0.5))


def test_figures_interval_and_diagnostics() -> None:
    engine = FakeEngine(jitter=0.5)
    p = params(bootstrap_resamples=400)
    result = measure_tps(engine, PROMPTS, p, Deadline(engine.clock, 1e9))
    figures = tps_figures(result, p)
    assert figures["tps"] == result.score
    lo, hi = figures["tps_ci95"]
    assert lo <= figures["tps"] <= hi
    assert figures["passes_completed"] == 3 and figures["tokens_per_pass"] == 64 * len(PROMPTS)
    assert figures["pass_output_mismatches"] == 0, "greedy decoding repeats itself across passes"
    # Engine-reported decode speed excludes the first token and prefill: a diagnostic, higher than the score.
    assert figures["decode_tps"] > figures["tps"]
    assert figures["ttft_ms_median"] > 0
    assert figures["spec"] is None


def test_spec_counters_are_pooled() -> None:
    pooled = spec_figures(
        [
            SpecStats(draft_tokens=14, accepted_tokens=9, steps=2, accepted_histogram=(0, 0, 1, 0, 0, 0, 0, 1)),
            SpecStats(draft_tokens=7, accepted_tokens=0, steps=1, accepted_histogram=(1,)),
        ]
    )
    assert pooled is not None
    assert pooled["accepted_histogram"] == [1, 0, 1, 0, 0, 0, 0, 1]
    assert pooled["acceptance_rate"] == pytest.approx(9 / 21)
    assert pooled["mean_accepted_per_step"] == 3.0
    assert spec_figures([]) is None
    assert math.isclose(sum(pooled["accepted_histogram"]), 3)
