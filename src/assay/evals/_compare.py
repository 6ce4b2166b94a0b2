"""Compare two experiments row by row: what improved, what regressed, and is it real."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assay.statistics import mcnemar, paired_difference

TOLERANCE = 1e-9


def _case_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """score name -> case key -> values over the case's trials."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        for score in row.get("scores") or []:
            value = score.get("value")
            if value is None or score.get("error"):
                continue
            out.setdefault(score["name"], {}).setdefault(str(row["case_key"]), []).append(
                float(value)
            )
    return out


def compare(
    baseline: Sequence[Mapping[str, Any]], candidate: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Per score, on the cases both experiments scored: the delta (candidate - baseline) with a
    paired 95% interval, McNemar for pass/fail scores, and counts of cases improved, regressed
    and unchanged; plus the per-case deltas, regressions first."""
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
            test = mcnemar([(a == 1.0, b == 1.0) for a, b in pairs])
            entry["test"] = "mcnemar"
            entry["p_value"] = test.p_value
            entry["significant"] = test.significant
        else:
            entry["test"] = "paired t"
        scores[name] = entry
        for key, (a, b) in zip(shared, pairs, strict=True):
            cases.append(
                {"case_key": key, "score": name, "baseline": a, "candidate": b, "delta": b - a}
            )
    cases.sort(key=lambda c: (c["delta"], c["case_key"]))
    regressed = any(s["significant"] and (s["delta"] or 0) < 0 for s in scores.values())
    return {"scores": scores, "cases": cases, "significant_regression": regressed}
