"""Automations in the browser: the list (each with its last run and any error), a form to
create one (editors), and an automation's page with its run history and "Run now".

Roles: viewers read; editors create, pause, resume and run.
"""

from __future__ import annotations

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
from assay.services import automations, datasets, review
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

#: Filter keys that may repeat (each value kept) in the form's filter lines.
REPEATED = ("tag", "metadata")


def parse_filter(text: str) -> dict[str, Any]:
    """``key=value`` per line (or joined by ``&``) into an automation's filter object."""
    found: dict[str, Any] = {}
    for number, line in enumerate(text.replace("&", "\n").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise UserError(f"filter, line {number}: write it as key=value, like score=thumbs_up")
        if not value:
            continue
        if key in REPEATED:
            found.setdefault(key, []).append(value)
        else:
            found[key] = value
    return found


def _filter_text(given: dict[str, Any]) -> str:
    lines = []
    for key, value in given.items():
        values = value if isinstance(value, list) else [value]
        lines += [f"{key}={item}" for item in values]
    return "\n".join(lines)


def _fields(form: FormData) -> dict[str, Any]:
    name = _text(form, "name").strip()
    if not name:
        raise UserError("name: a name is required")
    sample_text = _text(form, "sample").strip()
    if sample_text and not sample_text.isdigit():
        raise UserError(f"sample: {sample_text[:20]!r} is not a number of traces")
    cap = _text(form, "max_per_run").strip()
    if cap and not cap.isdigit():
        raise UserError(f"max_per_run: {cap[:20]!r} is not a whole number")
    kind, _sep, ref = _text(form, "target").partition(":")
    target: dict[str, Any]
    if kind == "dataset" and ref:
        target = {"dataset": ref}
    elif kind == "queue" and ref.isdigit():
        target = {"queue": int(ref)}
    else:
        raise UserError("target: choose a dataset or a review queue")
    return {
        "name": name,
        "filter": parse_filter(_text(form, "filter")),
        "sample": int(sample_text) if sample_text else "all",
        "schedule": _text(form, "schedule"),
        "target": target,
        "max_per_run": int(cap) if cap else None,
    }


def _list_context(request: Request, who: Principal, project: str) -> dict[str, Any]:
    rt = runtime_of(request)
    return {
        "project": project,
        "automations": _or_empty(lambda: automations.list_automations(rt, who, project)),
        "datasets": _or_empty(lambda: datasets.list_datasets(rt, who, project)),
        "queues": _or_empty(lambda: review.list_queues(rt, who, project)),
        "schedules": automations.SCHEDULES,
        "can_edit": who.can(project, "editor"),
    }


@router.get("/p/{project}/automations", response_class=HTMLResponse)
async def automations_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_list_context, request, who, project)
    return _page(request, "automations.html", form={}, error=None, **context)


@router.post("/p/{project}/automations", dependencies=[Depends(csrf_protect)])
async def create_automation(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    who.require(project, "editor")
    try:
        fields = _fields(form)
        made = await run_in_threadpool(
            automations.create_automation, runtime_of(request), who, project, fields
        )
    except UserError as refused:
        context = await run_in_threadpool(_list_context, request, who, project)
        values = {key: _text(form, key) for key in form}
        return _page(
            request, "automations.html", status=400, form=values, error=str(refused), **context
        )
    return _redirect(
        f"{_base(project)}/automations/{made['id']}", f"Created automation {made['name']!r}."
    )


def _context(request: Request, who: Principal, project: str, automation_id: int) -> dict[str, Any]:
    who.require(project, "viewer")
    rt = runtime_of(request)
    found = automations.get_automation(rt, who, automation_id)
    _in_project(found, project, f"automation {automation_id}")
    return {
        "project": project,
        "automation": found,
        "filter_text": _filter_text(found["filter"]),
        "runs": automations.list_runs(rt, who, automation_id, limit=100),
        "can_edit": who.can(project, "editor"),
    }


@router.get("/p/{project}/automations/{automation_id}", response_class=HTMLResponse)
async def automation_page(
    request: Request, project: str, automation_id: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_context, request, who, project, automation_id)
    return _page(request, "automation.html", error=None, **context)


@router.post("/p/{project}/automations/{automation_id}/run", dependencies=[Depends(csrf_protect)])
async def run_automation(
    request: Request, project: str, automation_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    await run_in_threadpool(_context, request, who, project, automation_id)
    run = await run_in_threadpool(automations.run_now, runtime_of(request), who, automation_id)
    if run["status"] == "failed":
        message = f"The run failed: {run['error']}"
    else:
        message = (
            f"Added {run['added']:,} of {run['matched']:,} matching traces "
            f"({run['skipped']:,} already there, {run['over_cap']:,} over the cap)."
        )
    return _redirect(f"{_base(project)}/automations/{automation_id}", message)


async def _switch(
    request: Request, who: Principal, project: str, automation_id: int, *, enabled: bool
) -> Response:
    await run_in_threadpool(_context, request, who, project, automation_id)
    await run_in_threadpool(
        automations.update_automation,
        runtime_of(request),
        who,
        automation_id,
        {"enabled": enabled},
    )
    return _redirect(
        f"{_base(project)}/automations/{automation_id}",
        "Automation resumed." if enabled else "Automation paused.",
    )


@router.post("/p/{project}/automations/{automation_id}/pause", dependencies=[Depends(csrf_protect)])
async def pause_automation(
    request: Request, project: str, automation_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _switch(request, who, project, automation_id, enabled=False)


@router.post(
    "/p/{project}/automations/{automation_id}/resume", dependencies=[Depends(csrf_protect)]
)
async def resume_automation(
    request: Request, project: str, automation_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _switch(request, who, project, automation_id, enabled=True)
