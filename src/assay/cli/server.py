"""`assay server`: run the Assay server."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from assay.cli.options import DbOption
from assay.errors import ConfigError
from assay.settings import DEFAULT_PORT, Settings, from_environment

if TYPE_CHECKING:
    from assay.services.runtime import Runtime

console = Console(stderr=True)


def open_runtime(settings: Settings) -> Runtime:
    """Open the store, refusing an unauthenticated server on a non-loopback address."""
    # Imported here, as in every command: `assay users ...` should not pay for the server.
    from assay.services.runtime import Runtime, is_loopback

    runtime = Runtime.open(settings)
    if not is_loopback(settings.host) and not (runtime.keys_exist() or runtime.users_exist()):
        runtime.close()
        raise ConfigError(
            f"refusing to listen on {settings.host} without authentication: anyone who can "
            "reach it could read every trace. Create a user with `assay users create NAME "
            "--admin` or an API key with `assay keys create --project NAME` first (same --db), "
            "or bind to 127.0.0.1."
        )
    return runtime


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def serve(
    host: str | None = typer.Option(
        None, "--host", help="Address to bind. Default: $ASSAY_HOST, else 127.0.0.1."
    ),
    port: int | None = typer.Option(
        None, "--port", help=f"Port to listen on. Default: $ASSAY_PORT, else {DEFAULT_PORT}."
    ),
    db: str | None = DbOption,
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error"),
    grpc_port: int | None = typer.Option(
        None,
        "--grpc-port",
        min=0,
        max=65535,
        help="OTLP/gRPC port, on the same address. Default: $ASSAY_GRPC_PORT, else 4317; "
        "0 turns gRPC off.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Server processes. Decoding spans is CPU work: 2 uses both cores of a 2-core box.",
    ),
) -> None:
    """Run the server: OTLP ingest at /v1/traces (and over gRPC), the API under /api/v1."""
    import uvicorn

    from assay.server.app import create_app
    from assay.server.serving import uvicorn_options

    settings = Settings.from_env(database_url=db, host=host, port=port, grpc_port=grpc_port)
    host, port = settings.host, settings.port
    explicit_grpc = grpc_port is not None or from_environment("grpc_port") is not None
    if settings.grpc_port and not _port_free(host, settings.grpc_port):
        if explicit_grpc:
            raise ConfigError(
                f"cannot listen for OTLP/gRPC on {host}:{settings.grpc_port}: the port is in "
                "use. Pass another --grpc-port (or ASSAY_GRPC_PORT), or 0 to turn gRPC off."
            )
        # The default port taken (a local OpenTelemetry Collector, say) is no reason to refuse
        # to start: HTTP ingest still works.
        console.print(
            f"[yellow]OTLP/gRPC off: port {settings.grpc_port} is in use[/] "
            "(pass --grpc-port N to use another)"
        )
        settings = replace(settings, grpc_port=0)
    runtime = open_runtime(settings)
    url = runtime.engine.url.render_as_string(hide_password=True)
    console.print(f"Assay on [bold]http://{host}:{port}[/]  (database: {url})")
    if settings.grpc_port:
        console.print(f"OTLP/gRPC on [bold]{host}:{settings.grpc_port}[/]")
    mode = (
        "open (loopback, no keys or users yet)"
        if runtime.open_mode()
        else "sign-in for the web UI, API keys for the API"
    )
    console.print(f"auth: {mode}; workers: {workers}")
    if workers > 1:
        # Each worker process opens the store itself, from the same settings.
        runtime.close()
        resolved = replace(settings, database_url=settings.resolved_database_url())
        os.environ.update(resolved.environment("database_url", "host", "port", "grpc_port"))
        uvicorn.run(
            "assay.server.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=log_level == "debug",
            **uvicorn_options(settings),
        )
        return
    app = create_app(settings, runtime=runtime, grpc=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        **uvicorn_options(settings),
    )
