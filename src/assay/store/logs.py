"""OTLP log records: stored by the writer, read as a span's events and as the project's logs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, Text, select

from assay.store.listing import Page, encode_cursor, paginate
from assay.store.tables import logs

#: Most log records shown among one span's events.
MAX_SPAN_LOGS = 1_000

_TEXT_COLUMNS = tuple(c.name for c in logs.c if isinstance(c.type, String | Text))
LIST_COLUMNS = [c for c in logs.c if c.name != "project_id"]


def insert_logs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert normalised log rows (each with its project_id)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        # PostgreSQL text cannot hold NUL: keep the record and mark where the NUL was.
        for row in rows:
            for name in _TEXT_COLUMNS:
                value = row.get(name)
                if value is not None and "\x00" in value:
                    row[name] = value.replace("\x00", "\ufffd")
    conn.execute(logs.insert(), rows)


def span_logs(
    conn: Connection, project_id: int, trace_id: str, span_id: str
) -> list[dict[str, Any]]:
    """The log records that name this span, oldest first."""
    query = (
        select(*LIST_COLUMNS)
        .where(
            logs.c.project_id == project_id,
            logs.c.trace_id == trace_id,
            logs.c.span_id == span_id,
        )
        .order_by(logs.c.time_ns, logs.c.id)
        .limit(MAX_SPAN_LOGS)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def list_logs(
    conn: Connection,
    project_id: int,
    *,
    q: str | None,
    since: int | None,
    until: int | None,
    limit: int,
    cursor: str | None,
) -> Page:
    """The project's log records, newest first; ``q`` matches the body's text, any case."""
    query = select(*LIST_COLUMNS).where(logs.c.project_id == project_id)
    if since is not None:
        query = query.where(logs.c.time_ns >= since)
    if until is not None:
        query = query.where(logs.c.time_ns < until)
    if q:
        query = query.where(logs.c.body.icontains(q, autoescape=True))
    query = paginate(query, logs.c.time_ns, logs.c.id, order="desc", limit=limit, cursor=cursor)
    rows = [dict(row._mapping) for row in conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(rows, encode_cursor(last["time_ns"], last["id"]) if last else None)


def as_event(record: dict[str, Any]) -> dict[str, Any]:
    """A log record shown as one of its span's events: its severity and body as the name."""
    severity = record.get("severity_text") or "log"
    body = record.get("body")
    name = f"{severity}: {body}" if body else record.get("event_name") or severity
    attributes = dict(record.get("attributes") or {})
    if record.get("event_name"):
        attributes.setdefault("event.name", record["event_name"])
    if body and len(body) > 120:
        attributes.setdefault("log.body", body)
    return {"name": name, "time_ns": record["time_ns"], "attributes": attributes, "log": True}


def with_logs(events: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A span's own events and the log records written in it, in time order."""
    if not records:
        return events
    merged = [*events, *(as_event(record) for record in records)]
    return sorted(merged, key=lambda event: event.get("time_ns") or 0)


def attach_to_trace(
    conn: Connection, project_id: int, trace_id: str, roots: list[dict[str, Any]]
) -> None:
    """Add the log records written in each span of a trace tree to that span's events."""
    query = (
        select(*LIST_COLUMNS)
        .where(
            logs.c.project_id == project_id,
            logs.c.trace_id == trace_id,
            logs.c.span_id.is_not(None),
        )
        .order_by(logs.c.time_ns, logs.c.id)
        .limit(MAX_SPAN_LOGS * 10)
    )
    by_span: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        by_span.setdefault(row.span_id, []).append(dict(row._mapping))
    if not by_span:
        return
    pending = list(roots)
    while pending:
        span = pending.pop()
        records = by_span.get(span["span_id"])
        if records:
            span["events"] = with_logs(span.get("events") or [], records)
        pending.extend(span.get("children") or [])
