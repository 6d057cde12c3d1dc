"""The statistics against values computed by hand or by exhaustive enumeration."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
from gemma_eval import stats


def test_median_and_percentiles() -> None:
    assert stats.median([3.0]) == 3.0
    assert stats.median([5.0, 1.0, 3.0]) == 3.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    # Linear interpolation between order statistics: position (n - 1) * q / 100.
    assert stats.percentile([10.0, 20.0, 30.0, 40.0], 25) == pytest.approx(17.5)
    assert stats.percentile([10.0, 20.0, 30.0, 40.0], 0) == 10.0
    assert stats.percentile([10.0, 20.0, 30.0, 40.0], 100) == 40.0
    with pytest.raises(ValueError, match="no values"):
        stats.median([])
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)


def test_ratio_of_sums_is_token_weighted() -> None:
    # Two prompts: 512 tokens in 1 s and 512 in 3 s -> 1024 / 4 = 256, not the mean of rates (341.3).
    assert stats.ratio_of_sums([512, 512], [1.0, 3.0]) == 256.0
    with pytest.raises(ValueError, match="denominator"):
        stats.ratio_of_sums([1], [0.0])


def test_bootstrap_of_identical_prompts_has_no_width() -> None:
    lo, hi = stats.bootstrap_ratio_ci([512] * 10, [2.0] * 10, resamples=500, level=0.95, seed=0)
    assert lo == hi == 256.0


def test_bootstrap_matches_exhaustive_enumeration() -> None:
    """With 3 prompts, all 27 equally likely resamples can be listed: the bootstrap must match their quantiles."""
    tokens, times = [512.0, 512.0, 512.0], [1.0, 2.0, 4.0]
    exact = sorted(
        stats.ratio_of_sums([tokens[i] for i in pick], [times[i] for i in pick])
        for pick in itertools.product(range(3), repeat=3)
    )
    lo, hi = stats.bootstrap_ratio_ci(tokens, times, resamples=20000, level=0.9, seed=1)
    # The exact 5th and 95th percentiles of the 27 resample ratios, within sampling noise of B = 20000.
    assert lo == pytest.approx(stats.percentile(exact, 5), rel=0.03)
    assert hi == pytest.approx(stats.percentile(exact, 95), rel=0.03)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    tokens = [512.0] * 40
    times = [1.0 + (i % 7) / 10 for i in range(40)]
    first = stats.bootstrap_ratio_ci(tokens, times, resamples=300, level=0.95, seed=7)
    assert first == stats.bootstrap_ratio_ci(tokens, times, resamples=300, level=0.95, seed=7)
    assert first != stats.bootstrap_ratio_ci(tokens, times, resamples=300, level=0.95, seed=8)
    assert first[0] < stats.ratio_of_sums(tokens, times) < first[1]
    narrow = stats.bootstrap_ratio_ci(tokens * 4, times * 4, resamples=300, level=0.95, seed=7)
    assert narrow[1] - narrow[0] < first[1] - first[0], "four times the prompts must narrow the interval"


def test_mcnemar_exact_values() -> None:
    # P(X >= 8 | n = 10, p = 1/2) = (45 + 10 + 1) / 1024.
    assert stats.mcnemar_exact_one_sided(8, 2) == pytest.approx(56 / 1024)
    assert stats.mcnemar_exact_one_sided(0, 5) == 1.0
    assert stats.mcnemar_exact_one_sided(5, 0) == pytest.approx(1 / 32)
    assert stats.mcnemar_exact_one_sided(0, 0) == 1.0
    # Large counts stay exact (no float overflow in 2**n).
    assert 0 < stats.mcnemar_exact_one_sided(700, 400) < 1e-15
    with pytest.raises(ValueError, match="negative"):
        stats.mcnemar_exact_one_sided(-1, 2)


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [
        (2.0, 10, 0.036694),  # one-sided tail, Student t tables
        (1.812461, 10, 0.05),  # the 95% one-sided critical value at 10 df
        (0.0, 7, 0.5),
        (-1.0, 5, 1 - 0.181609),
        (2.0, 1e6, 0.022750),  # close to the normal tail
    ],
)
def test_student_t_tail(t: float, df: float, expected: float) -> None:
    assert stats.student_t_sf(t, df) == pytest.approx(expected, abs=2e-6)


def test_incomplete_beta_known_value() -> None:
    # I_0.4(2, 3) = 0.5248 (binomial identity: P(Bin(4, 0.4) >= 2)).
    assert stats.regularized_incomplete_beta(2, 3, 0.4) == pytest.approx(0.5248, abs=1e-12)


def test_welch_matches_a_hand_computation() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 2.0]
    va, vb = statistics.variance(a) / 4, statistics.variance(b) / 4
    t = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 3)
    assert stats.welch_one_sided(a, b) == pytest.approx(stats.student_t_sf(t, df))
    assert stats.welch_one_sided(a, b) == pytest.approx(0.05298, abs=1e-4)
    with pytest.raises(ValueError, match="two values"):
        stats.welch_one_sided([1.0], b)


def test_tie_margin_reproduces_the_measured_noise_rule() -> None:
    """sigma 0.4% between identical jobs: one job each needs a 1.41% lead, about 4.4 tokens/s at 315."""
    margin = stats.tie_margin(0.004, 2.5, 0.01, 1, 1)
    assert margin == pytest.approx(2.5 * 0.004 * math.sqrt(2))
    assert 315 * margin == pytest.approx(4.45, abs=0.01)
    assert stats.tie_margin(0.004, 2.5, 0.01, 8, 8) == 0.01, "the floor holds however many jobs ran"


@pytest.mark.parametrize(
    ("new", "champion", "verdict"),
    [
        ([319.0], [315.0], "tie"),  # +1.27%: under the 1.41% margin, as the community found
        ([320.0], [315.0], "beats"),  # +1.59%
        ([311.0], [315.0], "tie"),
        ([300.0], [315.0], "behind"),
        ([330.0, 331.0, 329.0], [315.0, 316.0, 314.0], "beats"),  # clear lead, Welch significant
        ([321.0, 330.0, 312.0], [315.0, 316.0, 314.0], "tie"),  # median lead 1.9% but too noisy for Welch
    ],
)
def test_compare_to_champion(new: list[float], champion: list[float], verdict: str) -> None:
    result = stats.compare_to_champion(new, champion, sigma_rel=0.004, z=2.5, min_margin=0.01)
    assert result.verdict == verdict, result
    assert (result.p_value is None) == (len(new) < 3)
