"""`assay users`: people who sign in to the web UI, and their roles per project."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from assay.cli.options import DbOption
from assay.errors import UserError
from assay.settings import Settings
from assay.store import users as user_store
from assay.store.engine import Engine, make_engine
from assay.store.keys import ROLES

app = typer.Typer(help="Create and manage web UI users and their roles.", no_args_is_help=True)
console = Console()


def _engine(db: str | None) -> Engine:
    engine = make_engine(Settings.from_env(database_url=db).resolved_database_url(), role="updates")
    from assay.store import migrate  # Alembic: only for the commands that open a store

    migrate.upgrade(engine)
    return engine


def _read_password(name: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: pipe it with --password-stdin")
    else:
        password = typer.prompt(f"Password for {name}", hide_input=True, default="")
        user_store.check_password(password, name=name)
        again = typer.prompt("Repeat the password", hide_input=True, default="")
        if again != password:
            raise UserError("the two passwords differ; nothing was created")
    user_store.check_password(password, name=name)
    return password


def _user(conn: Any, name: str) -> dict[str, Any]:
    found = user_store.get_by_name(conn, name)
    if found is None:
        raise UserError(f"no user named {name!r}; see `assay users list`")
    return found


@app.command("create")
def create(
    name: str = typer.Argument(help="Sign-in name (letters, digits, . _ @ + -)."),
    admin: bool = typer.Option(False, "--admin", help="Administrator of every project."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    db: str | None = DbOption,
) -> None:
    """Create a user (asks for the password twice). The first user ends the open mode."""
    user_store.check_name(name)
    password = _read_password(name, password_stdin)
    engine = _engine(db)
    try:
        with engine.begin() as conn:
            first = not user_store.users_exist(conn)
            user_store.create_user(conn, name, password, is_admin=admin)
    finally:
        engine.dispose()
    kind = "administrator" if admin else "user"
    console.print(f"Created {kind} {name!r}.", highlight=False)
    if first:
        console.print(
            "The open local mode has ended: the web UI now asks everyone to sign in, and "
            "the API wants an API key (`assay keys create`, or the settings page).",
            highlight=False,
        )
    if not admin:
        console.print(
            f"Give them a project with `assay users grant {name} PROJECT ROLE`.", highlight=False
        )


@app.command("list")
def list_(db: str | None = DbOption) -> None:
    """List users with their roles."""
    engine = _engine(db)
    try:
        with engine.connect() as conn:
            rows = user_store.list_users(conn)
    finally:
        engine.dispose()
    table = Table("name", "admin", "roles", "created", "disabled")
    for row in rows:
        roles = ", ".join(f"{project}: {role}" for project, role in row["roles"].items())
        table.add_row(
            row["name"],
            "yes" if row["is_admin"] else "",
            "(every project)" if row["is_admin"] else roles,
            _when(row["created_ns"]),
            _when(row["disabled_ns"]),
        )
    console.print(table)


@app.command("grant")
def grant(
    name: str = typer.Argument(help="User name."),
    project: str = typer.Argument(help="Project name."),
    role: str = typer.Argument(help=f"One of {', '.join(ROLES)}."),
    db: str | None = DbOption,
) -> None:
    """Give a user a role in a project (replaces their earlier role there)."""
    if role not in ROLES:
        raise UserError(f"ROLE must be one of {', '.join(ROLES)} (got {role!r})")
    engine = _engine(db)
    try:
        with engine.begin() as conn:
            user_store.grant(conn, _user(conn, name)["id"], project, role)
    finally:
        engine.dispose()
    console.print(f"{name} is now {role} in {project}.", highlight=False)


@app.command("revoke")
def revoke(
    name: str = typer.Argument(help="User name."),
    project: str = typer.Argument(help="Project name."),
    db: str | None = DbOption,
) -> None:
    """Take away a user's role in a project."""
    engine = _engine(db)
    try:
        with engine.begin() as conn:
            user = _user(conn, name)
            if project not in user_store.roles_of(conn, user["id"]):
                raise UserError(f"{name} has no role in {project!r}")
            user_store.revoke(conn, user["id"], project)
    finally:
        engine.dispose()
    console.print(f"{name} no longer has a role in {project}.", highlight=False)


@app.command("disable")
def disable(name: str = typer.Argument(help="User name."), db: str | None = DbOption) -> None:
    """Disable a user: they are signed out everywhere and cannot sign in again."""
    engine = _engine(db)
    try:
        with engine.begin() as conn:
            if not user_store.disable(conn, _user(conn, name)["id"]):
                raise UserError(f"{name} is already disabled")
    finally:
        engine.dispose()
    console.print(f"{name} is disabled and signed out.", highlight=False)


def _when(ns: int | None) -> str:
    if not ns:
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")
