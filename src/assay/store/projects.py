"""Projects: created on first use by ingest, listed by the API."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from assay.errors import UserError
from assay.store.engine import now_ns
from assay.store.tables import projects, spans, traces

MAX_NAME_CHARS = 200


class InvalidProjectName(UserError):
    """A project name the store will not create."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a project, or None when it can."""
    if not name or not name.strip():
        return "a project name cannot be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"a project name has at most {MAX_NAME_CHARS} characters (got {len(name)})"
    # NUL cannot be stored by PostgreSQL; other control characters only hide in names.
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "a project name cannot contain control characters (NUL, tab, newline...)"
    return None


def check_name(name: str) -> None:
    problem = name_problem(name)
    if problem is not None:
        raise InvalidProjectName(f"project name {name[:80]!r} is not valid: {problem}")


def existing(conn: Connection, names: Iterable[str]) -> dict[str, int]:
    """The ids of those of ``names`` that are projects."""
    wanted = sorted(set(names))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(projects.c.name, projects.c.id).where(
                projects.c.name.in_(wanted[start : start + 500])
            )
        )
        found.update((str(name), int(project_id)) for name, project_id in rows)
    return found


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(projects)).scalar_one())


def ensure(conn: Connection, name: str) -> int:
    """The id of project ``name``, creating it if needed (safe against concurrent creators).

    Raises InvalidProjectName for a name no project may have."""
    check_name(name)
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


def project_names(conn: Connection, limit: int = 500) -> list[dict[str, Any]]:
    """Projects by name (id, name, created), without counting anything."""
    query = select(projects.c.id, projects.c.name, projects.c.created_ns).order_by(projects.c.name)
    return [dict(row._mapping) for row in conn.execute(query.limit(limit))]


def project_activity(conn: Connection, project_ids: list[int], since_ns: int) -> dict[int, Any]:
    """Per project: total traces, traces and failed traces since ``since_ns``, last trace time.

    Counts read the (project, start) index only; the error count reads the recent rows alone.
    """
    out: dict[int, dict[str, Any]] = {}
    for project_id in project_ids:
        total, last = conn.execute(
            select(func.count(), func.max(traces.c.start_ns)).where(
                traces.c.project_id == project_id
            )
        ).one()
        recent, failed = conn.execute(
            select(func.count(), func.sum(case((traces.c.error_count > 0, 1), else_=0))).where(
                traces.c.project_id == project_id, traces.c.start_ns >= since_ns
            )
        ).one()
        out[project_id] = {
            "trace_count": int(total or 0),
            "last_trace_ns": last,
            "recent_traces": int(recent or 0),
            "recent_errors": int(failed or 0),
        }
    return out
