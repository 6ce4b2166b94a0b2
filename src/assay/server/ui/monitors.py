"""Monitors in the browser: a project's monitors with their state, one monitor's evaluations
(value, state, the notification sent and how its delivery went), a form to create one and
buttons to evaluate now, pause and resume (editors). Viewers read."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from assay.errors import UserError
from assay.server.bounds import RowId
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui.online import _base, _in_project, _or_empty, _page, _redirect, _text
from assay.services import monitors
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)


def _list_context(request: Request, who: Principal, project: str) -> dict[str, Any]:
    return {
        "project": project,
        "monitors": _or_empty(lambda: monitors.list_monitors(runtime_of(request), who, project)),
        "metrics": monitors.METRICS,
        "can_edit": who.can(project, "editor"),
    }


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise UserError(f"{what}: {text.strip()[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{what} must be a finite number")
    return value


def _whole(text: str, what: str) -> int:
    value = _number(text, what)
    if value != int(value):
        raise UserError(f"{what} must be a whole number")
    return int(value)


def _fields(form: FormData) -> dict[str, Any]:
    metric = _text(form, "metric").strip()
    params: dict[str, Any] = {}
    if metric == "score_mean":
        params["score"] = _text(form, "score").strip()
        if _text(form, "source").strip():
            params["source"] = _text(form, "source").strip()
    return {
        "name": _text(form, "name").strip(),
        "metric": metric,
        "params": params,
        "window_minutes": _whole(_text(form, "window_minutes"), "window_minutes"),
        "threshold": _number(_text(form, "threshold"), "threshold"),
        "direction": _text(form, "direction"),
        "webhook_url": _text(form, "webhook_url").strip() or None,
        "renotify_minutes": _whole(_text(form, "renotify_minutes") or "60", "renotify_minutes"),
    }


@router.get("/p/{project}/monitors", response_class=HTMLResponse)
async def monitors_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_list_context, request, who, project)
    return _page(request, "monitors.html", form={}, error=None, **context)


@router.post("/p/{project}/monitors", dependencies=[Depends(csrf_protect)])
async def create_monitor(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    who.require(project, "editor")
    try:
        fields = _fields(form)
        made = await run_in_threadpool(
            monitors.create_monitor, runtime_of(request), who, project, fields
        )
    except UserError as refused:
        context = await run_in_threadpool(_list_context, request, who, project)
        values = {key: _text(form, key) for key in form}
        return _page(
            request, "monitors.html", status=400, form=values, error=str(refused), **context
        )
    return _redirect(
        f"{_base(project)}/monitors/{made['id']}", f"Created monitor {made['name']!r}."
    )


def _monitor_context(
    request: Request, who: Principal, project: str, monitor_id: int
) -> dict[str, Any]:
    who.require(project, "viewer")
    found = monitors.get_monitor(runtime_of(request), who, monitor_id)
    _in_project(found, project, f"monitor {monitor_id}")
    return {"project": project, "monitor": found, "can_edit": who.can(project, "editor")}


@router.get("/p/{project}/monitors/{monitor_id}", response_class=HTMLResponse)
async def monitor_page(
    request: Request, project: str, monitor_id: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_monitor_context, request, who, project, monitor_id)
    return _page(request, "monitor.html", error=None, **context)


@router.post("/p/{project}/monitors/{monitor_id}/evaluate", dependencies=[Depends(csrf_protect)])
async def evaluate_monitor(
    request: Request, project: str, monitor_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    await run_in_threadpool(_monitor_context, request, who, project, monitor_id)
    found = await run_in_threadpool(monitors.evaluate_now, runtime_of(request), who, monitor_id)
    return _redirect(f"{_base(project)}/monitors/{monitor_id}", f"Evaluated: {found['state']}.")


async def _switch(
    request: Request, who: Principal, project: str, monitor_id: int, *, enabled: bool
) -> Response:
    await run_in_threadpool(_monitor_context, request, who, project, monitor_id)
    await run_in_threadpool(
        monitors.update_monitor, runtime_of(request), who, monitor_id, {"enabled": enabled}
    )
    return _redirect(
        f"{_base(project)}/monitors/{monitor_id}",
        "Monitor resumed." if enabled else "Monitor paused.",
    )


@router.post("/p/{project}/monitors/{monitor_id}/pause", dependencies=[Depends(csrf_protect)])
async def pause_monitor(
    request: Request, project: str, monitor_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _switch(request, who, project, monitor_id, enabled=False)


@router.post("/p/{project}/monitors/{monitor_id}/resume", dependencies=[Depends(csrf_protect)])
async def resume_monitor(
    request: Request, project: str, monitor_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _switch(request, who, project, monitor_id, enabled=True)
