"""`assay demo`: start the server on the embedded default and fill it with realistic traces
(the tour itself, room by room, is assay/demo/tour.py). A step that fails is printed with its
reason and the command exits with 1."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import typer
from rich.console import Console

from assay.cli.options import DbOption
from assay.settings import DEFAULT_PORT, Settings

console = Console(soft_wrap=True)  # long URLs stay on one line, copyable

#: How often the demo server's worker looks for new traces to judge (the default is a second).
WORKER_POLL_MS = 100


def demo(
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port for the demo server."),
    db: str | None = DbOption,
    runs: int = typer.Option(60, "--runs", help="How many agent runs to send."),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Keep the server running afterwards (Ctrl-C stops)."
    ),
) -> None:
    """Start Assay, send agent traces through OpenTelemetry, and show where to look."""
    import uvicorn

    from assay.cli.server import open_runtime
    from assay.demo.monitors import DemoChannel
    from assay.demo.online import StandInModel
    from assay.demo.tour import Tour
    from assay.server.app import create_app

    settings = Settings.from_env(database_url=db, host="127.0.0.1", port=port)
    # The online judge calls a stand-in model on loopback: the egress policy allows that one
    # address (and keeps refusing the rest of loopback and the private ranges).
    stand_in = StandInModel().start()
    channel = DemoChannel().start()
    allowed = ",".join(x for x in (settings.egress_allow, "127.0.0.1/32") if x)
    settings = replace(settings, egress_allow=allowed, worker_poll_ms=WORKER_POLL_MS)
    runtime = open_runtime(settings)
    base = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        create_app(settings, runtime=runtime), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    tour = Tour(console, runtime, settings, base, stand_in, channel)
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SystemExit(f"the demo server could not start on port {port}; try --port")
            time.sleep(0.05)
        console.print(
            f"Assay is running at [bold]{base}[/] (database: "
            f"{runtime.engine.url.render_as_string(hide_password=True)})"
        )
        tour.run(runs)
        if serve:
            if tour.agent is not None:
                tour.agent.trace_runs()
            console.print("\nPress Ctrl-C to stop.")
            try:
                while thread.is_alive():
                    thread.join(0.5)
            except KeyboardInterrupt:
                pass
    finally:
        server.should_exit = True
        thread.join(15)
        channel.stop()
        stand_in.stop()
    if tour.failed:
        raise typer.Exit(1)
