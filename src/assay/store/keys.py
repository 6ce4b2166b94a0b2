"""API keys: random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select, update

from assay.errors import UserError
from assay.store import projects as project_store
from assay.store.engine import now_ns
from assay.store.tables import api_keys, memberships, projects, users

ROLES = ("viewer", "annotator", "editor", "admin")
KEY_PREFIX = "assay_"
#: The public part of a key, shown in lists: 8 hex characters.
PREFIX_CHARS = 8


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: str
    project_id: int | None
    project: str | None
    #: A personal key's user: the key acts as them, with their roles (read at lookup).
    user_id: int | None = None
    user_is_admin: bool = False
    user_roles: dict[str, str] | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    conn: Connection, *, name: str, role: str, project: str | None, user_id: int | None = None
) -> tuple[str, dict[str, Any]]:
    """Create a key; returns the secret (shown once) and the stored record. With ``user_id``
    it is a personal key: it acts as that user, named ``name`` (the user's name)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    project_id = project_store.ensure(conn, project) if project else None
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key_id = conn.execute(
        api_keys.insert()
        .values(
            project_id=project_id,
            name=name,
            prefix=prefix,
            key_hash=hash_key(secret),
            role=role,
            created_ns=now_ns(),
            user_id=user_id,
        )
        .returning(api_keys.c.id)
    ).scalar_one()
    return secret, {
        "id": key_id,
        "name": name,
        "prefix": prefix,
        "role": role,
        "project": project,
        "user_id": user_id,
    }


def lookup(conn: Connection, secret: str) -> ApiKey | None:
    row = conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.name,
            api_keys.c.role,
            api_keys.c.project_id,
            projects.c.name.label("project"),
            api_keys.c.user_id,
        )
        .select_from(api_keys.outerjoin(projects, projects.c.id == api_keys.c.project_id))
        .where(api_keys.c.key_hash == hash_key(secret), api_keys.c.revoked_ns.is_(None))
    ).first()
    if row is None:
        return None
    if row.user_id is None:
        return ApiKey(row.id, row.name, row.role, row.project_id, row.project)
    person = conn.execute(
        select(users.c.name, users.c.is_admin).where(
            users.c.id == row.user_id, users.c.disabled_ns.is_(None)
        )
    ).first()
    if person is None:  # a disabled user's keys stop working with them
        return None
    roles = conn.execute(
        select(projects.c.name, memberships.c.role)
        .join(projects, projects.c.id == memberships.c.project_id)
        .where(memberships.c.user_id == row.user_id)
    ).all()
    return ApiKey(
        row.id,
        str(person.name),
        row.role,
        row.project_id,
        row.project,
        user_id=int(row.user_id),
        user_is_admin=bool(person.is_admin),
        user_roles={str(name): str(role) for name, role in roles},
    )


def active_count(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(api_keys).where(api_keys.c.revoked_ns.is_(None))
        ).scalar_one()
    )


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.name,
            api_keys.c.prefix,
            api_keys.c.role,
            api_keys.c.created_ns,
            api_keys.c.revoked_ns,
            api_keys.c.user_id,
            projects.c.name.label("project"),
        )
        .select_from(api_keys.outerjoin(projects, projects.c.id == api_keys.c.project_id))
        .order_by(api_keys.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def _is_prefix(text: str) -> bool:
    return len(text) == PREFIX_CHARS and all(c in "0123456789abcdef" for c in text)


def revoke_id(conn: Connection, key_id: int) -> bool:
    return _revoke(conn, api_keys.c.id == key_id)


def revoke(conn: Connection, key_id_or_prefix: str) -> bool:
    """Revoke a key named by its prefix (8 hex characters, as `assay keys list` shows) or its
    id. A prefix wins: some prefixes are all digits, and must not be read as an id."""
    condition = (
        api_keys.c.id == int(key_id_or_prefix)
        if key_id_or_prefix.isdigit() and not _is_prefix(key_id_or_prefix)
        else api_keys.c.prefix == key_id_or_prefix
    )
    return _revoke(conn, condition)


def _revoke(conn: Connection, condition: ColumnElement[bool]) -> bool:
    result = conn.execute(
        update(api_keys)
        .where(condition, api_keys.c.revoked_ns.is_(None))
        .values(revoked_ns=now_ns())
    )
    return bool(result.rowcount)
