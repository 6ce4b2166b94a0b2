"""Agreement between several people who labelled the same items, with bootstrap intervals.

Input is one mapping per item (unit) from rater to value, in the order the ratings were given.
Three figures, each with the number of items it rests on and a percentile bootstrap interval
over items:

- percent agreement: per item, the share of pairs of ratings that are equal; averaged over
  items with two or more ratings.
- Cohen's kappa: between the only two raters when there are two; with more raters (a queue
  whose reviewers rotate), between the first and the second rating of each item. Weighted for
  ordered data: linear weights over the given category order ("ordinal"), quadratic over the
  sorted values ("interval").
- Krippendorff's alpha at the given level, over all raters (missing ratings allowed).

Every figure is a function of how many items show each pattern of values, so the bootstrap
resamples item patterns: the work per resample is one weighted draw, and the figure is
computed from the (small) table of patterns.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from assay.statistics._agreement import (
    _alpha_difference,
    _alpha_value,
    _expected_disagreement,
    _kappa_weight,
)
from assay.statistics._checks import check_confidence, check_label

AgreementLevel = Literal["nominal", "ordinal", "interval"]
T = TypeVar("T", bound=Hashable)

#: At most this many item draws per bootstrap (resamples x items); fewer resamples past it.
BOOTSTRAP_BUDGET = 2_000_000
MIN_RESAMPLES = 200


@dataclass(frozen=True, slots=True)
class Interval:
    """A figure, the number of items it rests on, and its bootstrap interval (None where the
    figure or the interval is undefined: too few items, or no variation to measure)."""

    value: float | None
    n: int
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class PairAgreement:
    """Agreement between two raters on the items both rated."""

    a: Hashable
    b: Hashable
    n: int
    percent: Interval
    kappa: Interval
    alpha: Interval


@dataclass(frozen=True, slots=True)
class RaterAgreement:
    level: AgreementLevel
    #: Items with at least two ratings (the others cannot show agreement).
    n: int
    raters: int
    percent: Interval
    kappa: Interval
    alpha: Interval
    pairs: tuple[PairAgreement, ...]
    resamples: int
    confidence: float


# --- figures on tables of item patterns ------------------------------------------------------


def percent_from_patterns(patterns: Mapping[tuple[Hashable, ...], float]) -> float | None:
    """Mean share of equal pairs per item, over items (patterns) of two or more values."""
    total = weight = 0.0
    for values, count in patterns.items():
        m = len(values)
        if m < 2 or count <= 0:
            continue
        equal = sum(c * (c - 1) for c in Counter(values).values()) / 2
        total += count * equal / (m * (m - 1) / 2)
        weight += count
    return total / weight if weight else None


def alpha_from_patterns(
    patterns: Mapping[tuple[Hashable, ...], float], level: AgreementLevel
) -> float | None:
    """Krippendorff's alpha from item patterns (the values each item received, any order)."""
    coincidence: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for values, count in patterns.items():
        m = len(values)
        if m < 2 or count <= 0:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                if pairs:
                    coincidence[c, k] += count * pairs / (m - 1)
    marginals: dict[Hashable, float] = defaultdict(float)
    for (c, _k), w in coincidence.items():
        marginals[c] += w
    n = math.fsum(marginals.values())
    if n == 0 or len(marginals) < 2:
        return None
    delta = _alpha_difference(level, marginals)
    observed = math.fsum(w * delta(c, k) for (c, k), w in coincidence.items() if c != k)
    expected = _expected_disagreement(level, marginals, n, delta)
    if expected <= 0.0:
        return None
    return 1.0 - (n - 1.0) * observed / expected


def kappa_from_pairs(
    pairs: Mapping[tuple[Hashable, Hashable], float],
    labels: Sequence[Hashable],
    weights: Literal["linear", "quadratic"] | None,
) -> float | None:
    """Cohen's kappa from counts of (rater a's value, rater b's value); ``labels`` orders the
    categories for the weights."""
    index = {label: i for i, label in enumerate(labels)}
    size = len(labels)
    n = math.fsum(pairs.values())
    if n == 0 or size < 2:
        return None
    rows = [0.0] * size
    cols = [0.0] * size
    for (a, b), count in pairs.items():
        rows[index[a]] += count
        cols[index[b]] += count
    observed = math.fsum(
        _kappa_weight(index[a], index[b], size, weights) * count / n
        for (a, b), count in pairs.items()
    )
    expected = math.fsum(
        _kappa_weight(i, j, size, weights) * rows[i] * cols[j] / (n * n)
        for i in range(size)
        for j in range(size)
        if rows[i] and cols[j]
    )
    if expected == 0.0:
        return None
    return 1.0 - observed / expected


# --- the bootstrap -----------------------------------------------------------------------------


