"""Compare two experiments row by row: what improved, what regressed, and is it real. The one
implementation the eval runner, the REST API and the web UI share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assay.evals.rows import AnyRow, score_outcomes
from assay.statistics import mcnemar, newcombe_paired_difference, paired_difference

#: Deltas smaller than this are "unchanged".
TOLERANCE = 1e-9


def _case_scores(rows: Iterable[AnyRow]) -> dict[str, dict[str, list[float]]]:
    """score name -> case key -> values over the case's trials."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        for outcome in score_outcomes(row):
            if outcome.value is None or outcome.error:
                continue
            out.setdefault(outcome.name, {}).setdefault(outcome.case_key, []).append(outcome.value)
    return out


def compare(baseline: Iterable[AnyRow], candidate: Iterable[AnyRow]) -> dict[str, Any]:
    """Per score, on the cases both experiments scored: the delta (candidate - baseline) with a
    paired 95% interval (Newcombe's for pass/fail scores, else paired t), the test behind each
    p-value (``test``, and ``test_method`` in words: McNemar for pass/fail), and counts of
    cases improved, regressed and unchanged; plus the per-case deltas, regressions first. Rows
    of either experiment may be the runner's `Row`s, `ExperimentRow`s, or row dicts from the
    API or the store."""
    before = _case_scores(baseline)
    after = _case_scores(candidate)
    scores: dict[str, Any] = {}
    cases: list[dict[str, Any]] = []
    for name in sorted(set(before) & set(after)):
        shared = sorted(set(before[name]) & set(after[name]))
        pairs = [
            (sum(before[name][k]) / len(before[name][k]), sum(after[name][k]) / len(after[name][k]))
            for k in shared
        ]
        if not pairs:
            continue
        result = paired_difference(pairs, tolerance=TOLERANCE)
        entry: dict[str, Any] = {
            "cases": len(pairs),
            "baseline_mean": result.mean_a,
            "candidate_mean": result.mean_b,
            "delta": result.delta,
            "low": result.low,
            "high": result.high,
            "p_value": result.p_value,
            "significant": result.significant,
            "improved": result.improved,
            "regressed": result.regressed,
            "unchanged": result.unchanged,
        }
        if all(a in (0.0, 1.0) and b in (0.0, 1.0) for a, b in pairs):
            outcomes = [(a == 1.0, b == 1.0) for a, b in pairs]
            test = mcnemar(outcomes)
            # A t interval over differences that are all equal is a point; Newcombe's never is.
            interval = newcombe_paired_difference(outcomes)
            entry["test"] = "mcnemar"
            entry["test_method"] = (
                f"McNemar exact binomial, {test.b + test.c} discordant pairs"
                if test.method == "exact"
                else f"McNemar chi-square with continuity correction, {test.b + test.c} "
                "discordant pairs"
            )
            entry["p_value"] = test.p_value
            entry["significant"] = test.significant
            entry["low"], entry["high"] = interval.low, interval.high
            entry["interval"] = interval.method
        else:
            entry["test"] = "paired t"
            entry["test_method"] = f"paired t test, {len(pairs) - 1} degrees of freedom"
            entry["interval"] = "paired t"
        scores[name] = entry
        for key, (a, b) in zip(shared, pairs, strict=True):
            cases.append(
                {"case_key": key, "score": name, "baseline": a, "candidate": b, "delta": b - a}
            )
    cases.sort(key=lambda c: (c["delta"], c["case_key"]))
    regressed = any(s["significant"] and (s["delta"] or 0) < 0 for s in scores.values())
    return {"scores": scores, "cases": cases, "significant_regression": regressed}
