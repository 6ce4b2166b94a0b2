"""How well a judge agrees with people: the figures of a calibration, each with a bootstrap
interval, and Newcombe's interval for a paired difference of pass/fail outcomes.

:func:`calibration_figures` takes the judge's verdicts (mapped onto the rubric's values) and
the people's labels for the same items. Every figure is a function of the table of
(truth, verdict) pairs, so the bootstrap resamples that table, as the agreement between people
does (:mod:`assay.statistics._reliability`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from assay.statistics._agreement import Confusion, confusion
from assay.statistics._checks import check_confidence, check_outcome, check_same_length
from assay.statistics._dist import normal_quantile
from assay.statistics._reliability import (
    Interval,
    _bootstrap_many,
    kappa_from_pairs,
    resamples_for,
)

Pairs = Mapping[tuple[Hashable, Hashable], float]
KappaWeights = Literal["linear", "quadratic"]


@dataclass(frozen=True, slots=True)
class CalibrationFigures:
    """A judge's verdicts against people's labels on ``n`` items.

    ``precision``, ``recall`` and ``f1`` are per class (one-vs-rest), in ``labels`` order.
    ``macro_f1`` is the mean F1 over the classes seen in the labels or the verdicts (a class
    the judge never predicts counts with F1 = 0, as scikit-learn's ``average="macro"``).
    ``kappa`` is Cohen's, weighted (``kappa_weights``) on ordered scales. ``mae`` and
    ``spearman`` are None unless the values are numbers (``numeric=True``).
    """

    n: int
    labels: tuple[Hashable, ...]
    confusion: Confusion
    accuracy: Interval
    precision: dict[Hashable, Interval]
    recall: dict[Hashable, Interval]
    f1: dict[Hashable, Interval]
    macro_f1: Interval
    kappa: Interval
    kappa_weights: KappaWeights | None
    mae: Interval | None
    spearman: Interval | None
    resamples: int
    confidence: float


# --- figures of a table of (truth, verdict) counts -----------------------------------------------


def accuracy_of(pairs: Pairs) -> float | None:
    n = math.fsum(pairs.values())
    if n == 0:
        return None
    return math.fsum(w for (t, p), w in pairs.items() if t == p) / n


def _counts(pairs: Pairs, label: Hashable) -> tuple[float, float, float]:
    tp = fp = fn = 0.0
    for (t, p), w in pairs.items():
        if p == label and t == label:
            tp += w
        elif p == label:
            fp += w
        elif t == label:
            fn += w
    return tp, fp, fn


def precision_of(label: Hashable) -> Callable[[Pairs], float | None]:
    def figure(pairs: Pairs) -> float | None:
        tp, fp, _fn = _counts(pairs, label)
        return tp / (tp + fp) if tp + fp else None

    return figure


def recall_of(label: Hashable) -> Callable[[Pairs], float | None]:
    def figure(pairs: Pairs) -> float | None:
        tp, _fp, fn = _counts(pairs, label)
        return tp / (tp + fn) if tp + fn else None

    return figure


def f1_of(label: Hashable) -> Callable[[Pairs], float | None]:
    def figure(pairs: Pairs) -> float | None:
        tp, fp, fn = _counts(pairs, label)
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None

    return figure


def macro_f1_of(pairs: Pairs) -> float | None:
    seen = {t for (t, _p), w in pairs.items() if w} | {p for (_t, p), w in pairs.items() if w}
    scores = [f1_of(label)(pairs) for label in seen]
    found = [s for s in scores if s is not None]
    return math.fsum(found) / len(found) if found else None


def kappa_of(
    labels: Sequence[Hashable], weights: KappaWeights | None
) -> Callable[[Pairs], float | None]:
    def figure(pairs: Pairs) -> float | None:
        return kappa_from_pairs(pairs, labels, weights)

    return figure


def mae_of(pairs: Pairs) -> float | None:
    n = math.fsum(pairs.values())
    if n == 0:
        return None
    return math.fsum(w * abs(float(t) - float(p)) for (t, p), w in pairs.items()) / n  # type: ignore[arg-type]


def _ranks(weights: Mapping[float, float]) -> dict[float, float]:
    """Mid-ranks of each distinct value given how often it occurs (ties share their mean)."""
    out: dict[float, float] = {}
    below = 0.0
    for value in sorted(weights):
        count = weights[value]
        out[value] = below + (count + 1.0) / 2.0
        below += count
    return out


def spearman_of(pairs: Pairs) -> float | None:
    """Spearman's rho: Pearson's correlation of the mid-ranks (as scipy's ``spearmanr``)."""
    n = math.fsum(pairs.values())
    if n < 2:
        return None
    xs: dict[float, float] = defaultdict(float)
    ys: dict[float, float] = defaultdict(float)
    for (t, p), w in pairs.items():
        xs[float(t)] += w  # type: ignore[arg-type]
        ys[float(p)] += w  # type: ignore[arg-type]
    rx, ry = _ranks(xs), _ranks(ys)
    mx = math.fsum(rx[float(t)] * w for (t, _p), w in pairs.items()) / n  # type: ignore[arg-type]
    my = math.fsum(ry[float(p)] * w for (_t, p), w in pairs.items()) / n  # type: ignore[arg-type]
    sxy = sxx = syy = 0.0
    for (t, p), w in pairs.items():
        dx = rx[float(t)] - mx  # type: ignore[arg-type]
        dy = ry[float(p)] - my  # type: ignore[arg-type]
        sxy += w * dx * dy
        sxx += w * dx * dx
        syy += w * dy * dy
    if sxx <= 0.0 or syy <= 0.0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


# --- the whole calibration ----------------------------------------------------------------------


def calibration_figures(
    pred: Sequence[Hashable],
    truth: Sequence[Hashable],
    *,
    labels: Sequence[Hashable] | None = None,
    weights: KappaWeights | None = None,
    numeric: bool = False,
    resamples: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> CalibrationFigures:
    """Every calibration figure of ``pred`` (the judge) against ``truth`` (people), each with
    ``n`` and a percentile bootstrap interval over items (one set of resamples for all).

    ``labels`` fixes the classes and their order (for the weights of a weighted kappa and the
    confusion matrix); by default the distinct values, sorted when they can be.
    """
    level = check_confidence(confidence)
    check_same_length(pred, truth, "pred and truth")
    table = confusion(pred, truth, labels=labels)
    order = table.labels
    pairs: Counter[tuple[Hashable, Hashable]] = Counter(zip(truth, pred, strict=True))
    n = len(pred)
    draws = resamples_for(n) if resamples is None else resamples
    figures: list[Callable[[Pairs], float | None]] = [accuracy_of, macro_f1_of]
    figures.append(kappa_of(order, weights))
    for label in order:
        figures += [precision_of(label), recall_of(label), f1_of(label)]
    if numeric:
        figures += [mae_of, spearman_of]
    counts = {key: float(value) for key, value in pairs.items()}
    bounds = _bootstrap_many(pairs, figures, draws, level, seed)
    found = [
        Interval(figure(counts), n, low, high)
        for figure, (low, high) in zip(figures, bounds, strict=True)
    ]
    per_class = found[3 : 3 + 3 * len(order)]
    return CalibrationFigures(
        n=n,
        labels=order,
        confusion=table,
        accuracy=found[0],
        precision={label: per_class[3 * i] for i, label in enumerate(order)},
        recall={label: per_class[3 * i + 1] for i, label in enumerate(order)},
        f1={label: per_class[3 * i + 2] for i, label in enumerate(order)},
        macro_f1=found[1],
        kappa=found[2],
        kappa_weights=weights,
        mae=found[-2] if numeric else None,
        spearman=found[-1] if numeric else None,
        resamples=draws,
        confidence=level,
    )


# --- paired pass/fail: Newcombe's interval ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairedProportionDifference:
    """The difference of two paired proportions, candidate minus baseline (b's pass rate minus
    a's), with Newcombe's hybrid score interval (method 10, 1998), which is never a point
    unless there are no pairs."""

    n: int
    delta: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str = "Newcombe hybrid score (paired)"


def _wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (centre - spread) / denominator, (centre + spread) / denominator


def newcombe_paired_difference(
    pairs: Sequence[tuple[bool | int, bool | int]], confidence: float = 0.95
) -> PairedProportionDifference:
    """Newcombe's interval for p_b - p_a over paired pass/fail outcomes ``(a, b)``.

    From the Wilson intervals of the two marginal pass rates, combined with the correlation
    of the pairs (phi, method 10 of Newcombe 1998, no continuity correction). Every case moving one
    way (all regress, or all improve), or none moving, still gives an interval of positive
    width.
    """
    level = check_confidence(confidence)
    a_pass = b_pass = both = neither = 0
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be an (a, b) pair, got {len(pair)} items")
        x = check_outcome(pair[0], f"pairs[{i}][0]")
        y = check_outcome(pair[1], f"pairs[{i}][1]")
        a_pass += x
        b_pass += y
        both += x and y
        neither += not x and not y
    n = len(pairs)
    if n == 0:
        return PairedProportionDifference(0, None, None, None, level)
    z = normal_quantile(0.5 + level / 2.0)
    pa, pb = a_pass / n, b_pass / n
    la, ua = _wilson(a_pass, n, z)
    lb, ub = _wilson(b_pass, n, z)
    only_a = a_pass - both
    only_b = b_pass - both
    product = (both + only_a) * (neither + only_b) * (both + only_b) * (neither + only_a)
    phi = 0.0
    # With no discordant pair phi is 1 and, at a pass rate of exactly 1/2, method 10 collapses
    # to the point 0; phi = 0 there (the unpaired interval) keeps it honest and conservative.
    if product > 0 and only_a + only_b > 0:
        phi = (both * neither - only_a * only_b) / math.sqrt(product)
    delta = pb - pa
    dl = math.sqrt(
        max(
            (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2,
            0.0,
        )
    )
    du = math.sqrt(
        max(
            (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2,
            0.0,
        )
    )
    return PairedProportionDifference(n, delta, max(-1.0, delta - dl), min(1.0, delta + du), level)
