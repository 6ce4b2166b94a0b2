"""Text search over span input and output.

Indexing 2 KB of text costs more than storing the span, so the index is built behind ingest: on
SQLite the writer indexes new spans whenever it has no requests waiting (ingest keeps priority),
on PostgreSQL a thread of its own does (store/indexer.py). A query reads the index for the spans
it covers and scans only the not-yet-indexed tail, so search is always complete, just slower
while the indexer catches up. The tail is kept short: once it passes ``MAX_LAG`` spans, the
writer indexes a batch after each commit (``index_if_behind``), so sustained ingest beyond what
the index can follow slows ingest (the writer's queue fills and answers 503) instead of search.
SQLite uses FTS5 (unicode61 words); PostgreSQL a GIN-indexed tsvector with the 'simple' config.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal_column, or_, select, text, union_all

from assay.store.tables import spans, store_state

WATERMARK_KEY = "search_indexed_span_id"
INDEXED_CHARS = 16_384
BATCH = 500
#: Spans stored but not yet indexed past which the writer indexes after each commit. A search
#: scans this tail with LIKE and checks the matches in Python: ~20 µs per span on an idle
#: machine, ~100 µs on a busy one (5,000 spans took 550-650 ms at load 11 on 2 cores).
MAX_LAG = 2_000
#: Spans indexed per catch-up step; at least the writer's largest commit, so the lag shrinks.
CATCH_UP_BATCH = 5_000
_PG_INDEX = "ix_span_search_tsv"
_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)][:16]


def watermark(conn: Connection) -> int:
    value = conn.execute(
        select(store_state.c.value).where(store_state.c.key == WATERMARK_KEY)
    ).scalar()
    return int(value or 0)


def backlog(conn: Connection) -> int:
    """Stored spans the index does not cover yet."""
    top = conn.execute(select(func.max(spans.c.id))).scalar()
    return max(0, int(top or 0) - watermark(conn))


def index_if_behind(conn: Connection, limit: int = MAX_LAG) -> int:
    """Index a batch if more than ``limit`` spans wait for the index; returns how many."""
    if backlog(conn) <= limit:
        return 0
    return index_batch(conn, batch=CATCH_UP_BATCH)


def index_batch(conn: Connection, batch: int = BATCH) -> int:
    """Index up to ``batch`` spans past the watermark; returns how many were indexed."""
    start = watermark(conn)
    last = conn.execute(
        select(spans.c.id).where(spans.c.id > start).order_by(spans.c.id).offset(batch - 1).limit(1)
    ).scalar()
    if last is None:
        last = conn.execute(select(spans.c.id).order_by(spans.c.id.desc()).limit(1)).scalar()
        if last is None or last <= start:
            return 0
    params = {"start": start, "last": int(last), "chars": INDEXED_CHARS}
    if conn.dialect.name == "sqlite":
        conn.execute(
            text(
                "INSERT INTO span_search(rowid, input, output) "
                "SELECT id, substr(coalesce(input, ''), 1, :chars), "
                "substr(coalesce(output, ''), 1, :chars) "
                "FROM spans WHERE id > :start AND id <= :last"
            ),
            params,
        )
    else:
        _pg_index(conn, params)
    _set_watermark(conn, int(last))
    return int(last) - start


def _pg_index(conn: Connection, params: dict[str, int]) -> None:
    """Insert a batch's tsvectors, then merge them into the GIN index in one pass.

    Per span, the tsvector costs ~130 µs of database CPU here and inserting it into the GIN
    index one row at a time ~120 µs more. Left in GIN's pending list (limit raised for this
    transaction) and merged by ``gin_clean_pending_list`` with sorted keys, the index part
    costs about half. The list is empty again at commit, so queries never scan a long one.
    Positions are stripped: search matches words, not phrases, and the rows are 30% smaller.
    Cleaning the list takes the index's owner; another role indexes row by row.
    """
    owner = text("SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass(:ix)")
    bulk = bool(conn.execute(owner, {"ix": _PG_INDEX}).scalar())
    if bulk:
        conn.execute(text("SET LOCAL gin_pending_list_limit = '64MB'"))
        conn.execute(text("SET LOCAL maintenance_work_mem = '64MB'"))
    conn.execute(
        text(
            "INSERT INTO span_search(span_id, project_id, tsv) "
            "SELECT id, project_id, strip(to_tsvector('simple', "
            "left(coalesce(input, ''), :chars) || ' ' || left(coalesce(output, ''), :chars))) "
            "FROM spans WHERE id > :start AND id <= :last ON CONFLICT DO NOTHING"
        ),
        params,
    )
    if bulk:
        conn.execute(text("SELECT gin_clean_pending_list(to_regclass(:ix))"), {"ix": _PG_INDEX})


def _set_watermark(conn: Connection, value: int) -> None:
    updated = conn.execute(
        store_state.update().where(store_state.c.key == WATERMARK_KEY).values(value=value)
    ).rowcount
    if not updated:
        conn.execute(store_state.insert().values(key=WATERMARK_KEY, value=value))


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_condition(conn: Connection, terms: list[str], project_id: int) -> tuple[Any, Any]:
    """(the id column of the index, a condition selecting the indexed spans that match)."""
    if conn.dialect.name == "sqlite":
        # Each word quoted, so FTS5 syntax in the query is just text. Whole words only: a
        # prefix query merges every term sharing the prefix and costs 20x more.
        fts_query = " ".join(f'"{term}"' for term in terms)
        return literal_column("rowid"), text("span_search MATCH :fts_query").bindparams(
            fts_query=fts_query
        )
    ts_query = " & ".join(terms)
    return literal_column("span_id"), text(
        "span_search.project_id = :search_project AND tsv @@ to_tsquery('simple', :ts_query)"
    ).bindparams(search_project=project_id, ts_query=ts_query)


def _tail_matches(conn: Connection, terms: list[str], project_id: int | None) -> list[int]:
    """Ids of not-yet-indexed spans containing every word, newest first.

    LIKE narrows the (small) tail down; a word-boundary check then gives the same answer the
    index will give once it has caught up ("refund" does not match "refunds").
    """
    mark = watermark(conn)
    # Only the id range may drive this scan; "+ 0" keeps the planner from walking a whole
    # project through the project_id index instead.
    # The watermark is inlined, not bound: with a parameter, PostgreSQL's generic plan guesses
    # a third of the table matches and scans it all instead of the short tail.
    query = select(spans.c.id, spans.c.input, spans.c.output).where(
        spans.c.id > bindparam("tail_start", mark, literal_execute=True),
        *[
            or_(
                spans.c.input.ilike(_like_pattern(term), escape="\\"),
                spans.c.output.ilike(_like_pattern(term), escape="\\"),
            )
            for term in terms
        ],
    )
    if project_id is not None:
        query = query.where(spans.c.project_id + literal_column("0") == project_id)
    patterns = [re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE) for term in terms]
    found = []
    for row in conn.execute(query.order_by(spans.c.id.desc())):
        text_value = f"{row.input or ''}\n{row.output or ''}"
        if all(pattern.search(text_value) for pattern in patterns):
            found.append(int(row.id))
    return found


def matching_span_ids(conn: Connection, query: str, project_id: int) -> Any:
    """A SELECT of the ids of spans whose input or output contains every word of ``query``:
    the index for what it covers, a direct scan for the newest spans it does not cover yet."""
    terms = words(query) or [""]
    id_column, condition = _fts_condition(conn, terms, project_id)
    indexed = select(id_column.label("id")).select_from(text("span_search")).where(condition)
    tail = _tail_matches(conn, terms, project_id)
    if not tail:
        return indexed
    return union_all(indexed, select(spans.c.id).where(spans.c.id.in_(tail)))


def newest_matching_span_ids(
    conn: Connection, query: str, project_id: int, chunk: int
) -> Iterator[list[int]]:
    """Ids of matching spans, newest first, ``chunk`` at a time (for the trace list, which
    needs only enough matches to fill a page, not all of them)."""
    terms = words(query)
    if not terms:
        return
    tail = _tail_matches(conn, terms, project_id)
    for start in range(0, len(tail), chunk):
        yield tail[start : start + chunk]
    id_column, condition = _fts_condition(conn, terms, project_id)
    if conn.dialect.name == "sqlite":
        # FTS5 walks its posting lists newest first and stops at the limit.
        before: int | None = None
        while True:
            step = select(id_column).select_from(text("span_search")).where(condition)
            if before is not None:
                step = step.where(id_column < before)
            ids = [
                int(i) for i in conn.execute(step.order_by(id_column.desc()).limit(chunk)).scalars()
            ]
            if not ids:
                return
            yield ids
            before = ids[-1]
    # A GIN index returns every match unordered: for a common word, hundreds of thousands.
    # Ask it about the newest ids first, in windows that grow, so a page fills from a few.
    top = conn.execute(select(func.max(id_column)).select_from(text("span_search"))).scalar()
    if top is None:
        return
    high = int(top) + 1
    window = 20_000
    while high > 0:
        low = max(0, high - window)
        step = (
            select(id_column)
            .select_from(text("span_search"))
            .where(condition, id_column >= low, id_column < high)
            .order_by(id_column.desc())
        )
        ids = [int(i) for i in conn.execute(step).scalars()]
        for start in range(0, len(ids), chunk):
            yield ids[start : start + chunk]
        high = low
        window *= 4
