"""Reading traces back: the trace list, a whole trace as a tree, and the trace page's parts
(summary and outline), and which projects hold a trace id.

The trace page never needs a whole trace at once: the tree is drawn from a few narrow columns
per span (no input, output or attributes), and one span's details are read when it is opened.
That keeps a 1,000-span trace page to one light query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, func, literal, select

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
from assay.store.scores import SCORE_COLUMNS, attach_scores
from assay.store.spans import SPAN_LIST_COLUMNS, span_dict
from assay.store.tables import projects, scores, spans, traces

TRACE_LIST_COLUMNS = [
    traces.c.trace_id,
    traces.c.root_span_id,
    traces.c.name,
    traces.c.start_ns,
    traces.c.end_ns,
    traces.c.duration_ns,
    traces.c.status_code,
    traces.c.span_count,
    traces.c.error_count,
    traces.c.input_tokens,
    traces.c.output_tokens,
    traces.c.total_tokens,
    traces.c.cost,
    traces.c.input_preview,
    traces.c.output_preview,
    traces.c.session_id,
    traces.c.user_id,
    traces.c.tags,
    traces.c.metadata,
]


def trace_status(row: dict[str, Any]) -> str:
    """A trace row's status: error when any of its spans failed, else its root span's."""
    return "error" if row["error_count"] else status_name(row["status_code"])


def trace_conditions(
    conn: Connection, f: Filters, project_id: int, sort: str
) -> list[ColumnElement[bool]]:
    """The WHERE of the trace list (also used by online rules to pick their traces)."""
    t = traces.c
    out = shared_conditions(conn, f, traces, project_id, sort)
    if f.status:
        out.append(status_condition(t.error_count > 0, t.status_code, f.status))
    if has_score_filter(f):
        out.append(score_condition(f, traces, None))
    if f.disagreement:
        out.append(disagreement_condition(f, traces))
    # The trace matches if any of its spans has the type / model.
    if f.type:
        out.append(t.span_types.contains(f",{f.type},", autoescape=True))
    if f.model:
        out.append(t.models.contains(f",{f.model},", autoescape=True))
    if f.prompt:
        # Any span of the trace made with the prompt.
        out.append(
            exists(
                select(literal(1)).where(
                    spans.c.project_id == t.project_id,
                    spans.c.trace_id == t.trace_id,
                    prompt_condition(f),
                )
            )
        )
    return out


def _trace_row(mapping: Any) -> dict[str, Any]:
    row = dict(mapping)
    row["status"] = trace_status(row)
    return row


def _trace_ids_of(conn: Connection, span_ids: Any, project_id: int) -> list[str]:
    return sorted(
        set(
            conn.execute(
                select(spans.c.trace_id).where(
                    spans.c.id.in_(span_ids), spans.c.project_id + 0 == project_id
                )
            ).scalars()
        )
    )


_TRACES = Listing(
    table=traces,
    columns=TRACE_LIST_COLUMNS,
    key="trace_id",
    conditions=trace_conditions,
    to_row=_trace_row,
    among_spans=lambda conn, ids, project_id: traces.c.trace_id.in_(
        _trace_ids_of(conn, ids, project_id)
    ),
    scores_by="trace",
)


def list_traces(
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
    return list_rows(_TRACES, conn, project_id, f, limit, cursor, sort, order, max_bytes)


def projects_holding_trace(conn: Connection, trace_id: str) -> list[tuple[int, str]]:
    """(id, name) of every project that has a trace with this id, by name.

    Usually one; two or more when a trace crossed services that report to different projects
    (a supervisor in one calling a sub-agent in another, with the W3C traceparent).
    """
    rows = conn.execute(
        select(projects.c.id, projects.c.name)
        .join(traces, traces.c.project_id == projects.c.id)
        .where(traces.c.trace_id == trace_id)
        .order_by(projects.c.name)
    ).all()
    return [(int(row.id), str(row.name)) for row in rows]


def get_trace(
    conn: Connection, project_id: int, trace_id: str, full: bool = False
) -> dict[str, Any] | None:
    """A project's trace: summary, every span as a tree (children by start time), all scores."""
    summary = conn.execute(
        select(traces.c.project_id, *TRACE_LIST_COLUMNS).where(
            traces.c.project_id == project_id, traces.c.trace_id == trace_id
        )
    ).first()
    if summary is None:
        return None
    trace = dict(summary._mapping)
    trace["status"] = trace_status(trace)
    rows = [
        span_dict(row._mapping, full)
        for row in conn.execute(
            select(*SPAN_LIST_COLUMNS)
            .where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
            .order_by(spans.c.start_ns, spans.c.id)
        )
    ]
    attach_scores(conn, project_id, rows, by="span")
    trace["scores"] = [
        dict(score._mapping)
        for score in conn.execute(
            select(*SCORE_COLUMNS).where(
                scores.c.project_id == project_id,
                scores.c.trace_id == trace_id,
                scores.c.span_id.is_(None),
            )
        )
    ]
    by_id = {row["span_id"]: row for row in rows}
    roots: list[dict[str, Any]] = []
    for row in rows:
        row["children"] = []
    for row in rows:
        parent = by_id.get(row["parent_span_id"] or "")
        if parent is not None and parent is not row:
            parent["children"].append(row)
        else:
            # A root, or an orphan whose parent has not arrived (yet): shown at the top.
            roots.append(row)
    trace["spans"] = roots
    trace["span_count"] = len(rows)
    return trace


