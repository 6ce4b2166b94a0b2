"""Users of the web UI, their roles per project, and their signed-in sessions.

Passwords are hashed with argon2id. Session tokens are 256-bit random strings held only by the
browser; the store keeps their SHA-256 (as for API keys, a fast hash is safe for such tokens).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assay.errors import UserError
from assay.store import projects as project_store
from assay.store.engine import now_ns
from assay.store.keys import ROLES
from assay.store.tables import memberships, projects, user_sessions, users

MIN_PASSWORD_CHARS = 8
#: Longer inputs are refused before hashing, so a huge form field cannot tie up a worker.
MAX_PASSWORD_CHARS = 1024
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")
#: The passwords tried first by anyone guessing; refused outright.
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "letmein1",
        "welcome1",
        "admin123",
        "administrator",
        "changeme",
        "assay123",
        "11111111",
        "abcdefgh",
        "abcd1234",
    }
)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so both failures take as long.
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- users -----------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"user name {name!r} is not valid: use 1-200 letters, digits and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return name


def check_password(password: str, *, name: str = "") -> None:
    """Refuse passwords that are empty, short, common or the user's own name."""
    if not password:
        raise UserError("the password is empty")
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD_CHARS} characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 3:
        raise UserError("the password is too easy to guess: choose a less common one")
    if name and name.lower() in lowered:
        raise UserError("the password must not contain the user name")


def create_user(conn: Connection, name: str, password: str, *, is_admin: bool = False) -> int:
    """Create a user; returns its id. Names are unique regardless of case."""
    check_name(name)
    check_password(password, name=name)
    taken = conn.execute(
        select(users.c.name).where(func.lower(users.c.name) == name.lower())
    ).scalar()
    if taken is not None:
        raise UserError(f"a user named {taken!r} already exists")
    user_id = conn.execute(
        users.insert()
        .values(
            name=name,
            password_hash=_hasher.hash(password),
            is_admin=is_admin,
            created_ns=now_ns(),
        )
        .returning(users.c.id)
    ).scalar_one()
    return int(user_id)


_USER_COLUMNS = (
    users.c.id,
    users.c.name,
    users.c.is_admin,
    users.c.created_ns,
    users.c.disabled_ns,
)


def get_by_name(conn: Connection, name: str) -> dict[str, Any] | None:
    """The user (id, name, is_admin, created_ns, disabled_ns) or None; never the hash."""
    row = conn.execute(select(*_USER_COLUMNS).where(users.c.name == name)).first()
    return None if row is None else dict(row._mapping)


def get_by_id(conn: Connection, user_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id)).first()
    return None if row is None else dict(row._mapping)


def users_exist(conn: Connection) -> bool:
    return conn.execute(select(users.c.id).limit(1)).first() is not None


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every user with their roles (project name to role), by name."""
    rows = conn.execute(select(*_USER_COLUMNS).order_by(users.c.name)).all()
    found = [dict(row._mapping) | {"roles": {}} for row in rows]
    by_id = {user["id"]: user for user in found}
    grants = conn.execute(
        select(memberships.c.user_id, projects.c.name, memberships.c.role)
        .join(projects, projects.c.id == memberships.c.project_id)
        .order_by(projects.c.name)
    ).all()
    for user_id, project, role in grants:
        if user_id in by_id:
            by_id[user_id]["roles"][project] = role
    return found


def authenticate(conn: Connection, name: str, password: str) -> dict[str, Any] | None:
    """The active user whose name and password match, else None (the same for every failure).

    The work done is the same whether or not the user exists, so timing tells nothing."""
    row = conn.execute(
        select(*_USER_COLUMNS, users.c.password_hash).where(users.c.name == name)
    ).first()
    stored = row.password_hash if row is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password[:MAX_PASSWORD_CHARS])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_ns is not None:
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute(
            update(users).where(users.c.id == row.id).values(password_hash=_hasher.hash(password))
        )
    return {key: value for key, value in row._mapping.items() if key != "password_hash"}


def verify_password(conn: Connection, user_id: int, password: str) -> bool:
    stored = conn.execute(select(users.c.password_hash).where(users.c.id == user_id)).scalar()
    try:
        return _hasher.verify(stored or _dummy_hash(), password[:MAX_PASSWORD_CHARS])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(conn: Connection, user_id: int, password: str) -> None:
    user = get_by_id(conn, user_id)
    if user is None:
        raise UserError(f"no user with id {user_id}")
    check_password(password, name=str(user["name"]))
    conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=_hasher.hash(password))
    )


def set_admin(conn: Connection, user_id: int, is_admin: bool) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(is_admin=is_admin))


def disable(conn: Connection, user_id: int) -> bool:
    """Disable a user and end their sessions; False when there is no such active user."""
    result = conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.disabled_ns.is_(None))
        .values(disabled_ns=now_ns())
    )
    end_sessions(conn, user_id)
    return bool(result.rowcount)


def enable(conn: Connection, user_id: int) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_ns=None))


# --- roles -----------------------------------------------------------------------------


def grant(conn: Connection, user_id: int, project: str, role: str) -> None:
    """Give a user ``role`` in ``project`` (replacing any earlier role there)."""
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if get_by_id(conn, user_id) is None:
        raise UserError(f"no user with id {user_id}")
    project_id = project_store.ensure(conn, project)
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    statement = insert(memberships).values(
        user_id=user_id, project_id=project_id, role=role, created_ns=now_ns()
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "project_id"], set_={"role": statement.excluded.role}
        )
    )


def revoke(conn: Connection, user_id: int, project: str) -> None:
    """Take away a user's role in ``project`` (nothing happens when there was none)."""
    project_id = project_store.get_id(conn, project)
    if project_id is None:
        return
    conn.execute(
        delete(memberships).where(
            memberships.c.user_id == user_id, memberships.c.project_id == project_id
        )
    )


