"""The statistics behind the score and the verdicts, in pure Python so results recompute anywhere.

- the median and linear-interpolation percentiles;
- a seeded percentile bootstrap of a ratio of sums (TPS = Σ tokens / Σ seconds) over prompts;
- the exact one-sided McNemar test for paired pass/fail outcomes (spot checks against bf16);
- a one-sided Welch t-test, with the Student t distribution from the regularised incomplete beta;
- the tie rule: a new score beats a champion only by more than measured noise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal


def median(values: Sequence[float]) -> float:
    """The median; the mean of the middle two for an even count.

    Raises:
        ValueError: `values` is empty.
    """
    return percentile(values, 50.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between order statistics (numpy's default).

    Raises:
        ValueError: `values` is empty or `q` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio_of_sums(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Σ numerators / Σ denominators, the token-weighted rate.

    Raises:
        ValueError: The denominators sum to zero or less.
    """
    total = sum(denominators)
    if total <= 0:
        raise ValueError("ratio with a non-positive denominator")
    return sum(numerators) / total


def bootstrap_ci(
    items: int, statistic: Callable[[Sequence[int]], float], *, resamples: int, level: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic of `items` items, resampling items with replacement.

    Args:
        items: How many items (prompts) there are.
        statistic: Computes the statistic from a list of item indices (with repeats).
        resamples: Number of bootstrap samples (B).
        level: Coverage, e.g. 0.95.
        seed: Seed of the resampling, so the interval recomputes exactly.

    Returns:
        The (lower, upper) bounds.

    Raises:
        ValueError: No items.
    """
    if items <= 0:
        raise ValueError("bootstrap needs at least one item")
    rng = random.Random(seed)  # noqa: S311 - resampling, not cryptography
    estimates = [statistic([rng.randrange(items) for _ in range(items)]) for _ in range(resamples)]
    tail = (1 - level) / 2 * 100
    return percentile(estimates, tail), percentile(estimates, 100 - tail)


def bootstrap_ratio_ci(
    numerators: Sequence[float], denominators: Sequence[float], *, resamples: int, level: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of Σ numerators / Σ denominators, resampling items.

    Raises:
        ValueError: Empty or mismatched inputs.
    """
    if len(numerators) != len(denominators):
        raise ValueError("numerators and denominators differ in length")
    return bootstrap_ci(
        len(numerators),
        lambda picks: ratio_of_sums([numerators[i] for i in picks], [denominators[i] for i in picks]),
        resamples=resamples,
        level=level,
        seed=seed,
    )


def mcnemar_exact_one_sided(worse: int, better: int) -> float:
    """P-value that the candidate is worse than the baseline, from the discordant pairs only.

    Args:
        worse: Items the baseline got right and the candidate wrong.
        better: Items the candidate got right and the baseline wrong.

    Returns:
        P(X >= worse) for X ~ Binomial(worse + better, 1/2); 1.0 when there are no discordant pairs.
    """
    if worse < 0 or better < 0:
        raise ValueError("counts must not be negative")
    n = worse + better
    if n == 0:
        return 1.0
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / (1 << n)


def welch_one_sided(sample_a: Sequence[float], sample_b: Sequence[float]) -> float:
    """P-value of mean(a) > mean(b) from Welch's unequal-variance t-test.

    Raises:
        ValueError: Either sample has fewer than two values.
    """
    if len(sample_a) < 2 or len(sample_b) < 2:
        raise ValueError("Welch's test needs at least two values per sample")
    mean_a, mean_b = sum(sample_a) / len(sample_a), sum(sample_b) / len(sample_b)
    var_a = sum((x - mean_a) ** 2 for x in sample_a) / (len(sample_a) - 1) / len(sample_a)
    var_b = sum((x - mean_b) ** 2 for x in sample_b) / (len(sample_b) - 1) / len(sample_b)
    if var_a + var_b == 0:
        return 0.0 if mean_a > mean_b else 1.0
    t = (mean_a - mean_b) / math.sqrt(var_a + var_b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (len(sample_a) - 1) + var_b**2 / (len(sample_b) - 1))
    return student_t_sf(t, df)


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return tail if t > 0 else 1 - tail


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), by the continued fraction (modified Lentz), using the symmetry for fast convergence.

    Raises:
        ValueError: x outside [0, 1], or the fraction does not converge.
    """
    if not 0 <= x <= 1:
        raise ValueError("x outside [0, 1]")
    if x in (0, 1):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x > (a + 1) / (a + b + 2):
        return 1 - regularized_incomplete_beta(b, a, 1 - x)
    return math.exp(log_front) * _beta_fraction(a, b, x) / a


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            return result
    raise ValueError("incomplete beta fraction did not converge")


Verdict = Literal["beats", "tie", "behind"]


@dataclass(frozen=True)
class Comparison:
    """A new score against the champion's.

    Attributes:
        verdict: `beats` only past the margin (and, with three jobs each, a significant Welch test).
        margin: The relative lead required.
        lead: The relative lead observed (negative when behind).
        p_value: Welch's one-sided p-value, when both sides have at least three jobs.
    """

    verdict: Verdict
    margin: float
    lead: float
    p_value: float | None


def tie_margin(sigma_rel: float, z: float, min_margin: float, jobs_new: int, jobs_champion: int) -> float:
    """The relative lead needed to beat a champion: max(min_margin, z * sigma * sqrt(1/k_new + 1/k_champion))."""
    if jobs_new < 1 or jobs_champion < 1:
        raise ValueError("each side needs at least one job")
    return max(min_margin, z * sigma_rel * math.sqrt(1 / jobs_new + 1 / jobs_champion))


def compare_to_champion(
    new: Sequence[float],
    champion: Sequence[float],
    *,
    sigma_rel: float,
    z: float,
    min_margin: float,
    alpha: float = 0.05,
) -> Comparison:
    """Apply the tie rule to the scores of independent jobs (higher is better).

    Args:
        new: Scores of the challenger's jobs.
        champion: Scores of the champion's jobs.
        sigma_rel: Relative standard deviation of one job's score, calibrated.
        z: Multiples of the combined deviation a lead must exceed.
        min_margin: Smallest relative lead that counts.
        alpha: Significance level of Welch's test when both sides have three or more jobs.

    Returns:
        `beats`, `tie` (within noise) or `behind`, with the numbers behind it.
    """
    new_median, champion_median = median(new), median(champion)
    margin = tie_margin(sigma_rel, z, min_margin, len(new), len(champion))
    lead = new_median / champion_median - 1
    p_value = welch_one_sided(new, champion) if len(new) >= 3 and len(champion) >= 3 else None
    if lead > margin and (p_value is None or p_value < alpha):
        return Comparison("beats", margin, lead, p_value)
    if lead < -margin:
        return Comparison("behind", margin, lead, p_value)
    return Comparison("tie", margin, lead, p_value)
