"""Options shared by several commands."""

from __future__ import annotations

import typer

DbOption = typer.Option(
    None,
    "--db",
    help="Database URL (sqlite:///path or postgresql://...). "
    "Default: $ASSAY_DATABASE_URL, else a SQLite file under $ASSAY_HOME (~/.assay).",
)
