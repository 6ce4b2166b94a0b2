"""The traces room: the filtered trace list, one trace's span tree and a span's details.

The trace page draws the tree from narrow outline rows; a span's payloads are read only when it
is opened (server-side for ``?span=``, or as an HTML fragment fetched by ``traces.js``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from assay.server.auth import runtime_of
from assay.server.ui._render import render
from assay.server.ui.conversation import SHOWN_CHARS, pretty, show
from assay.server.web_auth import Viewer, viewer
from assay.store import projects as project_store
from assay.store import queries, ui_queries
from assay.store.queries import Filters, InvalidQuery

router = APIRouter(include_in_schema=False)

T = TypeVar("T")

#: Relative time windows offered by the filter bar (kept relative in the URL when shared).
RANGES = {"15m": 900, "1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
SPAN_TYPES = ("agent", "llm", "tool", "retrieval", "chain", "embedding", "task", "scorer", "span")
PAGE_SIZES = (25, 50, 100, 200)
#: Attribute values longer than this are cut in the attribute table.
ATTRIBUTE_CHARS = 2_000
#: A fragment request (infinite scroll, span detail) sends this header.
FRAGMENT_HEADER = "x-assay-fragment"


class NotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def segment(value: Any) -> str:
    """A value as one URL path segment ('/' and every reserved character escaped)."""
    return quote(str(value), safe="")


def _parse_time(text: str, name: str, problems: list[str]) -> int | None:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{name}: {text!r} is not a time (use 2026-01-31T12:00 or epoch ns)")
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000_000)


def _parse_number(text: str, name: str, problems: list[str]) -> float | None:
    try:
        return float(text)
    except ValueError:
        problems.append(f"{name}: {text!r} is not a number")
        return None


def parse_filters(
    params: Mapping[str, str], multi: list[tuple[str, str]]
) -> tuple[Filters, list[str]]:
    """The query API's filters from a page URL; empty fields are ignored, bad ones reported."""
    problems: list[str] = []
    got = {key: value.strip() for key, value in params.items() if value.strip()}
    f = Filters()
    for key in ("name", "type", "model", "session_id", "user_id", "trace_id", "score", "q"):
        if key in got:
            setattr(f, key, got[key][:500])
    if "status" in got:
        if got["status"] in ("ok", "error", "unset"):
            f.status = got["status"]
        else:
            problems.append(f"status: {got['status']!r} is not ok, error or unset")
    window = RANGES.get(got.get("range", ""))
    if window is not None:
        f.since = time.time_ns() - window * 1_000_000_000
    for key in ("since", "until"):
        if key in got:
            setattr(f, key, _parse_time(got[key], key, problems))
    numbers = (
        "min_duration_ms",
        "max_duration_ms",
        "min_cost",
        "max_cost",
        "min_score",
        "max_score",
    )
    for key in numbers:
        if key in got:
            setattr(f, key, _parse_number(got[key], key, problems))
    f.tags = [value.strip() for key, value in multi if key == "tag" and value.strip()]
    for key, value in multi:
        if key != "metadata" or not value.strip():
            continue
        name, sep, wanted = value.strip().partition("=")
        if sep and name:
            f.metadata.append((name, wanted))
        else:
            problems.append(f"metadata: {value!r} must look like key=value")
    return f, problems


def _choice(value: str | None, allowed: tuple[Any, ...], default: Any) -> Any:
    for option in allowed:
        if value == str(option):
            return option
    return default


