"""What the trace and span lists share: filters, cursors, keyset pagination, search pages."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from assay.errors import UserError
from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.store import search
from assay.store.scores import attach_scores
from assay.store.tables import scores, spans

SORTS = ("start", "duration", "cost")


class InvalidQuery(UserError):
    """A filter or cursor the store cannot use."""


@dataclass
class Filters:
    """Filters shared by the trace and span lists. Times are ns since the epoch."""

    since: int | None = None
    until: int | None = None
    name: str | None = None
    type: str | None = None
    status: str | None = None
    model: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: list[tuple[str, str]] = field(default_factory=list)
    session_id: str | None = None
    user_id: str | None = None
    trace_id: str | None = None
    min_duration_ms: float | None = None
    max_duration_ms: float | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    score: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    #: A score's label ("incorrect") and source (human, llm, code), with ``score`` or alone.
    score_label: str | None = None
    score_source: str | None = None
    #: Traces where a person's score and a judge's (source llm) of this name disagree; "H,J"
    #: names the person's score H and the judge's J when they differ.
    disagreement: str | None = None
    q: str | None = None
    #: Calls made with a registry prompt (the wrappers' ``assay.prompt.name``), and version.
    prompt: str | None = None
    prompt_version: int | None = None


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(value: Any, key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, key])).decode().rstrip("=")


def _cursor_part_fits(part: Any, kind: type | None) -> bool:
    """Whether a decoded cursor part can be compared with its column: a scalar of the
    column's kind (an integer within 64 bits), never a list or an object."""
    if part is None:
        return True
    if isinstance(part, bool):
        return False
    if isinstance(part, int):
        return kind in (None, int, float) and -(2**63) <= part < 2**63
    if isinstance(part, float):
        return kind in (None, float) and math.isfinite(part)
    if isinstance(part, str):
        return kind in (None, str) and len(part) <= 1000 and "\0" not in part
    return False


def _column_kind(column: Any) -> type | None:
    try:
        kind = column.type.python_type
    except (AttributeError, NotImplementedError):
        return None
    return kind if isinstance(kind, type) else None


def decode_cursor(cursor: str, *columns: Any) -> tuple[Any, Any]:
    """The (sort value, key) a cursor holds, checked against the columns it is compared with
    when they are given."""
    invalid = InvalidQuery(
        "cursor is not valid; pass the next_cursor of a previous answer unchanged"
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = orjson.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise invalid from None
    if not isinstance(decoded, list) or len(decoded) != 2:
        raise invalid
    kinds = [_column_kind(column) for column in columns] or [None, None]
    if not all(_cursor_part_fits(part, kind) for part, kind in zip(decoded, kinds, strict=True)):
        raise invalid
    return decoded[0], decoded[1]


def status_name(code: int) -> str:
    return {0: "unset", 1: "ok", 2: "error"}.get(code, "unset")


def _tag_condition(conn: Connection, column: Any, tag: str) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return type_coerce(column, JSONB).contains([tag])
    each = func.json_each(column).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == tag))


def _metadata_condition(column: Any, key: str, value: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column[key].as_string() == value
    return condition


def status_condition(table_errors: Any, status_code: Any, status: str) -> ColumnElement[bool]:
    lowered = status.lower()
    condition: ColumnElement[bool]
    if lowered == "error":
        condition = table_errors
    elif lowered == "ok":
        condition = and_(~table_errors, status_code != 2)
    elif lowered == "unset":
        condition = status_code == 0
    else:
        raise InvalidQuery(f"status must be one of ok, error, unset (got {status!r})")
    return condition


def has_score_filter(f: Filters) -> bool:
    return (
        bool(f.score or f.score_label or f.score_source)
        or f.min_score is not None
        or f.max_score is not None
    )


def score_condition(f: Filters, table: Any, span_col: Any | None) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        scores.c.project_id == table.c.project_id,
        scores.c.trace_id == table.c.trace_id,
    ]
    if span_col is not None:
        conditions.append(scores.c.span_id == span_col)
    if f.score:
        conditions.append(scores.c.name == f.score)
    if f.min_score is not None:
        conditions.append(scores.c.value >= f.min_score)
    if f.max_score is not None:
        conditions.append(scores.c.value <= f.max_score)
    if f.score_label:
        conditions.append(scores.c.label == f.score_label)
    if f.score_source:
        conditions.append(scores.c.source == f.score_source)
    return exists(select(literal(1)).where(*conditions))


