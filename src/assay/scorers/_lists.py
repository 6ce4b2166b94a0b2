"""List overlap: precision, recall and F1 of the output's items against ``expected``'s, as for
retrieval (which of the documents that should have been found were, and how many of those
returned were right)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers._base import as_text, build, canonical, check_choice, normalizer, shorten

METRICS = ("f1", "precision", "recall")


def _as_list(value: Any) -> list[Any] | None:
    """A list, tuple or set as a list; a JSON array in a string parsed; None when neither."""
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, list) else None
    return None


def overlap(got: set[str], want: set[str]) -> dict[str, float]:
    """Precision, recall and F1 of two sets. Both empty: all 1.0 (nothing was asked for and
    nothing was returned). One side empty: the measure that would divide by zero counts 0.0,
    as scikit-learn's default does, so returning nothing never earns precision."""
    if not got and not want:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    hits = len(got & want)
    precision = hits / len(got) if got else 0.0
    recall = hits / len(want) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def list_overlap(
    metric: str = "f1",
    *,
    key: str | Callable[[Any], Any] | None = None,
    normalize: str | Iterable[str] = (),
    name: str = "list_overlap",
) -> Scorer:
    """Precision, recall and F1 of the output's items against ``expected``'s, as sets; the value
    is ``metric``, all three are in the metadata, with the items missing and extra.

    Items are compared by ``key``: a dict key (``key="id"``) or a function; without one, by the
    item itself. Strings are compared after ``normalize``, other items as canonical JSON. A None
    output is an empty list; an output that is not a list (or a JSON array) scores 0.0.
    """
    check_choice("list_overlap metric", metric, METRICS)
    steps, apply = normalizer(normalize)
    if key is not None and not isinstance(key, str) and not callable(key):
        raise UserError(f"list_overlap key must be a dict key or a function; got {key!r}")

    def identity(item: Any) -> str:
        if isinstance(key, str):
            item = item.get(key, item) if isinstance(item, Mapping) else item
        elif key is not None:
            item = key(item)
        return apply(as_text(item))

    def score(output: Any, expected: Any) -> Score | None:
        if expected is None:
            return None
        want_items = _as_list(expected)
        if want_items is None:
            raise ValueError(f"list_overlap needs a list as expected; got {shorten(expected)}")
        got_items = [] if output is None else _as_list(output)
        if got_items is None:
            reason = f"output is not a list: {shorten(output)}"
            return Score(name, 0.0, rationale=reason)
        got = {identity(item) for item in got_items}
        want = {identity(item) for item in want_items}
        measures = overlap(got, want)
        missing, extra = sorted(want - got), sorted(got - want)
        metadata = {**measures, "matched": sorted(got & want), "missing": missing, "extra": extra}
        reasons = []
        if not got_items:
            reasons.append("output is empty")
        if missing:
            reasons.append(f"missing {missing[:10]!r}")
        if extra:
            reasons.append(f"extra {extra[:10]!r}")
        return Score(
            name, measures[metric], rationale="; ".join(reasons) or None, metadata=metadata
        )

    return build(
        score,
        name=name,
        definition=(list_overlap, overlap, _as_list, as_text, canonical),
        params={"metric": metric, "key": key, "normalize": steps},
    )
