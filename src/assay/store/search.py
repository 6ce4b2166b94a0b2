"""Text search over span input and output.

Indexing 2 KB of text costs more than storing the span, so the index is built behind ingest: the
writer indexes new spans whenever it has no requests waiting (ingest keeps priority). A query
reads the index for the spans it covers and scans only the not-yet-indexed tail, so search is
always complete, just slower while the indexer catches up. SQLite uses FTS5 (unicode61 words,
prefix match on the last word); PostgreSQL a GIN-indexed tsvector with the 'simple' config.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, and_, literal_column, or_, select, text

from assay.store.tables import spans, store_state

WATERMARK_KEY = "search_indexed_span_id"
INDEXED_CHARS = 16_384
BATCH = 500
_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(query)][:16]


def watermark(conn: Connection) -> int:
    value = conn.execute(
        select(store_state.c.value).where(store_state.c.key == WATERMARK_KEY)
    ).scalar()
    return int(value or 0)


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
        conn.execute(
            text(
                "INSERT INTO span_search(span_id, project_id, tsv) "
                "SELECT id, project_id, to_tsvector('simple', "
                "left(coalesce(input, ''), :chars) || ' ' || left(coalesce(output, ''), :chars)) "
                "FROM spans WHERE id > :start AND id <= :last ON CONFLICT DO NOTHING"
            ),
            params,
        )
    _set_watermark(conn, int(last))
    return int(last) - start


def _set_watermark(conn: Connection, value: int) -> None:
    updated = conn.execute(
        store_state.update().where(store_state.c.key == WATERMARK_KEY).values(value=value)
    ).rowcount
    if not updated:
        conn.execute(store_state.insert().values(key=WATERMARK_KEY, value=value))


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def span_match(conn: Connection, query: str, project_id: int) -> Any:
    """A condition on ``spans`` true for spans whose input or output contains every word."""
    terms = words(query)
    if not terms:
        return literal_column("1") == literal_column("1")
    mark = watermark(conn)
    tail = and_(
        spans.c.id > mark,
        *[
            or_(
                spans.c.input.ilike(_like_pattern(term), escape="\\"),
                spans.c.output.ilike(_like_pattern(term), escape="\\"),
            )
            for term in terms
        ],
    )
    if conn.dialect.name == "sqlite":
        # Each word quoted (so FTS5 syntax in the query is just text); the last one a prefix.
        fts_query = " ".join(f'"{term}"' for term in terms) + "*"
        indexed = spans.c.id.in_(
            select(literal_column("rowid"))
            .select_from(text("span_search"))
            .where(text("span_search MATCH :fts_query").bindparams(fts_query=fts_query))
        )
    else:
        ts_query = " & ".join(
            f"{term}:*" if i == len(terms) - 1 else term for i, term in enumerate(terms)
        )
        indexed = spans.c.id.in_(
            select(literal_column("span_id"))
            .select_from(text("span_search"))
            .where(
                text(
                    "span_search.project_id = :search_project "
                    "AND tsv @@ to_tsquery('simple', :ts_query)"
                ).bindparams(search_project=project_id, ts_query=ts_query)
            )
        )
    return or_(and_(spans.c.id <= mark, indexed), tail)
