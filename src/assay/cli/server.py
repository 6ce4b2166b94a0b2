"""`assay server`: run the Assay server."""

from __future__ import annotations

import typer
import uvicorn
from rich.console import Console

from assay.cli.options import DbOption
from assay.errors import ConfigError
from assay.server.app import create_app
from assay.server.auth import is_loopback
from assay.server.runtime import Runtime
from assay.settings import DEFAULT_PORT, Settings

console = Console(stderr=True)


def open_runtime(settings: Settings) -> Runtime:
    """Open the store, refusing an unauthenticated server on a non-loopback address."""
    runtime = Runtime.open(settings)
    if not is_loopback(settings.host) and not runtime.keys_exist():
        runtime.close()
        raise ConfigError(
            f"refusing to listen on {settings.host} without authentication: anyone who can "
            "reach it could read every trace. Create an API key first with "
            "`assay keys create --project NAME` (same --db), or bind to 127.0.0.1."
        )
    return runtime


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on."),
    db: str | None = DbOption,
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error"),
) -> None:
    """Run the server: OTLP ingest at /v1/traces, the API under /api/v1."""
    settings = Settings.from_env(database_url=db, host=host, port=port)
    runtime = open_runtime(settings)
    url = runtime.engine.url.render_as_string(hide_password=True)
    console.print(f"Assay on [bold]http://{host}:{port}[/]  (database: {url})")
    mode = "API keys required" if runtime.keys_exist() else "open (loopback, no keys yet)"
    console.print(f"auth: {mode}")
    app = create_app(settings, runtime=runtime)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=10,
    )
