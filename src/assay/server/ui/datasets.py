"""The datasets room: datasets, their records and versions; editing; "add to dataset" from a trace.

Roles: viewers read; editors create datasets and add, edit and delete records; annotators may
add a span to an existing dataset from the trace page (curating examples is annotation work),
but creating a dataset that way needs an editor.

Record fields are edited as text: text that parses as JSON is stored as that value, other text
as a string, except text that opens like JSON (``{``, ``[``) and does not parse, which is
refused so a typo does not silently turn an object into a string. Metadata must be an object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from assay.errors import NotFound, ProjectNotFound, UserError
from assay.server.bounds import INT32_MAX, INT64_MAX
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import _pretty, render
from assay.services import datasets, export, review
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

PAGE_RECORDS = 100
#: A value on the record page is cut here unless "show all" is asked for.
SHOWN_CHARS = 100_000
#: Above this a value is not offered for editing in a text area.
EDITABLE_CHARS = 1_000_000
FLASH_COOKIE = "assay_flash"
HEX_TRACE = re.compile(r"^[0-9a-f]{32}$")
HEX_SPAN = re.compile(r"^[0-9a-f]{16}$")


class FieldError(ValueError):
    pass


def parse_field(text: str, *, name: str, required: bool = False, object_only: bool = False) -> Any:
    """A form field's text as a value (see the module docstring for the rule)."""
    text = text.replace("\r\n", "\n")
    stripped = text.strip()
    if not stripped:
        if required:
            raise FieldError(f"{name} is required")
        return {} if object_only else None
    try:
        value = json.loads(stripped)
    except ValueError as exc:
        if object_only or stripped[0] in "{[":
            raise FieldError(f"{name} is not valid JSON: {exc}") from None
        return text
    if object_only and not isinstance(value, dict):
        raise FieldError(f'{name} must be a JSON object, like {{"key": "value"}}')
    return value


def field_text(value: Any) -> str:
    """The text a field shows for ``value``: plain for a string that reads back as itself."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            back = parse_field(value, name="")
        except FieldError:
            back = None
        return value if back == value else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, indent=2, ensure_ascii=False)


def parse_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _base(project: str) -> str:
    return f"/p/{quote(project, safe='')}/datasets"


def _dataset_url(project: str, name: str) -> str:
    return f"{_base(project)}/{quote(name, safe='')}"


def _record_url(project: str, name: str, record_id: str) -> str:
    return f"{_dataset_url(project, name)}/record?id={quote(record_id, safe='')}"


def _redirect(url: str, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash[:300]), httponly=True, samesite="strict", path="/"
        )
    return response


def _take_flash(request: Request, response: Response) -> None:
    """Show a flash message once: the page reads it and the response forgets it."""
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")


def _flash(request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    return unquote(raw) if raw else None


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = render(
        request, template, status=status, room="datasets", flash=_flash(request), **context
    )
    _take_flash(request, response)
    return response


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------------------
# The list and creating a dataset


def _list_context(request: Request, who: Principal, project: str) -> dict[str, Any]:
    try:
        items = datasets.list_datasets(runtime_of(request), who, project)
    except ProjectNotFound as missing:
        if missing.hidden:
            raise
        items = []  # a project with no traces yet: its datasets list is empty, not missing
    return {"project": project, "datasets": items, "base": _base(project)}


@router.get("/p/{project}/datasets", response_class=HTMLResponse)
async def datasets_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_list_context, request, who, project)
    return _page(request, "datasets.html", form={}, errors={}, **context)


@router.get("/p/{project}/dataset-names")
async def dataset_names(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    """Names for the "add to dataset" form's suggestions (loaded when the form opens)."""
    context = await run_in_threadpool(_list_context, request, who, project)
    return JSONResponse([d["name"] for d in context["datasets"]])


def _check_name(name: str) -> str | None:
    if not name:
        return "a name is required"
    if len(name) > 200:
        return "a name is at most 200 characters"
    if "/" in name:
        return "a name cannot contain '/'"
    return None


