"""`assay worker`: score online rules' jobs in a process of its own (several may share one
PostgreSQL database; turn off the server's own with ASSAY_SERVER_WORKER=false)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from assay.cli.options import DbOption
from assay.settings import Settings

console = Console(stderr=True)


def worker(
    db: str | None = DbOption,
    threads: int | None = typer.Option(
        None, "--threads", min=1, max=256, help="Judge calls at once (ASSAY_WORKER_THREADS)."
    ),
) -> None:
    """Run a background worker (online scoring, routing to review, monitors, automations)
    until interrupted (SIGINT or SIGTERM)."""
    from assay.services.automations import AutomationWorker
    from assay.services.online import OnlineWorker
    from assay.services.runtime import Runtime

    settings = Settings.from_env(database_url=db)
    runtime = Runtime.open(settings)
    runtime.start()
    running = OnlineWorker(runtime, threads=threads).start()
    automator = AutomationWorker(runtime).start()
    url = runtime.engine.url.render_as_string(hide_password=True)
    console.print(f"assay worker {running.name} on {url}; {running.threads} threads")
    stopped = threading.Event()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    console.print("stopping: finishing the calls in flight")
    automator.stop()
    running.stop()
    runtime.close()
