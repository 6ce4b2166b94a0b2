"""`assay db`: database maintenance."""

from __future__ import annotations

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
