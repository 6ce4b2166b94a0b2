"""Comparing a candidate with a baseline on the same cases: paired t, and McNemar for pass/fail."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from assay.statistics._checks import check_confidence, check_outcome, finite_float, stable_mean
from assay.statistics._dist import binomial_two_sided_half, chi2_sf_1df, t_quantile, t_two_sided_p

McNemarMethod = Literal["exact", "chi2"]

#: Below this many discordant pairs ``mcnemar`` uses the exact binomial test.
MCNEMAR_EXACT_BELOW = 25


@dataclass(frozen=True, slots=True)
class Comparison:
    """A paired comparison of ``b`` (candidate) against ``a`` (baseline) over the same rows.

    ``delta`` is the mean of ``b - a`` with a paired t interval ``[low, high]`` and the two-sided
    p-value of the paired t test; ``significant`` is ``p_value < 1 - confidence`` (equivalently,
    the interval excludes 0). ``improved`` / ``regressed`` / ``unchanged`` count rows whose
    difference is above ``tolerance``, below ``-tolerance``, or within it.
    """

    n: int
    mean_a: float | None
    mean_b: float | None
    delta: float | None
    se: float | None
    low: float | None
    high: float | None
    p_value: float | None
    significant: bool
    improved: int
    regressed: int
    unchanged: int
    confidence: float
    tolerance: float


@dataclass(frozen=True, slots=True)
class McNemarResult:
    """McNemar's test on paired pass/fail outcomes ``(a, b)`` (baseline, candidate).

    ``b`` counts pairs that passed in ``a`` and fail in ``b`` (regressions), ``c`` pairs that
    failed in ``a`` and pass in ``b`` (improvements); concordant pairs carry no information.
    ``method`` is ``"exact"`` (two-sided binomial test of b against b + c with p = 1/2;
    ``statistic`` is min(b, c)) or ``"chi2"`` (chi-square with 1 df and Edwards' continuity
    correction; ``statistic`` is max(|b - c| - 1, 0)**2 / (b + c)).
    """

    n: int
    b: int
    c: int
    statistic: float
    p_value: float
    method: McNemarMethod
    significant: bool
    confidence: float

    @property
    def regressed(self) -> int:
        return self.b

    @property
    def improved(self) -> int:
        return self.c


def paired_difference(
    pairs: Sequence[tuple[float, float]],
    confidence: float = 0.95,
    *,
    tolerance: float = 1e-9,
) -> Comparison:
    """Compare paired values ``(a, b)``: the mean of ``b - a``, a paired t interval and test.

    Rows are improved when ``b - a > tolerance`` (so higher is better; negate both sides for a
    lower-is-better measure). Edge cases: no pairs give ``delta=None``; one pair gives the delta
    with no interval or p-value; differences that are all equal give ``se=0``, a point interval
    and a p-value of 1 when they are 0, else 0 (the limit of the t test; for pass/fail scores
    prefer ``mcnemar``). With several trials per case, pair the per-case means.
    """
    level = check_confidence(confidence)
    tol = finite_float(tolerance, "tolerance")
    if tol < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    a_values: list[float] = []
    b_values: list[float] = []
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be an (a, b) pair, got {len(pair)} items")
        a_values.append(finite_float(pair[0], f"pairs[{i}][0]"))
        b_values.append(finite_float(pair[1], f"pairs[{i}][1]"))
    diffs = [b - a for a, b in zip(a_values, b_values, strict=True)]
    if any(not math.isfinite(d) for d in diffs):
        raise ValueError("a difference b - a overflows; the values are too large")
    n = len(diffs)
    improved = sum(1 for d in diffs if d > tol)
    regressed = sum(1 for d in diffs if d < -tol)
    counts = (improved, regressed, n - improved - regressed)
    if n == 0:
        return Comparison(0, None, None, None, None, None, None, None, False, *counts, level, tol)
    mean_a, mean_b, delta = stable_mean(a_values), stable_mean(b_values), stable_mean(diffs)
    if n == 1:
        return Comparison(
            1, mean_a, mean_b, delta, None, None, None, None, False, *counts, level, tol
        )
    se = math.sqrt(math.fsum((d - delta) ** 2 for d in diffs) / (n * (n - 1)))
    half = t_quantile(0.5 + level / 2.0, n - 1) * se
    p_value = _paired_t_p(delta, se, n - 1)
    significant = p_value < 1.0 - level
    return Comparison(
        n,
        mean_a,
        mean_b,
        delta,
        se,
        delta - half,
        delta + half,
        p_value,
        significant,
        *counts,
        level,
        tol,
    )


def _paired_t_p(delta: float, se: float, df: int) -> float:
    if se == 0.0:  # every difference is the same: the limit of the t test
        return 1.0 if delta == 0.0 else 0.0
    return t_two_sided_p(delta / se, df)


def mcnemar(
    pairs: Sequence[tuple[bool | int, bool | int]],
    confidence: float = 0.95,
    *,
    method: McNemarMethod | Literal["auto"] = "auto",
) -> McNemarResult:
    """McNemar's test for paired pass/fail outcomes ``(a, b)``.

    ``method="auto"`` uses the exact binomial test when there are fewer than 25 discordant pairs
    (b + c < 25), where the chi-square approximation is poor, and otherwise the chi-square
    statistic with continuity correction. The correction is floored at zero, so b == c gives a
    statistic of 0 and p = 1. No discordant pairs give p = 1. Outcomes may be bools or 0/1.
    """
    level = check_confidence(confidence)
    if method not in ("auto", "exact", "chi2"):
        raise ValueError(f"method must be 'auto', 'exact' or 'chi2', got {method!r}")
    b = c = 0
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be an (a, b) pair, got {len(pair)} items")
        passed_a = check_outcome(pair[0], f"pairs[{i}][0]")
        passed_b = check_outcome(pair[1], f"pairs[{i}][1]")
        if passed_a and not passed_b:
            b += 1
        elif passed_b and not passed_a:
            c += 1
    discordant = b + c
    chosen: McNemarMethod
    if method == "auto":
        chosen = "exact" if discordant < MCNEMAR_EXACT_BELOW else "chi2"
    else:
        chosen = method
    if chosen == "exact" or discordant == 0:
        statistic = float(min(b, c))
        p_value = binomial_two_sided_half(min(b, c), discordant)
    else:
        statistic = max(abs(b - c) - 1, 0) ** 2 / discordant
        p_value = chi2_sf_1df(statistic)
    return McNemarResult(len(pairs), b, c, statistic, p_value, chosen, p_value < 1.0 - level, level)
