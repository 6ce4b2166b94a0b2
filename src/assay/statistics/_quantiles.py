"""Exact sample percentiles with distribution-free (order-statistic) confidence intervals.

The percentile is the nearest-rank one: the value at rank ceil(p * n) of the n values in
ascending order (PostgreSQL's ``percentile_disc(p)``); it is always one of the values.

The interval is a pair of order statistics [X_(l), X_(u)] (Hahn and Meeker, "Statistical
Intervals", 5.2): the number B of values below the true p-quantile is Binomial(n, p) whatever the
distribution, so P(X_(l) <= q_p < X_(u)) >= P(l <= B <= u - 1). ``l`` is the largest rank with
P(B <= l - 1) <= alpha / 2 and ``u`` the smallest with P(B <= u - 1) >= 1 - alpha / 2, so the
coverage is at least the confidence (more, since B is discrete). When the sample is too small
for a side (for p95 at 95%: fewer than 59 values for the upper end) that end is None.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from assay.statistics._checks import check_confidence, finite_float
from assay.statistics._dist import normal_quantile, regularized_beta


@dataclass(frozen=True, slots=True)
class Quantile:
    """A sample percentile, its order-statistic interval, and the ranks the ends are."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    p: float
    confidence: float
    low_rank: int | None = None
    high_rank: int | None = None


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(B <= k) for B ~ Binomial(n, p), through the regularized incomplete beta function."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return regularized_beta(n - k, k + 1, 1.0 - p)


def nearest_rank(n: int, p: float) -> int:
    """The 1-based rank of the nearest-rank p-percentile among n values (n >= 1)."""
    # ceil(p * n) without the float surprise of e.g. 0.95 * 100 = 95.00000000000001.
    return min(n, max(1, math.ceil(round(p * n, 9))))


def _low_rank(n: int, p: float, tail: float) -> int | None:
    """The largest l in 1..n with P(B <= l - 1) <= tail, or None."""
    if binomial_cdf(0, n, p) > tail:
        return None
    guess = math.floor(n * p - normal_z(tail) * math.sqrt(n * p * (1.0 - p)))
    rank = min(max(guess, 1), n)
    while rank > 1 and binomial_cdf(rank - 1, n, p) > tail:
        rank -= 1
    while rank < n and binomial_cdf(rank, n, p) <= tail:
        rank += 1
    return rank


def _high_rank(n: int, p: float, tail: float) -> int | None:
    """The smallest u in 1..n with P(B <= u - 1) >= 1 - tail, or None."""
    if binomial_cdf(n - 1, n, p) < 1.0 - tail:
        return None
    guess = math.ceil(n * p + normal_z(tail) * math.sqrt(n * p * (1.0 - p))) + 1
    rank = min(max(guess, 1), n)
    while rank < n and binomial_cdf(rank - 1, n, p) < 1.0 - tail:
        rank += 1
    while rank > 1 and binomial_cdf(rank - 2, n, p) >= 1.0 - tail:
        rank -= 1
    return rank


def normal_z(tail: float) -> float:
    """The z with P(Z > z) = tail (a starting guess for the rank searches)."""
    return -normal_quantile(tail)


def order_statistic_ranks(
    n: int, p: float, confidence: float = 0.95
) -> tuple[int | None, int | None]:
    """The 1-based ranks (l, u) of the distribution-free interval of the p-quantile."""
    level = check_confidence(confidence)
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p!r}")
    if n < 1:
        return None, None
    return _ranks(n, p, (1.0 - level) / 2.0)


@functools.lru_cache(maxsize=8_192)
def _ranks(n: int, p: float, tail: float) -> tuple[int | None, int | None]:
    # Remembered: a dashboard asks for the same few hundred (n, p) on every load, and each
    # search evaluates the binomial CDF several times (about 1 ms per n at n ~ 1,000).
    return _low_rank(n, p, tail), _high_rank(n, p, tail)


def percentile_interval(
    sorted_values: Sequence[float], p: float, confidence: float = 0.95
) -> Quantile:
    """The nearest-rank p-percentile of ``sorted_values`` (ascending) and its interval."""
    level = check_confidence(confidence)
    n = len(sorted_values)
    if n == 0:
        return Quantile(None, None, None, 0, p, level)
    low_rank, high_rank = order_statistic_ranks(n, p, level)
    value = finite_float(sorted_values[nearest_rank(n, p) - 1], "value")
    low = None if low_rank is None else float(sorted_values[low_rank - 1])
    high = None if high_rank is None else float(sorted_values[high_rank - 1])
    return Quantile(value, low, high, n, p, level, low_rank, high_rank)
