"""The prompts room: the registry's prompts, one prompt's versions, labels (moves, undo) and
diffs, and the playground.

Viewers read; annotators and editors run the playground (its JSON routes are called by
static/playground.js with the page's CSRF token); editors save versions and move labels. The
model's answer streams to the page as JSON lines and is inserted as text, never as HTML.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from assay.errors import ProjectNotFound, UserError
from assay.server.bounds import INT32_MAX, ApiModel, Count32, RowId
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import SECURITY_HEADERS, render
from assay.services import connections, datasets, evaluators, playground, prompts
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

FLASH_COOKIE = "assay_flash"
PromptName = Annotated[str, Path(min_length=1, max_length=200)]
LabelName = Annotated[str, Path(min_length=1, max_length=100)]


def _base(project: str) -> str:
    return f"/p/{quote(project, safe='')}"


def _prompt_url(project: str, name: str) -> str:
    return f"{_base(project)}/prompts/{quote(name, safe='')}"


def _redirect(url: str, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash[:300]), httponly=True, samesite="strict", path="/"
        )
    return response


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    raw = request.cookies.get(FLASH_COOKIE)
    response = render(
        request,
        template,
        room="prompts",
        flash=unquote(raw) if raw else None,
        base=_base(context["project"]),
        **context,
    )
    if raw:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _or_empty(load: Any) -> Any:
    """A project with nothing stored yet has an empty list, not a missing page."""
    try:
        return load()
    except ProjectNotFound as missing:
        if missing.hidden:
            raise
        return []


def _number(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 11 and int(raw) <= INT32_MAX else None


# ---------------------------------------------------------------------------------------------
# The registry


@router.get("/p/{project}/prompts", response_class=HTMLResponse)
async def prompts_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    items = await run_in_threadpool(
        _or_empty, lambda: prompts.list_prompts(runtime_of(request), who, project)
    )
    return _page(request, "prompts.html", project=project, prompts=items)


def _prompt_context(request: Request, who: Principal, project: str, name: str) -> dict[str, Any]:
    rt = runtime_of(request)
    versions = prompts.list_versions(rt, who, project, name)
    history = prompts.label_history(rt, who, project, name)
    newest = versions[0]["version"]
    old = _number(request.query_params.get("from")) or max(newest - 1, 1)
    new = _number(request.query_params.get("to")) or newest
    diff = None
    if old != new:
        diff = prompts.diff_versions(rt, who, project, name, old, new)
    undone = {m["undo_of"] for m in history["history"] if m["undo_of"] is not None}
    undoable = {
        m["label"] for m in history["history"] if m["undo_of"] is None and m["id"] not in undone
    }
    return {
        "project": project,
        "name": name,
        "versions": versions,
        "labels": history["labels"],
        "moves": history["history"],
        "undoable": undoable,
        "diff": diff,
        "diff_from": old,
        "diff_to": new,
        "can_edit": who.can(project, "editor"),
        "can_run": who.can(project, playground.RUN_ROLE),
        "url": _prompt_url(project, name),
    }


@router.get("/p/{project}/prompts/{name}", response_class=HTMLResponse)
async def prompt_page(
    request: Request, project: str, name: PromptName, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_prompt_context, request, who, project, name)
    return _page(request, "prompt.html", **context)


@router.post("/p/{project}/prompts/{name}/labels", dependencies=[Depends(csrf_protect)])
async def move_label(
    request: Request, project: str, name: PromptName, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    label = str(form.get("label") or "").strip()
    version = _number(str(form.get("version") or ""))
    if version is None:
        who.require(project, "editor")
        raise UserError("choose the version the label should point at")
    moved = await run_in_threadpool(
        prompts.move_label, runtime_of(request), who, project, name, label, version
    )
    said = "already pointed" if moved["moved"] is None else "now points"
    return _redirect(_prompt_url(project, name), f"Label {label!r} {said} at v{version}.")


@router.post(
    "/p/{project}/prompts/{name}/labels/{label}/undo", dependencies=[Depends(csrf_protect)]
)
async def undo_label(
    request: Request,
    project: str,
    name: PromptName,
    label: LabelName,
    who: Principal = Depends(web_principal),
) -> Response:
    undone = await run_in_threadpool(
        prompts.undo_label, runtime_of(request), who, project, name, label
    )
    where = f"v{undone['version']}" if undone["version"] is not None else "nowhere (removed)"
    return _redirect(_prompt_url(project, name), f"Undone: {label!r} is back at {where}.")


# ---------------------------------------------------------------------------------------------
# The playground page


def _playground_context(
    request: Request, who: Principal, project: str, name: str | None, version: int | None
) -> dict[str, Any]:
    rt = runtime_of(request)
    who.require(project, playground.RUN_ROLE)
    loaded = None
    versions: list[dict[str, Any]] = []
    if name:
        loaded = prompts.get_prompt(rt, who, project, name, version=version)
        versions = prompts.list_versions(rt, who, project, name)
    names = _or_empty(lambda: prompts.list_prompts(rt, who, project))
    return {
        "project": project,
        "prompt": loaded,
        "prompt_name": name or "",
        "versions": versions,
        "prompt_names": [p["name"] for p in names],
        "connections": _or_empty(lambda: connections.list_connections(rt, who, project)),
        "datasets": _or_empty(lambda: datasets.list_datasets(rt, who, project)),
        "evaluators": _or_empty(lambda: evaluators.list_evaluators(rt, who, project)),
        "quick_scorers": playground.QUICK_SCORERS,
        "max_side_by_side": playground.MAX_SIDE_BY_SIDE,
        "max_records": playground.MAX_RUN_RECORDS,
        "can_run": who.can(project, playground.RUN_ROLE),
        "can_edit": who.can(project, "editor"),
        "params_text": json.dumps((loaded or {}).get("params") or {}, indent=2),
    }


@router.get("/p/{project}/playground", response_class=HTMLResponse)
async def playground_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    params = request.query_params
    name = params.get("prompt", "").strip()[:200] or None
    raw_version = params.get("version", "")
    version = _number(raw_version)
    if raw_version and version is None:
        raise UserError(f"version: {raw_version[:40]!r} is not a version number (1, 2, ...)")
    if name is not None:
        prompts.check_name(name)
    context = await run_in_threadpool(_playground_context, request, who, project, name, version)
    return _page(request, "playground.html", **context)


# ---------------------------------------------------------------------------------------------
# The playground's JSON routes (static/playground.js)


class MessageIn(ApiModel):
    role: str = Field(max_length=20)
    content: str = Field(max_length=prompts.MAX_CONTENT_CHARS)


class DraftIn(ApiModel):
    messages: list[MessageIn] = Field(min_length=1, max_length=prompts.MAX_MESSAGES)
    model: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    response_format: dict[str, Any] | None = None


class RunIn(ApiModel):
    """One run: the draft on screen (or none: the stored ``prompt``@``version``)."""

    draft: DraftIn | None = None
    prompt: str | None = Field(default=None, max_length=200)
    version: Annotated[Count32, Field(ge=1)] | None = None
    connection: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)

    def request(self) -> playground.RunRequest:
        return playground.RunRequest(
            draft=self.draft.model_dump(exclude_none=True) if self.draft else None,
            prompt=self.prompt or None,
            version=self.version,
            connection=self.connection or None,
            model=self.model or None,
            params=self.params,
        )


class DatasetRunIn(RunIn):
    dataset: str = Field(min_length=1, max_length=200)
    dataset_version: Annotated[Count32, Field(ge=1)] | None = None
    scorers: list[str] = Field(default_factory=list, max_length=20)
    evaluators: list[Annotated[int, Field(ge=1, le=INT32_MAX)]] = Field(
        default_factory=list, max_length=20
    )


class SaveIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    draft: DraftIn
    message: str | None = Field(default=None, max_length=10_000)


class PromoteIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    label: str = Field(min_length=1, max_length=100)
    version: Annotated[Count32, Field(ge=1)]


def _json(value: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(value, default=str),
        status_code=status,
        media_type="application/json",
        headers=SECURITY_HEADERS,
    )


def _line(kind: str, **fields: Any) -> bytes:
    return (json.dumps({"type": kind, **fields}, default=str) + "\n").encode()


def _result_fields(result: playground.RunOutput) -> dict[str, Any]:
    return {
        "output": result.output,
        "error": result.error,
        "trace_id": result.trace_id,
        "latency_ms": result.latency_ms,
        "model": result.model,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "cost": result.usage.cost,
    }


def _as_lines(pieces: Iterator[str | playground.RunOutput]) -> Iterator[bytes]:
    """The stream as JSON lines: {"type": "text", "text": ...} per piece, then "done"."""
    finished = False
    try:
        for piece in pieces:
            if isinstance(piece, playground.RunOutput):
                finished = True
                yield _line("done", **_result_fields(piece))
            else:
                yield _line("text", text=piece)
    except Exception as error:  # the stream has started: the error is its last line
        yield _line("done", error=f"{type(error).__name__}: {error}"[:2000])
        return
    if not finished:
        yield _line("done", error="the target ended without an answer")


@router.post("/p/{project}/playground/run", dependencies=[Depends(csrf_protect)])
async def run_once(
    request: Request, project: str, body: RunIn, who: Principal = Depends(web_principal)
) -> Response:
    pieces = await run_in_threadpool(
        playground.stream_once,
        runtime_of(request),
        who,
        project,
        body.request(),
        body.variables,
    )
    return StreamingResponse(
        _as_lines(pieces),
        media_type="application/x-ndjson",
        headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"},
    )


@router.post("/p/{project}/playground/runs", dependencies=[Depends(csrf_protect)])
async def start_run(
    request: Request, project: str, body: DatasetRunIn, who: Principal = Depends(web_principal)
) -> Response:
    status = await run_in_threadpool(
        lambda: playground.start_dataset_run(
            runtime_of(request),
            who,
            project,
            body.request(),
            dataset=body.dataset,
            dataset_version=body.dataset_version,
            scorers=body.scorers,
            evaluator_ids=body.evaluators,
        )
    )
    return _json(_with_links(project, status), 201)


def _with_links(project: str, status: dict[str, Any]) -> dict[str, Any]:
    experiments = f"{_base(project)}/experiments"
    status["url"] = f"{experiments}/{status['experiment_id']}"
    previous = status.get("previous")
    status["compare_url"] = (
        f"{experiments}/{previous['id']}/compare/{status['experiment_id']}" if previous else None
    )
    return status


@router.get("/p/{project}/playground/runs/{experiment_id}")
async def run_progress(
    request: Request, project: str, experiment_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    status = await run_in_threadpool(
        playground.run_status, runtime_of(request), who, project, experiment_id
    )
    return _json(_with_links(project, status))


@router.get("/p/{project}/playground/records")
async def dataset_records(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    dataset = request.query_params.get("dataset", "")[:200]
    if not dataset:
        raise UserError("name the dataset: ?dataset=NAME")
    raw_version = request.query_params.get("version", "")
    version = _number(raw_version)
    if raw_version and version is None:
        raise UserError(f"version: {raw_version[:40]!r} is not a version number")
    found = await run_in_threadpool(
        playground.dataset_records, runtime_of(request), who, project, dataset, version
    )
    return _json(found)


@router.post("/p/{project}/playground/save", dependencies=[Depends(csrf_protect)])
async def save_version(
    request: Request, project: str, body: SaveIn, who: Principal = Depends(web_principal)
) -> Response:
    raw = {
        "name": body.name,
        **body.draft.model_dump(exclude_none=True),
        "message": body.message,
    }
    saved, created = await run_in_threadpool(
        prompts.save_version, runtime_of(request), who, project, raw
    )
    return _json(
        {
            "name": saved["name"],
            "version": saved["version"],
            "created": created,
            "url": f"{_base(project)}/playground?prompt={quote(body.name)}"
            f"&version={saved['version']}",
        },
        201 if created else 200,
    )


@router.post("/p/{project}/playground/promote", dependencies=[Depends(csrf_protect)])
async def promote(
    request: Request, project: str, body: PromoteIn, who: Principal = Depends(web_principal)
) -> Response:
    moved = await run_in_threadpool(
        prompts.move_label,
        runtime_of(request),
        who,
        project,
        body.name,
        body.label,
        body.version,
    )
    return _json(moved)
