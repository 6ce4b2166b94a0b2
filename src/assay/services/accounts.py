"""Accounts: API keys, web users and their roles, and sign-in sessions.

Administrators of every project manage users; a project's administrators manage its keys; keys
for every project are for administrators of every project. The CLI acts as the operator
(:meth:`Principal.operator`), who holds the database and may do all of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from assay.errors import Forbidden, NotFound, UserError
from assay.services.principal import ROLES, Principal
from assay.services.runtime import Runtime
from assay.store import keys as key_store
from assay.store import users as user_store
from assay.store.database import Database

#: last_seen is written at most this often per session, not on every page.
TOUCH_EVERY_NS = 60 * 10**9


class WrongPassword(UserError):
    """The current password given to change it is not the user's."""


# --- who is calling ------------------------------------------------------------------------


def principal_for_key(rt: Runtime, secret: str) -> Principal | None:
    """The caller holding API key ``secret``, or None when it is unknown or revoked."""
    key = rt.find_key(secret)
    if key is None:
        return None
    if key.user_id is not None:
        return _personal(key)
    return Principal.for_key(key.name, key.role, key.project)


def _personal(key: key_store.ApiKey) -> Principal:
    """A personal key: its user, with the user's roles (in its one project, if scoped)."""
    every = "admin" if key.user_is_admin else None
    roles = dict(key.user_roles or {})
    if key.project is not None:
        role = "admin" if every else roles.get(key.project)
        every, roles = None, ({key.project: role} if role else {})
    return Principal(
        kind="key", name=key.name, every_project=every, roles=roles, user_id=key.user_id
    )


