"""Judges checked against people: calibration runs, disagreements, the "judges must be
calibrated" gate, and agreement over time with drift alerts.

A calibration runs one version of a stored judge over the items people labelled with a rubric
(the gold label where an editor adjudicated, else the reviewers' label when they agree; items
whose reviewers disagree and have no gold label are left out and counted), through the same
code the online worker calls the judge with, and compares the verdicts, read through an
explicit mapping of the judge's choices onto the rubric's (``{"A": "correct"}``), with the
people's labels: :func:`assay.statistics.calibration_figures`, next to the people's own
agreement on the rubric (the ceiling).

Project settings (``PATCH /api/v1/projects/{project}``):

- ``judges_must_be_calibrated`` (false): an evaluator is attached to an online rule only if
  its current version's latest calibration has ``calibration_min_kappa`` (0.6) on at least
  ``calibration_min_items`` (30) items.
- ``judge_alert_webhook``: where a drift alert is POSTed (the egress policy applies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from assay.errors import NotFound, UserError
from assay.services import datasets as dataset_service
from assay.services import rubrics as rubric_rules
from assay.services import webhooks
from assay.services.connections import model_access
from assay.services.evaluators import Outcome, run_judge, runnable_judge
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.services.runtime import Runtime
from assay.statistics import (
    CalibrationFigures,
    Interval,
    calibration_figures,
    mcnemar,
    normal_cdf,
    rater_agreement,
)
from assay.statistics._reliability import AgreementLevel
from assay.store import calibration as calibration_store
from assay.store import online as online_store
from assay.store import projects as project_store
from assay.store import review as review_store
from assay.store import rubrics as rubric_store
from assay.store.database import Connection
from assay.store.engine import now_ns

#: Most labelled items one calibration run judges (a run is one request).
MAX_ITEMS = 2_000
CALL_TIMEOUT = 60.0
DEFAULT_MIN_KAPPA = 0.6
DEFAULT_MIN_ITEMS = 30
WINDOWS = {"day": timedelta(days=1), "week": timedelta(days=7)}
DRIFT_TEST = (
    "one-sided z test of the window's kappa against the calibration's (standard errors from "
    "the 95% bootstrap intervals), p < 0.05; or the window's whole interval below the "
    "project's minimum kappa"
)


# --- reading what people said ---------------------------------------------------------------------


def _level(rubric: Mapping[str, Any]) -> AgreementLevel:
    if rubric["kind"] == "text" or rubric.get("multiple"):
        what = "free text" if rubric["kind"] == "text" else "multiple choice"
        raise UserError(
            f"rubric {rubric['name']!r} is {what}: a judge is calibrated against a single "
            "choice, pass/fail or a number"
        )
    level = rubric_rules.agreement_level(dict(rubric))
    return "ordinal" if level == "ordinal" else "interval" if level == "interval" else "nominal"


def _human_value(rubric: Mapping[str, Any], row: Mapping[str, Any]) -> Any:
    if rubric["kind"] == "numeric":
        return None if row["value"] is None else float(row["value"])
    return row["label"]


def _all_labels(conn: Connection, rubric: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        page = review_store.labels(
            conn,
            rubric_id=int(rubric["id"]),
            project_id=int(rubric["project_id"]),
            after_id=after,
            limit=10_000,
        )
        rows += page
        if len(page) < 10_000:
            return rows
        after = int(page[-1]["id"])


def human_truth(conn: Connection, rubric: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Per labelled item (trace or span) of the rubric: its truth, where it came from, the
    rationale, and when it was labelled; and how many items were left out because their
    reviewers disagree and no gold label settles it."""
    by_item: dict[int, list[dict[str, Any]]] = {}
    for row in _all_labels(conn, rubric):
        if row["trace_id"] and _human_value(rubric, row) is not None:
            by_item.setdefault(int(row["item_id"]), []).append(row)
    gold = review_store.gold_for_items(conn, by_item)
    out: list[dict[str, Any]] = []
    unresolved = 0
    for item_id, rows in sorted(by_item.items()):
        first = rows[0]
        base = {
            "item_id": item_id,
            "trace_id": first["trace_id"],
            "span_id": first["span_id"] or None,
            "labelled_ns": max(int(r["created_ns"]) for r in rows),
        }
        settled = gold.get((item_id, int(rubric["id"])))
        if settled is not None and _human_value(rubric, settled) is not None:
            out.append(
                {
                    **base,
                    "truth": _human_value(rubric, settled),
                    "source": "gold",
                    "rationale": settled["rationale"],
                }
            )
            continue
        values = {_human_value(rubric, r) for r in rows}
        if len(values) > 1:
            unresolved += 1
            continue
        why = "\n".join(f"{r['reviewer']}: {r['rationale']}" for r in rows if r["rationale"])
        out.append({**base, "truth": values.pop(), "source": "labels", "rationale": why or None})
    return out, unresolved


