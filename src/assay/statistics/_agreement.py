"""Agreement between a judge and people, or between people: confusion matrix, precision, recall,
F1, Cohen's kappa and Krippendorff's alpha.

Statistics that are undefined for the data (no items, no positives, no variation to agree on)
are reported as None rather than 0 or NaN, so a caller can tell "no evidence" from "no skill".
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from assay.statistics._checks import (
    check_label,
    check_same_length,
    finite_float,
    ordered_labels,
)

KappaWeights = Literal["linear", "quadratic"]
AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]
_Difference = Callable[[Hashable, Hashable], float]


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts of (truth, prediction) pairs.

    ``matrix[i][j]`` counts items whose truth is ``labels[i]`` and prediction ``labels[j]``
    (rows are the truth, as in scikit-learn).
    """

    labels: tuple[Hashable, ...]
    matrix: tuple[tuple[int, ...], ...]

    @property
    def n(self) -> int:
        return sum(sum(row) for row in self.matrix)

    @property
    def accuracy(self) -> float | None:
        """The share of items on the diagonal (None with no items)."""
        n = self.n
        if n == 0:
            return None
        return sum(self.matrix[i][i] for i in range(len(self.labels))) / n

    def count(self, truth: Hashable, pred: Hashable) -> int:
        """How many items have this truth and this prediction (0 for labels never seen)."""
        try:
            return self.matrix[self.labels.index(truth)][self.labels.index(pred)]
        except ValueError:
            return 0


@dataclass(frozen=True, slots=True)
class PrecisionRecallF1:
    """One-vs-rest scores for the ``positive`` label, with the counts they come from.

    ``precision`` is None when nothing was predicted positive, ``recall`` when nothing is
    positive in the truth; ``f1`` = 2tp / (2tp + fp + fn) is None only when neither happened
    (it is 0 when, say, there are positives but none was predicted). ``support`` = tp + fn.
    """

    precision: float | None
    recall: float | None
    f1: float | None
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def support(self) -> int:
        return self.tp + self.fn


def confusion(
    pred: Sequence[Hashable],
    truth: Sequence[Hashable],
    *,
    labels: Sequence[Hashable] | None = None,
) -> Confusion:
    """The confusion matrix of predictions against the truth (note the argument order).

    Labels are ``labels`` when given (a value outside them is a ValueError; labels never seen
    still get a row and column), else the distinct values of both sequences, sorted when they
    can be and otherwise in order of first appearance. None and NaN are refused.
    """
    check_same_length(pred, truth, "pred and truth")
    preds = [check_label(p, f"pred[{i}]") for i, p in enumerate(pred)]
    truths = [check_label(t, f"truth[{i}]") for i, t in enumerate(truth)]
    if labels is None:
        order = ordered_labels([*truths, *preds])
    else:
        order = tuple(dict.fromkeys(check_label(x, "a label") for x in labels))
    index = {label: i for i, label in enumerate(order)}
    rows = [[0] * len(order) for _ in order]
    for i, (t, p) in enumerate(zip(truths, preds, strict=True)):
        if t not in index or p not in index:
            missing = t if t not in index else p
            raise ValueError(f"item {i} has label {missing!r}, which is not in labels")
        rows[index[t]][index[p]] += 1
    return Confusion(order, tuple(tuple(row) for row in rows))


def precision_recall_f1(
    pred: Sequence[Hashable], truth: Sequence[Hashable], positive: Hashable = True
) -> PrecisionRecallF1:
    """Precision, recall and F1 of ``pred`` against ``truth`` for the label ``positive``."""
    check_same_length(pred, truth, "pred and truth")
    check_label(positive, "positive")
    tp = fp = fn = tn = 0
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        predicted = check_label(p, f"pred[{i}]") == positive
        actual = check_label(t, f"truth[{i}]") == positive
        if predicted and actual:
            tp += 1
        elif predicted:
            fp += 1
        elif actual:
            fn += 1
        else:
            tn += 1
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return PrecisionRecallF1(precision, recall, f1, tp, fp, fn, tn)


def cohens_kappa(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    weights: KappaWeights | None = None,
    labels: Sequence[Hashable] | None = None,
) -> float | None:
    """Cohen's kappa between two raters' labels for the same items.

    kappa = (p_o - p_e) / (1 - p_e), p_o the observed agreement and p_e the agreement expected
    from each rater's label frequencies. With ``weights`` ("linear" or "quadratic") disagreements
    on an ordered scale count by distance: w_ij = |i - j| / (K - 1) or its square, where i and j
    are positions in ``labels`` (default: the sorted distinct labels), and kappa = 1 - sum(w o) /
    sum(w e). None when undefined: no items, or p_e = 1 (both raters always used one label).
    """
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    table = confusion(b, a, labels=labels)  # rows: a, columns: b
    n = table.n
    size = len(table.labels)
    if n == 0 or size < 2:
        return None
    if weights is not None and labels is None:
        try:
            sorted(table.labels)  # type: ignore[type-var]
        except TypeError:
            raise ValueError("weighted kappa needs ordered labels: pass labels=[...]") from None
    rows = [sum(row) for row in table.matrix]
    cols = [sum(table.matrix[i][j] for i in range(size)) for j in range(size)]
    terms_o: list[float] = []
    terms_e: list[float] = []
    for i in range(size):
        for j in range(size):
            w = _kappa_weight(i, j, size, weights)
            if w:
                terms_o.append(w * table.matrix[i][j] / n)
                terms_e.append(w * rows[i] * cols[j] / (n * n))
    observed, expected = math.fsum(terms_o), math.fsum(terms_e)
    if expected == 0.0:
        return None
    return 1.0 - observed / expected