def disagreement_names(value: str) -> tuple[str, str]:
    """(the person's score name, the judge's) of a ``disagreement`` filter: "NAME" or "H,J"."""
    human, _sep, judge = value.partition(",")
    return human.strip(), (judge.strip() or human.strip())


def disagreement_condition(f: Filters, table: Any) -> ColumnElement[bool]:
    """A person's score (source human) and a judge's (source llm) on the trace disagree: their
    values differ when both have one, else their labels differ."""
    assert f.disagreement
    human_name, judge_name = disagreement_names(f.disagreement)
    human = scores.alias("human_score")
    judge = scores.alias("judge_score")
    differ = or_(
        and_(
            human.c.value.is_not(None), judge.c.value.is_not(None), human.c.value != judge.c.value
        ),
        and_(
            or_(human.c.value.is_(None), judge.c.value.is_(None)),
            human.c.label.is_not(None),
            judge.c.label.is_not(None),
            human.c.label != judge.c.label,
        ),
    )
    return exists(
        select(literal(1)).where(
            human.c.project_id == table.c.project_id,
            human.c.trace_id == table.c.trace_id,
            human.c.source == "human",
            human.c.name == human_name,
            judge.c.project_id == table.c.project_id,
            judge.c.trace_id == table.c.trace_id,
            judge.c.source == "llm",
            judge.c.name == judge_name,
            differ,
        )
    )


def shared_conditions(
    conn: Connection, f: Filters, table: Any, project_id: int, sort: str
) -> list[ColumnElement[bool]]:
    """Filters on columns that spans and traces both have, under the same names."""
    c = table.c
    if f.q and search.words(f.q):
        # Search hands over a short list of ids: let those, not the project's time index,
        # drive the query ("+ 0" hides the project_id index from the planner).
        project_condition: ColumnElement[bool] = c.project_id + 0 == project_id
    else:
        project_condition = c.project_id == project_id
    # A range on duration or cost would tempt the planner to use that column's index and then
    # sort every match by time; "+ 0" keeps it walking the time index, stopping at a page.
    duration = c.duration_ns if sort == "duration" else c.duration_ns + 0
    cost = c.cost if sort == "cost" else c.cost + 0
    out: list[ColumnElement[bool]] = [project_condition]
    if f.since is not None:
        out.append(c.start_ns >= f.since)
    if f.until is not None:
        out.append(c.start_ns < f.until)
    equal = {
        "name": f.name,
        "session_id": f.session_id,
        "user_id": f.user_id,
        "trace_id": f.trace_id,
    }
    out.extend(c[column] == value for column, value in equal.items() if value)
    out.extend(_tag_condition(conn, c.tags, tag) for tag in f.tags)
    out.extend(_metadata_condition(c.metadata, key, value) for key, value in f.metadata)
    if f.min_duration_ms is not None:
        out.append(duration >= int(f.min_duration_ms * 1e6))
    if f.max_duration_ms is not None:
        out.append(duration <= int(f.max_duration_ms * 1e6))
    if f.min_cost is not None:
        out.append(cost >= f.min_cost)
    if f.max_cost is not None:
        out.append(cost <= f.max_cost)
    return out


def prompt_condition(f: Filters) -> ColumnElement[bool]:
    """A span made with registry prompt ``f.prompt`` (at ``f.prompt_version``, if given)."""
    attributes = spans.c.attributes
    condition: ColumnElement[bool] = attributes[PROMPT_NAME].as_string() == f.prompt
    if f.prompt_version is not None:
        condition = and_(condition, attributes[PROMPT_VERSION].as_integer() == f.prompt_version)
    return condition


def _sort_column(table: Any, sort: str) -> Any:
    if sort == "start":
        return table.c.start_ns
    if sort == "duration":
        return table.c.duration_ns
    if sort == "cost":
        return func.coalesce(table.c.cost, 0.0)
    raise InvalidQuery(f"sort must be one of {', '.join(SORTS)} (got {sort!r})")


def paginate(
    query: Select[Any],
    sort_col: Any,
    key_col: Any,
    *,
    order: str,
    limit: int,
    cursor: str | None,
) -> Select[Any]:
    if order not in ("asc", "desc"):
        raise InvalidQuery(f"order must be asc or desc (got {order!r})")
    if cursor:
        value, key = decode_cursor(cursor, sort_col, key_col)
        if order == "desc":
            query = query.where(tuple_(sort_col, key_col) < tuple_(literal(value), literal(key)))
        else:
            query = query.where(tuple_(sort_col, key_col) > tuple_(literal(value), literal(key)))
    if order == "desc":
        query = query.order_by(sort_col.desc(), key_col.desc())
    else:
        query = query.order_by(sort_col.asc(), key_col.asc())
    return query.limit(limit + 1)


