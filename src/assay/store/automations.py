"""Automations' SQL: the rules, their runs, and what they added where.

Two guarantees live here. A scheduled period (or a batch of arrivals) is run by one worker
only: :func:`claim` moves ``next_run_ns`` (and the arrival cursors) from the values the worker
read to the next ones in one conditional UPDATE, inside the transaction that adds the traces,
so of two servers sharing a database one claims and the other sees that it lost. And a trace
is added to a target once: :func:`mark_added` inserts into ``automation_added``, whose primary
key is (target kind, target id, trace id), ignoring the traces already there and reporting
which were new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assay.store.listing import Filters
from assay.store.tables import (
    automation_added,
    automation_runs,
    automations,
    datasets,
    projects,
    scores,
    spans,
    traces,
)
from assay.store.traces import trace_conditions

CHUNK = 500
#: Most traces one run reads as matching (a run's window is bounded by its period anyway).
MAX_MATCHED = 200_000

_COLUMNS = [*automations.c, projects.c.name.label("project")]


def _select() -> Any:
    return select(*_COLUMNS).join(projects, projects.c.id == automations.c.project_id)


def insert_automation(conn: Connection, project_id: int, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            insert(automations).values(project_id=project_id, **values).returning(automations.c.id)
        ).scalar_one()
    )


def get(conn: Connection, automation_id: int) -> dict[str, Any] | None:
    row = conn.execute(_select().where(automations.c.id == automation_id)).first()
    return None if row is None else dict(row._mapping)


def by_name(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        _select().where(automations.c.project_id == project_id, automations.c.name == name)
    ).first()
    return None if row is None else dict(row._mapping)


def list_automations(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _select().where(automations.c.project_id == project_id).order_by(automations.c.name)
    ).all()
    return [dict(row._mapping) for row in rows]


def update_automation(conn: Connection, automation_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(automations).where(automations.c.id == automation_id).values(**values))


def delete_automation(conn: Connection, automation_id: int) -> None:
    conn.execute(delete(automation_runs).where(automation_runs.c.automation_id == automation_id))
    conn.execute(delete(automations).where(automations.c.id == automation_id))


def due(conn: Connection, now_ns: int) -> list[dict[str, Any]]:
    """Enabled automations whose next run time has come, oldest first (every project)."""
    rows = conn.execute(
        _select()
        .where(
            automations.c.enabled.is_(True),
            automations.c.next_run_ns.is_not(None),
            automations.c.next_run_ns <= now_ns,
        )
        .order_by(automations.c.next_run_ns, automations.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def claim(
    conn: Connection, automation: dict[str, Any], values: dict[str, Any], *, schedule: bool
) -> bool:
    """Move the automation from the state read in ``automation`` to ``values``; False when
    another worker moved it first (or it was paused meanwhile). With ``schedule`` the run time
    and the arrival cursors must still be the ones read."""
    query = update(automations).where(automations.c.id == automation["id"])
    if schedule:
        query = query.where(
            automations.c.enabled.is_(True),
            automations.c.next_run_ns == automation["next_run_ns"],
        )
    query = query.where(
        automations.c.cursor_span_id == automation["cursor_span_id"],
        automations.c.cursor_score_id == automation["cursor_score_id"],
    )
    return bool(conn.execute(query.values(**values)).rowcount == 1)


# --- what a run reads -------------------------------------------------------------------------


def max_ids(conn: Connection) -> tuple[int, int]:
    """The highest span id and score id stored (a new on_arrival automation starts there)."""
    span = conn.execute(select(func.coalesce(func.max(spans.c.id), 0))).scalar_one()
    score = conn.execute(select(func.coalesce(func.max(scores.c.id), 0))).scalar_one()
    return int(span), int(score)


def ready_span_id(conn: Connection, cursor: int, horizon_ns: int) -> int:
    """The highest span id such that every span after ``cursor`` up to it was stored before
    ``horizon_ns`` (span ids are assigned in commit order)."""
    first_unready = conn.execute(
        select(func.min(spans.c.id)).where(spans.c.id > cursor, spans.c.ingested_ns > horizon_ns)
    ).scalar()
    if first_unready is not None:
        return int(first_unready) - 1
    return int(conn.execute(select(func.coalesce(func.max(spans.c.id), 0))).scalar_one())


def max_score_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(scores.c.id), 0))).scalar_one())


def matching_traces(
    conn: Connection,
    project_id: int,
    filters: Filters,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    span_ids: tuple[int, int] | None = None,
    score_ids: tuple[int, int] | None = None,
) -> list[str]:
    """Ids of the project's traces the filter matches: those that started in [since, until),
    or (arrivals) those with a span stored in ``span_ids`` (low, high] or a score in
    ``score_ids`` (low, high]. At most :data:`MAX_MATCHED`, oldest first."""
    conditions = trace_conditions(conn, filters, project_id, "start")
    if since_ns is not None:
        conditions.append(traces.c.start_ns >= since_ns)
    if until_ns is not None:
        conditions.append(traces.c.start_ns < until_ns)
    arrived = []
    if span_ids is not None and span_ids[1] > span_ids[0]:
        arrived.append(
            traces.c.trace_id.in_(
                select(spans.c.trace_id)
                .where(
                    spans.c.project_id == project_id,
                    spans.c.id > span_ids[0],
                    spans.c.id <= span_ids[1],
                )
                .distinct()
            )
        )
    if score_ids is not None and score_ids[1] > score_ids[0]:
        arrived.append(
            traces.c.trace_id.in_(
                select(scores.c.trace_id)
                .where(
                    scores.c.project_id == project_id,
                    scores.c.id > score_ids[0],
                    scores.c.id <= score_ids[1],
                    scores.c.trace_id.is_not(None),
                )
                .distinct()
            )
        )
    if span_ids is not None or score_ids is not None:
        if not arrived:
            return []
        conditions.append(or_(*arrived))
    query = (
        select(traces.c.trace_id)
        .where(*conditions)
        .order_by(traces.c.start_ns, traces.c.trace_id)
        .limit(MAX_MATCHED)
    )
    return [str(row[0]) for row in conn.execute(query)]


def dataset_named(conn: Connection, project_id: int, name: str) -> int | None:
    found = conn.execute(
        select(datasets.c.id).where(datasets.c.project_id == project_id, datasets.c.name == name)
    ).scalar()
    return None if found is None else int(found)


def trace_metadata(
    conn: Connection, project_id: int, trace_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The traces' metadata (and tags, under ``tags``), by trace id."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(trace_ids), CHUNK):
        rows = conn.execute(
            select(traces.c.trace_id, traces.c.metadata, traces.c.tags).where(
                traces.c.project_id == project_id,
                traces.c.trace_id.in_(trace_ids[start : start + CHUNK]),
            )
        )
        for row in rows:
            shown = dict(row.metadata or {})
            if row.tags:
                shown["tags"] = list(row.tags)
            found[str(row.trace_id)] = shown
    return found


# --- deduplication ----------------------------------------------------------------------------


def already_added(
    conn: Connection, target_kind: str, target_id: int, trace_ids: Sequence[str]
) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(trace_ids), CHUNK):
        found.update(
            conn.execute(
                select(automation_added.c.trace_id).where(
                    automation_added.c.target_kind == target_kind,
                    automation_added.c.target_id == target_id,
                    automation_added.c.trace_id.in_(trace_ids[start : start + CHUNK]),
                )
            ).scalars()
        )
    return found


def mark_added(
    conn: Connection,
    automation: dict[str, Any],
    trace_ids: Sequence[str],
    run_id: int,
    now_ns: int,
) -> list[str]:
    """Record that the traces go into the automation's target; the ones that were not there
    yet (another automation may have added some since they were read)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    fresh: list[str] = []
    for start in range(0, len(trace_ids), CHUNK):
        rows = [
            {
                "project_id": automation["project_id"],
                "target_kind": automation["target_kind"],
                "target_id": automation["target_id"],
                "trace_id": trace_id,
                "automation_id": automation["id"],
                "run_id": run_id,
                "added_ns": now_ns,
            }
            for trace_id in trace_ids[start : start + CHUNK]
        ]
        statement = (
            dialect.insert(automation_added)
            .on_conflict_do_nothing()
            .returning(automation_added.c.trace_id)
        )
        fresh.extend(str(row[0]) for row in conn.execute(statement, rows))
    return fresh


# --- runs -------------------------------------------------------------------------------------


def insert_run(conn: Connection, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            insert(automation_runs).values(**values).returning(automation_runs.c.id)
        ).scalar_one()
    )


def update_run(conn: Connection, run_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(automation_runs).where(automation_runs.c.id == run_id).values(**values))


def runs(conn: Connection, automation_id: int, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(automation_runs)
        .where(automation_runs.c.automation_id == automation_id)
        .order_by(automation_runs.c.id.desc())
        .limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows]


def last_runs(conn: Connection, automation_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Each automation's latest run."""
    if not automation_ids:
        return {}
    latest = (
        select(func.max(automation_runs.c.id))
        .where(automation_runs.c.automation_id.in_(list(automation_ids)))
        .group_by(automation_runs.c.automation_id)
    )
    rows = conn.execute(select(automation_runs).where(automation_runs.c.id.in_(latest))).all()
    return {int(row.automation_id): dict(row._mapping) for row in rows}


def failed_runs(conn: Connection, automation_id: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                automation_runs.c.automation_id == automation_id,
                automation_runs.c.status == "failed",
            )
        ).scalar_one()
    )
