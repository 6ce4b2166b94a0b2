"""Projects: created on first use by ingest, listed by the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite

from assay.store.engine import now_ns
from assay.store.tables import projects, spans, traces


def ensure(conn: Connection, name: str) -> int:
    """The id of project ``name``, creating it if needed (safe against concurrent creators)."""
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    conn.execute(
        insert(projects)
        .values(name=name, created_ns=now_ns(), settings={})
        .on_conflict_do_nothing(index_elements=["name"])
    )
    project_id = conn.execute(select(projects.c.id).where(projects.c.name == name)).scalar_one()
    return int(project_id)


def get_id(conn: Connection, name: str) -> int | None:
    value = conn.execute(select(projects.c.id).where(projects.c.name == name)).scalar()
    return None if value is None else int(value)


def list_projects(
    conn: Connection, *, names: set[str] | None, limit: int, after: str | None
) -> list[dict[str, Any]]:
    """Projects by name, with their span and trace counts and last activity."""
    query = select(projects.c.id, projects.c.name, projects.c.created_ns, projects.c.settings)
    if names is not None:
        query = query.where(projects.c.name.in_(sorted(names)))
    if after is not None:
        query = query.where(projects.c.name > after)
    rows = conn.execute(query.order_by(projects.c.name).limit(limit)).all()
    result = []
    for row in rows:
        trace_stats = conn.execute(
            select(func.count(), func.max(traces.c.start_ns)).where(traces.c.project_id == row.id)
        ).one()
        span_count = conn.execute(
            select(func.count()).select_from(spans).where(spans.c.project_id == row.id)
        ).scalar_one()
        result.append(
            {
                "id": row.id,
                "name": row.name,
                "created_ns": row.created_ns,
                "trace_count": int(trace_stats[0]),
                "span_count": int(span_count),
                "last_trace_ns": trace_stats[1],
                "settings": row.settings or {},
            }
        )
    return result


def update_settings(conn: Connection, name: str, settings: dict[str, Any]) -> dict[str, Any]:
    current = conn.execute(select(projects.c.settings).where(projects.c.name == name)).scalar()
    merged = {**(current or {}), **settings}
    conn.execute(projects.update().where(projects.c.name == name).values(settings=merged))
    return merged


def settings_of(conn: Connection, name: str) -> dict[str, Any] | None:
    """A project's settings, or None when there is no such project."""
    value = conn.execute(select(projects.c.settings).where(projects.c.name == name)).scalar()
    return value if isinstance(value, dict) else None


def name_of(conn: Connection, project_id: int) -> str | None:
    value = conn.execute(select(projects.c.name).where(projects.c.id == project_id)).scalar()
    return None if value is None else str(value)
