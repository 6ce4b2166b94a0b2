"""Reads shaped for the web UI: trace outlines, single spans, sessions, project activity.

The UI never needs a whole trace at once: the tree is drawn from a few narrow columns per span
(no input, output or attributes), and one span's details are read when it is opened. That keeps
a 1,000-span trace page to one light query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from assay.store.logs import span_logs, with_logs
from assay.store.queries import (
    SCORE_COLUMNS,
    SPAN_LIST_COLUMNS,
    TRACE_LIST_COLUMNS,
    InvalidQuery,
    Page,
    _decode_cursor,
    _encode_cursor,
    _status_name,
    attach_scores,
    span_dict,
)
from assay.store.tables import projects, scores, spans, traces

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
    trace["status"] = "error" if trace["error_count"] else _status_name(trace["status_code"])
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
        row["status"] = "error" if row["is_error"] else _status_name(row["status_code"])
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
            status="error" if row["is_error"] else _status_name(row["status_code"]),
            score_count=0,
            offset=round((row["start_ns"] - start) * 1000 / total, 1),
            width=max(round(row["duration_ns"] * 1000 / total, 1), 2.0),
        )
        out.append(row)
    return out


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
        value, key = _decode_cursor(cursor)
        if not isinstance(value, int) or not isinstance(key, str):
            raise InvalidQuery("cursor is not valid; use the link of a previous page")
        after = (value, key)
    found = _walk_sessions(conn, project_id, user_id, limit + 1, after)
    more = len(found) > limit
    found = found[:limit]
    if found:
        _add_session_stats(conn, project_id, found)
    next_cursor = (
        _encode_cursor(found[-1]["last_ns"], found[-1]["session_id"]) if more and found else None
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
        row["status"] = "error" if row["error_count"] else _status_name(row["status_code"])
        text_in, text_out = texts.get((row["trace_id"], row["root_span_id"] or ""), (None, None))
        row["input"] = text_in if text_in is not None else row["input_preview"]
        row["output"] = text_out if text_out is not None else row["output_preview"]
    attach_scores(conn, project_id, rows, by="trace")
    return rows


def project_names(conn: Connection, limit: int = 500) -> list[dict[str, Any]]:
    """Projects by name (id, name, created), without counting anything."""
    query = select(projects.c.id, projects.c.name, projects.c.created_ns).order_by(projects.c.name)
    return [dict(row._mapping) for row in conn.execute(query.limit(limit))]


def project_activity(conn: Connection, project_ids: list[int], since_ns: int) -> dict[int, Any]:
    """Per project: total traces, traces and failed traces since ``since_ns``, last trace time.

    Counts read the (project, start) index only; the error count reads the recent rows alone.
    """
    out: dict[int, dict[str, Any]] = {}
    for project_id in project_ids:
        total, last = conn.execute(
            select(func.count(), func.max(traces.c.start_ns)).where(
                traces.c.project_id == project_id
            )
        ).one()
        recent, failed = conn.execute(
            select(func.count(), func.sum(case((traces.c.error_count > 0, 1), else_=0))).where(
                traces.c.project_id == project_id, traces.c.start_ns >= since_ns
            )
        ).one()
        out[project_id] = {
            "trace_count": int(total or 0),
            "last_trace_ns": last,
            "recent_traces": int(recent or 0),
            "recent_errors": int(failed or 0),
        }
    return out
