"""Entry point: `assay ...`. User errors print a message (no traceback); Ctrl-C exits 130."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from assay._version import __version__
from assay.cli import datasets, db, demo, keys, server, users
from assay.cli.eval import eval_command
from assay.errors import UserError

app = typer.Typer(
    name="assay",
    help="Assay: trace, evaluate and annotate LLM agents, and check the judges.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("server")(server.serve)
app.command("demo")(demo.demo)
app.command("eval")(eval_command)
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(datasets.app, name="datasets")
app.add_typer(users.app, name="users")

err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"assay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Assay command line."""


def main() -> None:
    try:
        app()
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
