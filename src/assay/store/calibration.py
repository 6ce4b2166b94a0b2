"""Judge calibration's SQL: calibration runs and their items, judge-to-rubric mappings, the
judge scores and people's labels that agreement over time pairs, drift alerts, and pausing the
rules that use a drifted judge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assay.store.tables import (
    calibration_items,
    calibrations,
    judge_drift_alerts,
    judge_mappings,
    rule_evaluators,
    rules,
    scores,
)

CHUNK = 500


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- calibrations -------------------------------------------------------------------------------


def insert_calibration(conn: Connection, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            calibrations.insert().values(**values).returning(calibrations.c.id)
        ).scalar_one()
    )


def add_items(conn: Connection, calibration_id: int, items: Sequence[dict[str, Any]]) -> None:
    rows = [{**item, "calibration_id": calibration_id} for item in items]
    for chunk in _chunks(rows):
        conn.execute(calibration_items.insert(), list(chunk))


def finish(
    conn: Connection, calibration_id: int, *, status: str, summary: dict[str, Any], at_ns: int
) -> None:
    conn.execute(
        update(calibrations)
        .where(calibrations.c.id == calibration_id)
        .values(status=status, summary=summary, finished_ns=at_ns)
    )


def set_summary(
    conn: Connection, calibration_id: int, mapping: dict[str, Any], summary: dict[str, Any]
) -> None:
    conn.execute(
        update(calibrations)
        .where(calibrations.c.id == calibration_id)
        .values(mapping=mapping, summary=summary)
    )


def get(conn: Connection, calibration_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(calibrations).where(calibrations.c.id == calibration_id)).first()
    return dict(row._mapping) if row is not None else None


def list_for(conn: Connection, evaluator_id: int, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(calibrations)
        .where(calibrations.c.evaluator_id == evaluator_id)
        .order_by(calibrations.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def latest_for_version(conn: Connection, version_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(calibrations)
        .where(calibrations.c.evaluator_version_id == version_id, calibrations.c.status == "done")
        .order_by(calibrations.c.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def items(conn: Connection, calibration_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(calibration_items)
        .where(calibration_items.c.calibration_id == calibration_id)
        .order_by(calibration_items.c.item_id)
    )
    return [dict(row._mapping) for row in rows]


# --- mappings -----------------------------------------------------------------------------------


def mapping(conn: Connection, evaluator_id: int, rubric_id: int) -> dict[str, Any] | None:
    found = conn.execute(
        select(judge_mappings.c.mapping).where(
            judge_mappings.c.evaluator_id == evaluator_id, judge_mappings.c.rubric_id == rubric_id
        )
    ).scalar()
    return dict(found) if isinstance(found, dict) else None


def set_mapping(
    conn: Connection, evaluator_id: int, rubric_id: int, value: dict[str, Any], at_ns: int
) -> None:
    conn.execute(
        delete(judge_mappings).where(
            judge_mappings.c.evaluator_id == evaluator_id, judge_mappings.c.rubric_id == rubric_id
        )
    )
    conn.execute(
        judge_mappings.insert().values(
            evaluator_id=evaluator_id, rubric_id=rubric_id, mapping=value, updated_ns=at_ns
        )
    )


# --- agreement over time ------------------------------------------------------------------------


def judge_scores(
    conn: Connection, project_id: int, name: str, trace_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Automated scores named ``name`` on the traces (online judges' scores carry their
    evaluator and version in their metadata)."""
    out: list[dict[str, Any]] = []
    for chunk in _chunks(list(trace_ids)):
        rows = conn.execute(
            select(
                scores.c.trace_id,
                scores.c.span_id,
                scores.c.value,
                scores.c.label,
                scores.c.rationale,
                scores.c.metadata,
                scores.c.created_ns,
            ).where(
                scores.c.project_id == project_id,
                scores.c.name == name,
                scores.c.review_id.is_(None),
                scores.c.trace_id.in_(list(chunk)),
            )
        )
        out += [dict(row._mapping) for row in rows]
    return out


def record_alert(
    conn: Connection, version_id: int, window_start_ns: int, figures: dict[str, Any], at_ns: int
) -> bool:
    """Note an alert for the version's window; False when one was noted already."""
    values = {
        "evaluator_version_id": version_id,
        "window_start_ns": window_start_ns,
        "figures": figures,
        "created_ns": at_ns,
    }
    dialect = conn.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(judge_drift_alerts).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(judge_drift_alerts).on_conflict_do_nothing()
    else:  # pragma: no cover - the two engines above are the supported ones
        raise RuntimeError(f"unsupported database {dialect}")
    # rowcount is -1 here on PostgreSQL (psycopg): ask for the new row's id instead.
    inserted = conn.execute(statement.values(**values).returning(judge_drift_alerts.c.id))
    return inserted.first() is not None


def set_delivery(conn: Connection, version_id: int, window_start_ns: int, delivery: str) -> None:
    conn.execute(
        update(judge_drift_alerts)
        .where(
            and_(
                judge_drift_alerts.c.evaluator_version_id == version_id,
                judge_drift_alerts.c.window_start_ns == window_start_ns,
            )
        )
        .values(delivery=delivery)
    )


def alerts(conn: Connection, version_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(judge_drift_alerts)
        .where(judge_drift_alerts.c.evaluator_version_id == version_id)
        .order_by(judge_drift_alerts.c.window_start_ns)
    )
    return [dict(row._mapping) for row in rows]


def pause_rules_of(conn: Connection, evaluator_id: int, reason: str, at_ns: int) -> list[int]:
    """Turn off the enabled rules that use the evaluator, saying why; their ids."""
    found = [
        int(rule_id)
        for rule_id in conn.execute(
            select(rules.c.id)
            .join(rule_evaluators, rule_evaluators.c.rule_id == rules.c.id)
            .where(rule_evaluators.c.evaluator_id == evaluator_id, rules.c.enabled.is_(True))
        ).scalars()
    ]
    if found:
        conn.execute(
            update(rules)
            .where(rules.c.id.in_(found))
            .values(enabled=False, paused_reason=reason, updated_ns=at_ns)
        )
    return found


def backdate_labels(
    conn: Connection, project_id: int, rubric_id: int, trace_ids: Sequence[str], created_ns: int
) -> int:
    """Date people's labels of these traces on the rubric at ``created_ns``: the demo makes
    weeks of labelling history in a minute. How many labels moved."""
    moved = 0
    for chunk in _chunks(list(trace_ids)):
        done = conn.execute(
            update(scores)
            .where(
                scores.c.project_id == project_id,
                scores.c.rubric_id == rubric_id,
                scores.c.review_id.is_not(None),
                scores.c.trace_id.in_(list(chunk)),
            )
            .values(created_ns=created_ns)
        )
        moved += int(done.rowcount)
    return moved
