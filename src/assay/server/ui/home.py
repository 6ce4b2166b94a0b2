"""The projects page: every project the viewer may see, with its recent activity.

Activity comes from the traces table's (project, start) index: total traces, traces and failed
traces in the last 24 hours, the last trace's time. Nothing counts spans, so the page stays
fast on a store of millions of spans.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from assay.server.security.web import web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import render
from assay.server.ui.traces import Timed, segment
from assay.services.principal import Principal
from assay.services.projects import projects_overview

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def projects_page(request: Request, who: Principal = Depends(web_principal)) -> Response:
    timed = Timed()
    projects = await timed.run("db", lambda: projects_overview(runtime_of(request), who))
    started = time.perf_counter()
    response = render(request, "projects.html", projects=projects, segment=segment)
    return timed.finish(response, started)
