"""Reading traces, spans and sessions back (for the API's lists and the UI's pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from assay.errors import Ambiguous, NotFound
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.store import logs as log_store
from assay.store import sessions as session_store
from assay.store import spans as span_store
from assay.store import traces as trace_store
from assay.store.database import Connection, Database
from assay.store.listing import SORTS, Filters, InvalidQuery, Page
from assay.store.sessions import SESSION_TURNS, TURN_CHARS

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
    max_bytes: int | None = None,
) -> Page:
    """A page of traces; with ``max_bytes`` it ends early rather than grow past about that."""
    with db.read() as conn:
        found = project_id(conn, who, project)
        page = trace_store.list_traces(
            conn,
            found,
            filters,
            limit=limit,
            cursor=cursor,
            sort=sort,
            order=order,
            max_bytes=max_bytes,
        )
    _blind(who, project, page.items)
    return page


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
    max_bytes: int | None = None,
) -> Page:
    """A page of spans with previews of their payloads (``truncated`` names what was cut;
    :func:`get_trace` has the whole values); ``max_bytes`` as for :func:`list_traces`."""
    with db.read() as conn:
        found = project_id(conn, who, project)
        page = span_store.list_spans(
            conn,
            found,
            filters,
            limit=limit,
            cursor=cursor,
            sort=sort,
            order=order,
            max_bytes=max_bytes,
        )
    _blind(who, project, page.items)
    return page


def _blind(who: Principal, project: str, rows: list[dict[str, Any]]) -> None:
    """Reviews are blind: an annotator sees other people's review labels only in the review
    queue, after labelling the item themselves, never on the trace pages or in the lists.
    Viewers (who do not label) and editors (who adjudicate) see every label."""
    if who.role_in(project) != "annotator":
        return
    me = who.author
    for row in rows:
        if row.get("scores"):
            row["scores"] = [
                score
                for score in row["scores"]
                if score.get("review_id") is None or score.get("author") == me
            ]
        _blind(who, project, row.get("spans") or [])


def _linked_projects(conn: Connection, who: Principal, found: int, trace_id: str) -> list[str]:
    """The other projects holding this trace id (the other side of a call across services that
    report to different projects), named only to those who may read them."""
    return [
        name
        for other_id, name in trace_store.projects_holding_trace(conn, trace_id)
        if other_id != found and who.may_see(name)
    ]


def get_trace(
    db: Database, who: Principal, trace_id: str, project: str | None = None, full: bool = False
) -> dict[str, Any]:
    """A whole trace as a tree. A trace id names one trace per project: without ``project``,
    the one trace of that id among the projects ``who`` may see (:class:`Ambiguous` if several
    hold it). ``full``: attributes stored once in the input/output column are repeated
    (`assay.store.spans.span_dict`)."""
    trace_id = trace_id.lower()
    with db.read() as conn:
        if project is not None:
            found, found_name = project_id(conn, who, project), project
        else:
            holders = [
                (holder, name)
                for holder, name in trace_store.projects_holding_trace(conn, trace_id)
                if who.may_see(name)
            ]
            if not holders:
                raise NotFound(f"trace {trace_id!r} does not exist")
            if len(holders) > 1:
                names = ", ".join(repr(name) for _, name in holders)
                raise Ambiguous(
                    f"trace {trace_id!r} is in several projects ({names}); read one with "
                    f"/api/v1/projects/{quote(holders[0][1], safe='')}/traces/{trace_id} "
                    "or add ?project=NAME",
                    code="ambiguous_trace",
                )
            found, found_name = holders[0]
        trace = trace_store.get_trace(conn, found, trace_id, full)
        if trace is None:
            raise NotFound(f"trace {trace_id!r} does not exist")
        log_store.attach_to_trace(conn, found, trace_id, trace["spans"])
        trace["linked_projects"] = _linked_projects(conn, who, found, trace_id)
    _blind(who, found_name, [trace])
    return trace


@dataclass(frozen=True)
class TraceView:
    """What the trace page draws: the summary, the outline, and the span that is open."""

    trace: dict[str, Any]
    outline: trace_store.Outline
    selected: dict[str, Any] | None


def trace_view(
    db: Database, who: Principal, project: str, trace_id: str, span_id: str | None = None
) -> TraceView:
    """One trace of ``project`` for its page; the open span is ``span_id``, or the root."""
    trace_id = trace_id.lower()
    with db.read() as conn:
        found = project_id(conn, who, project)
        trace = trace_store.trace_summary(conn, found, trace_id)
        if trace is None:
            raise NotFound(f"trace {trace_id} is not in project {project!r}")
        trace["linked_projects"] = _linked_projects(conn, who, found, trace_id)
        outline = trace_store.trace_outline(conn, found, trace_id)
        wanted = (
            span_id
            or trace["root_span_id"]
            or (outline.rows[0]["span_id"] if outline.rows else None)
        )
        selected = span_store.get_span(conn, found, trace_id, wanted) if wanted else None
    _blind(who, project, [trace, *outline.rows, *([selected] if selected else [])])
    return TraceView(trace, outline, selected)


def get_span(
    db: Database, who: Principal, project: str, trace_id: str, span_id: str
) -> dict[str, Any]:
    """One span with its payloads, attributes and events."""
    trace_id, span_id = trace_id.lower(), span_id.lower()
    with db.read() as conn:
        found = project_id(conn, who, project)
        span = span_store.get_span(conn, found, trace_id, span_id)
    if span is None:
        raise NotFound(f"span {span_id} is not in trace {trace_id}")
    _blind(who, project, [span])
    return span


def list_sessions(
    db: Database, who: Principal, project: str, *, user_id: str | None, cursor: str | None
) -> Page:
    with db.read() as conn:
        found = project_id(conn, who, project)
        return session_store.list_sessions(conn, found, user_id=user_id, cursor=cursor)


def session_traces(
    db: Database, who: Principal, project: str, session_id: str
) -> list[dict[str, Any]]:
    """A session's traces in order (one more than the page shows, to say there are more)."""
    with db.read() as conn:
        found = project_id(conn, who, project)
        turns = session_store.session_traces(conn, found, session_id)
    if not turns:
        raise NotFound(f"session {session_id!r} has no traces here")
    _blind(who, project, turns)
    return turns
