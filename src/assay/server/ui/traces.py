"""The traces room: the filtered trace list, one trace's span tree and a span's details.

The trace page draws the tree from narrow outline rows; a span's payloads are read only when it
is opened (server-side for ``?span=``, or as an HTML fragment fetched by ``traces.js``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from assay.semconv.attributes import DROPPED_PREFIX, SAME_CALL_AS, STORED_AS
from assay.server.security.web import web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import render
from assay.server.ui.conversation import SHOWN_CHARS, pretty, show
from assay.services import review, traces
from assay.services.filters import RANGES, parse_filters
from assay.services.principal import Principal
from assay.services.traces import SORTS, InvalidQuery, Page

router = APIRouter(include_in_schema=False)

T = TypeVar("T")

SPAN_TYPES = ("agent", "llm", "tool", "retrieval", "chain", "embedding", "task", "scorer", "span")
PAGE_SIZES = (25, 50, 100, 200)
#: Attribute values longer than this are cut in the attribute table.
ATTRIBUTE_CHARS = 2_000
#: A fragment request (infinite scroll, span detail) sends this header.
FRAGMENT_HEADER = "x-assay-fragment"


def segment(value: Any) -> str:
    """A value as one URL path segment ('/' and every reserved character escaped)."""
    return quote(str(value), safe="")


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


def is_fragment(request: Request) -> bool:
    return request.headers.get(FRAGMENT_HEADER) == "1"


@router.get("/p/{project}/traces", response_class=HTMLResponse)
async def traces_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    params = request.query_params
    f, found_problems = parse_filters(params.multi_items())
    problems = [str(problem) for problem in found_problems]
    sort = _choice(params.get("sort"), SORTS, "start")
    order = _choice(params.get("order"), ("asc", "desc"), "desc")
    limit = _choice(params.get("limit"), PAGE_SIZES, 50)
    cursor = params.get("cursor") or None
    timed = Timed()

    def load() -> Page:
        return traces.list_traces(
            runtime_of(request), who, project, f, limit=limit, cursor=cursor, sort=sort, order=order
        )

    try:
        page = await timed.run("db", load)
    except InvalidQuery as bad:
        problems.append(str(bad))
        page = Page([], None)
    queues: list[dict[str, Any]] = []
    if page.items and who.can(project, "annotator"):
        queues = await timed.run(
            "queues", lambda: review.list_queues(runtime_of(request), who, project)
        )
    started = time.perf_counter()
    context: dict[str, Any] = {
        "project": project,
        "room": "traces",
        "traces": page.items,
        "next_cursor": page.next_cursor,
        "segment": segment,
        # Ticking traces into a review queue, for those who may add items.
        "review_queues": queues,
    }
    if is_fragment(request):
        response = render(request, "_trace_rows.html", **context)
        response.headers["Vary"] = "X-Assay-Fragment"
        return timed.finish(response, started)
    response = render(
        request,
        "traces.html",
        # A value that could not be used is the client's error, named above the list.
        status=400 if problems else 200,
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
    dropped = []
    for key in sorted(span.get("attributes") or {}):
        value = span["attributes"][key]
        if key.startswith(DROPPED_PREFIX) and isinstance(value, int):
            dropped.append((value, key[len(DROPPED_PREFIX) :]))
            continue
        stored_once = isinstance(value, dict) and len(value) == 1 and STORED_AS in value
        if stored_once or (isinstance(value, str) and value in texts and len(value) > 20):
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
        # Stored events carry time_ns (ingest/otlp.py); time_unix_nano is the older name.
        at = event.get("time_ns", event.get("time_unix_nano"))
        if isinstance(at, int):
            offset = (at - span["start_ns"]) / 1e6
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
    same_call = (span.get("attributes") or {}).get(SAME_CALL_AS)
    return {
        "span": span,
        "same_call": same_call.split("/", 1) if isinstance(same_call, str) else None,
        "span_id": span["span_id"],
        "trace_id": span["trace_id"],
        "input_shown": show(span.get("input"), full=full),
        "output_shown": show(span.get("output"), full=full),
        "span_output": span.get("output"),
        "attributes": attributes,
        "dropped": dropped,
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
    who: Principal = Depends(web_principal),
) -> Response:
    trace_id = trace_id.lower()
    timed = Timed()
    view = await timed.run(
        "db", lambda: traces.trace_view(runtime_of(request), who, project, trace_id, span)
    )
    trace, outline, selected = view.trace, view.outline, view.selected
    queues: list[dict[str, Any]] = []
    if who.can(project, "annotator"):
        queues = await timed.run(
            "queues", lambda: review.list_queues(runtime_of(request), who, project)
        )
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
        review_queues=queues,
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
    who: Principal = Depends(web_principal),
) -> Response:
    """One span's detail pane as an HTML fragment; a plain visit goes to the trace page."""
    trace_id, span_id = trace_id.lower(), span_id.lower()
    if not is_fragment(request):
        target = f"/p/{segment(project)}/traces/{segment(trace_id)}?span={segment(span_id)}"
        return RedirectResponse(target + ("&full=true" if full else ""), status_code=303)
    timed = Timed()
    found = await timed.run(
        "db", lambda: traces.get_span(runtime_of(request), who, project, trace_id, span_id)
    )
    started = time.perf_counter()
    response = render(
        request, "_span_detail.html", project=project, segment=segment, **span_context(found, full)
    )
    response.headers["Vary"] = "X-Assay-Fragment"
    return timed.finish(response, started)