def ceiling(conn: Connection, rubric: Mapping[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """People's own agreement on the rubric: kappa between reviewers of the same items."""
    level = _level(rubric)
    units: dict[int, dict[Any, Any]] = {}
    for row in _all_labels(conn, rubric):
        value = _human_value(rubric, row)
        if value is None:
            continue
        if level == "ordinal":
            order = [choice["name"] for choice in rubric["choices"]]
            value = order.index(value) if value in order else None
            if value is None:
                continue
        units.setdefault(int(row["item_id"]), {})[row["reviewer"]] = value
    order_ = list(range(len(rubric["choices"]))) if level == "ordinal" else None
    found = rater_agreement(list(units.values()), level, order=order_, seed=seed)
    return {
        **(_figure(found.kappa) or {}),
        "metric": "kappa",
        "percent_agreement": _figure(found.percent),
    }


# --- mapping the judge's choices onto the rubric ------------------------------------------------


def _judge_choices(definition: Mapping[str, Any]) -> dict[str, float | None]:
    choices = definition.get("choices") or {}
    if isinstance(choices, Mapping):
        return {str(k): None if v is None else float(v) for k, v in choices.items()}
    return {str(c): None for c in choices}


def default_mapping(definition: Mapping[str, Any], rubric: Mapping[str, Any]) -> dict[str, Any]:
    """Each judge choice onto the rubric choice of the same name (any case), else of the same
    value; on a numeric rubric, onto the judge's score for it."""
    choices = _judge_choices(definition)
    if rubric["kind"] == "numeric":
        return {name: value for name, value in choices.items() if value is not None}
    names = {c["name"].lower(): c["name"] for c in rubric["choices"]}
    values = {c["value"]: c["name"] for c in rubric["choices"] if c["value"] is not None}
    out: dict[str, Any] = {}
    for name, value in choices.items():
        if name.lower() in names:
            out[name] = names[name.lower()]
        elif value is not None and value in values:
            out[name] = values[value]
    return out


def check_mapping(
    definition: Mapping[str, Any], rubric: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The mapping, every judge choice onto a rubric value; UserError saying what is missing."""
    choices = _judge_choices(definition)
    unknown = sorted(set(given) - set(choices))
    if unknown:
        raise UserError(
            f"the mapping names {', '.join(map(repr, unknown))}, which the judge does not answer "
            f"(its choices: {', '.join(map(repr, choices))})"
        )
    out: dict[str, Any] = {}
    for name, target in given.items():
        if rubric["kind"] == "numeric":
            if isinstance(target, bool) or not isinstance(target, int | float):
                raise UserError(f"mapping[{name!r}] must be a number on the rubric's scale")
            if not rubric["min"] <= float(target) <= rubric["max"]:
                raise UserError(
                    f"mapping[{name!r}] = {target} is outside "
                    f"[{rubric['min']:g}, {rubric['max']:g}]"
                )
            out[name] = float(target)
        else:
            allowed = [c["name"] for c in rubric["choices"]]
            if target not in allowed:
                raise UserError(
                    f"mapping[{name!r}] must be one of the rubric's choices: "
                    f"{', '.join(map(repr, allowed))}"
                )
            out[name] = target
    missing = [name for name in choices if name not in out]
    if missing:
        raise UserError(
            f"the judge's choice(s) {', '.join(map(repr, missing))} have no rubric value: "
            f'give a mapping, e.g. {{"mapping": {{"{missing[0]}": ...}}}}'
        )
    return out


# --- figures --------------------------------------------------------------------------------------


def _figure(found: Interval | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"value": found.value, "low": found.low, "high": found.high, "n": found.n}


def _key(label: Any) -> str:
    return f"{label:g}" if isinstance(label, float) else str(label)


def _figures_of(
    rubric: Mapping[str, Any], pairs: Sequence[tuple[Any, Any]], *, seed: int = 0
) -> CalibrationFigures:
    """Figures of (judge's mapped verdict, people's truth) pairs on the rubric's scale."""
    level = _level(rubric)
    pred = [p for p, _t in pairs]
    truth = [t for _p, t in pairs]
    if level == "interval":
        labels = sorted({*pred, *truth})
        return calibration_figures(
            pred, truth, labels=labels, weights="quadratic", numeric=True, seed=seed
        )
    labels = [c["name"] for c in rubric["choices"]]
    if level == "ordinal":
        return calibration_figures(pred, truth, labels=labels, weights="linear", seed=seed)
    return calibration_figures(pred, truth, labels=labels, seed=seed)


def summarise(
    rubric: Mapping[str, Any], found: CalibrationFigures, roof: dict[str, Any]
) -> dict[str, Any]:
    return {
        "n": found.n,
        "confusion": {
            "labels": [_key(label) for label in found.labels],
            "matrix": [list(row) for row in found.confusion.matrix],
            "rows": "people",
            "columns": "judge",
        },
        "accuracy": _figure(found.accuracy),
        "precision": {_key(k): _figure(v) for k, v in found.precision.items()},
        "recall": {_key(k): _figure(v) for k, v in found.recall.items()},
        "f1": {_key(k): _figure(v) for k, v in found.f1.items()},
        "macro_f1": _figure(found.macro_f1),
        "kappa": _figure(found.kappa),
        "kappa_weights": found.kappa_weights,
        "mae": _figure(found.mae),
        "spearman": _figure(found.spearman),
        "ceiling": roof,
        "resamples": found.resamples,
        "confidence": found.confidence,
        "interval": "percentile bootstrap over items",
    }


def _mapped(item: Mapping[str, Any], mapping: Mapping[str, Any]) -> Any:
    if item["judge_label"] is None or item["error"]:
        return None
    return mapping.get(str(item["judge_label"]))


def _truth(rubric: Mapping[str, Any], item: Mapping[str, Any]) -> Any:
    return item["human_value"] if rubric["kind"] == "numeric" else item["human_label"]


def _pairs(
    rubric: Mapping[str, Any], items: Sequence[Mapping[str, Any]], mapping: Mapping[str, Any]
) -> list[tuple[Any, Any]]:
    out = []
    for item in items:
        verdict = _mapped(item, mapping)
        if verdict is not None and _truth(rubric, item) is not None:
            out.append((verdict, _truth(rubric, item)))
    return out


# --- access -------------------------------------------------------------------------------------


def _evaluator(conn: Connection, who: Principal, evaluator_id: int, role: str) -> dict[str, Any]:
    found = online_store.get_evaluator(conn, evaluator_id)
    if found is None or not who.may_see(found["project"]):
        raise NotFound(f"evaluator {evaluator_id} does not exist")
    who.require(found["project"], role)
    return found


def _version(conn: Connection, evaluator: Mapping[str, Any], version: int | None) -> dict[str, Any]:
    versions = online_store.evaluator_versions_of(conn, int(evaluator["id"]))
    wanted = int(evaluator["version"]) if version is None else version
    found = next((v for v in versions if int(v["version"]) == wanted), None)
    if found is None:
        raise NotFound(f"evaluator {evaluator['name']!r} has no version {wanted}")
    return found


def _rubric_of(conn: Connection, evaluator: Mapping[str, Any], rubric_id: int) -> dict[str, Any]:
    rubric = rubric_store.get(conn, rubric_id)
    if rubric is None or int(rubric["project_id"]) != int(evaluator["project_id"]):
        raise NotFound(f"rubric {rubric_id} does not exist in {evaluator['project']!r}")
    return rubric


def _calibration(
    conn: Connection, who: Principal, evaluator_id: int, calibration_id: int, role: str = "viewer"
) -> tuple[dict[str, Any], dict[str, Any]]:
    evaluator = _evaluator(conn, who, evaluator_id, role)
    found = calibration_store.get(conn, calibration_id)
    if found is None or int(found["evaluator_id"]) != evaluator_id:
        raise NotFound(f"evaluator {evaluator_id} has no calibration {calibration_id}")
    return evaluator, found


def _view(found: Mapping[str, Any], evaluator: Mapping[str, Any]) -> dict[str, Any]:
    summary = dict(found["summary"] or {})
    return {
        "id": found["id"],
        "evaluator_id": found["evaluator_id"],
        "evaluator": evaluator["name"],
        "version": found["version"],
        "rubric_id": found["rubric_id"],
        "rubric_version": found["rubric_version"],
        "mapping": found["mapping"],
        "status": found["status"],
        "author": found["author"],
        "created_ns": found["created_ns"],
        "finished_ns": found["finished_ns"],
        **summary,
    }


# --- running a calibration ----------------------------------------------------------------------


def _judge_all(
    rt: Runtime,
    version: Mapping[str, Any],
    evaluator: Mapping[str, Any],
    truths: Sequence[Mapping[str, Any]],
) -> list[Outcome]:
    """The judge's outcome on each item, by the worker's code path (its connection, the egress
    policy, no retries of its own), a few calls at a time."""
    if evaluator["connection_id"] is None:
        raise UserError(f"evaluator {evaluator['name']!r} has no connection: give it one")
    with rt.read() as conn:
        access = model_access(rt, conn, int(evaluator["connection_id"]))
        judged = [
            online_store.judged_item(
                conn, int(evaluator["project_id"]), t["trace_id"], t["span_id"] or ""
            )
            for t in truths
        ]
    made = runnable_judge(rt, evaluator["name"], version["definition"], access, CALL_TIMEOUT)
    prices = rt.prices_for(str(evaluator["project"]))

    def one(item: Mapping[str, Any] | None) -> Outcome:
        if item is None:
            return Outcome(error="the trace (or span) is no longer in the project")
        return run_judge(made, item, access.api_key, prices)

    with ThreadPoolExecutor(max_workers=max(1, min(access.max_concurrency, 16))) as pool:
        return list(pool.map(one, judged))


def calibrate(
    rt: Runtime,
    who: Principal,
    evaluator_id: int,
    *,
    rubric_id: int,
    version: int | None = None,
    mapping: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a judge version (default: the current one) over the rubric's labelled items and
    store the calibration: the figures, each item's verdict and label."""
    with rt.read() as conn:
        evaluator = _evaluator(conn, who, evaluator_id, "editor")
        if evaluator["kind"] != "judge":
            raise UserError(f"evaluator {evaluator['name']!r} is a built-in scorer, not a judge")
        found = _version(conn, evaluator, version)
        rubric = _rubric_of(conn, evaluator, rubric_id)
        _level(rubric)
        given = mapping
        if given is None:
            given = calibration_store.mapping(conn, evaluator_id, rubric_id)
        if given is None:
            given = default_mapping(found["definition"], rubric)
        chosen = check_mapping(found["definition"], rubric, given)
        truths, unresolved = human_truth(conn, rubric)
        roof = ceiling(conn, rubric)
    if not truths:
        raise UserError(
            f"rubric {rubric['name']!r} has no labelled traces or spans yet: label some in a "
            "review queue first"
        )
    truths = truths[-MAX_ITEMS:]
    outcomes = _judge_all(rt, found, evaluator, truths)
    numeric = rubric["kind"] == "numeric"
    items = []
    for truth, outcome in zip(truths, outcomes, strict=True):
        score = outcome.score
        items.append(
            {
                "item_id": truth["item_id"],
                "trace_id": truth["trace_id"],
                "span_id": truth["span_id"],
                "human_label": None if numeric else truth["truth"],
                "human_value": truth["truth"] if numeric else _choice_value(rubric, truth),
                "human_source": truth["source"],
                "human_rationale": truth["rationale"],
                "judge_label": None if score is None else score.label,
                "judge_value": None if score is None else score.value,
                "judge_rationale": None if score is None else score.rationale,
                "error": None if score is not None else (outcome.error or "no verdict"),
            }
        )
    figures = _figures_of(rubric, _pairs(rubric, items, chosen))
    summary = summarise(rubric, figures, roof)
    summary.update(
        items=len(items),
        errors=sum(1 for item in items if item["error"]),
        unresolved=unresolved,
    )
    stamp = now_ns()
    with rt.write() as conn:
        calibration_id = calibration_store.insert_calibration(
            conn,
            {
                "project_id": evaluator["project_id"],
                "evaluator_id": evaluator_id,
                "evaluator_version_id": found["id"],
                "version": found["version"],
                "rubric_id": rubric_id,
                "rubric_version": rubric["version"],
                "mapping": chosen,
                "status": "done",
                "summary": summary,
                "author": who.author,
                "created_ns": stamp,
                "finished_ns": now_ns(),
            },
        )
        calibration_store.add_items(conn, calibration_id, items)
        if mapping is not None:
            calibration_store.set_mapping(conn, evaluator_id, rubric_id, chosen, stamp)
        stored = calibration_store.get(conn, calibration_id)
    assert stored is not None
    return _view(stored, evaluator)


def _choice_value(rubric: Mapping[str, Any], truth: Mapping[str, Any]) -> float | None:
    for choice in rubric.get("choices") or []:
        if choice["name"] == truth["truth"]:
            value = choice["value"]
            return None if value is None else float(value)
    return None


def get_calibration(
    rt: Runtime, who: Principal, evaluator_id: int, calibration_id: int
) -> dict[str, Any]:
    with rt.read() as conn:
        evaluator, found = _calibration(conn, who, evaluator_id, calibration_id)
    return _view(found, evaluator)


def list_calibrations(rt: Runtime, who: Principal, evaluator_id: int) -> list[dict[str, Any]]:
    with rt.read() as conn:
        evaluator = _evaluator(conn, who, evaluator_id, "viewer")
        return [_view(found, evaluator) for found in calibration_store.list_for(conn, evaluator_id)]


def remap(
    rt: Runtime,
    who: Principal,
    evaluator_id: int,
    calibration_id: int,
    mapping: Mapping[str, Any],
) -> dict[str, Any]:
    """Read a calibration's verdicts through another mapping (no judge is called again); the
    mapping is kept for the evaluator's next calibrations against the rubric."""
    with rt.read() as conn:
        evaluator, found = _calibration(conn, who, evaluator_id, calibration_id, "editor")
        rubric = _rubric_of(conn, evaluator, int(found["rubric_id"]))
        version = online_store.version_row(conn, int(found["evaluator_version_id"]))
        assert version is not None
        chosen = check_mapping(version["definition"], rubric, mapping)
        items = calibration_store.items(conn, calibration_id)
    summary = {
        **dict(found["summary"]),
        **summarise(
            rubric,
            _figures_of(rubric, _pairs(rubric, items, chosen)),
            dict(found["summary"]).get("ceiling") or {},
        ),
    }
    with rt.write() as conn:
        calibration_store.set_summary(conn, calibration_id, chosen, summary)
        calibration_store.set_mapping(conn, evaluator_id, int(found["rubric_id"]), chosen, now_ns())
        stored = calibration_store.get(conn, calibration_id)
    assert stored is not None
    return _view(stored, evaluator)


def compare(
    rt: Runtime, who: Principal, evaluator_id: int, baseline_id: int, candidate_id: int
) -> dict[str, Any]:
    """Two calibrations of the evaluator on the same items: accuracy of each and McNemar's
    test on agree / disagree with the people, item by item."""
    with rt.read() as conn:
        evaluator, base = _calibration(conn, who, evaluator_id, baseline_id)
        _same, cand = _calibration(conn, who, evaluator_id, candidate_id)
        rubric = _rubric_of(conn, evaluator, int(base["rubric_id"]))
        if int(cand["rubric_id"]) != int(base["rubric_id"]):
            raise UserError("the two calibrations are against different rubrics")
        base_items = {int(i["item_id"]): i for i in calibration_store.items(conn, baseline_id)}
        cand_items = {int(i["item_id"]): i for i in calibration_store.items(conn, candidate_id)}
    pairs = []
    for item_id in sorted(set(base_items) & set(cand_items)):
        a, b = base_items[item_id], cand_items[item_id]
        verdict_a, verdict_b = _mapped(a, base["mapping"]), _mapped(b, cand["mapping"])
        if verdict_a is None or verdict_b is None or _truth(rubric, a) is None:
            continue
        pairs.append((verdict_a == _truth(rubric, a), verdict_b == _truth(rubric, b)))
    test = mcnemar(pairs)
    method = "exact binomial" if test.method == "exact" else "chi-square, continuity-corrected"
    return {
        "evaluator": evaluator["name"],
        "n": len(pairs),
        "baseline": {"id": baseline_id, "version": base["version"]},
        "candidate": {"id": candidate_id, "version": cand["version"]},
        "baseline_agreement": sum(a for a, _b in pairs) / len(pairs) if pairs else None,
        "candidate_agreement": sum(b for _a, b in pairs) / len(pairs) if pairs else None,
        "improved": test.improved,
        "regressed": test.regressed,
        "p_value": test.p_value,
        "significant": test.significant,
        "test": f"McNemar ({method}) on agree/disagree with people",
    }


# --- disagreements --------------------------------------------------------------------------------


def disagreements(
    rt: Runtime, who: Principal, evaluator_id: int, calibration_id: int
) -> list[dict[str, Any]]:
    """The items where the judge's mapped verdict differs from the people's label, with both
    rationales and a link to the trace."""
    with rt.read() as conn:
        evaluator, found = _calibration(conn, who, evaluator_id, calibration_id)
        rubric = _rubric_of(conn, evaluator, int(found["rubric_id"]))
        items = calibration_store.items(conn, calibration_id)
    out = []
    for item in items:
        verdict = _mapped(item, found["mapping"])
        truth = _truth(rubric, item)
        if verdict is None or truth is None or verdict == truth:
            continue
        out.append(
            {
                "item_id": item["item_id"],
                "trace_id": item["trace_id"],
                "span_id": item["span_id"],
                "trace_url": f"/p/{evaluator['project']}/traces/{item['trace_id']}",
                "people": {
                    "label": truth,
                    "source": item["human_source"],
                    "rationale": item["human_rationale"],
                },
                "judge": {
                    "choice": item["judge_label"],
                    "mapped": verdict,
                    "value": item["judge_value"],
                    "rationale": item["judge_rationale"],
                },
            }
        )
    return out


def disagreements_to_dataset(
    rt: Runtime, who: Principal, evaluator_id: int, calibration_id: int, dataset: str
) -> dict[str, Any]:
    """Copy the disagreements' traces (or spans) into a dataset, each expecting the people's
    label: the judge's failure cases become its regression set."""
    found = disagreements(rt, who, evaluator_id, calibration_id)
    if not found:
        raise UserError("this calibration has no disagreements to add")
    with rt.read() as conn:
        evaluator = _evaluator(conn, who, evaluator_id, "editor")
    picked = [
        {
            "trace_id": item["trace_id"],
            "span_id": item["span_id"],
            "expected": item["people"]["label"],
            "metadata": {
                "judge": evaluator["name"],
                "calibration_id": calibration_id,
                "judge_verdict": item["judge"]["mapped"],
                "judge_rationale": item["judge"]["rationale"],
                "people_rationale": item["people"]["rationale"],
            },
        }
        for item in found
    ]
    version = dataset_service.add_spans(
        rt,
        who,
        str(evaluator["project"]),
        dataset,
        picked,
        message=f"disagreements of {evaluator['name']} in calibration {calibration_id}",
    )
    return {"dataset": dataset, "added": len(picked), "version": version["version"]}


# --- the gate -------------------------------------------------------------------------------------


def check_settings(settings: Mapping[str, Any]) -> None:
    """UserError naming a calibration setting that cannot be used (before it is saved)."""
    required = settings.get("judges_must_be_calibrated")
    if required is not None and not isinstance(required, bool):
        raise UserError("judges_must_be_calibrated is true or false")
    kappa = settings.get("calibration_min_kappa")
    if kappa is not None and (
        isinstance(kappa, bool) or not isinstance(kappa, int | float) or not -1 <= kappa <= 1
    ):
        raise UserError("calibration_min_kappa is a number from -1 to 1 (default 0.6)")
    items = settings.get("calibration_min_items")
    if items is not None and (
        isinstance(items, bool) or not isinstance(items, int) or not 1 <= items <= 1_000_000
    ):
        raise UserError("calibration_min_items is a whole number of at least 1 (default 30)")
    hook = settings.get("judge_alert_webhook")
    if hook is not None and (
        not isinstance(hook, str)
        or not hook.startswith(("http://", "https://"))
        or len(hook) > 2000
    ):
        raise UserError("judge_alert_webhook is an http(s) URL")


def gate_settings(settings: Mapping[str, Any] | None) -> tuple[bool, float, int]:
    found = settings or {}
    return (
        bool(found.get("judges_must_be_calibrated", False)),
        float(found.get("calibration_min_kappa", DEFAULT_MIN_KAPPA)),
        int(found.get("calibration_min_items", DEFAULT_MIN_ITEMS)),
    )


def _number(value: Any) -> str:
    return "none" if value is None else f"{value:.2f}"


def gate_problem(
    conn: Connection, evaluator: Mapping[str, Any], version_id: int, version: int
) -> str | None:
    """Why the evaluator version may not gate anything under the project's settings; None when
    it may (or the project does not ask)."""
    required, min_kappa, min_items = gate_settings(
        project_store.settings_of(conn, str(evaluator["project"]))
    )
    if not required:
        return None
    name = evaluator["name"]
    rule = f"the project requires kappa >= {min_kappa:g} on at least {min_items} labelled items"
    latest = calibration_store.latest_for_version(conn, version_id)
    if latest is None:
        return (
            f"judge {name!r} v{version} has no calibration and {rule}: run "
            f"`assay judges calibrate {name} --rubric RUBRIC` first"
        )
    summary = latest["summary"] or {}
    kappa = summary.get("kappa") or {}
    n = int(summary.get("n") or 0)
    value = kappa.get("value")
    if n >= min_items and value is not None and value >= min_kappa:
        return None
    return (
        f"judge {name!r} v{version} is not calibrated well enough: its latest calibration "
        f"(#{latest['id']}) has kappa {_number(value)} (95% interval {_number(kappa.get('low'))} "
        f"to {_number(kappa.get('high'))}) on {n} items; {rule}"
    )


def check_gate(conn: Connection, evaluator_ids: Sequence[int]) -> None:
    """UserError with the figures when an evaluator's current version fails the gate."""
    for version in online_store.current_versions(conn, list(evaluator_ids)):
        evaluator = online_store.get_evaluator(conn, int(version["id"]))
        assert evaluator is not None
        problem = gate_problem(conn, evaluator, int(version["version_id"]), int(version["version"]))
        if problem is not None:
            raise UserError(problem)


def gate(
    rt: Runtime, who: Principal, project: str, name: str, version_hash: str | None = None
) -> dict[str, Any]:
    """Whether the named evaluator (at the version with this hash, else its current one) may
    gate: ``{"ok", "message", "calibration"}`` (for `assay eval --require-calibrated`)."""
    with rt.read() as conn:
        found_project = project_id(conn, who, project)
        evaluator = online_store.evaluator_by_name(conn, found_project, name)
        if evaluator is None:
            raise NotFound(
                f"judge {name!r} is not stored in {project!r}: push it (`assay evaluators push`) "
                "and calibrate it"
            )
        versions = online_store.evaluator_versions_of(conn, int(evaluator["id"]))
        chosen = next(
            (v for v in versions if version_hash and v["version_hash"] == version_hash),
            None if version_hash else versions[0] if versions else None,
        )
        if chosen is None:
            return {
                "ok": False,
                "message": (
                    f"judge {name!r} at version {version_hash} is not stored in {project!r}: "
                    "push this version and calibrate it"
                ),
                "calibration": None,
            }
        problem = gate_problem(conn, evaluator, int(chosen["id"]), int(chosen["version"]))
        required, _k, _n = gate_settings(project_store.settings_of(conn, project))
        if not required and problem is None:
            # The project does not ask, but the caller does: apply the default threshold.
            problem = _default_gate(conn, evaluator, chosen)
        latest = calibration_store.latest_for_version(conn, int(chosen["id"]))
    return {
        "ok": problem is None,
        "message": problem or f"judge {name!r} v{chosen['version']} is calibrated",
        "calibration": None if latest is None else _view(latest, evaluator),
    }


def _default_gate(
    conn: Connection, evaluator: Mapping[str, Any], chosen: Mapping[str, Any]
) -> str | None:
    settings = dict(project_store.settings_of(conn, str(evaluator["project"])) or {})
    settings["judges_must_be_calibrated"] = True
    required, min_kappa, min_items = gate_settings(settings)
    del required
    latest = calibration_store.latest_for_version(conn, int(chosen["id"]))
    name, version = evaluator["name"], chosen["version"]
    rule = f"kappa >= {min_kappa:g} on at least {min_items} labelled items is required"
    if latest is None:
        return f"judge {name!r} v{version} has no calibration and {rule}"
    summary = latest["summary"] or {}
    kappa = summary.get("kappa") or {}
    n = int(summary.get("n") or 0)
    if n >= min_items and kappa.get("value") is not None and kappa["value"] >= min_kappa:
        return None
    return (
        f"judge {name!r} v{version} is not calibrated well enough: its latest calibration "
        f"(#{latest['id']}) has kappa {_number(kappa.get('value'))} (95% interval "
        f"{_number(kappa.get('low'))} to {_number(kappa.get('high'))}) on {n} items; {rule}"
    )


# --- agreement over time --------------------------------------------------------------------------


def _window_start(ns: int, window: str) -> datetime:
    moment = datetime.fromtimestamp(ns / 1e9, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "week":
        return day - timedelta(days=day.weekday())  # Monday
    return day


def _se(figure: Mapping[str, Any]) -> float | None:
    if figure.get("low") is None or figure.get("high") is None:
        return None
    return (float(figure["high"]) - float(figure["low"])) / (2 * 1.959963984540054)


def drift_of(
    window: Mapping[str, Any], baseline: Mapping[str, Any] | None, min_kappa: float
) -> tuple[bool, str | None, float | None]:
    """Whether a window's kappa drifted: (flag, why, the z test's p-value)."""
    kappa = window["kappa"]
    if kappa.get("value") is None:
        return False, None, None
    p_value = None
    if baseline is not None and baseline.get("value") is not None:
        se_w, se_b = _se(kappa), _se(baseline)
        if se_w is not None and se_b is not None and se_w + se_b > 0:
            z = (float(baseline["value"]) - float(kappa["value"])) / math.hypot(se_w, se_b)
            p_value = 1.0 - normal_cdf(z)
            if p_value < 0.05:
                return True, "below the calibration's kappa (one-sided z test)", p_value
    if kappa.get("high") is not None and float(kappa["high"]) < min_kappa:
        return (
            True,
            f"the whole interval is below the project's minimum kappa {min_kappa:g}",
            p_value,
        )
    return False, None, p_value


def agreement(
    rt: Runtime,
    who: Principal,
    evaluator_id: int,
    *,
    window: str = "week",
    version: int | None = None,
    act: bool = True,
) -> dict[str, Any]:
    """Per window, the judge version's agreement with people on the items labelled in it (the
    judge's online scores of the same traces against the labels of the rubric of its latest
    calibration); a drifted latest window pauses the rules using the judge and sends one alert."""
    if window not in WINDOWS:
        raise UserError(f"window must be one of {', '.join(WINDOWS)}")
    with rt.read() as conn:
        evaluator = _evaluator(conn, who, evaluator_id, "viewer")
        found = _version(conn, evaluator, version)
        latest = calibration_store.latest_for_version(conn, int(found["id"]))
        if latest is None:
            raise UserError(
                f"judge {evaluator['name']!r} v{found['version']} has no calibration yet: "
                "calibrate it against a rubric first"
            )
        rubric = _rubric_of(conn, evaluator, int(latest["rubric_id"]))
        truths, _unresolved = human_truth(conn, rubric)
        scored = calibration_store.judge_scores(
            conn,
            int(evaluator["project_id"]),
            str(evaluator["name"]),
            sorted({t["trace_id"] for t in truths}),
        )
        _required, min_kappa, _min_items = gate_settings(
            project_store.settings_of(conn, str(evaluator["project"]))
        )
        # Alerts already sent, and how their delivery went (a webhook that failed says so here).
        sent = {
            int(alert["window_start_ns"]): {
                "created_ns": alert["created_ns"],
                "delivery": alert["delivery"],
            }
            for alert in calibration_store.alerts(conn, int(found["id"]))
        }
    verdicts: dict[tuple[str, str], Any] = {}
    for score in scored:
        meta = score["metadata"] or {}
        if meta.get("evaluator_id") != evaluator_id or meta.get("evaluator_version") != int(
            found["version"]
        ):
            continue
        verdicts[str(score["trace_id"]), str(score["span_id"] or "")] = score["label"]
    mapping = latest["mapping"]
    buckets: dict[datetime, list[tuple[Any, Any]]] = {}
    for truth in truths:
        label = verdicts.get((truth["trace_id"], truth["span_id"] or ""))
        verdict = None if label is None else mapping.get(str(label))
        if verdict is None:
            continue
        start = _window_start(int(truth["labelled_ns"]), window)
        buckets.setdefault(start, []).append((verdict, truth["truth"]))
    baseline = (latest["summary"] or {}).get("kappa")
    series = []
    for start in sorted(buckets):
        figures = _figures_of(rubric, buckets[start])
        entry: dict[str, Any] = {
            "start": start.isoformat(),
            "start_ns": int(start.timestamp() * 1e9),
            "n": figures.n,
            "kappa": _figure(figures.kappa),
            "accuracy": _figure(figures.accuracy),
        }
        flagged, why, p_value = drift_of(entry, baseline, min_kappa)
        entry.update(drift=flagged, drift_reason=why, p_value=p_value)
        entry["alert"] = sent.get(entry["start_ns"])
        series.append(entry)
    result = {
        "evaluator_id": evaluator_id,
        "evaluator": evaluator["name"],
        "version": found["version"],
        "window": window,
        "rubric_id": rubric["id"],
        "calibration": {"id": latest["id"], "kappa": baseline, "n": latest["summary"].get("n")},
        "min_kappa": min_kappa,
        "test": DRIFT_TEST,
        "series": series,
        "paused_rules": [],
        "alerted": False,
    }
    if act and series and series[-1]["drift"]:
        result.update(_act_on_drift(rt, evaluator, found, latest, series[-1]))
    return result


def _act_on_drift(
    rt: Runtime,
    evaluator: Mapping[str, Any],
    version: Mapping[str, Any],
    latest: Mapping[str, Any],
    window: Mapping[str, Any],
) -> dict[str, Any]:
    """Pause the rules using the judge and, once per version and window, send the alert."""
    kappa, baseline = window["kappa"], latest["summary"].get("kappa") or {}
    figures = {
        "event": "judge.drift",
        "project": evaluator["project"],
        "evaluator": evaluator["name"],
        "evaluator_id": evaluator["id"],
        "version": version["version"],
        "window": {k: window[k] for k in ("start", "n", "kappa", "accuracy", "p_value")},
        "reason": window["drift_reason"],
        "calibration": {"id": latest["id"], "kappa": baseline, "n": latest["summary"].get("n")},
        "test": DRIFT_TEST,
        "link": webhooks.absolute(
            rt.settings.public_url, f"/p/{evaluator['project']}/evaluators/{evaluator['id']}"
        ),
    }
    reason = (
        f"paused: judge {evaluator['name']!r} v{version['version']} drifted in the window from "
        f"{window['start'][:10]}: kappa {_number(kappa.get('value'))} "
        f"({_number(kappa.get('low'))} to {_number(kappa.get('high'))}) on {window['n']} items, "
        f"against {_number(baseline.get('value'))} at calibration #{latest['id']} "
        f"({window['drift_reason']})"
    )
    stamp = now_ns()
    with rt.write() as conn:
        paused = calibration_store.pause_rules_of(conn, int(evaluator["id"]), reason, stamp)
        fresh = calibration_store.record_alert(
            conn, int(version["id"]), int(window["start_ns"]), figures, stamp
        )
        hook = (project_store.settings_of(conn, str(evaluator["project"])) or {}).get(
            "judge_alert_webhook"
        )
    delivery = None
    if fresh and hook:
        delivery = _send(rt, str(hook), figures)
        with rt.write() as conn:
            calibration_store.set_delivery(
                conn, int(version["id"]), int(window["start_ns"]), delivery
            )
    return {"paused_rules": paused, "alerted": fresh and bool(hook), "delivery": delivery}


def _send(rt: Runtime, url: str, body: Mapping[str, Any]) -> str:
    """POST the alert through the egress policy; what happened, never an exception."""
    delivery = webhooks.post_json(rt.egress, url, body)
    # A taken alert reads as the receiver's status code ("204"), as it always has.
    return delivery.detail


# --- the worker's watch ---------------------------------------------------------------------------


def watch(rt: Runtime) -> list[int]:
    """What the online worker checks now and then, for each judge an enabled rule uses: its
    current version meets the project's gate (an edited prompt is a new version that must be
    calibrated again), and its latest window of agreement with people has not drifted. Rules
    using a judge that fails either are paused, saying why; their ids."""
    who = Principal.operator()
    with rt.read() as conn:
        enabled = [rule for rule in online_store.list_rules(conn) if rule["enabled"]]
        used = sorted({int(e) for rule in enabled for e in rule["evaluators"]})
        versions = online_store.current_versions(conn, used)
        problems = {
            int(version["id"]): problem
            for version in versions
            if version["kind"] == "judge"
            and (
                problem := gate_problem(
                    conn, version, int(version["version_id"]), int(version["version"])
                )
            )
        }
        calibrated = [
            version
            for version in versions
            if int(version["id"]) not in problems
            and calibration_store.latest_for_version(conn, int(version["version_id"])) is not None
        ]
    paused: list[int] = []
    for evaluator_id, problem in problems.items():
        with rt.write() as conn:
            paused += calibration_store.pause_rules_of(
                conn, evaluator_id, f"paused: {problem}", now_ns()
            )
    for version in calibrated:
        found = agreement(rt, who, int(version["id"]))
        paused += found["paused_rules"]
    return paused


# --- what the evaluator and calibration pages show ------------------------------------------------


def passes(summary: Mapping[str, Any], min_kappa: float, min_items: int) -> bool:
    """Whether a calibration's figures meet a gate of ``min_kappa`` on ``min_items`` items."""
    kappa = (summary.get("kappa") or {}).get("value")
    return int(summary.get("n") or 0) >= min_items and kappa is not None and kappa >= min_kappa


def judge_settings(rt: Runtime, who: Principal, project: str) -> dict[str, Any]:
    """The project's gate and drift-alert settings; the webhook's URL (it may hold a token)
    only for the project's administrators."""
    with rt.read() as conn:
        project_id(conn, who, project)
        settings = project_store.settings_of(conn, project) or {}
    required, min_kappa, min_items = gate_settings(settings)
    hook = settings.get("judge_alert_webhook")
    return {
        "judges_must_be_calibrated": required,
        "calibration_min_kappa": min_kappa,
        "calibration_min_items": min_items,
        "judge_alert_webhook": hook if who.can(project, "admin") else None,
        "webhook_set": bool(hook),
    }


def set_judge_settings(
    rt: Runtime, who: Principal, project: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Change the gate and drift-alert settings (administrators); a webhook of None removes it."""
    check_settings(settings)
    with rt.write() as conn:
        project_id(conn, who, project, "admin")
        project_store.update_settings(conn, project, dict(settings))
    return judge_settings(rt, who, project)


def evaluator_overview(rt: Runtime, who: Principal, evaluator_id: int) -> dict[str, Any]:
    """For the evaluator's page: its calibrations (newest first) each with the project's gate
    verdict, the rubrics it can be calibrated against, and its current version's agreement
    over time (read only: the worker's watch acts on drift)."""
    with rt.read() as conn:
        evaluator = _evaluator(conn, who, evaluator_id, "viewer")
        found = calibration_store.list_for(conn, evaluator_id)
        _required, min_kappa, min_items = gate_settings(
            project_store.settings_of(conn, str(evaluator["project"]))
        )
        rubrics = [
            {"id": r["id"], "name": r["name"], "kind": r["kind"], "version": r["version"]}
            for r in rubric_store.list_rubrics(conn, int(evaluator["project_id"]))
            if r["kind"] != "text" and not r.get("multiple")
        ]
        names = {int(r["id"]): str(r["name"]) for r in rubrics}
        latest = calibration_store.latest_for_version(conn, int(evaluator["version_id"]))
    items = []
    for row in found:
        view = _view(row, evaluator)
        view["rubric"] = names.get(int(row["rubric_id"]), f"#{row['rubric_id']}")
        view["gate_ok"] = passes(row["summary"] or {}, min_kappa, min_items)
        items.append(view)
    series = None
    if evaluator["kind"] == "judge" and latest is not None:
        series = agreement(rt, who, evaluator_id, act=False)
    return {
        "calibrations": items,
        "rubrics": rubrics,
        "min_kappa": min_kappa,
        "min_items": min_items,
        "agreement": series,
    }


def calibration_page(
    rt: Runtime, who: Principal, evaluator_id: int, calibration_id: int
) -> dict[str, Any]:
    """A calibration with what its page needs: the rubric (its choices, for the mapping), the
    judge's choices, the gate verdict, and the comparison with the evaluator's previous
    calibration against the same rubric (McNemar on the items both judged)."""
    with rt.read() as conn:
        evaluator, found = _calibration(conn, who, evaluator_id, calibration_id)
        rubric = _rubric_of(conn, evaluator, int(found["rubric_id"]))
        version = online_store.version_row(conn, int(found["evaluator_version_id"]))
        assert version is not None
        _required, min_kappa, min_items = gate_settings(
            project_store.settings_of(conn, str(evaluator["project"]))
        )
        earlier = [
            row
            for row in calibration_store.list_for(conn, evaluator_id)
            if int(row["id"]) < calibration_id and int(row["rubric_id"]) == int(found["rubric_id"])
        ]
    view = _view(found, evaluator)
    previous = None
    if earlier:
        previous = compare(rt, who, evaluator_id, int(earlier[0]["id"]), calibration_id)
    return {
        "calibration": view,
        "rubric": {
            "id": rubric["id"],
            "name": rubric["name"],
            "kind": rubric["kind"],
            "choices": [c["name"] for c in rubric.get("choices") or []],
            "min": rubric.get("min"),
            "max": rubric.get("max"),
        },
        "judge_choices": list(_judge_choices(version["definition"])),
        "gate_ok": passes(found["summary"] or {}, min_kappa, min_items),
        "min_kappa": min_kappa,
        "min_items": min_items,
        "previous": previous,
        "disagreements": len(disagreements(rt, who, evaluator_id, calibration_id)),
    }