def _sort_value(row: dict[str, Any], sort: str) -> Any:
    if sort == "start":
        return row["start_ns"]
    if sort == "duration":
        return row["duration_ns"]
    return row["cost"] or 0.0


@dataclass(frozen=True)
class Listing:
    """What differs between the trace list and the span list."""

    table: Any
    columns: list[Any]
    key: str
    conditions: Callable[[Connection, Filters, int, str], list[ColumnElement[bool]]]
    to_row: Callable[[Any], dict[str, Any]]
    # Condition selecting this listing's rows among the given span ids (text search).
    among_spans: Callable[[Connection, list[int], int], ColumnElement[bool]]
    scores_by: str


def list_rows(
    listing: Listing,
    conn: Connection,
    project_id: int,
    f: Filters,
    limit: int,
    cursor: str | None,
    sort: str,
    order: str,
    max_bytes: int | None = None,
) -> Page:
    """One page of ``listing``'s rows, each with its scores; ``max_bytes`` ends it early."""
    sort_col = _sort_column(listing.table, sort)
    key_col = listing.table.c[listing.key]
    base = select(*listing.columns).where(*listing.conditions(conn, f, project_id, sort))

    def page(condition: Any = None) -> list[dict[str, Any]]:
        query = base if condition is None else base.where(condition)
        query = paginate(query, sort_col, key_col, order=order, limit=limit, cursor=cursor)
        return [listing.to_row(row._mapping) for row in conn.execute(query)]

    if f.q and search.words(f.q):
        rows = _search_page(
            conn,
            project_id,
            f.q,
            lambda ids: page(listing.among_spans(conn, ids, project_id)),
            listing.key,
            sort == "start" and order == "desc",
            limit,
        )
    else:
        rows = page()
    more = len(rows) > limit
    rows = rows[:limit]
    attach_scores(conn, project_id, rows, by=listing.scores_by)
    fitting = _within_bytes(rows, max_bytes)
    if fitting < len(rows):  # the page ends early; the cursor carries on from its last row
        rows, more = rows[:fitting], True
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor(_sort_value(last, sort), last[listing.key]) if more and last else None
    )
    return Page(rows, next_cursor)


SEARCH_CHUNK_SPANS = 2_000
SEARCH_SCAN_BUDGET = 100_000


def _search_page(
    conn: Connection,
    project_id: int,
    q: str,
    page: Callable[[Any], list[dict[str, Any]]],
    key: str,
    newest_first: bool,
    limit: int,
) -> list[dict[str, Any]]:
    """Rows (traces or spans) matching ``q``: ``page(ids)`` reads one page of rows among the
    spans whose ids the SELECT ``ids`` yields.

    For the usual view (newest first) it walks the matching spans newest first and stops once
    a page is full, instead of collecting every row a common word appears in. Span ids follow
    arrival, which follows start time closely but not exactly: a span that arrived long after
    it started can sort a little out of place. Other orders, and a page not filled within the
    scan budget, use the exact query.
    """
    if newest_first:
        found: dict[Any, dict[str, Any]] = {}
        scanned = 0
        for ids in search.newest_matching_span_ids(conn, q, project_id, SEARCH_CHUNK_SPANS):
            scanned += len(ids)
            for row in page(ids):
                found[row[key]] = row
            if len(found) > limit:
                return _newest_first(found.values(), key, limit)
            if scanned >= SEARCH_SCAN_BUDGET:
                break
        else:
            return _newest_first(found.values(), key, limit)
    return page(search.matching_span_ids(conn, q, project_id))


def _newest_first(rows: Any, key: str, limit: int) -> list[dict[str, Any]]:
    ordered = sorted(rows, key=lambda r: (r["start_ns"], r[key]), reverse=True)
    return ordered[: limit + 1]


def _within_bytes(rows: list[dict[str, Any]], max_bytes: int | None) -> int:
    """How many of ``rows`` fit in about ``max_bytes`` of JSON (at least one)."""
    if max_bytes is None:
        return len(rows)
    total = 0
    for count, row in enumerate(rows):
        total += len(orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS))
        if total > max_bytes and count > 0:
            return count
    return len(rows)
