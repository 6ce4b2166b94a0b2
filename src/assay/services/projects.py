"""Projects: listing them, their settings, and finding one a principal may use."""

from __future__ import annotations

import time
from typing import Any

from assay.errors import ProjectNotFound
from assay.services.principal import Principal
from assay.services.runtime import Runtime
from assay.store import projects as project_store
from assay.store.database import Connection, Database

# Re-exported for ingest: server/ asks the services, not the store.
from assay.store.projects import name_problem as name_problem

DAY_NS = 86_400 * 10**9


def project_id(conn: Connection, who: Principal, project: str, role: str = "viewer") -> int:
    """The id of a project ``who`` holds ``role`` in; :class:`ProjectNotFound` if it is hidden
    from them or does not exist, :class:`~assay.errors.Forbidden` if their role is too low."""
    who.require(project, role)
    found = project_store.get_id(conn, project)
    if found is None:
        raise ProjectNotFound(project, hidden=False)
    return found


def ensure_project(conn: Connection, who: Principal, project: str, role: str) -> int:
    """The id of a project ``who`` may write to with ``role``, created on first use."""
    who.require(project, role)
    return project_store.ensure(conn, project)


def list_projects(
    db: Database, who: Principal, *, limit: int, after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Projects ``who`` may see, with span and trace counts: one page and the next cursor."""
    names = None if who.every_project else set(who.roles)
    with db.read() as conn:
        items = project_store.list_projects(conn, names=names, limit=limit + 1, after=after)
    more = len(items) > limit
    items = items[:limit]
    return items, items[-1]["name"] if more else None


def projects_overview(db: Database, who: Principal) -> list[dict[str, Any]]:
    """The projects page: each visible project with its traces in the last day."""
    with db.read() as conn:
        found = [p for p in project_store.project_names(conn) if who.may_see(str(p["name"]))]
        activity = project_store.project_activity(
            conn, [p["id"] for p in found], time.time_ns() - DAY_NS
        )
    return [{**p, **activity[p["id"]]} for p in found]


def update_settings(
    rt: Runtime, who: Principal, project: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Merge ``settings`` into a project's (price overrides, ...); needs an admin."""
    with rt.write() as conn:
        project_id(conn, who, project, "admin")
        merged = project_store.update_settings(conn, project, settings)
    rt.forget_prices(project)
    return merged