def create_personal_key(
    db: Database,
    who: Principal,
    *,
    user: str,
    project: str | None = None,
    seal_for_session: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """A key that acts as ``user`` with their roles (limited to ``project`` if given), so
    scripts and labelling tools work through the API and every label has a person as its
    author. Administrators create them for anyone; a user for themselves."""
    with db.write() as conn:
        found = user_store.get_by_name(conn, user)
        if found is None or found.get("disabled_ns"):
            raise UserError(f"no active user named {user!r}; see `assay users list`")
        if not who.is_admin and who.user_id != found["id"]:
            raise Forbidden("only administrators create keys for other people")
        if (
            project is not None
            and not found["is_admin"]
            and project not in user_store.roles_of(conn, int(found["id"]))
        ):
            raise UserError(f"{user!r} has no role in {project!r}; grant one first")
        secret, record = key_store.create(
            conn, name=user, role="viewer", project=project, user_id=int(found["id"])
        )
        if seal_for_session:  # shown once on the settings page after the redirect
            user_store.set_flash(conn, seal_for_session, secret)
        return secret, record


def principal_for_session(rt: Runtime, token: str) -> Principal | None:
    """The signed-in user of a session token, or None (unknown, expired, idle, disabled)."""
    idle_ns = rt.settings.session_idle_hours * 3600 * 10**9
    with rt.read() as conn:
        found = user_store.find_session(conn, token, idle_ns=idle_ns)
        if found is None:
            return None
        roles = {} if found["is_admin"] else user_store.roles_of(conn, found["user_id"])
    if time.time_ns() - found["last_seen_ns"] > TOUCH_EVERY_NS:
        with rt.write() as conn:
            user_store.touch_session(conn, found["token_hash"])
    return Principal.for_user(
        found["user_id"],
        found["name"],
        is_admin=bool(found["is_admin"]),
        roles=roles,
        csrf_token=found["csrf_token"],
    )


def users_exist(db: Database) -> bool:
    with db.read() as conn:
        return user_store.users_exist(conn)


def sign_in(
    db: Database, name: str, password: str, *, old_token: str, max_age_ns: int
) -> str | None:
    """A new session token for the user, or None when the name or password is wrong.

    A fresh session id at every sign-in (no session fixation): the old one ends."""
    with db.write() as conn:
        user = user_store.authenticate(conn, name, password) if name and password else None
        if user is None:
            return None
        if old_token:
            user_store.end_session(conn, old_token)
        user_store.sweep_expired(conn)
        token, _csrf = user_store.start_session(conn, int(user["id"]), max_age_ns=max_age_ns)
        return token


def sign_out(db: Database, token: str) -> None:
    with db.write() as conn:
        user_store.end_session(conn, token)


# --- API keys --------------------------------------------------------------------------------


def _may_manage_key(who: Principal, key: dict[str, Any]) -> bool:
    if who.user_id is not None and key.get("user_id") == who.user_id:
        return True  # one's own personal key
    project = key["project"]
    return who.is_admin if project is None else who.can(str(project), "admin")


def list_keys(db: Database, who: Principal) -> list[dict[str, Any]]:
    """The keys ``who`` may manage (never their secrets)."""
    with db.read() as conn:
        return [key for key in key_store.list_keys(conn) if _may_manage_key(who, key)]


def create_key(
    db: Database,
    who: Principal,
    *,
    name: str,
    role: str,
    project: str | None,
    seal_for_session: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """A new key: its secret (shown once) and its record. With ``seal_for_session`` the secret
    is also kept sealed with that web session, for the page after the redirect."""
    if who.open_mode:
        raise Forbidden(
            "an API key ends the open local mode: first create an administrator "
            "(`assay users create NAME --admin`), sign in, then create keys"
        )
    if project is None:
        who.require_admin("only administrators create keys for every project")
    else:
        who.require(project, "admin")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    with db.write() as conn:
        secret, record = key_store.create(conn, name=name, role=role, project=project)
        if seal_for_session:
            user_store.set_flash(conn, seal_for_session, secret)
    return secret, record


def revoke_key(db: Database, who: Principal, key: int | str) -> bool:
    """Revoke a key by id, or (a string) by prefix or id; False when it was already revoked.

    A key that does not exist or that ``who`` may not manage raises :class:`NotFound` (the
    two look alike)."""
    with db.write() as conn:
        keys = key_store.list_keys(conn)
        if isinstance(key, int):
            found = [k for k in keys if k["id"] == key]
        else:  # a prefix wins: some prefixes are all digits
            found = [k for k in keys if k["prefix"] == key] or [
                k for k in keys if str(k["id"]) == key
            ]
        if not found or not _may_manage_key(who, found[0]):
            raise NotFound(f"no active key with id or prefix {key!r}; see `assay keys list`")
        return key_store.revoke_id(conn, int(found[0]["id"]))


# --- users and roles -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedUser:
    id: int
    #: The first user ends the open mode.
    first: bool


def create_user(
    db: Database,
    who: Principal,
    name: str,
    password: str,
    *,
    is_admin: bool = False,
    project: str = "",
    role: str = "",
) -> CreatedUser:
    """Create a user (administrators), optionally with a role in one project."""
    who.require_admin("only administrators manage users")
    with db.write() as conn:
        first = not user_store.users_exist(conn)
        user_id = user_store.create_user(conn, name, password, is_admin=is_admin)
        if project and role and not is_admin:
            user_store.grant(conn, user_id, project, role)
    if isinstance(db, Runtime):
        db.forget_users()  # the open mode ends now, not at the cache's next look
    return CreatedUser(user_id, first)


def list_users(db: Database, who: Principal) -> list[dict[str, Any]]:
    who.require_admin("only administrators manage users")
    with db.read() as conn:
        return user_store.list_users(conn)


def user_id_of(db: Database, who: Principal, name: str) -> int:
    who.require_admin("only administrators manage users")
    with db.read() as conn:
        found = user_store.get_by_name(conn, name)
    if found is None:
        raise UserError(f"no user named {name!r}; see `assay users list`")
    return int(found["id"])


def grant_role(db: Database, who: Principal, user_id: int, project: str, role: str) -> None:
    """Give a user ``role`` in ``project``, replacing their earlier role there."""
    who.require_admin("only administrators manage users")
    with db.write() as conn:
        user_store.grant(conn, user_id, project, role)


def revoke_role(db: Database, who: Principal, user_id: int, project: str) -> bool:
    """Take away a user's role in ``project``; False when they had none."""
    who.require_admin("only administrators manage users")
    with db.write() as conn:
        had = project in user_store.roles_of(conn, user_id)
        user_store.revoke(conn, user_id, project)
    return had


def disable_user(db: Database, who: Principal, user_id: int) -> bool:
    """Disable a user and end their sessions; False when they were already disabled."""
    who.require_admin("only administrators manage users")
    if user_id == who.user_id:
        raise UserError("you cannot disable yourself")
    with db.write() as conn:
        return user_store.disable(conn, user_id)


def change_password(
    db: Database, who: Principal, current: str, new: str, *, keep_session: str
) -> None:
    """Change one's own password; every other session of the user ends."""
    if who.user_id is None:
        raise Forbidden("the open local mode has no password; create a user first")
    with db.write() as conn:
        if not user_store.verify_password(conn, who.user_id, current):
            raise WrongPassword("the current password is wrong")
        user_store.set_password(conn, who.user_id, new)
        user_store.end_sessions(conn, who.user_id, keep_token=keep_session)


# --- the settings page -------------------------------------------------------------------


def settings_view(db: Database, who: Principal, session: str) -> dict[str, Any]:
    """What the settings page shows ``who``: projects, manageable keys, users (for
    administrators), and a key's secret sealed with this session (shown once)."""
    with db.read() as conn:
        names = user_store.project_names(conn)
        every = key_store.list_keys(conn)
        keys = [key for key in every if _may_manage_key(who, key)]
        personal = [
            key for key in every if who.user_id is not None and key.get("user_id") == who.user_id
        ]
        people = user_store.list_users(conn) if who.is_admin else []
    secret = None
    if session and not who.open_mode:
        with db.write() as conn:
            secret = user_store.pop_flash(conn, session)
    return {
        "projects": names,
        "admin_projects": [name for name in names if who.can(name, "admin")],
        "keys": keys,
        "personal_keys": personal,
        "my_projects": [name for name in names if who.may_see(name)],
        "people": people,
        "roles": ROLES,
        "secret": secret,
    }
