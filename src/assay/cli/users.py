"""`assay users`: people who sign in to the web UI, and their roles per project."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from assay.cli.options import DbOption
from assay.errors import UserError
from assay.services import accounts
from assay.services.principal import ROLES, Principal
from assay.settings import Settings
from assay.store import users as user_store
from assay.store.database import Database

app = typer.Typer(help="Create and manage web UI users and their roles.", no_args_is_help=True)
console = Console()
#: Whoever runs the CLI holds the database: every role.
OPERATOR = Principal.operator()


def _database(db: str | None) -> Database:
    return Database.for_commands(Settings.from_env(database_url=db).resolved_database_url())


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
    database = _database(db)
    try:
        first = accounts.create_user(database, OPERATOR, name, password, is_admin=admin).first
    finally:
        database.dispose()
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
    database = _database(db)
    try:
        rows = accounts.list_users(database, OPERATOR)
    finally:
        database.dispose()
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
    database = _database(db)
    try:
        user_id = accounts.user_id_of(database, OPERATOR, name)
        accounts.grant_role(database, OPERATOR, user_id, project, role)
    finally:
        database.dispose()
    console.print(f"{name} is now {role} in {project}.", highlight=False)


@app.command("revoke")
def revoke(
    name: str = typer.Argument(help="User name."),
    project: str = typer.Argument(help="Project name."),
    db: str | None = DbOption,
) -> None:
    """Take away a user's role in a project."""
    database = _database(db)
    try:
        user_id = accounts.user_id_of(database, OPERATOR, name)
        if not accounts.revoke_role(database, OPERATOR, user_id, project):
            raise UserError(f"{name} has no role in {project!r}")
    finally:
        database.dispose()
    console.print(f"{name} no longer has a role in {project}.", highlight=False)


@app.command("disable")
def disable(name: str = typer.Argument(help="User name."), db: str | None = DbOption) -> None:
    """Disable a user: they are signed out everywhere and cannot sign in again."""
    database = _database(db)
    try:
        if not accounts.disable_user(
            database, OPERATOR, accounts.user_id_of(database, OPERATOR, name)
        ):
            raise UserError(f"{name} is already disabled")
    finally:
        database.dispose()
    console.print(f"{name} is disabled and signed out.", highlight=False)


def _when(ns: int | None) -> str:
    if not ns:
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")
