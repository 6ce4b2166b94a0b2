"""Means with confidence intervals, plain and clustered, and the spread within each case."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from assay.statistics._checks import check_confidence, finite_float, finite_floats, stable_mean
from assay.statistics._dist import normal_quantile, t_quantile

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean with its standard error and a two-sided t confidence interval.

    ``mean`` is None when there are no values. ``se``, ``low`` and ``high`` are None when the
    interval is undefined: fewer than two independent units (one value, or one case). When the
    values do not vary the interval is the single point ``[mean, mean]`` (``se == 0``).
    ``n`` counts values; ``clusters`` counts the independent units the interval rests on (equal
    to ``n`` for a plain mean, the number of cases for a clustered one); the t distribution has
    ``clusters - 1`` degrees of freedom.
    """

    mean: float | None
    se: float | None
    low: float | None
    high: float | None
    n: int
    clusters: int
    confidence: float

    @property
    def df(self) -> int | None:
        """Degrees of freedom of the t interval, None when there is no interval."""
        return self.clusters - 1 if self.clusters >= 2 else None

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2.0


@dataclass(frozen=True, slots=True)
class CaseSpread:
    """One case's trials: how many, their mean and their sample variance (None below 2)."""

    n: int
    mean: float | None
    variance: float | None

    @property
    def sd(self) -> float | None:
        return None if self.variance is None else math.sqrt(self.variance)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """The mean of ``values`` with a Student t interval: mean +- t(1 - alpha/2, n-1) * s / sqrt(n).

    No values give ``mean=None``; one value gives the mean with no interval (``se``, ``low``,
    ``high`` None); values that are all equal give ``se=0`` and the interval ``[mean, mean]``.
    NaN or infinite values raise ValueError.
    """
    level = check_confidence(confidence)
    xs = finite_floats(values)
    n = len(xs)
    if n == 0:
        return Estimate(None, None, None, None, 0, 0, level)
    mean = stable_mean(xs)
    if n == 1:
        return Estimate(mean, None, None, None, 1, 1, level)
    squares = math.fsum((x - mean) ** 2 for x in xs)
    se = math.sqrt(squares / (n * (n - 1)))
    return _with_interval(mean, se, n, n, level)


def mean_interval_from_sums(
    n: int, total: float, squares: float, confidence: float = 0.95
) -> Estimate:
    """:func:`mean_interval` from what a database sums: the count, the sum and the sum of
    squares of the values. The variance is (squares - total**2 / n) / (n - 1), clamped at 0
    (rounding can make it a hair negative when the values are all equal); fine for values of
    moderate size such as scores, where the sums lose no meaningful precision."""
    level = check_confidence(confidence)
    if n <= 0:
        return Estimate(None, None, None, None, 0, 0, level)
    mean = finite_float(total, "total") / n
    if n == 1:
        return Estimate(mean, None, None, None, 1, 1, level)
    variance = max(0.0, (finite_float(squares, "squares") - total * total / n) / (n - 1))
    return _with_interval(mean, math.sqrt(variance / n), n, n, level)


def proportion_interval(outcomes: Sequence[bool | float], confidence: float = 0.95) -> Estimate:
    """The pass rate of pass/fail ``outcomes`` (bools, or 0.0/1.0) with a Wilson score interval.

    Unlike the t interval, it stays inside [0, 1] and does not collapse to a point when every
    outcome is the same: 8 passes of 8 give [0.68, 1.0], not [1.0, 1.0]. ``se`` is the usual
    sqrt(p(1-p)/n). No outcomes give ``mean=None``; one outcome still has an interval.
    """
    level = check_confidence(confidence)
    passes = 0
    for outcome in outcomes:
        if outcome not in (0, 1):  # True/False and 0.0/1.0 compare equal to 0 and 1
            raise ValueError(f"a pass/fail outcome must be True/False or 0/1; got {outcome!r}")
        passes += int(bool(outcome))
    n = len(outcomes)
    if n == 0:
        return Estimate(None, None, None, None, 0, 0, level)
    p = passes / n
    z = normal_quantile(0.5 + level / 2.0)
    shrink = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / shrink
    # Exact at the ends: the formula gives 0 and 1 there up to rounding.
    low = 0.0 if passes == 0 else max(0.0, centre - half)
    high = 1.0 if passes == n else min(1.0, centre + half)
    return Estimate(p, math.sqrt(p * (1 - p) / n), low, high, n, n, level)


def clipped(estimate: Estimate, low: float, high: float) -> Estimate:
    """``estimate`` with its interval cut to [low, high]: for scores that cannot leave that
    range, an interval reaching past it says nothing more than one ending at the bound."""
    if estimate.low is None or estimate.high is None:
        return estimate
    return Estimate(
        estimate.mean,
        estimate.se,
        min(max(estimate.low, low), high),
        max(min(estimate.high, high), low),
        estimate.n,
        estimate.clusters,
        estimate.confidence,
    )


def clustered_mean_interval(
    values_by_cluster: Mapping[K, Sequence[float]], confidence: float = 0.95
) -> Estimate:
    """The mean of all values, with a cluster-robust interval (trials are clustered by case).

    The mean weights every value equally (the mean of all rows, not of case means; the two agree
    when every case has the same number of trials). The standard error is the cluster-robust
    (sandwich) one with the usual small-sample factor G/(G-1), G the number of non-empty
    clusters, which is what Stata's ``mean y, vce(cluster case)`` reports::

        se**2 = G/(G-1) * sum_g (sum_i (y_gi - mean))**2 / N**2

    and the interval uses t with G-1 degrees of freedom. With one value per cluster this is
    exactly ``mean_interval``. Clusters with no values are ignored; with a single cluster there
    is no interval.
    """
    level = check_confidence(confidence)
    groups = [
        finite_floats(values, f"values for cluster {key!r}")
        for key, values in values_by_cluster.items()
    ]
    groups = [group for group in groups if group]
    flat = [x for group in groups for x in group]
    n, g = len(flat), len(groups)
    if n == 0:
        return Estimate(None, None, None, None, 0, 0, level)
    mean = stable_mean(flat)
    if g == 1:
        return Estimate(mean, None, None, None, n, 1, level)
    # Written so that singleton clusters reproduce mean_interval's arithmetic exactly.
    squares = math.fsum(math.fsum(x - mean for x in group) ** 2 for group in groups)
    se = math.sqrt(squares / (g * (g - 1)) * (g / n) ** 2)
    return _with_interval(mean, se, n, g, level)


def per_case_variance(values_by_case: Mapping[K, Sequence[float]]) -> dict[K, CaseSpread]:
    """For each case: the number of trials, their mean and sample variance (divisor n - 1).

    A case with no values has ``mean=None``; with one value, ``variance=None``.
    """
    result: dict[K, CaseSpread] = {}
    for key, values in values_by_case.items():
        xs = finite_floats(values, f"values for case {key!r}")
        if not xs:
            result[key] = CaseSpread(0, None, None)
            continue
        mean = stable_mean(xs)
        variance = math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else None
        result[key] = CaseSpread(len(xs), mean, variance)
    return result


def _with_interval(mean: float, se: float, n: int, clusters: int, level: float) -> Estimate:
    half = t_quantile(0.5 + level / 2.0, clusters - 1) * se
    return Estimate(mean, se, mean - half, mean + half, n, clusters, level)
