"""Rubrics: what reviewers are asked, per project, versioned on every edit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select, update

from assay.store.engine import now_ns
from assay.store.tables import projects, rubric_versions, rubrics

_COLUMNS = [
    rubrics.c.id,
    rubrics.c.project_id,
    projects.c.name.label("project"),
    rubrics.c.name,
    rubrics.c.kind,
    rubrics.c.version,
    rubrics.c.created_ns,
    rubrics.c.updated_ns,
    rubrics.c.definition,
]


def _row(mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    definition = row.pop("definition") or {}
    return {**row, **definition}


def _select() -> Any:
    return select(*_COLUMNS).join(projects, projects.c.id == rubrics.c.project_id)


def find_by_name(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        _select().where(rubrics.c.project_id == project_id, rubrics.c.name == name)
    ).first()
    return None if row is None else _row(row._mapping)


def get(conn: Connection, rubric_id: int) -> dict[str, Any] | None:
    row = conn.execute(_select().where(rubrics.c.id == rubric_id)).first()
    return None if row is None else _row(row._mapping)


def get_many(conn: Connection, rubric_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    wanted = list(set(rubric_ids))
    if not wanted:
        return {}
    rows = conn.execute(_select().where(rubrics.c.id.in_(wanted))).all()
    return {int(row.id): _row(row._mapping) for row in rows}


def list_rubrics(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _select().where(rubrics.c.project_id == project_id).order_by(rubrics.c.name)
    ).all()
    return [_row(row._mapping) for row in rows]


def create(
    conn: Connection,
    project_id: int,
    name: str,
    kind: str,
    definition: dict[str, Any],
    author: str | None,
) -> int:
    now = now_ns()
    rubric_id = int(
        conn.execute(
            rubrics.insert()
            .values(
                project_id=project_id,
                name=name,
                kind=kind,
                version=1,
                created_ns=now,
                updated_ns=now,
                definition=definition,
            )
            .returning(rubrics.c.id)
        ).scalar_one()
    )
    _keep_version(conn, rubric_id, 1, name, kind, definition, author, now)
    return rubric_id


def new_version(
    conn: Connection,
    rubric_id: int,
    version: int,
    name: str,
    kind: str,
    definition: dict[str, Any],
    author: str | None,
) -> None:
    now = now_ns()
    conn.execute(
        update(rubrics)
        .where(rubrics.c.id == rubric_id)
        .values(name=name, kind=kind, version=version, updated_ns=now, definition=definition)
    )
    _keep_version(conn, rubric_id, version, name, kind, definition, author, now)


def _keep_version(
    conn: Connection,
    rubric_id: int,
    version: int,
    name: str,
    kind: str,
    definition: dict[str, Any],
    author: str | None,
    now: int,
) -> None:
    conn.execute(
        rubric_versions.insert().values(
            rubric_id=rubric_id,
            version=version,
            created_ns=now,
            author=author,
            name=name,
            kind=kind,
            definition=definition,
        )
    )


def versions(conn: Connection, rubric_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(rubric_versions)
        .where(rubric_versions.c.rubric_id == rubric_id)
        .order_by(rubric_versions.c.version.desc())
    ).all()
    return [_row(row._mapping) for row in rows]
