"""Sessions: the traces sharing a session id, listed by their last activity, read as turns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from assay.store.listing import InvalidQuery, Page, decode_cursor, encode_cursor
from assay.store.scores import attach_scores
from assay.store.tables import spans, traces
from assay.store.traces import TRACE_LIST_COLUMNS, trace_status

#: Traces read per step while walking newest first to find the next sessions.
SESSION_WALK_CHUNK = 500


def list_sessions(
    conn: Connection,
    project_id: int,
    *,
    user_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Sessions, most recently active first: trace count, first and last trace, sums.

    Grouping every trace of a big project by session to sort the groups costs hundreds of ms at
    a million spans. Instead this walks traces newest first (the (project, start) index) and
    takes each session the first time it appears, which is at its last trace; past the first
    page, a session met again is skipped when its last trace (one index seek) is above the
    cursor. A page costs a few hundred index entries, however many sessions exist.
    """
    after: tuple[int, str] | None = None
    if cursor:
        value, key = decode_cursor(cursor)
        if not isinstance(value, int) or not isinstance(key, str):
            raise InvalidQuery("cursor is not valid; use the link of a previous page")
        after = (value, key)
    found = _walk_sessions(conn, project_id, user_id, limit + 1, after)
    more = len(found) > limit
    found = found[:limit]
    if found:
        _add_session_stats(conn, project_id, found)
    next_cursor = (
        encode_cursor(found[-1]["last_ns"], found[-1]["session_id"]) if more and found else None
    )
    return Page(found, next_cursor)


def _walk_sessions(
    conn: Connection,
    project_id: int,
    user_id: str | None,
    wanted: int,
    after: tuple[int, str] | None,
) -> list[dict[str, Any]]:
    where = [traces.c.project_id == project_id, traces.c.session_id.is_not(None)]
    if user_id:
        where.append(traces.c.user_id == user_id)
    if after is not None:
        where.append(traces.c.start_ns <= after[0])
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    position: tuple[int, str] | None = None
    while len(out) < wanted:
        query = select(traces.c.session_id, traces.c.start_ns, traces.c.trace_id).where(*where)
        if position is not None:
            query = query.where(
                or_(
                    traces.c.start_ns < position[0],
                    and_(traces.c.start_ns == position[0], traces.c.trace_id < position[1]),
                )
            )
        order = (traces.c.start_ns.desc(), traces.c.trace_id.desc())
        chunk = conn.execute(query.order_by(*order).limit(SESSION_WALK_CHUNK)).all()
        for session_id, start_ns, _trace_id in chunk:
            if session_id in seen:
                continue
            seen.add(session_id)
            last = start_ns
            if after is not None:
                last = _last_start(conn, project_id, session_id, user_id)
                if (last, session_id) >= after:
                    continue  # shown on an earlier page
            out.append({"session_id": session_id, "last_ns": last})
            if len(out) == wanted:
                break
        if len(chunk) < SESSION_WALK_CHUNK:
            break
        position = (chunk[-1].start_ns, chunk[-1].trace_id)
    return out


def _last_start(conn: Connection, project_id: int, session_id: str, user_id: str | None) -> int:
    where = [traces.c.project_id == project_id, traces.c.session_id == session_id]
    if user_id:
        where.append(traces.c.user_id == user_id)
    return int(conn.execute(select(func.max(traces.c.start_ns)).where(*where)).scalar_one())


def _add_session_stats(conn: Connection, project_id: int, sessions: list[dict[str, Any]]) -> None:
    ids = [row["session_id"] for row in sessions]
    stats = {
        row.session_id: row
        for row in conn.execute(
            select(
                traces.c.session_id,
                func.count().label("trace_count"),
                func.min(traces.c.start_ns).label("first_ns"),
                func.sum(traces.c.total_tokens).label("total_tokens"),
                func.sum(traces.c.cost).label("cost"),
                func.sum(case((traces.c.error_count > 0, 1), else_=0)).label("errors"),
                func.max(traces.c.user_id).label("user_id"),
            )
            .where(traces.c.project_id == project_id, traces.c.session_id.in_(ids))
            .group_by(traces.c.session_id)
        )
    }
    # The opening question of each session: its first trace's input preview. Two IN lists
    # (not a row-value IN, which SQLite answers with a scan) keep to the session index.
    firsts = {(session_id, int(found.first_ns)) for session_id, found in stats.items()}
    first_inputs = {
        row.session_id: row.input_preview
        for row in conn.execute(
            select(traces.c.session_id, traces.c.start_ns, traces.c.input_preview).where(
                traces.c.project_id == project_id,
                traces.c.session_id.in_(ids),
                traces.c.start_ns.in_(sorted({start for _, start in firsts})),
            )
        )
        if (row.session_id, row.start_ns) in firsts
    }
    for row in sessions:
        found = stats.get(row["session_id"])
        row["trace_count"] = int(found.trace_count) if found else 0
        row["first_ns"] = int(found.first_ns) if found else row["last_ns"]
        row["total_tokens"] = int(found.total_tokens or 0) if found else 0
        row["cost"] = float(found.cost or 0.0) if found else 0.0
        row["errors"] = int(found.errors or 0) if found else 0
        row["user_id"] = found.user_id if found else None
        row["first_input"] = first_inputs.get(row["session_id"])


#: A session page shows at most this many turns (the newest are cut, with a note).
SESSION_TURNS = 500
#: A turn's text is cut past this many characters (the trace page has it all).
TURN_CHARS = 4_000


def session_traces(
    conn: Connection, project_id: int, session_id: str, *, limit: int = SESSION_TURNS
) -> list[dict[str, Any]]:
    """A session's traces in time order, each with its root span's whole input and output."""
    rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(*TRACE_LIST_COLUMNS)
            .where(traces.c.project_id == project_id, traces.c.session_id == session_id)
            .order_by(traces.c.start_ns, traces.c.trace_id)
            .limit(limit + 1)
        )
    ]
    roots = [(row["trace_id"], row["root_span_id"]) for row in rows if row["root_span_id"]]
    texts: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for start in range(0, len(roots), 200):
        chunk = roots[start : start + 200]
        for found in conn.execute(
            select(
                spans.c.trace_id,
                spans.c.span_id,
                func.substr(spans.c.input, 1, TURN_CHARS + 1).label("input"),
                func.substr(spans.c.output, 1, TURN_CHARS + 1).label("output"),
            ).where(
                # Two IN lists, not a row-value IN (which SQLite answers by scanning spans).
                spans.c.project_id == project_id,
                spans.c.trace_id.in_([t for t, _ in chunk]),
                spans.c.span_id.in_([s for _, s in chunk]),
            )
        ):
            texts[(found.trace_id, found.span_id)] = (found.input, found.output)
    for row in rows:
        row["status"] = trace_status(row)
        text_in, text_out = texts.get((row["trace_id"], row["root_span_id"] or ""), (None, None))
        row["input"] = text_in if text_in is not None else row["input_preview"]
        row["output"] = text_out if text_out is not None else row["output_preview"]
    attach_scores(conn, project_id, rows, by="trace")
    return rows
