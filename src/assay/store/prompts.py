"""The prompt registry: prompts, immutable versions, labels and the record of label moves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select, text, update

from assay.store.engine import now_ns
from assay.store.tables import (
    projects,
    prompt_label_moves,
    prompt_labels,
    prompt_versions,
    prompts,
)

#: pg_advisory_xact_lock(class, project id): keeps prompt locks apart from other locks.
PG_PROMPT_LOCK_CLASS = 0x5052_4D54  # "PRMT"


def lock_prompts(conn: Connection, project_id: int) -> None:
    """Serialise a project's prompt writes: two saves never take the same version number
    and two moves of a label never both read the same "from" (PostgreSQL; SQLite already is)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:kind, :id)"),
            {"kind": PG_PROMPT_LOCK_CLASS, "id": project_id},
        )


def find(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(prompts).where(prompts.c.project_id == project_id, prompts.c.name == name)
    ).first()
    return None if row is None else dict(row._mapping)


def create(conn: Connection, project_id: int, name: str) -> int:
    now = now_ns()
    return int(
        conn.execute(
            prompts.insert()
            .values(project_id=project_id, name=name, version=0, created_ns=now, updated_ns=now)
            .returning(prompts.c.id)
        ).scalar_one()
    )


def add_version(
    conn: Connection,
    prompt_id: int,
    version: int,
    definition: dict[str, Any],
    message: str | None,
    author: str | None,
) -> None:
    now = now_ns()
    conn.execute(
        prompt_versions.insert().values(
            prompt_id=prompt_id,
            version=version,
            created_ns=now,
            author=author,
            message=message,
            definition=definition,
        )
    )
    conn.execute(
        update(prompts).where(prompts.c.id == prompt_id).values(version=version, updated_ns=now)
    )


def _version_row(mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    definition = row.pop("definition") or {}
    row.pop("prompt_id", None)
    return {**definition, **row}


def get_version(conn: Connection, prompt_id: int, version: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(prompt_versions).where(
            prompt_versions.c.prompt_id == prompt_id, prompt_versions.c.version == version
        )
    ).first()
    return None if row is None else _version_row(row._mapping)


def versions(conn: Connection, prompt_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(prompt_versions)
        .where(prompt_versions.c.prompt_id == prompt_id)
        .order_by(prompt_versions.c.version.desc())
    ).all()
    return [_version_row(row._mapping) for row in rows]


def labels(conn: Connection, prompt_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(prompt_labels.c.label, prompt_labels.c.version, prompt_labels.c.updated_ns)
        .add_columns(prompt_labels.c.author)
        .where(prompt_labels.c.prompt_id == prompt_id)
        .order_by(prompt_labels.c.label)
    ).all()
    return [dict(row._mapping) for row in rows]


def label_version(conn: Connection, prompt_id: int, label: str) -> int | None:
    found = conn.execute(
        select(prompt_labels.c.version).where(
            prompt_labels.c.prompt_id == prompt_id, prompt_labels.c.label == label
        )
    ).scalar()
    return None if found is None else int(found)


def move_label(
    conn: Connection,
    prompt_id: int,
    label: str,
    from_version: int | None,
    to_version: int | None,
    author: str | None,
    undo_of: int | None = None,
) -> dict[str, Any]:
    """Point ``label`` at ``to_version`` (None: remove it) and record the move."""
    now = now_ns()
    where = (prompt_labels.c.prompt_id == prompt_id) & (prompt_labels.c.label == label)
    if to_version is None:
        conn.execute(delete(prompt_labels).where(where))
    elif from_version is None:
        conn.execute(
            prompt_labels.insert().values(
                prompt_id=prompt_id, label=label, version=to_version, updated_ns=now, author=author
            )
        )
    else:
        conn.execute(
            update(prompt_labels)
            .where(where)
            .values(version=to_version, updated_ns=now, author=author)
        )
    move_id = int(
        conn.execute(
            prompt_label_moves.insert()
            .values(
                prompt_id=prompt_id,
                label=label,
                from_version=from_version,
                to_version=to_version,
                author=author,
                created_ns=now,
                undo_of=undo_of,
            )
            .returning(prompt_label_moves.c.id)
        ).scalar_one()
    )
    return {
        "id": move_id,
        "label": label,
        "from_version": from_version,
        "to_version": to_version,
        "author": author,
        "created_ns": now,
        "undo_of": undo_of,
    }


def moves(conn: Connection, prompt_id: int, label: str | None = None) -> list[dict[str, Any]]:
    """Moves of the prompt's labels (or of one label), newest first."""
    query = select(
        prompt_label_moves.c.id,
        prompt_label_moves.c.label,
        prompt_label_moves.c.from_version,
        prompt_label_moves.c.to_version,
        prompt_label_moves.c.author,
        prompt_label_moves.c.created_ns,
        prompt_label_moves.c.undo_of,
    ).where(prompt_label_moves.c.prompt_id == prompt_id)
    if label is not None:
        query = query.where(prompt_label_moves.c.label == label)
    rows = conn.execute(query.order_by(prompt_label_moves.c.id.desc())).all()
    return [dict(row._mapping) for row in rows]


def list_prompts(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            prompts.c.id,
            prompts.c.name,
            prompts.c.version,
            prompts.c.created_ns,
            prompts.c.updated_ns,
            projects.c.name.label("project"),
        )
        .join(projects, projects.c.id == prompts.c.project_id)
        .where(prompts.c.project_id == project_id)
        .order_by(prompts.c.name)
    ).all()
    found = [dict(row._mapping) for row in rows]
    if not found:
        return found
    label_rows = conn.execute(
        select(prompt_labels.c.prompt_id, prompt_labels.c.label, prompt_labels.c.version).where(
            prompt_labels.c.prompt_id.in_([p["id"] for p in found])
        )
    ).all()
    by_prompt: dict[int, dict[str, int]] = {}
    for row in label_rows:
        by_prompt.setdefault(int(row.prompt_id), {})[row.label] = int(row.version)
    for item in found:
        item["labels"] = dict(sorted(by_prompt.get(int(item["id"]), {}).items()))
    return found
