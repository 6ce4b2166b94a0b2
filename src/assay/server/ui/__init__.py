"""The web UI: server-rendered pages under ``/``, static files under ``/static``.

One module per room (home, traces, experiments, datasets, account); each exposes ``router``.
Routes stay thin: check the viewer, call the store, render a template.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from assay.server.ui import account, datasets, experiments, home, sessions, traces
from assay.server.ui._render import render_plain
from assay.server.web_auth import CSRF_COOKIE, Forbidden, LoginRequired, cookies_secure
from assay.ui import STATIC_DIR

ROUTERS = [
    home.router,
    experiments.router,
    datasets.router,
    traces.router,
    sessions.router,
    account.router,
]


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _forbidden(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return render_plain("error.html", status=403, title="Not allowed", message=exc.message)


def mount(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Forbidden, _forbidden)

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
