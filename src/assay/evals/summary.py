"""Summaries of an experiment's scores: the one implementation the eval runner, the REST API
and the web UI share."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.evals.rows import AnyRow, score_outcomes
from assay.statistics import (
    Estimate,
    clipped,
    clustered_mean_interval,
    mean_interval,
    mean_pass_at_k,
    mean_pass_hat_k,
    per_case_variance,
    proportion_interval,
)

#: A summary keeps this many distinct error messages per score, most common first.
ERROR_MESSAGES_KEPT = 3

_INSTALL_HINT = re.compile(r"pip install '?[\w.\[\],-]+'?")


@dataclass(frozen=True)
class ErrorCount:
    """An error message scorers gave, and on how many rows."""

    message: str
    count: int

    @property
    def hint(self) -> str | None:
        """What to do about it when the message says, such as ``pip install 'assay[openai]'``."""
        return error_hint(self.message)


@dataclass(frozen=True)
class ScoreSummary:
    name: str
    estimate: Estimate | None
    scored: int
    errors: int
    #: With several trials per case: the mean within-case variance, and for pass/fail scores
    #: pass@k (some of k trials pass) and pass^k (all k pass), k = the fewest trials of a case.
    case_variance: float | None = None
    pass_at_k: Estimate | None = None
    pass_hat_k: Estimate | None = None
    k: int | None = None
    #: The scorer's errors, most common first (at most ERROR_MESSAGES_KEPT messages).
    error_messages: tuple[ErrorCount, ...] = ()
    #: Every value was 0 or 1: a pass/fail score; ``passed`` counts the 1s.
    binary: bool = False
    passed: int | None = None

    @property
    def top_error(self) -> ErrorCount | None:
        return self.error_messages[0] if self.error_messages else None


def error_hint(message: str) -> str | None:
    found = _INSTALL_HINT.search(message)
    return found.group(0) if found else None


def _bounded(estimate: Estimate, values: Sequence[float]) -> Estimate:
    """Scores of 0 to 1 (all built-in ones) keep their interval inside [0, 1]."""
    return clipped(estimate, 0.0, 1.0) if all(0.0 <= v <= 1.0 for v in values) else estimate


def _one(name: str, by_case: dict[str, list[float]], errors: Counter[str]) -> ScoreSummary:
    error_messages = tuple(ErrorCount(m, n) for m, n in errors.most_common(ERROR_MESSAGES_KEPT))
    error_count = sum(errors.values())
    flat = [v for case_values in by_case.values() for v in case_values]
    if not flat:
        return ScoreSummary(name, None, 0, error_count, error_messages=error_messages)
    binary = all(v in (0.0, 1.0) for v in flat)
    passed = sum(1 for v in flat if v == 1.0) if binary else None
    if not any(len(v) > 1 for v in by_case.values()):
        estimate = proportion_interval(flat) if binary else _bounded(mean_interval(flat), flat)
        return ScoreSummary(
            name,
            estimate,
            len(flat),
            error_count,
            error_messages=error_messages,
            binary=binary,
            passed=passed,
        )
    spreads = [s.variance for s in per_case_variance(by_case).values() if s.variance is not None]
    k = min(len(v) for v in by_case.values())
    outcomes = {key: [v == 1.0 for v in vals] for key, vals in by_case.items()}
    with_k = binary and k > 1
    return ScoreSummary(
        name,
        _bounded(clustered_mean_interval(by_case), flat),
        len(flat),
        error_count,
        case_variance=sum(spreads) / len(spreads) if spreads else None,
        pass_at_k=mean_pass_at_k(outcomes, k) if with_k else None,
        pass_hat_k=mean_pass_hat_k(outcomes, k) if with_k else None,
        k=k if with_k else None,
        error_messages=error_messages,
        binary=binary,
        passed=passed,
    )


def summarise(rows: Iterable[AnyRow]) -> dict[str, ScoreSummary]:
    """Per score, in order of first appearance: mean with a 95% interval (Wilson for pass/fail
    scores run once per case, else Student t, cluster-robust when cases ran several times, kept
    inside [0, 1] for scores in that range), and the errors with their most common messages.
    ``rows``: the runner's `Row`s, `ExperimentRow`s, or row dicts from the API or the store."""
    values: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, Counter[str]] = {}
    for row in rows:
        for outcome in score_outcomes(row):
            by_case = values.setdefault(outcome.name, {})
            if outcome.error is not None:
                errors.setdefault(outcome.name, Counter())[outcome.error] += 1
            elif outcome.value is not None:
                by_case.setdefault(outcome.case_key, []).append(outcome.value)
    return {
        name: _one(name, by_case, errors.get(name, Counter())) for name, by_case in values.items()
    }


def summary_dict(summary: Mapping[str, ScoreSummary]) -> dict[str, dict[str, Any]]:
    """A summary as JSON data: what an experiment stores, and what ``assay eval --json`` and
    the web UI show."""
    return {
        name: {
            "mean": item.estimate.mean if item.estimate else None,
            "low": item.estimate.low if item.estimate else None,
            "high": item.estimate.high if item.estimate else None,
            "n": item.scored,
            "errors": item.errors,
            "case_variance": item.case_variance,
            "k": item.k,
            "pass_at_k": item.pass_at_k.mean if item.pass_at_k else None,
            "pass_hat_k": item.pass_hat_k.mean if item.pass_hat_k else None,
            "error_messages": [
                {"message": e.message, "count": e.count, "hint": e.hint}
                for e in item.error_messages
            ],
        }
        for name, item in summary.items()
    }