def trace_summary(conn: Connection, project_id: int, trace_id: str) -> dict[str, Any] | None:
    """The project's trace row (root span fields and sums) with its trace-level scores."""
    row = conn.execute(
        select(traces.c.project_id, *TRACE_LIST_COLUMNS).where(
            traces.c.project_id == project_id, traces.c.trace_id == trace_id
        )
    ).first()
    if row is None:
        return None
    trace = dict(row._mapping)
    trace["status"] = trace_status(trace)
    trace["scores"] = [
        dict(score._mapping)
        for score in conn.execute(
            select(*SCORE_COLUMNS)
            .where(
                scores.c.project_id == project_id,
                scores.c.trace_id == trace_id,
                scores.c.span_id.is_(None),
            )
            .order_by(scores.c.name, scores.c.id)
        )
    ]
    return trace


OUTLINE_COLUMNS = [
    spans.c.span_id,
    spans.c.parent_span_id,
    spans.c.start_ns,
    spans.c.end_ns,
    spans.c.duration_ns,
    spans.c.status_code,
    spans.c.is_error,
    spans.c.type,
    spans.c.model,
    spans.c.total_tokens,
    spans.c.cost,
    spans.c.name,
]

#: A tree deeper than this is drawn at this depth (the indent stops growing).
MAX_DEPTH = 24
#: The trace page draws at most this many spans (the earliest); the API has them all.
MAX_OUTLINE_SPANS = 10_000


@dataclass
class Outline:
    """A trace's spans in tree order (depth first, children by start time)."""

    rows: list[dict[str, Any]]
    start_ns: int
    end_ns: int
    #: More spans exist than MAX_OUTLINE_SPANS.
    truncated: bool = False


def trace_outline(conn: Connection, project_id: int, trace_id: str) -> Outline:
    """Every span of the project's trace with its depth and waterfall position (0-1000), no
    payloads."""
    rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(*OUTLINE_COLUMNS)
            .where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
            .order_by(spans.c.start_ns, spans.c.id)
            .limit(MAX_OUTLINE_SPANS + 1)
        )
    ]
    truncated = len(rows) > MAX_OUTLINE_SPANS
    rows = rows[:MAX_OUTLINE_SPANS]
    score_counts: dict[str, int] = {}
    for span_id, count in conn.execute(
        select(scores.c.span_id, func.count())
        .where(
            scores.c.project_id == project_id,
            scores.c.trace_id == trace_id,
            scores.c.span_id.is_not(None),
        )
        .group_by(scores.c.span_id)
    ):
        score_counts[span_id] = int(count)
    if not rows:
        return Outline([], 0, 0)
    start = min(row["start_ns"] for row in rows)
    end = max(row["end_ns"] for row in rows)
    total = max(end - start, 1)
    children: dict[str, list[dict[str, Any]]] = {}
    by_id = {row["span_id"]: row for row in rows}
    roots: list[dict[str, Any]] = []
    for row in rows:
        parent = row["parent_span_id"]
        if parent and parent in by_id and parent != row["span_id"]:
            children.setdefault(parent, []).append(row)
        else:
            # A root, or an orphan whose parent has not arrived (yet): shown at the top.
            roots.append(row)
    ordered: list[dict[str, Any]] = []
    seen: set[str] = set()
    stack = [(root, 0) for root in reversed(roots)]
    while stack:
        row, depth = stack.pop()
        if row["span_id"] in seen:  # a parent cycle in bad data must not loop forever
            continue
        seen.add(row["span_id"])
        kids = children.get(row["span_id"], [])
        row["depth"] = min(depth, MAX_DEPTH)
        row["child_count"] = len(kids)
        row["status"] = "error" if row["is_error"] else status_name(row["status_code"])
        row["score_count"] = score_counts.get(row["span_id"], 0)
        row["offset"] = round((row["start_ns"] - start) * 1000 / total, 1)
        row["width"] = max(round(row["duration_ns"] * 1000 / total, 1), 2.0)
        ordered.append(row)
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    # Spans caught in a parent cycle are never reached from a root: list them at the end.
    ordered.extend(_unreached(rows, seen, start, total))
    return Outline(ordered, start, end, truncated)


def _unreached(
    rows: list[dict[str, Any]], seen: set[str], start: int, total: int
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["span_id"] in seen:
            continue
        seen.add(row["span_id"])
        row.update(
            depth=0,
            child_count=0,
            status="error" if row["is_error"] else status_name(row["status_code"]),
            score_count=0,
            offset=round((row["start_ns"] - start) * 1000 / total, 1),
            width=max(round(row["duration_ns"] * 1000 / total, 1), 2.0),
        )
        out.append(row)
    return out
