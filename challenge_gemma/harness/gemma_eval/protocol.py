"""The TPS protocol: warmups, timed passes at batch 1, the token-count rule, pass planning, the score.

Each timed request is one greedy call for exactly `output_len` new tokens with EOS ignored, timed
on the wall clock around the call (prefill included, as the original leaderboard measured it).
Tokens are counted from the returned ids, never from text or a server's usage field; a prompt that
yields any other count invalidates the run. Warmups are never timed. The pass count is planned
from the first prompts of the first pass against the time budget; the score is the median of the
passes' Σ tokens / Σ seconds, with a bootstrap interval over prompts. Engine-reported decode time,
time to first token and draft acceptance are kept as diagnostics and never score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gemma_eval import stats
from gemma_eval.budget import Deadline
from gemma_eval.data import Prompt
from gemma_eval.engines.base import Engine, SpecStats
from gemma_eval.params import Params


@dataclass(frozen=True)
class Timed:
    """One timed request."""

    index: int
    tokens: int
    wall_s: float
    ttft_s: float | None
    decode_s: float | None
    spec: SpecStats | None


@dataclass
class TpsResult:
    """Everything the TPS phase measured; `score` is None when the run cannot be scored."""

    passes: list[list[Timed]] = field(default_factory=list)
    planned_passes: int = 0
    outputs: list[tuple[int, ...]] = field(default_factory=list)
    count_failures: list[str] = field(default_factory=list)
    pass_mismatches: int = 0
    warmup_counts: list[int] = field(default_factory=list)

    @property
    def pass_tps(self) -> list[float]:
        return [stats.ratio_of_sums([t.tokens for t in p], [t.wall_s for t in p]) for p in self.complete_passes]

    @property
    def complete_passes(self) -> list[list[Timed]]:
        full = len(self.outputs)
        return [p for p in self.passes if len(p) == full and full > 0]

    @property
    def score(self) -> float | None:
        if self.count_failures or not self.complete_passes:
            return None
        return stats.median(self.pass_tps)


def plan_passes(
    first_times: Sequence[float],
    prompts: int,
    time_left_s: float,
    reserve_s: float,
    max_passes: int,
    *,
    reserve_tokens: int = 0,
    output_len: int = 1,
) -> int:
    """How many passes fit: the first is already running, later ones must fit beside the reserve.

    Args:
        first_times: Wall seconds of the prompts timed so far in the first pass.
        prompts: Prompts per pass.
        time_left_s: Seconds left in the budget now.
        reserve_s: Seconds to keep for the phases after timing.
        max_passes: The protocol's maximum.
        reserve_tokens: Tokens the later phases will decode (spot checks), priced at the measured speed.
        output_len: Tokens per timed request, to turn request time into time per token.

    Returns:
        An odd pass count from 1 to `max_passes` (odd, so the median is one measured pass).
    """
    if not first_times:
        return 1
    per_prompt = sum(first_times) / len(first_times)
    rest_of_first = per_prompt * (prompts - len(first_times))
    reserve = reserve_s + reserve_tokens * per_prompt / output_len
    spare = time_left_s - rest_of_first - reserve
    extra = int(spare // (per_prompt * prompts)) if spare > 0 else 0
    passes = min(1 + extra, max_passes)
    return passes if passes % 2 else passes - 1


def run_warmup(engine: Engine, warmup: Sequence[Prompt], params: Params, deadline: Deadline) -> list[int]:
    """Send the unscored warmup requests (full length, like timed ones); return their token counts."""
    counts = []
    pool = list(warmup)
    for i in range(params.warmup_requests if pool else 0):
        deadline.check("warmup")
        generation = engine.generate(pool[i % len(pool)].token_ids, params.output_len, ignore_eos=True)
        counts.append(len(generation.token_ids))
    return counts


def measure_tps(
    engine: Engine,
    prompts: Sequence[Prompt],
    params: Params,
    deadline: Deadline,
    *,
    reserve_tokens: int = 0,
) -> TpsResult:
    """Time every prompt, pass after pass, enforcing the token count.

    Args:
        engine: The engine under test.
        prompts: The timed prompts, in order.
        params: Protocol parameters (`reserve_s` is kept for the phases after timing).
        deadline: The run's budget; the pass count is planned against it.
        reserve_tokens: Tokens the later phases will decode, also kept in reserve.

    Returns:
        The passes, the first pass's outputs (which the decode checks re-score) and any count failures.

    Raises:
        BudgetExceeded: The budget ran out during the first pass.
        EngineFailure: The engine failed on a request.
    """
    result = TpsResult(planned_passes=1)
    reserve = params.reserve_s
    p = 0
    while p < result.planned_passes:
        timings: list[Timed] = []
        result.passes.append(timings)
        for index, prompt in enumerate(prompts):
            if p > 0 and deadline.left() <= reserve:
                # A later pass that would eat the reserve is dropped; the completed passes still score.
                result.passes.pop()
                result.planned_passes = p
                return result
            deadline.check(f"timed pass {p + 1}")
            started = engine.clock()
            generation = engine.generate(prompt.token_ids, params.output_len, ignore_eos=True)
            wall = engine.clock() - started
            count = len(generation.token_ids)
            timings.append(Timed(index, count, wall, generation.ttft_s, generation.decode_s, generation.spec))
            if count != params.output_len:
                result.count_failures.append(
                    f"prompt {index} ({prompt.id}) returned {count} tokens in pass {p + 1}; "
                    f"the protocol requires exactly {params.output_len}"
                )
                return result
            if p == 0:
                result.outputs.append(generation.token_ids)
            elif generation.token_ids != result.outputs[index]:
                result.pass_mismatches += 1
            if p == 0 and index + 1 == min(params.plan_after_prompts, len(prompts)):
                times = [t.wall_s for t in timings]
                result.planned_passes = plan_passes(
                    times,
                    len(prompts),
                    deadline.left(),
                    params.reserve_s,
                    params.max_passes,
                    reserve_tokens=reserve_tokens,
                    output_len=params.output_len,
                )
                reserve = params.reserve_s + reserve_tokens * sum(times) / len(times) / params.output_len
        p += 1
    return result


def tps_figures(result: TpsResult, params: Params) -> dict[str, Any]:
    """The summary's TPS figures: score, passes, interval and the diagnostics that never score."""
    complete = result.complete_passes
    figures: dict[str, Any] = {
        "tps": result.score,
        "tps_passes": result.pass_tps,
        "passes_planned": result.planned_passes,
        "passes_completed": len(complete),
        "tps_ci95": None,
        "tokens_per_pass": sum(t.tokens for t in complete[0]) if complete else None,
        "all_outputs_full_length": not result.count_failures and bool(complete),
        "pass_output_mismatches": result.pass_mismatches,
        "warmup_requests": len(result.warmup_counts),
        "warmup_full_length": all(c == params.output_len for c in result.warmup_counts),
        "decode_tps": None,
        "ttft_ms_median": None,
        "spec": None,
    }
    if result.score is None:
        return figures

    # Resample prompts and recompute the score itself (the median over passes of Σ tokens / Σ seconds),
    # so the interval describes the reported number.
    def score_of(picks: Sequence[int]) -> float:
        return stats.median(
            [stats.ratio_of_sums([p[i].tokens for i in picks], [p[i].wall_s for i in picks]) for p in complete]
        )

    lo, hi = stats.bootstrap_ci(
        len(result.outputs),
        score_of,
        resamples=params.bootstrap_resamples,
        level=params.ci_level,
        seed=params.bootstrap_seed,
    )
    figures["tps_ci95"] = [lo, hi]
    timed = [t for p in complete for t in p]
    decode = [t for t in timed if t.decode_s is not None and t.decode_s > 0]
    if decode:
        figures["decode_tps"] = stats.ratio_of_sums([t.tokens - 1 for t in decode], [t.decode_s or 0.0 for t in decode])
    ttfts = [t.ttft_s * 1000 for t in timed if t.ttft_s is not None]
    figures["ttft_ms_median"] = stats.median(ttfts) if ttfts else None
    figures["spec"] = spec_figures([t.spec for t in timed if t.spec is not None])
    return figures


def spec_figures(per_request: Sequence[SpecStats]) -> dict[str, Any] | None:
    """Pooled speculative-decoding counters: acceptance rate, mean accepted per step, the histogram."""
    if not per_request:
        return None
    drafted = sum(s.draft_tokens for s in per_request)
    accepted = sum(s.accepted_tokens for s in per_request)
    steps = sum(s.steps for s in per_request)
    width = max((len(s.accepted_histogram) for s in per_request), default=0)
    histogram = [
        sum(s.accepted_histogram[k] for s in per_request if k < len(s.accepted_histogram)) for k in range(width)
    ]
    return {
        "draft_tokens": drafted,
        "accepted_tokens": accepted,
        "acceptance_rate": accepted / drafted if drafted else None,
        "mean_accepted_per_step": accepted / steps if steps else None,
        "accepted_histogram": histogram,
    }