def project_names(conn: Connection) -> list[str]:
    """Every project's name, for the role and key forms (without the activity counts)."""
    return [str(name) for name in conn.scalars(select(projects.c.name).order_by(projects.c.name))]


def roles_of(conn: Connection, user_id: int) -> dict[str, str]:
    rows = conn.execute(
        select(projects.c.name, memberships.c.role)
        .join(projects, projects.c.id == memberships.c.project_id)
        .where(memberships.c.user_id == user_id)
    ).all()
    return {name: role for name, role in rows}


# --- sessions --------------------------------------------------------------------------


def start_session(conn: Connection, user_id: int, *, max_age_ns: int) -> tuple[str, str]:
    """A new session; returns the token for the cookie and the session's CSRF token."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = now_ns()
    conn.execute(
        user_sessions.insert().values(
            token_hash=hash_token(token),
            user_id=user_id,
            csrf_token=csrf,
            created_ns=now,
            last_seen_ns=now,
            expires_ns=now + max_age_ns,
        )
    )
    return token, csrf


def find_session(conn: Connection, token: str, *, idle_ns: int) -> dict[str, Any] | None:
    """The live session for ``token`` with its user, or None when it is unknown, past its
    absolute expiry, idle too long, or its user is disabled."""
    now = now_ns()
    row = conn.execute(
        select(
            user_sessions.c.token_hash,
            user_sessions.c.csrf_token,
            user_sessions.c.last_seen_ns,
            users.c.id.label("user_id"),
            users.c.name,
            users.c.is_admin,
        )
        .join(users, users.c.id == user_sessions.c.user_id)
        .where(
            user_sessions.c.token_hash == hash_token(token),
            user_sessions.c.expires_ns > now,
            user_sessions.c.last_seen_ns > now - idle_ns,
            users.c.disabled_ns.is_(None),
        )
    ).first()
    return None if row is None else dict(row._mapping)


def touch_session(conn: Connection, token_hash: str) -> None:
    conn.execute(
        update(user_sessions)
        .where(user_sessions.c.token_hash == token_hash)
        .values(last_seen_ns=now_ns())
    )


def end_session(conn: Connection, token: str) -> None:
    conn.execute(delete(user_sessions).where(user_sessions.c.token_hash == hash_token(token)))


def end_sessions(conn: Connection, user_id: int, *, keep_token: str | None = None) -> None:
    """End every session of a user (but the one of ``keep_token``), e.g. after a password
    change; expired sessions of anyone are cleared on the way."""
    condition = user_sessions.c.user_id == user_id
    if keep_token is not None:
        condition = condition & (user_sessions.c.token_hash != hash_token(keep_token))
    conn.execute(delete(user_sessions).where(condition))
    sweep_expired(conn)


def sweep_expired(conn: Connection) -> None:
    conn.execute(delete(user_sessions).where(user_sessions.c.expires_ns <= now_ns()))


def _keystream(token: str, nonce: bytes, length: int) -> bytes:
    return hashlib.shake_256(b"assay-flash\0" + token.encode() + nonce).digest(length)


def set_flash(conn: Connection, token: str, message: str) -> None:
    """Keep a one-time message for the session's next page, readable only with the token."""
    data = message.encode()
    nonce = secrets.token_bytes(16)
    sealed = bytes(a ^ b for a, b in zip(data, _keystream(token, nonce, len(data)), strict=True))
    conn.execute(
        update(user_sessions)
        .where(user_sessions.c.token_hash == hash_token(token))
        .values(flash=f"{nonce.hex()}:{sealed.hex()}")
    )


def pop_flash(conn: Connection, token: str) -> str | None:
    token_hash = hash_token(token)
    stored = conn.execute(
        select(user_sessions.c.flash).where(user_sessions.c.token_hash == token_hash)
    ).scalar()
    if not stored:
        return None
    conn.execute(
        update(user_sessions).where(user_sessions.c.token_hash == token_hash).values(flash=None)
    )
    nonce_hex, _, sealed_hex = stored.partition(":")
    sealed = bytes.fromhex(sealed_hex)
    stream = _keystream(token, bytes.fromhex(nonce_hex), len(sealed))
    return bytes(a ^ b for a, b in zip(sealed, stream, strict=True)).decode(errors="replace")
