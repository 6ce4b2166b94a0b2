"""Entry point: `assay ...`. User errors print a message (no traceback); Ctrl-C exits 130."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape

from assay._version import __version__
from assay.cli import agent, datasets, evaluators, judges, prompts
from assay.cli.eval import eval_command
from assay.errors import UserError

#: What `pip install 'assay[server]'` adds: without them, the commands that run or open the
#: server's store say how to install it, and `assay eval` and `assay datasets` still work.
SERVER_EXTRA = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "fastapi",
        "starlette",
        "uvicorn",
        "argon2",
        "multipart",
        "cryptography",
    }
)
SERVER_COMMANDS = {
    "server": "Run the server (needs the server extra).",
    "demo": "Start Assay with demo traces and evals (needs the server extra).",
    "worker": "Score online rules' jobs (needs the server extra).",
}
SERVER_GROUPS = {
    "db": "Database maintenance (needs the server extra).",
    "keys": "Create, list and revoke API keys (needs the server extra).",
    "users": "Create and manage web UI users (needs the server extra).",
}

app = typer.Typer(
    name="assay",
    help="Assay: trace, evaluate and annotate LLM agents, and check the judges.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("eval")(eval_command)
app.add_typer(datasets.app, name="datasets")
app.add_typer(evaluators.app, name="evaluators")
app.add_typer(prompts.app, name="prompts")
app.add_typer(judges.app, name="judges")
app.add_typer(agent.app, name="agent")


def _needs_server_extra(name: str, missing: str) -> Callable[..., None]:
    def refuse(arguments: list[str] | None = typer.Argument(None, hidden=True)) -> None:
        raise UserError(
            f"`assay {name}` needs the server extra ({missing} is not installed): "
            "pip install 'assay[server]'"
        )

    return refuse


def _add_server_commands() -> None:
    try:
        from assay.cli import db, demo, keys, server, users, worker
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SERVER_EXTRA:
            raise
        loose = {"allow_extra_args": True, "ignore_unknown_options": True}
        for name, about in (SERVER_COMMANDS | SERVER_GROUPS).items():
            app.command(name, help=about, context_settings=loose)(
                _needs_server_extra(name, missing)
            )
        return
    app.command("server")(server.serve)
    app.command("demo")(demo.demo)
    app.command("worker")(worker.worker)
    app.add_typer(db.app, name="db")
    app.add_typer(keys.app, name="keys")
    app.add_typer(users.app, name="users")


_add_server_commands()

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
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
