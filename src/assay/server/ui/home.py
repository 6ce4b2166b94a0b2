"""The projects page: every project the viewer may see, with its recent activity."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from assay.server.auth import runtime_of
from assay.server.ui._render import render
from assay.server.web_auth import Viewer, viewer
from assay.store import projects as project_store

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def projects_page(request: Request, who: Viewer = Depends(viewer)) -> HTMLResponse:
    runtime = runtime_of(request)

    def load() -> list[dict[str, object]]:
        with runtime.engine.connect() as conn:
            items = project_store.list_projects(conn, names=None, limit=500, after=None)
        return [item for item in items if who.may_see(str(item["name"]))]

    return render(request, "projects.html", projects=await run_in_threadpool(load))
