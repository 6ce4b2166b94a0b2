"""`assay keys`: API keys for the SDK, OpenTelemetry exporters and the REST API."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from assay.cli.options import DbOption
from assay.errors import UserError
from assay.settings import Settings
from assay.store import keys as key_store
from assay.store.engine import make_engine

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
console = Console()


def _engine(db: str | None):  # type: ignore[no-untyped-def]
    engine = make_engine(Settings.from_env(database_url=db).resolved_database_url(), role="updates")
    from assay.store import migrate  # Alembic: only for the commands that open a store

    migrate.upgrade(engine)
    return engine


@app.command("create")
def create(
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project the key may use; omit for every project."
    ),
    role: str = typer.Option(
        "editor", "--role", help=f"One of {', '.join(key_store.ROLES)}. Ingest needs editor."
    ),
    name: str = typer.Option("default", "--name", help="A label to recognise the key by."),
    db: str | None = DbOption,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    if role not in key_store.ROLES:
        raise UserError(f"--role must be one of {', '.join(key_store.ROLES)} (got {role!r})")
    engine = _engine(db)
    with engine.begin() as conn:
        secret, record = key_store.create(conn, name=name, role=role, project=project)
    engine.dispose()
    scope = f"project {project!r}" if project else "every project"
    console.print(f"Created key #{record['id']} ({role}, {scope}). It is shown only once:")
    print(secret)


@app.command("list")
def list_(db: str | None = DbOption) -> None:
    """List keys (never their secrets)."""
    engine = _engine(db)
    with engine.connect() as conn:
        rows = key_store.list_keys(conn)
    engine.dispose()
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
    engine = _engine(db)
    with engine.begin() as conn:
        done = key_store.revoke(conn, key)
    engine.dispose()
    if not done:
        raise UserError(f"no active key with id or prefix {key!r}; see `assay keys list`")
    console.print(f"revoked key {key}")


def _when(ns: int | None) -> str:
    if not ns:
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M")
