"""Experiments: runs of an eval, with one row per case and trial."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from assay.errors import UserError
from assay.evals.rows import ExperimentRow
from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.store.engine import now_ns
from assay.store.tables import datasets, experiment_rows, experiments, traces

STATUSES = ("running", "complete", "incomplete")
#: What a re-run of a (case, trial) replaces: everything but the row's identity.
REPLACED_ON_RERUN = (
    "created_ns",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost",
    "trace_id",
    "error",
    "input",
    "expected",
    "metadata",
    "output",
    "scores",
)


def create(conn: Connection, project_id: int, values: dict[str, Any]) -> dict[str, Any]:
    now = now_ns()
    experiment_id = conn.execute(
        experiments.insert()
        .values(
            project_id=project_id,
            name=values.get("name") or f"{values['eval_name']}-{now // 1_000_000}",
            eval_name=values["eval_name"],
            dataset_id=values.get("dataset_id"),
            dataset_version=values.get("dataset_version"),
            status="running",
            created_ns=now,
            metadata=values.get("metadata") or {},
            summary={},
        )
        .returning(experiments.c.id)
    ).scalar_one()
    found = get(conn, int(experiment_id))
    assert found is not None
    return found


def get(conn: Connection, experiment_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(experiments).where(experiments.c.id == experiment_id)).first()
    return None if row is None else dict(row._mapping)


def list_experiments(
    conn: Connection, project_id: int, eval_name: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    query = select(experiments).where(experiments.c.project_id == project_id)
    if eval_name:
        query = query.where(experiments.c.eval_name == eval_name)
    query = query.order_by(experiments.c.created_ns.desc(), experiments.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def finish(
    conn: Connection, experiment_id: int, status: str, summary: dict[str, Any] | None
) -> None:
    if status not in STATUSES:
        raise UserError(f"status must be one of {', '.join(STATUSES)}")
    values: dict[str, Any] = {"status": status, "finished_ns": now_ns()}
    if summary is not None:
        values["summary"] = summary
    conn.execute(experiments.update().where(experiments.c.id == experiment_id).values(**values))


def upsert_rows(
    conn: Connection, experiment_id: int, rows: Sequence[ExperimentRow | Mapping[str, Any]]
) -> int:
    """Store rows in one statement; a row for a (case, trial) already stored replaces it (a
    resumed re-run), and of two for the same (case, trial) in one call the later one wins."""
    now = now_ns()
    by_key: dict[tuple[str, int], dict[str, Any]] = {}
    for given in rows:
        row = given if isinstance(given, ExperimentRow) else ExperimentRow.model_validate(given)
        values = row.model_dump()
        values.update(experiment_id=experiment_id, created_ns=now)
        by_key[(row.case_key, row.trial)] = values
    if not by_key:
        return 0
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    statement = insert(experiment_rows)
    statement = statement.on_conflict_do_update(
        index_elements=["experiment_id", "case_key", "trial"],
        set_={name: statement.excluded[name] for name in REPLACED_ON_RERUN},
    )
    conn.execute(statement, list(by_key.values()))
    return len(by_key)


def rows(conn: Connection, experiment_id: int, case_key: str | None = None) -> list[dict[str, Any]]:
    """The rows (or one case's), each with the tokens and cost of its case's trace."""
    found = conn.execute(
        select(
            experiment_rows,
            traces.c.input_tokens.label("trace_input_tokens"),
            traces.c.output_tokens.label("trace_output_tokens"),
            traces.c.cost.label("trace_cost"),
        )
        .select_from(
            experiment_rows.join(
                experiments, experiments.c.id == experiment_rows.c.experiment_id
            ).outerjoin(
                traces,
                and_(
                    traces.c.project_id == experiments.c.project_id,
                    traces.c.trace_id == experiment_rows.c.trace_id,
                ),
            )
        )
        .where(
            experiment_rows.c.experiment_id == experiment_id,
            *([experiment_rows.c.case_key == case_key] if case_key is not None else []),
        )
        .order_by(experiment_rows.c.case_key, experiment_rows.c.trial)
    ).all()
    out = []
    for row in found:
        item = dict(row._mapping)
        item.pop("experiment_id", None)
        for name in ("input_tokens", "output_tokens", "cost"):
            traced = item.pop(f"trace_{name}")
            if item.get(name) is None:
                item[name] = traced
        out.append(item)
    return out


def list_for_page(
    conn: Connection,
    project_id: int,
    *,
    name: str | None = None,
    dataset_id: int | None = None,
    prompt: str | None = None,
    prompt_version: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Experiments newest first, each with its dataset's name and its row and case counts;
    ``prompt`` (and ``prompt_version``): runs recorded as made with that registry prompt."""
    counts = (
        select(
            experiment_rows.c.experiment_id,
            func.count().label("row_count"),
            func.count(func.distinct(experiment_rows.c.case_key)).label("case_count"),
            func.sum(case((experiment_rows.c.error.is_not(None), 1), else_=0)).label("error_count"),
        )
        .group_by(experiment_rows.c.experiment_id)
        .subquery()
    )
    query = (
        select(
            experiments,
            datasets.c.name.label("dataset_name"),
            func.coalesce(counts.c.row_count, 0).label("row_count"),
            func.coalesce(counts.c.case_count, 0).label("case_count"),
            func.coalesce(counts.c.error_count, 0).label("error_count"),
        )
        .select_from(
            experiments.outerjoin(datasets, datasets.c.id == experiments.c.dataset_id).outerjoin(
                counts, counts.c.experiment_id == experiments.c.id
            )
        )
        .where(experiments.c.project_id == project_id)
    )
    if name:
        needle = name.lower()
        query = query.where(
            or_(
                func.lower(experiments.c.name).contains(needle, autoescape=True),
                func.lower(experiments.c.eval_name).contains(needle, autoescape=True),
            )
        )
    if dataset_id is not None:
        query = query.where(experiments.c.dataset_id == dataset_id)
    if prompt is not None:
        query = query.where(experiments.c.metadata[PROMPT_NAME].as_string() == prompt)
        if prompt_version is not None:
            query = query.where(
                experiments.c.metadata[PROMPT_VERSION].as_integer() == prompt_version
            )
    query = query.order_by(experiments.c.created_ns.desc(), experiments.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def prompt_runs(
    conn: Connection, project_id: int, prompt: str, dataset_id: int | None, limit: int = 200
) -> list[dict[str, Any]]:
    """Experiments recorded as made with registry prompt ``prompt`` (over ``dataset_id``, if
    given), newest first."""
    query = select(experiments).where(
        experiments.c.project_id == project_id,
        experiments.c.metadata[PROMPT_NAME].as_string() == prompt,
    )
    if dataset_id is not None:
        query = query.where(experiments.c.dataset_id == dataset_id)
    query = query.order_by(experiments.c.created_ns.desc(), experiments.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def row_counts(conn: Connection, experiment_id: int) -> tuple[int, int]:
    """How many rows an experiment has, and how many of them hold an error."""
    found = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((experiment_rows.c.error.is_not(None), 1), else_=0)), 0),
        ).where(experiment_rows.c.experiment_id == experiment_id)
    ).one()
    return int(found[0]), int(found[1])


