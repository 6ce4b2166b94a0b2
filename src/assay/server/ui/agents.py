"""The agents page: the project's agent endpoints (`assay agent serve`) with their status, and
"run on this input" with a prompt version overridden, showing the output and a link to the
run's trace. Viewers see the list; annotators and editors run. Registering is done by
`assay agent serve` itself (an editor's key)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from assay.errors import ProjectNotFound, UserError
from assay.server.bounds import RowId
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import render
from assay.services import agents, prompts
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

MAX_INPUT_CHARS = 100_000


def _context(request: Request, who: Principal, project: str) -> dict[str, Any]:
    rt = runtime_of(request)
    try:
        listed = agents.list_agents(rt, who, project)
        prompt_names = [p["name"] for p in prompts.list_prompts(rt, who, project)]
    except ProjectNotFound as missing:
        if missing.hidden:
            raise
        listed, prompt_names = [], []
    return {
        "project": project,
        "agents": listed,
        "prompt_names": prompt_names,
        "can_run": who.can(project, "annotator"),
        "base": f"/p/{quote(project, safe='')}",
    }


def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("form", {})
    context.setdefault("result", None)
    context.setdefault("error", None)
    context.setdefault("ran", None)
    return render(request, "agents.html", status=status, room="agents", **context)


@router.get("/p/{project}/agents", response_class=HTMLResponse)
async def agents_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_context, request, who, project)
    return _page(request, **context)


def _input(text: str) -> Any:
    """The input as typed: JSON when it parses as JSON, else the text itself."""
    if len(text) > MAX_INPUT_CHARS:
        raise UserError(f"the input is longer than {MAX_INPUT_CHARS:,} characters")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(prompt: str, version: str) -> dict[str, Any]:
    if not prompt and not version:
        return {}
    if not prompt or not version:
        raise UserError("to override a prompt, give its name and a version number")
    if not version.isdigit() or not 1 <= int(version) < 2**31:
        raise UserError(f"version {version[:20]!r} is not a version number")
    return {"prompts": {prompt: {"version": int(version)}}}


@router.post("/p/{project}/agents/{agent_id}/run", dependencies=[Depends(csrf_protect)])
async def run_agent(
    request: Request, project: str, agent_id: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    form = await request.form()
    values = {
        key: (value.replace("\r\n", "\n") if isinstance(value, str) else "")
        for key in ("input", "prompt", "version")
        for value in [form.get(key, "")]
    }
    values["prompt"], values["version"] = values["prompt"].strip(), values["version"].strip()
    rt = runtime_of(request)
    who.require(project)  # a project one may not see is refused before any id is looked up
    found = await run_in_threadpool(agents.get_agent, rt, who, agent_id, project)
    who.require(project, "annotator")
    try:
        overrides = _overrides(values["prompt"], values["version"])
        result = await run_in_threadpool(
            agents.run_agent, rt, who, project, agent_id, _input(values["input"]), overrides
        )
    except UserError as refused:
        context = await run_in_threadpool(_context, request, who, project)
        return _page(request, 400, form=values, error=str(refused), ran=found["id"], **context)
    context = await run_in_threadpool(_context, request, who, project)
    return _page(request, form=values, result=result, ran=found["id"], **context)
