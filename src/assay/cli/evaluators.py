"""`assay evaluators push FILE`: store the judges a Python file defines on the server, so the
judge in code and the one the server runs online are the same definition and version."""

from __future__ import annotations

import runpy
from pathlib import Path

import typer
from rich.console import Console

from assay.errors import UserError

app = typer.Typer(help="Push judges defined in code to the server.", no_args_is_help=True)
console = Console()


@app.command("push")
def push(
    file: Path = typer.Argument(..., help="A Python file whose module-level judges to push."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project (default $ASSAY_PROJECT)."
    ),
    connection: str | None = typer.Option(
        None, "--connection", "-c", help="The project's connection the judges call through."
    ),
    url: str | None = typer.Option(None, "--url", help="Server URL (default $ASSAY_URL)."),
) -> None:
    """Push every judge (``assay.judge(...)`` or a built-in judge) the file defines."""
    from assay.scorers.judges import Judge

    if not file.is_file():
        raise UserError(f"{file} is not a file")
    found = [v for v in runpy.run_path(str(file)).values() if isinstance(v, Judge)]
    if not found:
        raise UserError(f"{file} defines no judge at module level (assay.judge(...))")
    for made in found:
        stored = made.push(project, connection=connection, url=url)
        console.print(
            f"[bold]{stored['name']}[/]: version {stored['version']} "
            f"({stored['version_hash']}), evaluator {stored['id']} in {stored['project']}"
        )