class Timed:
    """Server-Timing figures for one request: where the time went (db, render)."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, float]] = []

    async def run(self, name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = await run_in_threadpool(work)
        self.parts.append((name, (time.perf_counter() - started) * 1000))
        return result

    def finish(self, response: Response, render_started: float) -> Response:
        self.parts.append(("render", (time.perf_counter() - render_started) * 1000))
        response.headers["Server-Timing"] = ", ".join(
            f"{name};dur={ms:.1f}" for name, ms in self.parts
        )
        return response


def project_id_or_404(conn: Any, project: str) -> int:
    project_id = project_store.get_id(conn, project)
    if project_id is None:
        raise NotFound(f"there is no project {project!r} you can see")
    return project_id


def not_found_page(request: Request, message: str, project: str | None = None) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status=404,
        title="Not found",
        message=message,
        project=project,
        room="traces",
    )


def is_fragment(request: Request) -> bool:
    return request.headers.get(FRAGMENT_HEADER) == "1"


@router.get("/p/{project}/traces", response_class=HTMLResponse)
async def traces_page(request: Request, project: str, who: Viewer = Depends(viewer)) -> Response:
    who.require(project)
    params = request.query_params
    f, problems = parse_filters(params, params.multi_items())
    sort = _choice(params.get("sort"), queries.SORTS, "start")
    order = _choice(params.get("order"), ("asc", "desc"), "desc")
    limit = _choice(params.get("limit"), PAGE_SIZES, 50)
    cursor = params.get("cursor") or None
    timed = Timed()

    def load() -> queries.Page:
        with runtime_of(request).engine.connect() as conn:
            project_id = project_id_or_404(conn, project)
            return queries.list_traces(
                conn, project_id, f, limit=limit, cursor=cursor, sort=sort, order=order
            )

    try:
        page = await timed.run("db", load)
    except NotFound as missing:
        return not_found_page(request, missing.message)
    except InvalidQuery as bad:
        problems.append(str(bad))
        page = queries.Page([], None)
    started = time.perf_counter()
    context: dict[str, Any] = {
        "project": project,
        "room": "traces",
        "traces": page.items,
        "next_cursor": page.next_cursor,
        "segment": segment,
    }
    if is_fragment(request):
        response = render(request, "_trace_rows.html", **context)
        response.headers["Vary"] = "X-Assay-Fragment"
        return timed.finish(response, started)
    response = render(
        request,
        "traces.html",
        problems=problems,
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        ranges=list(RANGES),
        span_types=SPAN_TYPES,
        page_sizes=PAGE_SIZES,
        tags=f.tags,
        metadata=[f"{k}={v}" for k, v in f.metadata],
        filtered=_is_filtered(params),
        **context,
    )
    response.headers["Vary"] = "X-Assay-Fragment"
    return timed.finish(response, started)


def _is_filtered(params: Mapping[str, str]) -> bool:
    ignored = {"sort", "order", "limit", "cursor"}
    return any(value.strip() for key, value in params.items() if key not in ignored)


def span_context(span: dict[str, Any], full: bool) -> dict[str, Any]:
    """What ``_span_detail.html`` needs to draw one span."""
    texts = {span.get("input"), span.get("output")} - {None, ""}
    attributes = []
    for key in sorted(span.get("attributes") or {}):
        value = span["attributes"][key]
        if isinstance(value, str) and value in texts and len(value) > 20:
            attributes.append((key, "(shown above as input/output)", False))
            continue
        text = value if isinstance(value, str) else pretty(value)
        cut = not full and len(text) > ATTRIBUTE_CHARS
        attributes.append((key, text[:ATTRIBUTE_CHARS] + "…" if cut else text, cut))
    events = []
    for event in span.get("events") or []:
        attrs = dict(event.get("attributes") or {})
        stack = attrs.pop("exception.stacktrace", None)
        offset = None
        if isinstance(event.get("time_unix_nano"), int):
            offset = (event["time_unix_nano"] - span["start_ns"]) / 1e6
        events.append(
            {
                "name": str(event.get("name") or ""),
                "offset_ms": offset,
                "attributes": [
                    (k, v if isinstance(v, str) else pretty(v)) for k, v in attrs.items()
                ],
                "stacktrace": str(stack)[:SHOWN_CHARS] if stack else None,
                "is_exception": event.get("name") == "exception",
            }
        )
    return {
        "span": span,
        "span_id": span["span_id"],
        "trace_id": span["trace_id"],
        "input_shown": show(span.get("input"), full=full),
        "output_shown": show(span.get("output"), full=full),
        "span_output": span.get("output"),
        "attributes": attributes,
        "events": events,
        "resource": sorted((span.get("resource") or {}).items()),
        "full": full,
    }


@router.get("/p/{project}/traces/{trace_id}", response_class=HTMLResponse)
async def trace_page(
    request: Request,
    project: str,
    trace_id: str,
    span: str | None = None,
    full: bool = False,
    who: Viewer = Depends(viewer),
) -> Response:
    who.require(project)
    trace_id = trace_id.lower()
    timed = Timed()

    def load() -> tuple[dict[str, Any], ui_queries.Outline, dict[str, Any] | None]:
        with runtime_of(request).engine.connect() as conn:
            project_id = project_id_or_404(conn, project)
            trace = ui_queries.trace_summary(conn, project_id, trace_id)
            if trace is None:
                raise NotFound(f"trace {trace_id} is not in project {project!r}")
            # The other side of a trace that crossed projects, for those who may read it.
            trace["linked_projects"] = [
                name
                for other_id, name in queries.projects_holding_trace(conn, trace_id)
                if other_id != project_id and who.may_see(name)
            ]
            outline = ui_queries.trace_outline(conn, project_id, trace_id)
            wanted = (
                span
                or trace["root_span_id"]
                or (outline.rows[0]["span_id"] if outline.rows else None)
            )
            selected = ui_queries.get_span(conn, project_id, trace_id, wanted) if wanted else None
            return trace, outline, selected

    try:
        trace, outline, selected = await timed.run("db", load)
    except NotFound as missing:
        return not_found_page(request, missing.message, project)
    started = time.perf_counter()
    context: dict[str, Any] = {"trace_id": trace_id, "span_id": None}
    if selected:
        context.update(span_context(selected, full))
    response = render(
        request,
        "trace.html",
        project=project,
        room="traces",
        trace=trace,
        outline=outline,
        selected_id=selected["span_id"] if selected else None,
        segment=segment,
        **context,
    )
    return timed.finish(response, started)


@router.get("/p/{project}/traces/{trace_id}/spans/{span_id}", response_class=HTMLResponse)
async def span_fragment(
    request: Request,
    project: str,
    trace_id: str,
    span_id: str,
    full: bool = False,
    who: Viewer = Depends(viewer),
) -> Response:
    """One span's detail pane as an HTML fragment; a plain visit goes to the trace page."""
    who.require(project)
    trace_id, span_id = trace_id.lower(), span_id.lower()
    if not is_fragment(request):
        target = f"/p/{segment(project)}/traces/{segment(trace_id)}?span={segment(span_id)}"
        return RedirectResponse(target + ("&full=true" if full else ""), status_code=303)
    timed = Timed()

    def load() -> dict[str, Any] | None:
        with runtime_of(request).engine.connect() as conn:
            project_id = project_id_or_404(conn, project)
            return ui_queries.get_span(conn, project_id, trace_id, span_id)

    try:
        found = await timed.run("db", load)
    except NotFound as missing:
        return not_found_page(request, missing.message)
    if found is None:
        return not_found_page(request, f"span {span_id} is not in trace {trace_id}", project)
    started = time.perf_counter()
    response = render(
        request, "_span_detail.html", project=project, segment=segment, **span_context(found, full)
    )
    response.headers["Vary"] = "X-Assay-Fragment"
    return timed.finish(response, started)
