"""Reading traces, spans and sessions back (for the API's lists and the UI's pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.errors import NotFound
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.store import projects as project_store
from assay.store import queries, ui_queries
from assay.store.database import Database
from assay.store.queries import SORTS, Filters, InvalidQuery, Page
from assay.store.ui_queries import SESSION_TURNS, TURN_CHARS

__all__ = [
    "SESSION_TURNS",
    "SORTS",
    "TURN_CHARS",
    "Filters",
    "InvalidQuery",
    "Page",
    "TraceView",
    "get_span",
    "get_trace",
    "list_sessions",
    "list_spans",
    "list_traces",
    "session_traces",
    "trace_view",
]


def list_traces(
    db: Database,
    who: Principal,
    project: str,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None = None,
    sort: str = "start",
    order: str = "desc",
) -> Page:
    with db.read() as conn:
        found = project_id(conn, who, project)
        return queries.list_traces(
            conn, found, filters, limit=limit, cursor=cursor, sort=sort, order=order
        )


def list_spans(
    db: Database,
    who: Principal,
    project: str,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None = None,
    sort: str = "start",
    order: str = "desc",
) -> Page:
    with db.read() as conn:
        found = project_id(conn, who, project)
        return queries.list_spans(
            conn, found, filters, limit=limit, cursor=cursor, sort=sort, order=order
        )


def get_trace(db: Database, who: Principal, trace_id: str) -> dict[str, Any]:
    """A whole trace as a tree, from any project ``who`` may see."""
    trace_id = trace_id.lower()
    with db.read() as conn:
        trace = queries.get_trace(conn, trace_id)
        project = project_store.name_of(conn, trace["project_id"]) if trace else None
    if trace is None or project is None or not who.may_see(project):
        raise NotFound(f"trace {trace_id!r} does not exist")
    return trace


@dataclass(frozen=True)
class TraceView:
    """What the trace page draws: the summary, the outline, and the span that is open."""

    trace: dict[str, Any]
    outline: ui_queries.Outline
    selected: dict[str, Any] | None


def trace_view(
    db: Database, who: Principal, project: str, trace_id: str, span_id: str | None = None
) -> TraceView:
    """One trace of ``project`` for its page; the open span is ``span_id``, or the root."""
    trace_id = trace_id.lower()
    with db.read() as conn:
        found = project_id(conn, who, project)
        trace = ui_queries.trace_summary(conn, trace_id)
        if trace is None or trace["project_id"] != found:
            raise NotFound(f"trace {trace_id} is not in project {project!r}")
        outline = ui_queries.trace_outline(conn, trace_id)
        wanted = (
            span_id
            or trace["root_span_id"]
            or (outline.rows[0]["span_id"] if outline.rows else None)
        )
        selected = ui_queries.get_span(conn, trace_id, wanted) if wanted else None
    return TraceView(trace, outline, selected)


def get_span(
    db: Database, who: Principal, project: str, trace_id: str, span_id: str
) -> dict[str, Any]:
    """One span with its payloads, attributes and events."""
    trace_id, span_id = trace_id.lower(), span_id.lower()
    with db.read() as conn:
        found = project_id(conn, who, project)
        span = ui_queries.get_span(conn, trace_id, span_id)
    if span is None or span["project_id"] != found:
        raise NotFound(f"span {span_id} is not in trace {trace_id}")
    return span


def list_sessions(
    db: Database, who: Principal, project: str, *, user_id: str | None, cursor: str | None
) -> Page:
    with db.read() as conn:
        found = project_id(conn, who, project)
        return ui_queries.list_sessions(conn, found, user_id=user_id, cursor=cursor)


def session_traces(
    db: Database, who: Principal, project: str, session_id: str
) -> list[dict[str, Any]]:
    """A session's traces in order (one more than the page shows, to say there are more)."""
    with db.read() as conn:
        found = project_id(conn, who, project)
        turns = ui_queries.session_traces(conn, found, session_id)
    if not turns:
        raise NotFound(f"session {session_id!r} has no traces here")
    return turns
