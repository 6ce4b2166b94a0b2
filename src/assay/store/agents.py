"""Agent endpoints of a project: where the server calls the team's agent, and its sealed token."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, update

from assay.store.tables import agents, projects

#: What every read gives: never the sealed token (`token_of` alone does).
PUBLIC_COLUMNS = [
    agents.c.id,
    agents.c.project_id,
    projects.c.name.label("project"),
    agents.c.name,
    agents.c.url,
    agents.c.target,
    agents.c.registered_by,
    agents.c.online,
    agents.c.created_ns,
    agents.c.updated_ns,
    agents.c.last_seen_ns,
]


def _public() -> Any:
    return select(*PUBLIC_COLUMNS).join(projects, projects.c.id == agents.c.project_id)


def get(conn: Connection, agent_id: int) -> dict[str, Any] | None:
    row = conn.execute(_public().where(agents.c.id == agent_id)).first()
    return None if row is None else dict(row._mapping)


def by_name(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        _public().where(agents.c.project_id == project_id, agents.c.name == name)
    ).first()
    return None if row is None else dict(row._mapping)


def list_agents(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _public().where(agents.c.project_id == project_id).order_by(agents.c.name, agents.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def insert(conn: Connection, project_id: int, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            agents.insert().values(project_id=project_id, **values).returning(agents.c.id)
        ).scalar_one()
    )


def change(conn: Connection, project_id: int, agent_id: int, values: dict[str, Any]) -> None:
    conn.execute(
        update(agents)
        .where(agents.c.id == agent_id, agents.c.project_id == project_id)
        .values(**values)
    )


def token_of(conn: Connection, project_id: int, agent_id: int) -> str | None:
    found = conn.execute(
        select(agents.c.token_sealed).where(
            agents.c.id == agent_id, agents.c.project_id == project_id
        )
    ).scalar()
    return None if found is None else str(found)


def remove(conn: Connection, project_id: int, agent_id: int) -> None:
    conn.execute(delete(agents).where(agents.c.id == agent_id, agents.c.project_id == project_id))
