"""Experiments: runs of an eval over cases, their rows and scores, and comparisons of two.

Editors create experiments, add rows and finish them; anyone in the project reads them.
"""

from __future__ import annotations

from typing import Any

from assay.errors import NotFound
from assay.evals import compare, summarise
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.store import datasets as dataset_store
from assay.store import experiments as experiment_store
from assay.store import projects as project_store
from assay.store.database import Connection, Database

#: At most this many unsummarised experiments of a list page are summarised from their rows.
LIVE_SUMMARIES = 20


def _experiment(
    conn: Connection, who: Principal, experiment_id: int, role: str = "viewer"
) -> dict[str, Any]:
    found = experiment_store.get(conn, experiment_id)
    project = project_store.name_of(conn, found["project_id"]) if found else None
    if found is None or project is None or not who.may_see(project):
        raise NotFound(f"experiment {experiment_id} does not exist")
    who.require(project, role)
    return found


def create_experiment(
    db: Database, who: Principal, project: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Start an experiment (editors); a named dataset is pinned at its current version unless
    ``dataset_version`` says otherwise."""
    who.require(project, "editor")
    values = dict(values)
    with db.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        if values.get("dataset"):
            dataset = dataset_store.require(conn, found, values["dataset"])
            values["dataset_id"] = dataset["id"]
            if values.get("dataset_version") is None:
                values["dataset_version"] = dataset["version"]
        return experiment_store.create(conn, found, values)


def list_experiments(
    db: Database, who: Principal, project: str, eval_name: str | None, limit: int
) -> list[dict[str, Any]]:
    with db.read() as conn:
        found = project_id(conn, who, project)
        return experiment_store.list_experiments(conn, found, eval_name, limit)


def get_experiment(db: Database, who: Principal, experiment_id: int) -> dict[str, Any]:
    with db.read() as conn:
        return _experiment(conn, who, experiment_id)


def finish_experiment(
    db: Database,
    who: Principal,
    experiment_id: int,
    status: str,
    summary: dict[str, Any] | None,
) -> dict[str, Any]:
    with db.write() as conn:
        _experiment(conn, who, experiment_id, "editor")
        experiment_store.finish(conn, experiment_id, status, summary)
        finished = experiment_store.get(conn, experiment_id)
    assert finished is not None
    return finished


def add_rows(db: Database, who: Principal, experiment_id: int, rows: list[dict[str, Any]]) -> int:
    """Store rows (a case's trial each), replacing rows of the same case and trial."""
    with db.write() as conn:
        _experiment(conn, who, experiment_id, "editor")
        return experiment_store.upsert_rows(conn, experiment_id, rows)


def experiment_rows(db: Database, who: Principal, experiment_id: int) -> list[dict[str, Any]]:
    with db.read() as conn:
        _experiment(conn, who, experiment_id)
        return experiment_store.rows(conn, experiment_id)


def compare_experiments(
    db: Database, who: Principal, baseline_id: int, candidate_id: int
) -> dict[str, Any]:
    """Per-case deltas and per-score paired comparison (candidate minus baseline)."""
    with db.read() as conn:
        _experiment(conn, who, baseline_id)
        _experiment(conn, who, candidate_id)
        baseline = experiment_store.rows(conn, baseline_id)
        candidate = experiment_store.rows(conn, candidate_id)
    return compare(baseline, candidate)


# --- summaries -----------------------------------------------------------------------------


def score_names(rows: list[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for score in row.get("scores") or []:
            names.setdefault(str(score.get("name")), None)
    return list(names)


def score_summary(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Per score: the eval runner's own summary (mean, 95% interval, pass@k, pass counts, the
    most common error messages), in the order of ``names``."""
    computed = summarise(rows)
    out = []
    for name in names:
        item = computed.get(name)
        estimate = item.estimate if item else None
        out.append(
            {
                "name": name,
                "mean": estimate.mean if estimate else None,
                "low": estimate.low if estimate else None,
                "high": estimate.high if estimate else None,
                "n": item.scored if item else 0,
                "errors": item.errors if item else 0,
                "binary": item.binary if item else False,
                "passed": item.passed if item else None,
                "k": item.k if item else None,
                "pass_at_k": item.pass_at_k.mean if item and item.pass_at_k else None,
                "pass_hat_k": item.pass_hat_k.mean if item and item.pass_hat_k else None,
                "case_variance": item.case_variance if item else None,
                "error_messages": item.error_messages if item else (),
            }
        )
    return out


# --- the pages -----------------------------------------------------------------------------


def experiments_overview(
    db: Database,
    who: Principal,
    project: str,
    *,
    name: str | None,
    dataset: str | None,
    prompt: str | None = None,
    prompt_version: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The list page: experiments (newest first, filtered by name, dataset, and the registry
    prompt and version they were recorded as made with) and the project's datasets. Runs still
    going are summarised from their rows."""
    with db.read() as conn:
        who.require(project)
        found = project_store.get_id(conn, project)
        if found is None:
            return [], []
        datasets = dataset_store.list_datasets(conn, found)
        dataset_id = next((d["id"] for d in datasets if d["name"] == dataset), None)
        if dataset and dataset_id is None:
            return [], datasets
        items = experiment_store.list_for_page(
            conn,
            found,
            name=name,
            dataset_id=dataset_id,
            prompt=prompt,
            prompt_version=prompt_version if prompt else None,
        )
        pending = [i for i in items if not i["summary"] and i["row_count"]]
        for item in pending[:LIVE_SUMMARIES]:
            rows = experiment_store.score_rows(conn, int(item["id"]))
            item["summary"] = {s["name"]: s for s in score_summary(rows, score_names(rows))}
    return items, datasets


def _in_project(conn: Connection, who: Principal, project: str, *ids: int) -> list[dict[str, Any]]:
    found = project_id(conn, who, project)
    experiments = [experiment_store.get_in_project(conn, found, i) for i in ids]
    present = [e for e in experiments if e is not None]
    if len(present) < len(ids):
        if len(ids) == 1:
            raise NotFound(f"experiment {ids[0]} is not in {project!r}")
        raise NotFound(f"experiments {' and '.join(map(str, ids))} are not all in {project!r}")
    return present


def experiment_view(
    db: Database, who: Principal, project: str, experiment_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """One experiment of ``project``: the experiment, its rows, and others to compare with."""
    with db.read() as conn:
        [found] = _in_project(conn, who, project, experiment_id)
        return (
            found,
            experiment_store.rows(conn, experiment_id),
            experiment_store.comparable(conn, found),
        )


def comparison_view(
    db: Database, who: Principal, project: str, baseline_id: int, candidate_id: int
) -> dict[str, Any]:
    """Two experiments of ``project``, their rows, and others to compare with."""
    with db.read() as conn:
        baseline, candidate = _in_project(conn, who, project, baseline_id, candidate_id)
        return {
            "baseline": baseline,
            "candidate": candidate,
            "a_rows": experiment_store.rows(conn, baseline_id),
            "b_rows": experiment_store.rows(conn, candidate_id),
            "others": experiment_store.comparable(conn, baseline),
        }


def case_rows(
    db: Database, who: Principal, project: str, baseline_id: int, candidate_id: int, key: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One case's rows in each of two experiments of ``project``."""
    with db.read() as conn:
        _in_project(conn, who, project, baseline_id, candidate_id)
        return (
            experiment_store.rows(conn, baseline_id, case_key=key),
            experiment_store.rows(conn, candidate_id, case_key=key),
        )
