"""A project's OTLP log records (those written inside a span also show among its events)."""

from __future__ import annotations

from assay.errors import UserError
from assay.services.filters import parse_time
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.store import logs as log_store
from assay.store.database import Database
from assay.store.listing import Page


def _time(text: str | None, name: str) -> int | None:
    if text is None or not text.strip():
        return None
    found = parse_time(text)
    if found is None:
        raise UserError(
            f"{name} {text[:80]!r} is not a time: use ISO 8601 (2026-05-01T12:00:00Z) "
            "or nanoseconds since the epoch"
        )
    return found


def list_logs(
    db: Database,
    who: Principal,
    project: str,
    *,
    q: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Log records newest first; ``q`` finds text in the body (any case), ``since`` (inclusive)
    and ``until`` (exclusive) bound the time."""
    start, end = _time(since, "since"), _time(until, "until")
    with db.read() as conn:
        found = project_id(conn, who, project)
        return log_store.list_logs(
            conn, found, q=q or None, since=start, until=end, limit=limit, cursor=cursor
        )
