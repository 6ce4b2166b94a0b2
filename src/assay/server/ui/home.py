"""The projects page: every project the viewer may see, with its recent activity.

Activity comes from the traces table's (project, start) index: total traces, traces and failed
traces in the last 24 hours, the last trace's time. Nothing counts spans, so the page stays
fast on a store of millions of spans.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from assay.server.auth import runtime_of
from assay.server.ui._render import render
from assay.server.ui.traces import Timed, segment
from assay.server.web_auth import Viewer, viewer
from assay.store import ui_queries

router = APIRouter(include_in_schema=False)

DAY_NS = 86_400 * 10**9


@router.get("/", response_class=HTMLResponse)
async def projects_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    runtime = runtime_of(request)
    timed = Timed()

    def load() -> list[dict[str, Any]]:
        with runtime.engine.connect() as conn:
            found = [p for p in ui_queries.project_names(conn) if who.may_see(str(p["name"]))]
            activity = ui_queries.project_activity(
                conn, [p["id"] for p in found], time.time_ns() - DAY_NS
            )
        return [{**p, **activity[p["id"]]} for p in found]

    projects = await timed.run("db", load)
    started = time.perf_counter()
    response = render(request, "projects.html", projects=projects, segment=segment)
    return timed.finish(response, started)