def krippendorff_alpha(
    ratings: Sequence[Sequence[Hashable | None]], level: AlphaLevel = "nominal"
) -> float | None:
    """Krippendorff's alpha for a reliability matrix ``ratings[rater][unit]`` (None = missing).

    Every row is one rater (coder, judge) and must cover the same units. Units with fewer than
    two ratings are not pairable and are left out. alpha = 1 - D_o / D_e, computed from the
    coincidence matrix with the difference function of ``level``: "nominal" (labels differ),
    "ordinal" (ranks of the sorted values, weighted by their frequencies), "interval" (squared
    difference of numbers) or "ratio" (((c - k) / (c + k))**2, non-negative numbers). None when
    undefined: no pairable values, or no variation among them (D_e = 0). Time grows with the
    square of the number of distinct values for "ordinal" and "ratio" (fine for rating scales,
    slow for thousands of distinct continuous values), linearly otherwise.
    """
    if level not in ("nominal", "ordinal", "interval", "ratio"):
        raise ValueError(f"level must be nominal, ordinal, interval or ratio, got {level!r}")
    rows = [list(row) for row in ratings]
    if not rows:
        return None
    width = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"rater {r} rated {len(row)} units, rater 0 rated {width}")
    coincidence, marginals = _coincidences(rows, width, level)
    n = math.fsum(marginals.values())
    if n == 0:
        return None
    if len(marginals) < 2:  # a single value throughout: nothing to disagree about
        return None
    delta = _alpha_difference(level, marginals)
    observed = math.fsum(w * delta(c, k) for (c, k), w in coincidence.items() if c != k)
    expected = _expected_disagreement(level, marginals, n, delta)
    if expected <= 0.0:
        return None
    return 1.0 - (n - 1.0) * observed / expected


def _expected_disagreement(
    level: AlphaLevel, marginals: Mapping[Hashable, float], n: float, delta: _Difference
) -> float:
    """sum over c != k of n_c n_k delta**2(c, k); linear in the number of distinct values for
    nominal and interval data, quadratic otherwise."""
    if level == "nominal":
        return math.fsum(n_c * (n - n_c) for n_c in marginals.values())
    if level == "interval":
        # sum_c sum_k n_c n_k (c - k)**2 = 2 n sum_c n_c (c - mean)**2
        mean = math.fsum(n_c * cast(float, c) for c, n_c in marginals.items()) / n
        return (
            2.0 * n * math.fsum(n_c * (cast(float, c) - mean) ** 2 for c, n_c in marginals.items())
        )
    values = list(marginals)
    return math.fsum(
        marginals[c] * marginals[k] * delta(c, k) for c in values for k in values if c != k
    )


def _coincidences(
    rows: list[list[Hashable | None]], width: int, level: AlphaLevel
) -> tuple[dict[tuple[Hashable, Hashable], float], dict[Hashable, float]]:
    """The coincidence matrix o[c, k] (sum over units of the ordered pairs of values c, k from
    different raters, each unit weighted 1 / (m_u - 1)) and its marginals n_c."""
    coincidence: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for u in range(width):
        counts: Counter[Hashable] = Counter()
        for r, row in enumerate(rows):
            value = row[u]
            if value is not None:
                counts[_alpha_value(value, level, f"ratings[{r}][{u}]")] += 1
        m = counts.total()
        if m < 2:  # not pairable
            continue
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    coincidence[c, k] += pairs / (m - 1)
    marginals: dict[Hashable, float] = defaultdict(float)
    for (c, _k), weight in coincidence.items():
        marginals[c] += weight
    return coincidence, marginals


def _kappa_weight(i: int, j: int, size: int, weights: KappaWeights | None) -> float:
    if weights is None:
        return 0.0 if i == j else 1.0
    distance = abs(i - j) / (size - 1)
    return distance if weights == "linear" else distance * distance


def _alpha_value(value: Hashable, level: AlphaLevel, what: str) -> Hashable:
    if level in ("interval", "ratio"):
        number = finite_float(value, what)
        if level == "ratio" and number < 0:
            raise ValueError(f"{what} is negative; ratio data must be >= 0")
        return number
    return check_label(value, what)


def _alpha_difference(level: AlphaLevel, marginals: Mapping[Hashable, float]) -> _Difference:
    """The squared difference function delta**2(c, k) of the level of measurement."""
    if level == "nominal":
        return lambda c, k: 0.0 if c == k else 1.0
    if level == "interval":
        return lambda c, k: (cast(float, c) - cast(float, k)) ** 2
    if level == "ratio":
        return _ratio_difference
    try:
        ranked = sorted(marginals)  # type: ignore[type-var]
    except TypeError:
        raise ValueError("ordinal alpha needs values that can be sorted") from None
    position = {value: i for i, value in enumerate(ranked)}
    cumulative = list(itertools.accumulate(marginals[value] for value in ranked))

    def ordinal(c: Hashable, k: Hashable) -> float:
        i, j = sorted((position[c], position[k]))
        between = cumulative[j] - (cumulative[i - 1] if i else 0.0)  # n_i + ... + n_j
        return (between - (marginals[c] + marginals[k]) / 2.0) ** 2

    return ordinal


def _ratio_difference(c: Hashable, k: Hashable) -> float:
    x, y = cast(float, c), cast(float, k)
    return 0.0 if x == y else ((x - y) / (x + y)) ** 2
