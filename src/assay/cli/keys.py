"""`assay keys`: API keys for the SDK, OpenTelemetry exporters and the REST API."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from assay.cli.options import DbOption
from assay.errors import NotFound, UserError
from assay.services import accounts
from assay.services.principal import ROLES, Principal
from assay.settings import Settings
from assay.store.database import Database

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console()
#: Whoever runs the CLI holds the database: every role.
OPERATOR = Principal.operator()


def _database(db: str | None) -> Database:
    return Database.for_commands(Settings.from_env(database_url=db).resolved_database_url())


@app.command("create")
def create(
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project the key may use; omit for every project."
    ),
    role: str = typer.Option(
        "editor", "--role", help=f"One of {', '.join(ROLES)}. Ingest needs editor."
    ),
    name: str = typer.Option("default", "--name", help="A label to recognise the key by."),
    user: str | None = typer.Option(
        None,
        "--user",
        help="A personal key: acts as this user, with their roles (--role is then ignored); "
        "what it labels is authored by them.",
    ),
    db: str | None = DbOption,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if user is not None:
        database = _database(db)
        try:
            secret, record = accounts.create_personal_key(
                database, OPERATOR, user=user, project=project
            )
        finally:
            database.dispose()
        scope = f"project {project!r}" if project else "every project of theirs"
        console.print(
            f"Created personal key #{record['id']} for {user!r} ({scope}). Shown only once:"
        )
        print(secret)
        return
    if role not in ROLES:
        raise UserError(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
    database = _database(db)
    try:
        secret, record = accounts.create_key(
            database, OPERATOR, name=name, role=role, project=project
        )
    finally:
        database.dispose()
    scope = f"project {project!r}" if project else "every project"
    console.print(f"Created key #{record['id']} ({role}, {scope}). It is shown only once:")
    print(secret)


@app.command("list")
def list_(db: str | None = DbOption) -> None:
    """List keys (never their secrets)."""
    database = _database(db)
    try:
        rows = accounts.list_keys(database, OPERATOR)
    finally:
        database.dispose()
    table = Table("id", "name", "prefix", "role", "project", "created", "revoked")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["prefix"],
            row["role"],
            row["project"] or "(all)",
            _when(row["created_ns"]),
            _when(row["revoked_ns"]) if row["revoked_ns"] else "",
        )
    console.print(table)


@app.command("revoke")
def revoke(key: str = typer.Argument(help="Key id or prefix."), db: str | None = DbOption) -> None:
    """Revoke a key; requests using it are refused within seconds."""
    database = _database(db)
    try:
        done = accounts.revoke_key(database, OPERATOR, key)
    except NotFound:
        done = False
    finally:
        database.dispose()
    if not done:
        raise UserError(f"no active key with id or prefix {key!r}; see `assay keys list`")
    console.print(f"revoked key {key}")


def _when(ns: int | None) -> str:
    if not ns:
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")