@router.post("/p/{project}/datasets", dependencies=[Depends(csrf_protect)])
async def create_dataset(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    name, description = _text(form, "name").strip(), _text(form, "description").strip()
    problem = _check_name(name)
    if problem:
        who.require(project, "editor")  # the form's errors are for those who may send it
        context = await run_in_threadpool(_list_context, request, who, project)
        return _page(
            request,
            "datasets.html",
            status=400,
            form={"name": name, "description": description},
            errors={"name": problem},
            **context,
        )

    _dataset, existed = await run_in_threadpool(
        datasets.create_dataset, runtime_of(request), who, project, name, description or None
    )
    message = f"Dataset {name!r} already exists." if existed else f"Created dataset {name!r}."
    return _redirect(_dataset_url(project, name), message)


# ---------------------------------------------------------------------------------------------
# One dataset


def _version_param(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and int(raw) <= INT32_MAX else None


@router.get("/p/{project}/datasets/{name}", response_class=HTMLResponse)
async def dataset_page(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    params = request.query_params
    after = params.get("after", "")
    version = params.get("version", "")
    for field, text, top in (("after", after, INT64_MAX), ("version", version, INT32_MAX)):
        if text and not (text.isdigit() and len(text) < 20 and int(text) <= top):
            message = f"{field}: {text[:40]!r} is not a valid {field}; use the page's links"
            return render(request, "error.html", status=400, title="Bad request", message=message)
    loaded = await run_in_threadpool(
        lambda: datasets.dataset_view(
            runtime_of(request),
            who,
            project,
            name,
            version=_version_param(params.get("version")),
            after_id=int(after) if after else None,
            page_size=PAGE_RECORDS,
        )
    )
    queues = []
    if who.can(project, "annotator"):
        queues = await run_in_threadpool(review.list_queues, runtime_of(request), who, project)
    return _page(
        request,
        "dataset.html",
        review_queues=queues,
        dataset_name=name,
        project=project,
        base=_base(project),
        url=_dataset_url(project, name),
        read_only=loaded["version"] != loaded["latest"],
        can_edit=who.can(project, "editor"),
        **loaded,
    )


# ---------------------------------------------------------------------------------------------
# Export: the report (what is exported, what is skipped and why) and the file


#: The export page lists this many skipped records; the report API has them all.
SHOWN_SKIPS = 200


def _export_params(request: Request) -> tuple[str, int | None]:
    params = request.query_params
    fmt = params.get("format", "openai-chat")
    version = params.get("version", "")
    if version and not (version.isdigit() and len(version) < 11 and int(version) <= INT32_MAX):
        raise UserError(f"version: {version[:40]!r} is not a version; use the page's links")
    return fmt, int(version) if version else None


@router.get("/p/{project}/datasets/{name}/export", response_class=HTMLResponse)
async def export_page(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    fmt, version = _export_params(request)

    def load() -> dict[str, Any]:
        started = export.export_dataset(
            runtime_of(request), who, project, name, fmt=fmt, version=version
        )
        return export.run_report(started)

    report = await run_in_threadpool(load)
    query = f"format={quote(fmt, safe='')}&version={report['version']}"
    url = _dataset_url(project, name)
    return _page(
        request,
        "dataset_export.html",
        project=project,
        dataset_name=name,
        base=_base(project),
        url=url,
        report=report,
        fmt=fmt,
        formats=export.FORMATS,
        shown_skips=report["skipped_records"][:SHOWN_SKIPS],
        download=f"{url}/export/download?{query}",
        report_api=(
            f"/api/v1/projects/{quote(project, safe='')}/datasets/{quote(name, safe='')}"
            f"/export?{query}&report=1"
        ),
    )


@router.get("/p/{project}/datasets/{name}/export/download")
def export_download(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> StreamingResponse:
    fmt, version = _export_params(request)
    started = export.export_dataset(
        runtime_of(request), who, project, name, fmt=fmt, version=version
    )
    return StreamingResponse(
        started.lines,
        media_type=f"{started.media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{started.filename}"'},
    )


# ---------------------------------------------------------------------------------------------
# Records: view, edit, add, delete


def _record_form(record: Mapping[str, Any]) -> dict[str, str]:
    return {
        "record_id": str(record.get("record_id") or ""),
        "input": field_text(record.get("input")),
        "expected": field_text(record.get("expected")),
        "metadata": field_text(record.get("metadata") or {}),
        "tags": ", ".join(record.get("tags") or []),
        "message": "",
    }


def _submitted(form: FormData) -> dict[str, str]:
    names = ("record_id", "input", "expected", "metadata", "tags", "message", "dataset")
    return {key: _text(form, key) for key in names}


def _validated(submitted: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    rules = {
        "input": {"required": True},
        "expected": {},
        "metadata": {"object_only": True},
    }
    for key, rule in rules.items():
        try:
            values[key] = parse_field(submitted.get(key, ""), name=key, **rule)
        except FieldError as exc:
            errors[key] = str(exc)
    values["tags"] = parse_tags(submitted.get("tags", ""))
    return values, errors


async def _record_page(
    request: Request,
    project: str,
    name: str,
    *,
    mode: str,
    status: int = 200,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    record_id: str | None = None,
    version: int | None = None,
    extra: Mapping[str, Any] | None = None,
    role: str = "viewer",
) -> HTMLResponse:
    """The record page in one of its modes: ``view`` (and edit), ``new``, ``from_trace``;
    ``role`` is what the caller needs to be shown it (an editor's, after a failed edit)."""
    who = web_principal(request)

    def load() -> dict[str, Any]:
        try:
            return datasets.record_view(
                runtime_of(request),
                who,
                project,
                name,
                record_id=record_id,
                version=version,
                role=role,
            )
        except NotFound:
            if mode != "from_trace":
                raise
            # The form sent from a trace names a dataset that may not exist (yet).
            who.require(project, role)
            return {"dataset": None}

    loaded = await run_in_threadpool(load)
    record = loaded.get("record")
    full = request.query_params.get("full") == "1"
    shown = (
        {
            key: _shown(record.get(key), SHOWN_CHARS if not full else EDITABLE_CHARS)
            for key in ("input", "expected", "metadata")
        }
        if record
        else {}
    )
    editable = record is None or all(
        len(field_text(record.get(key))) <= EDITABLE_CHARS for key in ("input", "expected")
    )
    return _page(
        request,
        "dataset_record.html",
        status=status,
        project=project,
        name=name,
        mode=mode,
        base=_base(project),
        url=_dataset_url(project, name),
        record=record,
        shown=shown,
        form=form if form is not None else (_record_form(record) if record else {}),
        errors=errors or {},
        read_only=loaded.get("dataset") is not None and loaded["version"] != loaded["latest"],
        editable=editable,
        can_edit=who.can(project, "editor"),
        **{k: v for k, v in loaded.items() if k != "record"},
        **(extra or {}),
    )


def _shown(value: Any, limit: int) -> dict[str, Any]:
    text = "" if value is None else _pretty(value)
    return {"text": text[:limit], "total": len(text), "cut": len(text) > limit}


@router.get("/p/{project}/datasets/{name}/record", response_class=HTMLResponse)
async def record_page(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    record_id = request.query_params.get("id", "")
    version = _version_param(request.query_params.get("version"))
    return await _record_page(
        request, project, name, mode="view", record_id=record_id, version=version
    )


@router.get("/p/{project}/datasets/{name}/new", response_class=HTMLResponse)
async def new_record_page(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    return await _record_page(
        request, project, name, mode="new", form={"metadata": "{}"}, role="editor"
    )


def _apply(
    request: Request, who: Principal, project: str, name: str, changes: datasets.Changes
) -> int:
    entry = datasets.change_records(runtime_of(request), who, project, name, changes)
    return int(entry["version"])


@router.post("/p/{project}/datasets/{name}/records", dependencies=[Depends(csrf_protect)])
async def add_record(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> Response:
    submitted = _submitted(await request.form())
    values, errors = _validated(submitted)
    record_id = submitted["record_id"].strip()
    if len(record_id) > 64:
        errors["record_id"] = "a record id is at most 64 characters"
    if not errors:
        record = {**values, **({"record_id": record_id} if record_id else {})}
        changes = datasets.Changes(insert=[record], message=submitted["message"] or None)
        try:
            version = await run_in_threadpool(_apply, request, who, project, name, changes)
        except UserError as exc:
            errors["record_id" if "already exists" in str(exc) else "form"] = str(exc)
        else:
            return _redirect(_dataset_url(project, name), f"Added a record: version {version}.")
    return await _record_page(
        request, project, name, mode="new", status=400, form=submitted, errors=errors, role="editor"
    )


@router.post("/p/{project}/datasets/{name}/record", dependencies=[Depends(csrf_protect)])
async def edit_record(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> Response:
    submitted = _submitted(await request.form())
    record_id = submitted["record_id"]
    values, errors = _validated(submitted)
    if not errors:
        changes = datasets.Changes(
            update=[{"record_id": record_id, **values}], message=submitted["message"] or None
        )
        try:
            version = await run_in_threadpool(_apply, request, who, project, name, changes)
        except UserError as exc:
            errors["form"] = str(exc)
        else:
            return _redirect(_record_url(project, name, record_id), f"Saved: version {version}.")
    return await _record_page(
        request,
        project,
        name,
        mode="view",
        status=400,
        form=submitted,
        errors=errors,
        record_id=record_id,
        role="editor",
    )


@router.post("/p/{project}/datasets/{name}/record/delete", dependencies=[Depends(csrf_protect)])
async def delete_record(
    request: Request, project: str, name: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    record_id = _text(form, "record_id")
    changes = datasets.Changes(delete=[record_id], message=_text(form, "message") or None)
    try:
        version = await run_in_threadpool(_apply, request, who, project, name, changes)
    except UserError as exc:
        raise NotFound(str(exc)) from None
    return _redirect(
        _dataset_url(project, name), f"Deleted record {record_id!r}: version {version}."
    )


# ---------------------------------------------------------------------------------------------
# Add to dataset, from a trace or a span


@router.post("/p/{project}/datasets/add-from-trace", dependencies=[Depends(csrf_protect)])
async def add_from_trace(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    submitted = _submitted(form)
    trace_id = _text(form, "trace_id").strip().lower()
    span_id = _text(form, "span_id").strip().lower() or None
    dataset_name = submitted["dataset"].strip()
    if not HEX_TRACE.match(trace_id) or (span_id is not None and not HEX_SPAN.match(span_id)):
        return _page(
            request,
            "error.html",
            status=400,
            title="Not a span",
            message="trace_id must be 32 hex digits and span_id 16",
            project=project,
        )
    errors: dict[str, str] = {}
    problem = _check_name(dataset_name)
    if problem:
        errors["dataset"] = problem
    try:
        expected_text = submitted["expected"]
        expected = parse_field(expected_text, name="expected") if expected_text.strip() else None
    except FieldError as exc:
        errors["expected"] = str(exc)
        expected = None

    if not errors:
        try:
            version = await run_in_threadpool(
                lambda: datasets.add_span(
                    runtime_of(request),
                    who,
                    project,
                    dataset_name,
                    trace_id,
                    span_id,
                    # A blank field means "what the span answered"; type null for no expected.
                    expected=expected,
                    expected_given=bool(submitted["expected"].strip()),
                )
            )
        except UserError as exc:
            errors["form"] = str(exc)
        else:
            return _redirect(
                _dataset_url(project, dataset_name),
                f"Added the span to {dataset_name!r}: version {version}.",
            )
    return await _record_page(
        request,
        project,
        dataset_name if not _check_name(dataset_name) else "",
        mode="from_trace",
        status=400,
        form=submitted,
        errors=errors,
        extra={"trace_id": trace_id, "span_id": span_id or ""},
        role="annotator",
    )
