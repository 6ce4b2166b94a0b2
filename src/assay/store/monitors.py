"""Monitors' SQL: the monitors of a project, claiming the due ones (one process wins each
claim), and their evaluation history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from assay.store.tables import monitor_evaluations, monitors, projects

#: Evaluations kept per monitor (one a minute is about a day and a half); older ones go.
HISTORY_ROWS = 2_000

COLUMNS = (*monitors.c, projects.c.name.label("project"))


def insert_monitor(conn: Connection, project_id: int, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            insert(monitors).values(project_id=project_id, **values).returning(monitors.c.id)
        ).scalar_one()
    )


def get(conn: Connection, monitor_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(*COLUMNS)
        .join(projects, projects.c.id == monitors.c.project_id)
        .where(monitors.c.id == monitor_id)
    ).first()
    return dict(row._mapping) if row is not None else None


def list_for(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(*COLUMNS)
        .join(projects, projects.c.id == monitors.c.project_id)
        .where(monitors.c.project_id == project_id)
        .order_by(monitors.c.name)
    )
    return [dict(row._mapping) for row in rows]


def name_taken(conn: Connection, project_id: int, name: str, other_than: int | None) -> bool:
    query = select(monitors.c.id).where(
        monitors.c.project_id == project_id, monitors.c.name == name
    )
    if other_than is not None:
        query = query.where(monitors.c.id != other_than)
    return conn.execute(query.limit(1)).first() is not None


def update_monitor(
    conn: Connection, project_id: int, monitor_id: int, values: dict[str, Any]
) -> None:
    conn.execute(
        update(monitors)
        .where(monitors.c.id == monitor_id, monitors.c.project_id == project_id)
        .values(**values)
    )


def delete_monitor(conn: Connection, project_id: int, monitor_id: int) -> None:
    conn.execute(
        delete(monitor_evaluations).where(
            monitor_evaluations.c.monitor_id == monitor_id,
            monitor_evaluations.c.project_id == project_id,
        )
    )
    conn.execute(
        delete(monitors).where(monitors.c.id == monitor_id, monitors.c.project_id == project_id)
    )


# --- claiming -------------------------------------------------------------------------------------


def due_ids(conn: Connection, now_ns: int, limit: int) -> list[int]:
    """Enabled monitors whose evaluation is due (a cheap, indexed read; the claim decides)."""
    rows = conn.execute(
        select(monitors.c.id)
        .where(monitors.c.enabled.is_(True), monitors.c.next_due_ns <= now_ns)
        .order_by(monitors.c.next_due_ns, monitors.c.id)
        .limit(limit)
    )
    return [int(row[0]) for row in rows]


def claim(
    conn: Connection,
    monitor_id: int,
    owner: str,
    now_ns: int,
    lease_ns: int,
    next_due_ns: int,
    *,
    due_only: bool,
) -> bool:
    """Take the monitor's evaluation: one conditional UPDATE, which only one process wins (on
    PostgreSQL the row lock makes a concurrent claim re-read the row and find it taken; SQLite
    writes one at a time). ``due_only``: only when due (the worker); else whenever no live
    lease holds it (evaluate now)."""
    free = or_(monitors.c.lease_owner.is_(None), monitors.c.lease_expires_ns < now_ns)
    condition = and_(monitors.c.id == monitor_id, free)
    if due_only:
        condition = and_(condition, monitors.c.enabled.is_(True), monitors.c.next_due_ns <= now_ns)
    taken = conn.execute(
        update(monitors)
        .where(condition)
        .values(lease_owner=owner, lease_expires_ns=now_ns + lease_ns, next_due_ns=next_due_ns)
    )
    return taken.rowcount == 1


def settle(conn: Connection, monitor_id: int, owner: str, values: dict[str, Any]) -> bool:
    """Store an evaluation's outcome and release the lease, if it is still this owner's."""
    done = conn.execute(
        update(monitors)
        .where(monitors.c.id == monitor_id, monitors.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_ns=None, **values)
    )
    return done.rowcount == 1


# --- history --------------------------------------------------------------------------------------


def add_evaluation(conn: Connection, values: dict[str, Any]) -> int:
    found = int(
        conn.execute(
            insert(monitor_evaluations).values(**values).returning(monitor_evaluations.c.id)
        ).scalar_one()
    )
    oldest_kept = conn.execute(
        select(monitor_evaluations.c.id)
        .where(monitor_evaluations.c.monitor_id == values["monitor_id"])
        .order_by(monitor_evaluations.c.id.desc())
        .offset(HISTORY_ROWS - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        conn.execute(
            delete(monitor_evaluations).where(
                monitor_evaluations.c.monitor_id == values["monitor_id"],
                monitor_evaluations.c.id < oldest_kept,
            )
        )
    return found


def evaluations(
    conn: Connection, project_id: int, monitor_id: int, limit: int
) -> list[dict[str, Any]]:
    """The monitor's latest evaluations, newest first."""
    rows = conn.execute(
        select(monitor_evaluations)
        .where(
            monitor_evaluations.c.monitor_id == monitor_id,
            monitor_evaluations.c.project_id == project_id,
        )
        .order_by(monitor_evaluations.c.id.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def failed_deliveries(conn: Connection, project_id: int, monitor_id: int) -> int:
    """How many of the kept evaluations tried to notify and failed."""
    return int(
        conn.execute(
            select(func.count()).where(
                monitor_evaluations.c.monitor_id == monitor_id,
                monitor_evaluations.c.project_id == project_id,
                monitor_evaluations.c.delivered.is_(False),
            )
        ).scalar_one()
    )
