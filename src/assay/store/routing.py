"""Routing to people's SQL: the items a rule's actions added to review queues (one row per
rule, trigger, queue and item, so nothing is routed twice), and the scores the feedback sweep
reads (end-user feedback and the rule's judges' scores, after the rule's cursor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assay.store.tables import rule_routes, rules, scores

SCORE_COLUMNS = [
    scores.c.id,
    scores.c.trace_id,
    scores.c.span_id,
    scores.c.name,
    scores.c.value,
    scores.c.label,
    scores.c.source,
    scores.c.review_id,
    scores.c.metadata,
]


def record(conn: Connection, row: dict[str, Any]) -> bool:
    """Note an item routed by a rule's trigger; False when it was routed before (nothing
    written)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    done = conn.execute(
        dialect.insert(rule_routes)
        .values(**row)
        .on_conflict_do_nothing()
        .returning(rule_routes.c.id)
    ).first()
    return done is not None


def counts(conn: Connection, rule_id: int) -> dict[str, int]:
    """Items routed by the rule, per trigger."""
    rows = conn.execute(
        select(rule_routes.c.trigger, func.count())
        .where(rule_routes.c.rule_id == rule_id)
        .group_by(rule_routes.c.trigger)
    )
    return {str(trigger): int(n) for trigger, n in rows}


def routed(conn: Connection, rule_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The rule's last routed items, newest first."""
    rows = conn.execute(
        select(
            rule_routes.c.trigger,
            rule_routes.c.queue_id,
            rule_routes.c.trace_id,
            rule_routes.c.span_id,
            rule_routes.c.detail,
            rule_routes.c.created_ns,
        )
        .where(rule_routes.c.rule_id == rule_id)
        .order_by(rule_routes.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def max_score_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(scores.c.id), 0))).scalar_one())


def scores_after(
    conn: Connection, project_id: int, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """The project's scores stored after ``after_id``, in order."""
    rows = conn.execute(
        select(*SCORE_COLUMNS)
        .where(scores.c.project_id == project_id, scores.c.id > after_id)
        .order_by(scores.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def scores_on(
    conn: Connection, project_id: int, trace_ids: Sequence[str], names: Sequence[str]
) -> list[dict[str, Any]]:
    """On these traces of the project: end-user feedback (human scores from no review) and the
    scores named ``names`` that no person gave (the judges'), in order."""
    if not trace_ids:
        return []
    rows = conn.execute(
        select(*SCORE_COLUMNS)
        .where(
            scores.c.project_id == project_id,
            scores.c.trace_id.in_(list(trace_ids)),
            (
                (scores.c.source == "human") & scores.c.review_id.is_(None)
                | ((scores.c.source != "human") & scores.c.name.in_(list(names)))
            ),
        )
        .order_by(scores.c.id)
    )
    return [dict(row._mapping) for row in rows]


def move_cursor(conn: Connection, rule_id: int, old: int | None, new: int) -> bool:
    """Advance the rule's feedback cursor if no one else moved it (False: someone did)."""
    condition = rules.c.route_cursor.is_(None) if old is None else rules.c.route_cursor == old
    done = conn.execute(
        update(rules).where(rules.c.id == rule_id, condition).values(route_cursor=new)
    )
    return bool(done.rowcount)
