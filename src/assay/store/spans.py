"""Reading spans back: the span list with payload previews, one span whole, span rows."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, case, func, select

from assay.store.listing import (
    Filters,
    Listing,
    Page,
    disagreement_condition,
    has_score_filter,
    list_rows,
    prompt_condition,
    score_condition,
    shared_conditions,
    status_condition,
    status_name,
)
from assay.store.logs import span_logs, with_logs
from assay.store.scores import attach_scores
from assay.store.tables import spans

SPAN_LIST_COLUMNS = [c for c in spans.c if c.name not in ("project_id",)]
#: A span list shows this much of a span's input and output, and of each attribute's text;
#: the trace and span routes give the whole values.
PREVIEW_CHARS = 2_000
ATTRIBUTE_PREVIEW_CHARS = 500
#: The list reads only the previews from the database: a page of 1 MB spans stays small.
#: (SQLite's text functions stop at a NUL, so a short-looking value is read whole and cut here.)
SPAN_PREVIEW_COLUMNS = [
    case((func.length(c) > PREVIEW_CHARS, func.substr(c, 1, PREVIEW_CHARS)), else_=c).label(c.name)
    if c.name in ("input", "output")
    else c
    for c in SPAN_LIST_COLUMNS
] + [
    func.length(spans.c.input).label("input_chars"),
    func.length(spans.c.output).label("output_chars"),
]

STORED_AS = "$assay.stored_as"  # see ingest/normalize.py


def span_dict(mapping: Any, full: bool = False) -> dict[str, Any]:
    """A span row for the API. An attribute whose text ingest stored once, in the input or
    output column, is answered as its marker (``{"$assay.stored_as": "input"}``), so a large
    value is sent once; ``full`` puts the text back in the attribute too (the raw form)."""
    row = dict(mapping)
    attributes = row.get("attributes")
    if attributes and full:
        for key, value in attributes.items():
            if isinstance(value, dict) and len(value) == 1 and STORED_AS in value:
                attributes[key] = row.get(value[STORED_AS])
    row["status"] = "error" if row.get("is_error") else status_name(row["status_code"])
    return row


def _cut(value: Any, limit: int) -> tuple[Any, bool]:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit], True
    return value, False


def span_preview(mapping: Any) -> dict[str, Any]:
    """A span as a list shows it: input, output and attribute texts cut to previews, with
    ``truncated`` naming what was cut (read the trace for the whole values)."""
    row = span_dict(mapping)
    truncated = []
    for name in ("input", "output"):
        row[name], cut = _cut(row[name], PREVIEW_CHARS)
        if cut or (row.pop(f"{name}_chars", None) or 0) > PREVIEW_CHARS:
            truncated.append(name)
        row.pop(f"{name}_chars", None)
    attributes = row.get("attributes")
    if isinstance(attributes, dict):
        for key, value in attributes.items():
            attributes[key], cut = _cut(value, ATTRIBUTE_PREVIEW_CHARS)
            if cut and "attributes" not in truncated:
                truncated.append("attributes")
    for name in ("events", "links", "resource"):
        size = len(orjson.dumps(row.get(name), default=str))
        if size > 8 * ATTRIBUTE_PREVIEW_CHARS:
            row[name] = None
            truncated.append(name)
    row["truncated"] = truncated
    return row


def span_conditions(
    conn: Connection, f: Filters, project_id: int, sort: str
) -> list[ColumnElement[bool]]:
    """The WHERE of the span list (also used by online rules to pick their spans)."""
    s = spans.c
    out = shared_conditions(conn, f, spans, project_id, sort)
    if f.type:
        out.append(s.type == f.type)
    if f.model:
        out.append(s.model == f.model)
    if f.status:
        out.append(status_condition(s.is_error, s.status_code, f.status))
    if has_score_filter(f):
        out.append(score_condition(f, spans, s.span_id))
    if f.disagreement:  # a disagreement is about the whole trace
        out.append(disagreement_condition(f, spans))
    if f.prompt:
        out.append(prompt_condition(f))
    return out


_SPANS = Listing(
    table=spans,
    columns=SPAN_PREVIEW_COLUMNS,
    key="id",
    conditions=span_conditions,
    to_row=span_preview,
    among_spans=lambda conn, ids, project_id: spans.c.id.in_(ids),
    scores_by="span",
)


def list_spans(
    conn: Connection,
    project_id: int,
    f: Filters,
    *,
    limit: int = 50,
    cursor: str | None = None,
    sort: str = "start",
    order: str = "desc",
    max_bytes: int | None = None,
) -> Page:
    return list_rows(_SPANS, conn, project_id, f, limit, cursor, sort, order, max_bytes)


def get_span(
    conn: Connection, project_id: int, trace_id: str, span_id: str
) -> dict[str, Any] | None:
    """One span of the project with everything stored about it, and its scores."""
    row = conn.execute(
        select(spans.c.project_id, *SPAN_LIST_COLUMNS).where(
            spans.c.project_id == project_id,
            spans.c.trace_id == trace_id,
            spans.c.span_id == span_id,
        )
    ).first()
    if row is None:
        return None
    span = span_dict(row._mapping)
    span["events"] = with_logs(span["events"], span_logs(conn, project_id, trace_id, span_id))
    attach_scores(conn, project_id, [span], by="span")
    return span