def get_in_project(conn: Connection, project_id: int, experiment_id: int) -> dict[str, Any] | None:
    """The experiment with its dataset's name, or None when it is not in this project."""
    row = conn.execute(
        select(experiments, datasets.c.name.label("dataset_name"))
        .select_from(experiments.outerjoin(datasets, datasets.c.id == experiments.c.dataset_id))
        .where(experiments.c.id == experiment_id, experiments.c.project_id == project_id)
    ).first()
    return None if row is None else dict(row._mapping)


def comparable(
    conn: Connection, experiment: dict[str, Any], limit: int = 200
) -> list[dict[str, Any]]:
    """Other experiments of the same eval or over the same dataset, newest first."""
    same = experiments.c.eval_name == experiment["eval_name"]
    if experiment.get("dataset_id") is not None:
        same = or_(same, experiments.c.dataset_id == experiment["dataset_id"])
    found = conn.execute(
        select(
            experiments.c.id,
            experiments.c.name,
            experiments.c.eval_name,
            experiments.c.created_ns,
            experiments.c.status,
        )
        .where(
            experiments.c.project_id == experiment["project_id"],
            experiments.c.id != experiment["id"],
            same,
        )
        .order_by(experiments.c.created_ns.desc(), experiments.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in found]


def score_rows(conn: Connection, experiment_id: int) -> list[dict[str, Any]]:
    """Only what a summary needs (case, trial, scores): cheap for a list of running runs."""
    found = conn.execute(
        select(experiment_rows.c.case_key, experiment_rows.c.trial, experiment_rows.c.scores)
        .where(experiment_rows.c.experiment_id == experiment_id)
        .order_by(experiment_rows.c.case_key, experiment_rows.c.trial)
    )
    return [dict(row._mapping) for row in found]
