"""create_app(settings): the ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay._version import __version__
from assay.errors import AccessError
from assay.server import api, datasets_api, experiments_api, online_api, otlp, ui
from assay.server.responses import HANDLERS, JSON, access_error_response, error_response
from assay.services.online import OnlineWorker
from assay.services.runtime import Runtime
from assay.settings import Settings

#: Paths answered in JSON; every other path is a page of the web UI.
API_PREFIXES = ("/api/", "/v1/")


async def _access_error(request: Request, exc: Exception) -> Response:
    """A service refused the caller: JSON for the API, the error page for the UI."""
    assert isinstance(exc, AccessError)
    if request.url.path.startswith(API_PREFIXES):
        return access_error_response(exc)
    return await ui.access_error_page(request, exc)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The Assay server. Pass ``runtime`` to share an already opened store (tests, demo)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = runtime if runtime is not None else await run_in_threadpool(Runtime.open, settings)
        opened.start()
        app.state.runtime = opened
        worker = OnlineWorker(opened).start() if opened.settings.server_worker else None
        app.state.online_worker = worker
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)
            await run_in_threadpool(opened.close)

    app = FastAPI(
        title="Assay",
        version=__version__,
        description=(
            "Self-hosted agent quality platform. OTLP trace ingest at `/v1/traces`; "
            "the REST API under `/api/v1`. Authenticate with `Authorization: Bearer <key>`."
        ),
        lifespan=lifespan,
        default_response_class=JSON,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; Assay serves nothing
        # from elsewhere, so only the machine-readable description is offered.
        docs_url=None,
        redoc_url=None,
    )
    for exc_type, handler in HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.add_exception_handler(AccessError, _access_error)
    app.include_router(otlp.router)
    app.include_router(api.router)
    app.include_router(datasets_api.router)
    app.include_router(experiments_api.router)
    app.include_router(online_api.router)
    ui.mount(app)

    @app.get("/healthz", tags=["health"], summary="200 when the database answers")
    async def healthz(request: Request) -> JSON:
        runtime_: Runtime = request.app.state.runtime
        if await run_in_threadpool(runtime_.answers):
            return JSON({"status": "ok", "version": __version__})
        return error_response(503, "database_unavailable", "the database does not answer")

    return app


def app_from_env() -> FastAPI:
    """Factory for multi-process serving: each worker reads its settings from ASSAY_*."""
    return create_app(Settings.from_env())