def resamples_for(n_items: int, wanted: int = 1000) -> int:
    """How many bootstrap resamples fit the budget for ``n_items`` items."""
    if n_items <= 0:
        return 0
    return max(MIN_RESAMPLES, min(wanted, BOOTSTRAP_BUDGET // n_items))


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_interval(
    patterns: Mapping[T, int],
    statistic: Callable[[Mapping[T, float]], float | None],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``statistic`` over items, given as counts of item
    patterns. (None, None) with fewer than two items or when the statistic is undefined in
    more than half the resamples (an interval on what is left would mislead)."""
    level = check_confidence(confidence)
    kinds = list(patterns)
    counts = [patterns[kind] for kind in kinds]
    n = sum(counts)
    if n < 2 or resamples < 1:
        return None, None
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(counts))
    found: list[float] = []
    for _ in range(resamples):
        drawn = Counter(rng.choices(range(len(kinds)), cum_weights=cumulative, k=n))
        value = statistic({kinds[i]: float(c) for i, c in drawn.items()})
        if value is not None:
            found.append(value)
    if len(found) * 2 < resamples:
        return None, None
    found.sort()
    tail = (1.0 - level) / 2.0
    return _quantile(found, tail), _quantile(found, 1.0 - tail)


Figure = Callable[[Mapping[T, float]], float | None]


def _bootstrap_many(
    patterns: Mapping[T, int],
    figures: Sequence[Figure[T]],
    resamples: int,
    confidence: float,
    seed: int,
) -> list[tuple[float | None, float | None]]:
    """Percentile intervals of several figures from the same resamples of items (one draw
    per resample serves them all)."""
    kinds = list(patterns)
    counts = [patterns[kind] for kind in kinds]
    n = sum(counts)
    if n < 2 or resamples < 1:
        return [(None, None)] * len(figures)
    rng = random.Random(seed)
    cumulative = list(itertools.accumulate(counts))
    found: list[list[float]] = [[] for _ in figures]
    for _ in range(resamples):
        drawn = Counter(rng.choices(range(len(kinds)), cum_weights=cumulative, k=n))
        table = {kinds[i]: float(c) for i, c in drawn.items()}
        for figure, values in zip(figures, found, strict=True):
            value = figure(table)
            if value is not None:
                values.append(value)
    tail = (1.0 - confidence) / 2.0
    out: list[tuple[float | None, float | None]] = []
    for values in found:
        if len(values) * 2 < resamples:
            out.append((None, None))
            continue
        values.sort()
        out.append((_quantile(values, tail), _quantile(values, 1.0 - tail)))
    return out


# --- the whole report --------------------------------------------------------------------------


def _kappa_setup(
    level: AgreementLevel, values: Sequence[Hashable], order: Sequence[Hashable] | None
) -> tuple[list[Hashable], Literal["linear", "quadratic"] | None]:
    if level == "nominal":
        return list(dict.fromkeys([*(order or []), *values])), None
    if level == "ordinal" and order is not None:
        extra = [v for v in dict.fromkeys(values) if v not in set(order)]
        if extra:
            raise ValueError(f"value {extra[0]!r} is not in the given category order")
        return list(order), "linear"
    try:
        ordered = sorted(set(values))  # type: ignore[type-var]
    except TypeError:
        raise ValueError(f"{level} agreement needs values that can be sorted") from None
    return list(ordered), "linear" if level == "ordinal" else "quadratic"


Joint = tuple[tuple[Hashable, Hashable], ...]


def _pair_figures(
    a: Hashable,
    b: Hashable,
    joint: Sequence[Joint],
    level: AgreementLevel,
    labels: list[Hashable],
    weights: Literal["linear", "quadratic"] | None,
) -> tuple[list[Figure[Joint]], list[Joint]]:
    """Percent, kappa and alpha between raters a and b, as figures of the joint table."""
    keys: list[tuple[Joint, Hashable, Hashable]] = []
    for key in joint:
        given = dict(key)
        if a in given and b in given:
            keys.append((key, given[a], given[b]))

    def table(joint_table: Mapping[Joint, float]) -> Counter[tuple[Hashable, Hashable]]:
        out: Counter[tuple[Hashable, Hashable]] = Counter()
        for key, va, vb in keys:
            count = joint_table.get(key)
            if count:
                out[va, vb] += count  # type: ignore[assignment]
        return out

    def patterns(joint_table: Mapping[Joint, float]) -> Counter[tuple[Hashable, ...]]:
        out: Counter[tuple[Hashable, ...]] = Counter()
        for (va, vb), count in table(joint_table).items():
            out[tuple(sorted((va, vb), key=repr))] += count
        return out

    figures: list[Figure[Joint]] = [
        lambda t: percent_from_patterns(patterns(t)),
        lambda t: kappa_from_pairs(table(t), labels, weights),
        lambda t: alpha_from_patterns(patterns(t), level),
    ]
    return figures, [key for key, _, _ in keys]


def _clean_units(
    units: Sequence[Mapping[Hashable, Hashable]], level: AgreementLevel
) -> list[dict[Hashable, Hashable]]:
    kind: Literal["interval", "nominal"] = "interval" if level == "interval" else "nominal"
    return [
        {
            check_label(rater, f"units[{u}] rater"): _alpha_value(value, kind, f"units[{u}]")
            for rater, value in unit.items()
        }
        for u, unit in enumerate(units)
    ]


def rater_agreement(
    units: Sequence[Mapping[Hashable, Hashable]],
    level: AgreementLevel = "nominal",
    *,
    order: Sequence[Hashable] | None = None,
    resamples: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    pairs: bool = True,
) -> RaterAgreement:
    """Percent agreement, Cohen's kappa and Krippendorff's alpha for items labelled by several
    raters, each with its bootstrap interval, and the same per pair of raters.

    ``units`` holds one mapping per item from rater to value, in the order the ratings were
    given (the first two ratings make the kappa pair when there are more than two raters).
    ``order`` lists the categories of an ordinal scale from low to high. ``resamples`` defaults
    to 1,000, fewer for very many items (:func:`resamples_for`); the seed makes it repeatable.
    All figures are computed on the same resamples of items.
    """
    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError(f"level must be nominal, ordinal or interval, got {level!r}")
    confidence = check_confidence(confidence)
    rated = [unit for unit in _clean_units(units, level) if len(unit) >= 2]
    raters = list(dict.fromkeys(rater for unit in rated for rater in unit))
    n = len(rated)
    draws = resamples_for(n) if resamples is None else resamples
    labels, weights = _kappa_setup(level, [v for unit in rated for v in unit.values()], order)
    joint: Counter[Joint] = Counter(tuple(unit.items()) for unit in rated)
    keys = list(joint)
    two = raters if len(raters) == 2 else None

    def values_of(t: Mapping[Joint, float]) -> Counter[tuple[Hashable, ...]]:
        out: Counter[tuple[Hashable, ...]] = Counter()
        for key, count in t.items():
            out[tuple(sorted((v for _, v in key), key=repr))] += count  # type: ignore[assignment]
        return out

    def kappa_table(t: Mapping[Joint, float]) -> Counter[tuple[Hashable, Hashable]]:
        out: Counter[tuple[Hashable, Hashable]] = Counter()
        for key, count in t.items():
            if two is not None:
                given = dict(key)
                out[given[two[0]], given[two[1]]] += count  # type: ignore[assignment]
            else:
                out[key[0][1], key[1][1]] += count  # type: ignore[assignment]
        return out

    figures: list[Figure[Joint]] = [
        lambda t: percent_from_patterns(values_of(t)),
        lambda t: kappa_from_pairs(kappa_table(t), labels, weights),
        lambda t: alpha_from_patterns(values_of(t), level),
    ]
    pair_names: list[tuple[Hashable, Hashable, int]] = []
    if pairs:
        for a, b in itertools.combinations(raters, 2):
            pair_figures, pair_keys = _pair_figures(a, b, keys, level, labels, weights)
            if pair_keys:
                figures.extend(pair_figures)
                pair_names.append((a, b, sum(joint[key] for key in pair_keys)))
    full = {key: float(count) for key, count in joint.items()}
    values = [figure(full) for figure in figures]
    intervals = _bootstrap_many(joint, figures, draws, confidence, seed)
    estimates = [
        Interval(value, n, *(interval if value is not None else (None, None)))
        for value, interval in zip(values, intervals, strict=True)
    ]
    per_pair = []
    for i, (a, b, pair_n) in enumerate(pair_names):
        percent, kappa, alpha = estimates[3 + 3 * i : 6 + 3 * i]
        per_pair.append(
            PairAgreement(
                a,
                b,
                pair_n,
                Interval(percent.value, pair_n, percent.low, percent.high),
                Interval(kappa.value, pair_n, kappa.low, kappa.high),
                Interval(alpha.value, pair_n, alpha.low, alpha.high),
            )
        )
    return RaterAgreement(
        level=level,
        n=n,
        raters=len(raters),
        percent=estimates[0],
        kappa=estimates[1],
        alpha=estimates[2],
        pairs=tuple(per_pair),
        resamples=draws,
        confidence=confidence,
    )


def percent_agreement(ratings: Sequence[Sequence[Hashable | None]]) -> float | None:
    """Percent agreement for a reliability matrix ``ratings[rater][unit]`` (None = missing),
    the shape :func:`krippendorff_alpha` takes: per unit the share of equal pairs of ratings,
    averaged over units with two or more ratings. None when no unit has two."""
    rows = [list(row) for row in ratings]
    if not rows:
        return None
    width = len(rows[0])
    for r, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"rater {r} rated {len(row)} units, rater 0 rated {width}")
    patterns: Counter[tuple[Hashable, ...]] = Counter()
    for u in range(width):
        values = [
            check_label(row[u], f"ratings[{r}][{u}]")
            for r, row in enumerate(rows)
            if row[u] is not None
        ]
        patterns[tuple(sorted(values, key=repr))] += 1
    return percent_from_patterns(patterns)
