"""pass@k and pass^k: how likely k attempts at a case succeed at least once, or every time."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from assay.statistics._checks import check_outcome
from assay.statistics._means import Estimate, mean_interval

K = TypeVar("K", bound=Hashable)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n trials with c passes: 1 - C(n-c, k) / C(n, k).

    The probability that at least one of k trials drawn without replacement from the n trials
    passes (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"). The binomial
    coefficients are exact integers, so there is no overflow or cancellation for any n.
    """
    _check_counts(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass^k from n trials with c passes: C(c, k) / C(n, k).

    The probability that all k trials drawn without replacement from the n trials pass (the
    consistency measure of tau-bench, Yao et al. 2024).
    """
    _check_counts(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def mean_pass_at_k(
    outcomes_by_case: Mapping[K, Sequence[bool | int]], k: int, confidence: float = 0.95
) -> Estimate:
    """pass@k averaged over cases, with a t interval over the per-case estimates.

    Each case needs at least k outcomes (bools, or 0/1).
    """
    return mean_interval(
        [pass_at_k(*_tally(outcomes, key, k), k) for key, outcomes in outcomes_by_case.items()],
        confidence,
    )


def mean_pass_hat_k(
    outcomes_by_case: Mapping[K, Sequence[bool | int]], k: int, confidence: float = 0.95
) -> Estimate:
    """pass^k averaged over cases, with a t interval over the per-case estimates."""
    return mean_interval(
        [pass_hat_k(*_tally(outcomes, key, k), k) for key, outcomes in outcomes_by_case.items()],
        confidence,
    )


def _tally(outcomes: Sequence[bool | int], key: object, k: int) -> tuple[int, int]:
    passes = sum(check_outcome(v, f"outcome {i} of case {key!r}") for i, v in enumerate(outcomes))
    if len(outcomes) < k:
        raise ValueError(f"case {key!r} has {len(outcomes)} outcomes, fewer than k={k}")
    return len(outcomes), passes


def _check_counts(n: int, c: int, k: int) -> None:
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {value!r}")
    if n < 1:
        raise ValueError(f"n (trials) must be at least 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c (passes) must be between 0 and n={n}, got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and n={n}, got {k}")
