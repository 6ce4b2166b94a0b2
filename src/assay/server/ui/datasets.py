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
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from assay.errors import UserError
from assay.server.auth import runtime_of
from assay.server.ui._render import _pretty, render
from assay.server.web_auth import Viewer, csrf_protect, viewer
from assay.store import datasets as dataset_store
from assay.store import projects as project_store

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


def _not_found(request: Request, project: str, message: str) -> HTMLResponse:
    return _page(
        request, "error.html", status=404, title="Not found", message=message, project=project
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------------------
# The list and creating a dataset


def _list_context(request: Request, project: str) -> dict[str, Any]:
    runtime = runtime_of(request)
    with runtime.engine.connect() as conn:
        project_id = project_store.get_id(conn, project)
        items = dataset_store.list_datasets(conn, project_id) if project_id is not None else []
    return {"project": project, "datasets": items, "base": _base(project)}


@router.get("/p/{project}/datasets", response_class=HTMLResponse)
async def datasets_page(
    request: Request, project: str, who: Viewer = Depends(viewer)
) -> HTMLResponse:
    who.require(project)
    context = await run_in_threadpool(_list_context, request, project)
    return _page(request, "datasets.html", form={}, errors={}, **context)


@router.get("/p/{project}/dataset-names")
async def dataset_names(request: Request, project: str, who: Viewer = Depends(viewer)) -> Response:
    """Names for the "add to dataset" form's suggestions (loaded when the form opens)."""
    who.require(project)
    context = await run_in_threadpool(_list_context, request, project)
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
async def create_dataset(request: Request, project: str, who: Viewer = Depends(viewer)) -> Response:
    who.require(project, "editor")
    form = await request.form()
    name, description = _text(form, "name").strip(), _text(form, "description").strip()
    problem = _check_name(name)
    if problem:
        context = await run_in_threadpool(_list_context, request, project)
        return _page(
            request,
            "datasets.html",
            status=400,
            form={"name": name, "description": description},
            errors={"name": problem},
            **context,
        )

    def create() -> bool:
        with runtime_of(request).updates.begin() as conn:
            project_id = project_store.ensure(conn, project)
            existed = dataset_store.get(conn, project_id, name) is not None
            dataset_store.create(conn, project_id, name, description or None)
        return existed

    existed = await run_in_threadpool(create)
    message = f"Dataset {name!r} already exists." if existed else f"Created dataset {name!r}."
    return _redirect(_dataset_url(project, name), message)


# ---------------------------------------------------------------------------------------------
# One dataset


def _version_param(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


@router.get("/p/{project}/datasets/{name}", response_class=HTMLResponse)
async def dataset_page(
    request: Request, project: str, name: str, who: Viewer = Depends(viewer)
) -> HTMLResponse:
    who.require(project)
    params = request.query_params
    wanted = _version_param(params.get("version"))
    after = params.get("after", "")

    def load() -> dict[str, Any] | None:
        with runtime_of(request).engine.connect() as conn:
            project_id = project_store.get_id(conn, project)
            dataset = dataset_store.get(conn, project_id, name) if project_id else None
            if dataset is None:
                return None
            latest = int(dataset["version"])
            version = latest if wanted is None or wanted > latest else wanted
            records, next_id = dataset_store.records(
                conn,
                int(dataset["id"]),
                version,
                limit=PAGE_RECORDS,
                after_id=int(after) if after.isdigit() else None,
            )
            return {
                "dataset": dataset,
                "version": version,
                "latest": latest,
                "records": records,
                "next_id": next_id,
                "count": dataset_store.count(conn, int(dataset["id"]), version),
                "versions": dataset_store.versions(conn, int(dataset["id"])),
                "changes": (
                    dataset_store.version_changes(conn, int(dataset["id"]), version)
                    if version
                    else None
                ),
            }

    loaded = await run_in_threadpool(load)
    if loaded is None:
        return _not_found(request, project, f"there is no dataset {name!r} in {project!r}")
    return _page(
        request,
        "dataset.html",
        project=project,
        base=_base(project),
        url=_dataset_url(project, name),
        read_only=loaded["version"] != loaded["latest"],
        can_edit=who.can(project, "editor"),
        **loaded,
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
) -> HTMLResponse:
    """The record page in one of its modes: ``view`` (and edit), ``new``, ``from_trace``."""
    who = viewer(request)

    def load() -> dict[str, Any] | None:
        with runtime_of(request).engine.connect() as conn:
            project_id = project_store.get_id(conn, project)
            dataset = dataset_store.get(conn, project_id, name) if project_id else None
            if dataset is None:
                return {"dataset": None} if mode == "from_trace" else None
            latest = int(dataset["version"])
            pinned = latest if version is None or version > latest else version
            record = None
            if record_id is not None:
                record = dataset_store.get_record(conn, int(dataset["id"]), pinned, record_id)
                if record is None:
                    return None
            return {"dataset": dataset, "version": pinned, "latest": latest, "record": record}

    loaded = await run_in_threadpool(load)
    if loaded is None:
        what = f"record {record_id!r} in dataset {name!r}" if record_id else f"dataset {name!r}"
        return _not_found(request, project, f"there is no {what} in {project!r}")
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
    request: Request, project: str, name: str, who: Viewer = Depends(viewer)
) -> HTMLResponse:
    who.require(project)
    record_id = request.query_params.get("id", "")
    version = _version_param(request.query_params.get("version"))
    return await _record_page(
        request, project, name, mode="view", record_id=record_id, version=version
    )


@router.get("/p/{project}/datasets/{name}/new", response_class=HTMLResponse)
async def new_record_page(
    request: Request, project: str, name: str, who: Viewer = Depends(viewer)
) -> HTMLResponse:
    who.require(project, "editor")
    return await _record_page(request, project, name, mode="new", form={"metadata": "{}"})


def _apply(request: Request, project: str, name: str, changes: dataset_store.Changes) -> int:
    with runtime_of(request).updates.begin() as conn:
        project_id = project_store.get_id(conn, project)
        if project_id is None:
            raise dataset_store.DatasetNotFound(f"dataset {name!r} does not exist")
        dataset = dataset_store.require(conn, project_id, name)
        return int(dataset_store.apply(conn, dataset, changes)["version"])


@router.post("/p/{project}/datasets/{name}/records", dependencies=[Depends(csrf_protect)])
async def add_record(
    request: Request, project: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.require(project, "editor")
    submitted = _submitted(await request.form())
    values, errors = _validated(submitted)
    record_id = submitted["record_id"].strip()
    if len(record_id) > 64:
        errors["record_id"] = "a record id is at most 64 characters"
    if not errors:
        record = {**values, **({"record_id": record_id} if record_id else {})}
        changes = dataset_store.Changes(
            insert=[record], message=submitted["message"] or None, author=who.name
        )
        try:
            version = await run_in_threadpool(_apply, request, project, name, changes)
        except UserError as exc:
            errors["record_id" if "already exists" in str(exc) else "form"] = str(exc)
        else:
            return _redirect(_dataset_url(project, name), f"Added a record: version {version}.")
    return await _record_page(
        request, project, name, mode="new", status=400, form=submitted, errors=errors
    )


@router.post("/p/{project}/datasets/{name}/record", dependencies=[Depends(csrf_protect)])
async def edit_record(
    request: Request, project: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.require(project, "editor")
    submitted = _submitted(await request.form())
    record_id = submitted["record_id"]
    values, errors = _validated(submitted)
    if not errors:
        changes = dataset_store.Changes(
            update=[{"record_id": record_id, **values}],
            message=submitted["message"] or None,
            author=who.name,
        )
        try:
            version = await run_in_threadpool(_apply, request, project, name, changes)
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
    )


@router.post("/p/{project}/datasets/{name}/record/delete", dependencies=[Depends(csrf_protect)])
async def delete_record(
    request: Request, project: str, name: str, who: Viewer = Depends(viewer)
) -> Response:
    who.require(project, "editor")
    form = await request.form()
    record_id = _text(form, "record_id")
    changes = dataset_store.Changes(
        delete=[record_id], message=_text(form, "message") or None, author=who.name
    )
    try:
        version = await run_in_threadpool(_apply, request, project, name, changes)
    except UserError as exc:
        return _not_found(request, project, str(exc))
    return _redirect(
        _dataset_url(project, name), f"Deleted record {record_id!r}: version {version}."
    )


# ---------------------------------------------------------------------------------------------
# Add to dataset, from a trace or a span


@router.post("/p/{project}/datasets/add-from-trace", dependencies=[Depends(csrf_protect)])
async def add_from_trace(request: Request, project: str, who: Viewer = Depends(viewer)) -> Response:
    who.require(project, "annotator")
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

    def store() -> tuple[str, int] | str:
        with runtime_of(request).updates.begin() as conn:
            project_id = project_store.get_id(conn, project)
            source = (
                dataset_store.span_source(conn, project_id, trace_id, span_id)
                if project_id is not None
                else None
            )
            if source is None or project_id is None:
                return "that trace or span is not in this project"
            dataset = dataset_store.get(conn, project_id, dataset_name)
            if dataset is None:
                if not who.can(project, "editor"):
                    return f"there is no dataset {dataset_name!r}; creating one needs an editor"
                dataset = dataset_store.create(conn, project_id, dataset_name)
            record = {
                "input": source["input"],
                # A blank field means "what the span answered"; type null for no expected.
                "expected": source["output"] if not expected_text.strip() else expected,
                "metadata": {"source_span_name": source["name"]},
                "source_trace_id": source["trace_id"],
                "source_span_id": source["span_id"],
            }
            entry = dataset_store.apply(
                conn,
                dataset,
                dataset_store.Changes(
                    insert=[record], message=f"from trace {trace_id}", author=who.name
                ),
            )
            return dataset_name, int(entry["version"])

    if not errors:
        outcome = await run_in_threadpool(store)
        if isinstance(outcome, tuple):
            name, version = outcome
            return _redirect(
                _dataset_url(project, name), f"Added the span to {name!r}: version {version}."
            )
        errors["form"] = outcome
    return await _record_page(
        request,
        project,
        dataset_name if not _check_name(dataset_name) else "",
        mode="from_trace",
        status=400,
        form=submitted,
        errors=errors,
        extra={"trace_id": trace_id, "span_id": span_id or ""},
    )
