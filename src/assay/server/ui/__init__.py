"""The web UI: server-rendered pages under ``/``, static files under ``/static``.

One module per room (home, traces, experiments, datasets, account); each exposes ``router``.
Routes stay thin: parse the request, call a service (which checks the caller's role), render
a template. A service's refusal becomes the error page here.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from assay.errors import AccessError, NotFound, ProjectNotFound
from assay.server.security.web import CSRF_COOKIE, LoginRequired, cookies_secure
from assay.server.ui import (
    account,
    agents,
    automations,
    calibration,
    dashboard,
    datasets,
    experiments,
    home,
    monitors,
    online,
    prompts,
    review,
    sessions,
    traces,
)
from assay.server.ui._render import render, render_plain
from assay.ui import STATIC_DIR

__all__ = ["access_error_page", "mount", "render_plain"]

ROUTERS = [
    home.router,
    dashboard.router,
    experiments.router,
    datasets.router,
    traces.router,
    agents.router,
    sessions.router,
    monitors.router,
    review.router,
    online.router,
    prompts.router,
    automations.router,
    calibration.router,
    account.router,
]


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


ROOMS = (
    "traces",
    "sessions",
    "datasets",
    "experiments",
    "review",
    "dashboard",
    "quality",
    "prompts",
    "playground",
)


async def access_error_page(request: Request, exc: AccessError) -> Response:
    """A service's refusal as a page: 404 for what is missing, 403 for the rest. A project
    the viewer may not see is a 403 worded as for one that does not exist."""
    if isinstance(exc, ProjectNotFound):
        message = f"there is no project {exc.project!r} you can see"
        if exc.hidden:
            return render_plain("error.html", status=403, title="Not allowed", message=message)
        return render(request, "error.html", status=404, title="Not found", message=message)
    if isinstance(exc, NotFound):
        parts = request.url.path.split("/")
        project = request.path_params.get("project")
        room = parts[3] if len(parts) > 3 and parts[3] in ROOMS else None
        return render(
            request,
            "error.html",
            status=404,
            title="Not found",
            message=exc.message,
            project=project,
            room=room,
        )
    return render_plain("error.html", status=403, title="Not allowed", message=exc.message)


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)

    @app.middleware("http")
    async def set_csrf_cookie(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        token = getattr(request.state, "new_csrf", None)
        if token:
            response.set_cookie(
                CSRF_COOKIE,
                token,
                httponly=True,
                samesite="strict",
                secure=cookies_secure(request),
                path="/",
            )
        return response
