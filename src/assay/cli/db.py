"""`assay db`: database maintenance."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from assay.cli.options import DbOption
from assay.settings import Settings
from assay.store.engine import make_engine

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
console = Console()


@app.command("upgrade")
def upgrade(db: str | None = DbOption) -> None:
    """Create the schema or bring it up to date (the server also does this at start)."""
    url = Settings.from_env(database_url=db).resolved_database_url()
    engine = make_engine(url)
    from assay.store import migrate  # Alembic: only for the commands that open a store

    migrate.upgrade(engine)
    engine.dispose()
    console.print(f"database at [bold]{engine.url.render_as_string()}[/] is up to date")


@app.command("backup")
def backup(
    path: Path = typer.Argument(..., help="The backup file to write (must not exist yet)."),
    db: str | None = DbOption,
) -> None:
    """Write a consistent copy of the store to PATH, also while the server runs.

    SQLite: a compact copy of the database file. PostgreSQL: a pg_dump archive (custom format;
    needs pg_dump on PATH)."""
    from assay.store import backup as backups

    url = Settings.from_env(database_url=db).resolved_database_url()
    summary = backups.backup(url, path)
    console.print(
        f"backed up {summary.projects:,} projects and {summary.spans:,} spans to "
        f"[bold]{summary.path}[/] ({summary.bytes / 2**20:,.1f} MiB, {summary.engine})",
        highlight=False,
    )


@app.command("restore")
def restore(
    path: Path = typer.Argument(..., help="A file written by `assay db backup`."),
    db: str | None = DbOption,
) -> None:
    """Restore a backup into a new, empty database (the one --db names); never over data.

    A SQLite backup restores into SQLite, a PostgreSQL one into PostgreSQL (needs pg_restore
    on PATH). Stop servers using the target first."""
    from assay.store import backup as backups

    url = Settings.from_env(database_url=db).resolved_database_url()
    summary = backups.restore(path, url)
    console.print(
        f"restored {summary.projects:,} projects and {summary.spans:,} spans from "
        f"[bold]{summary.path}[/] into the {summary.engine} database",
        highlight=False,
    )
