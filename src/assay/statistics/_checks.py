"""Input validation shared by the statistics functions.

Invalid input (NaN, infinities, a confidence outside (0, 1), sequences of different lengths) is
refused with a ``ValueError`` that says what and where; a value of the wrong type is a
``TypeError``. Input that is valid but too small for a statistic (no values, one value, no
variation) is not an error: the statistic is reported as ``None``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Iterable, Sequence


def finite_floats(values: Iterable[object], what: str = "values") -> list[float]:
    """The values as floats, refusing anything that is not a finite real number."""
    out: list[float] = []
    for i, value in enumerate(values):
        out.append(finite_float(value, f"{what}[{i}]"))
    return out


def finite_float(value: object, what: str) -> float:
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__}: {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{what} must be finite, got {result!r}")
    return result


def check_confidence(confidence: float) -> float:
    """The confidence level as a float in the open interval (0, 1)."""
    level = finite_float(confidence, "confidence")
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return level


def check_same_length(a: Sequence[object], b: Sequence[object], names: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{names} must have the same length, got {len(a)} and {len(b)}")


def check_label(label: object, what: str) -> Hashable:
    """A category label: hashable, not None (missing) and not NaN (NaN != NaN breaks counting)."""
    if label is None:
        raise ValueError(f"{what} is None; missing labels are not allowed here")
    if isinstance(label, float) and math.isnan(label):
        raise ValueError(f"{what} is NaN; labels must compare equal to themselves")
    if not isinstance(label, Hashable):
        raise TypeError(f"{what} must be hashable, got {type(label).__name__}")
    return label


def check_outcome(value: object, what: str) -> bool:
    """A pass/fail outcome: a bool, or a number equal to 0 or 1."""
    if isinstance(value, bool):
        return value
    number = finite_float(value, what)
    if number not in (0.0, 1.0):
        raise ValueError(f"{what} must be a bool (or 0/1), got {value!r}")
    return number == 1.0


def ordered_labels(labels: Iterable[Hashable]) -> tuple[Hashable, ...]:
    """Distinct labels, sorted when they can be, else in order of first appearance."""
    distinct = list(dict.fromkeys(labels))
    try:
        return tuple(sorted(distinct))  # type: ignore[type-var]
    except TypeError:
        return tuple(distinct)


def stable_mean(xs: Sequence[float]) -> float:
    """The correctly rounded mean of a non-empty sequence; exactly the common value when all
    values are equal (so that a constant sample has exactly zero spread)."""
    first = xs[0]
    if all(x == first for x in xs):
        return first
    mean = math.fsum(xs) / len(xs)
    return min(max(mean, min(xs)), max(xs))
