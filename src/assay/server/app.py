"""create_app(settings): the ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from assay._version import __version__
from assay.errors import AccessError
from assay.server import (
    agents_api,
    api,
    automations_api,
    calibration_api,
    datasets_api,
    experiments_api,
    export_api,
    metrics_api,
    monitors_api,
    online_api,
    otlp,
    prompts_api,
    review_api,
    ui,
)
from assay.server.guards import (
    BodyDeadline,
    ErrorGuard,
    ForwardedFor,
    HostGuard,
    Nosniff,
    RefuseNul,
    RefuseNulForm,
    parse_networks,
)
from assay.server.responses import (
    ERROR_RESPONSES,
    HANDLERS,
    JSON,
    access_error_response,
    error_response,
)
from assay.services.automations import AutomationWorker
from assay.services.online import OnlineWorker
from assay.services.runtime import Runtime
from assay.settings import Settings, variable_of

#: Paths answered in JSON; every other path is a page of the web UI.
API_PREFIXES = ("/api/", "/v1/", "/otel/")


async def _access_error(request: Request, exc: Exception) -> Response:
    """A service refused the caller: JSON for the API, the error page for the UI."""
    assert isinstance(exc, AccessError)
    if request.url.path.startswith(API_PREFIXES):
        return access_error_response(exc, request)
    return await ui.access_error_page(request, exc)


def _is_api(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in ("/openapi.json", "/healthz")


def _error_page(status: int, title: str, message: str) -> Response:
    return ui.render_plain("error.html", status=status, title=title, message=message)


def create_app(
    settings: Settings | None = None,
    runtime: Runtime | None = None,
    *,
    grpc: bool = False,
    reuse_port: bool = False,
) -> FastAPI:
    """The Assay server. Pass ``runtime`` to share an already opened store (tests, demo).

    ``grpc`` also runs the OTLP/gRPC receiver on ``settings.grpc_port`` (unless 0) for as long
    as the app runs; ``reuse_port`` lets several worker processes share that port.
    """
    settings = settings or Settings.from_env()
    proxies = parse_networks(settings.trusted_proxies, variable_of("trusted_proxies"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = runtime if runtime is not None else await run_in_threadpool(Runtime.open, settings)
        opened.start()
        app.state.runtime = opened
        receiver = None
        if grpc and settings.grpc_port:
            from assay.server.otlp_grpc import OtlpGrpcServer

            receiver = OtlpGrpcServer(
                opened, settings.host, settings.grpc_port, reuse_port=reuse_port
            )
            await receiver.start()
        worker = OnlineWorker(opened).start() if opened.settings.server_worker else None
        app.state.online_worker = worker
        # Automations run in the same processes as the online rules' worker.
        automator = AutomationWorker(opened).start() if opened.settings.server_worker else None
        try:
            yield
        finally:
            if automator is not None:
                await run_in_threadpool(automator.stop)
            if worker is not None:
                await run_in_threadpool(worker.stop)
            if receiver is not None:
                await receiver.stop()
            await run_in_threadpool(opened.close)

    app = FastAPI(
        title="Assay",
        version=__version__,
        description=(
            "Self-hosted agent quality platform. OTLP ingest at `/v1/traces`, `/v1/logs` and "
            "`/v1/metrics` (and over gRPC); "
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
    for router in (
        agents_api.router,
        otlp.router,
        api.router,
        datasets_api.router,
        export_api.router,
        experiments_api.router,
        review_api.router,
        online_api.router,
        prompts_api.router,
        calibration_api.router,
        automations_api.router,
        metrics_api.router,
        monitors_api.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    ui.mount(app)

    def open_mode() -> bool:
        runtime_: Runtime | None = getattr(app.state, "runtime", None)
        return runtime_ is not None and runtime_.open_mode()

    # add_middleware wraps what is there: the last added runs first.
    app.add_middleware(RefuseNulForm, is_api=_is_api, page=_error_page)
    app.add_middleware(BodyDeadline, seconds=float(settings.body_timeout_seconds))
    app.add_middleware(RefuseNul)
    app.add_middleware(ForwardedFor, proxies=proxies)
    app.add_middleware(HostGuard, allowed=settings.allowed_hosts, open_mode=open_mode)
    app.add_middleware(ErrorGuard, is_api=_is_api, page=_error_page)
    app.add_middleware(Nosniff)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="200 when the database answers",
        responses={503: ERROR_RESPONSES[503], 500: ERROR_RESPONSES[500]},
    )
    async def healthz(request: Request) -> JSON:
        runtime_: Runtime = request.app.state.runtime
        if await run_in_threadpool(runtime_.answers):
            return JSON({"status": "ok", "version": __version__})
        return error_response(503, "database_unavailable", "the database does not answer")

    return app


def app_from_env() -> FastAPI:
    """Factory for multi-process serving: each worker reads its settings from ASSAY_*."""
    return create_app(Settings.from_env(), grpc=True, reuse_port=True)
