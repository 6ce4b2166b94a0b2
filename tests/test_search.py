"""Text search: the background index and the not-yet-indexed tail give the same answers."""

from __future__ import annotations

import functools
import time

from sqlalchemy import Connection

from assay.store import indexer, migrate, search
from assay.store import spans as span_store
from assay.store.engine import make_engine
from assay.store.listing import Filters
from assay.store.writer import SpanWriter


def _row(i: int, text: str) -> dict[str, object]:
    return {
        "trace_id": f"{i:032x}",
        "span_id": f"{i + 1:016x}",
        "parent_span_id": None,
        "name": f"s{i}",
        "kind": 1,
        "start_ns": i,
        "end_ns": i + 1,
        "status_code": 0,
        "status_message": None,
        "attributes": {},
        "events": [],
        "links": [],
        "resource": {},
        "scope": {},
        "is_root": True,
        "type": "span",
        "is_error": False,
        "error": None,
        "duration_ns": 1,
        "input": text,
        "output": None,
        "model": None,
        "provider": None,
        "operation": None,
        "input_tokens": None,
        "output_tokens": None,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "total_tokens": None,
        "cost": None,
        "session_id": None,
        "user_id": None,
        "tags": [],
        "metadata": {},
        "ingested_ns": time.time_ns(),
    }


TEXTS = [
    "The refund was approved for the damaged blender",
    "Shipping to Norway takes five days",
    "Refunds take five business days",
    "Un café crème, s'il vous plaît",
]


def _names(conn: Connection, q: str) -> list[str]:
    page = span_store.list_spans(conn, 1, Filters(q=q), limit=100)
    return sorted(item["name"] for item in page.items)


def test_index_and_tail_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    writer = SpanWriter(make_engine(db_url, role="writer"))
    writer.start()
    writer.write_sync([_row(i, t) for i, t in enumerate(TEXTS)], ["p"] * len(TEXTS))
    writer.stop()
    cases = {
        # Every word must appear, as a whole word, in any case.
        "refund": ["s0"],
        "refund blender": ["s0"],
        "refunds": ["s2"],
        "five days": ["s1", "s2"],
        "REFUND": ["s0"],
        "nothing-here": [],
    }
    with engine.connect() as conn:
        before = {q: _names(conn, q) for q in cases}
    with engine.begin() as conn:
        assert search.index_batch(conn, batch=2) == 2
    with engine.connect() as conn:
        half = {q: _names(conn, q) for q in cases}
    with engine.begin() as conn:
        assert search.index_batch(conn) == 2
        assert search.index_batch(conn) == 0
        assert search.watermark(conn) == 4
    with engine.connect() as conn:
        after = {q: _names(conn, q) for q in cases}
        assert _names(conn, "refu") == []
        assert _names(conn, "café") == ["s3"]
    for q, expected in cases.items():
        assert before[q] == half[q] == after[q] == expected, q
    engine.dispose()


def test_postgres_indexer_thread_catches_up(live: object) -> None:
    import httpx

    from tests.conftest import LiveServer
    from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

    assert isinstance(live, LiveServer)
    if live.runtime.indexer is None:
        import pytest

        pytest.skip("SQLite: the span writer builds the index (covered above)")
    batch = [
        span(new_trace_id(), new_span_id(), f"s{i}", attributes={"input.value": "zebra"})
        for i in range(50)
    ]
    with httpx.Client(base_url=live.url) as client:
        assert (
            client.post(
                "/v1/traces", content=protobuf(batch, service="idx"), headers=PB
            ).status_code
            == 200
        )
    deadline = time.monotonic() + 20
    while True:
        with live.runtime.engine.connect() as conn:
            if search.watermark(conn) >= 50:
                break
        assert time.monotonic() < deadline, "the indexer did not catch up"
        time.sleep(0.1)
    with live.runtime.engine.connect() as conn:
        assert len(_names(conn, "zebra")) == 50


def test_writer_keeps_the_index_lag_bounded(db_url: str) -> None:
    """Past the lag limit the writer indexes after its commits, even with requests waiting."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    catch_up = search.index_if_behind if engine.dialect.name == "sqlite" else indexer.catch_up
    lagging = SpanWriter(make_engine(db_url, role="writer"))
    bounded = SpanWriter(
        make_engine(db_url, role="writer"), catch_up=functools.partial(catch_up, limit=100)
    )
    texts = [f"request {i} about refunds" for i in range(1_000)]
    lagging.start()
    for start in range(0, 500, 50):
        rows = [_row(i, texts[i]) for i in range(start, start + 50)]
        lagging.write_sync(rows, ["p"] * len(rows))
    lagging.stop()
    with engine.connect() as conn:
        assert search.backlog(conn) == 500  # no catch-up: nothing indexed while busy
    bounded.start()
    for start in range(500, 1_000, 50):
        rows = [_row(i, texts[i]) for i in range(start, start + 50)]
        bounded.write_sync(rows, ["p"] * len(rows))
    bounded.stop()
    with engine.connect() as conn:
        assert search.backlog(conn) <= 100
        found = span_store.list_spans(conn, 1, Filters(q="refunds"), limit=1_000).items
        assert len(found) == 1_000
        assert _names(conn, "request 999") == ["s999"]
    engine.dispose()
