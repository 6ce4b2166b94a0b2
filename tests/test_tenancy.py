"""Tenancy: a trace, its spans and its scores belong to one project, whatever arrives when."""

from __future__ import annotations

import time
from collections.abc import Iterator
from threading import Event
from typing import Any

import pytest
from sqlalchemy import Engine, select

from assay.store import migrate
from assay.store.engine import make_engine
from assay.store.tables import projects, spans
from assay.store.writer import SpanWriter, _Job


def span_row(trace_id: str, span_id: str, name: str, **changes: Any) -> dict[str, Any]:
    """A normalised span as the writer takes it."""
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": None,
        "name": name,
        "kind": 1,
        "start_ns": 1_000,
        "end_ns": 2_000,
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
        "duration_ns": 1_000,
        "input": f"input of {name}",
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
    row.update(changes)
    return row


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(db_url: str, engine: Engine) -> Iterator[SpanWriter]:
    writer = SpanWriter(make_engine(db_url, role="writer"))
    writer.start()
    yield writer
    writer.stop()
    writer.engine.dispose()


def _project_of_spans(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(spans.c.name, projects.c.name).join(
                projects, projects.c.id == spans.c.project_id
            )
        ).all()
    return {span_name: project for span_name, project in rows}


# A start time beyond 64 bits gets past the writer and fails at the database on both engines,
# after the writer has created the request's project in the same transaction.
UNSTORABLE = {"start_ns": 2**70}


def test_a_failed_write_never_misroutes_a_later_one(engine: Engine, writer: SpanWriter) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        writer.write_sync([span_row("a" * 32, "1" * 16, "bad", **UNSTORABLE)], ["victim"])
    writer.write_sync([span_row("b" * 32, "2" * 16, "innocent-span")], ["innocent"])
    writer.write_sync([span_row("c" * 32, "3" * 16, "victim-span")], ["victim"])
    assert _project_of_spans(engine) == {
        "innocent-span": "innocent",
        "victim-span": "victim",
    }


def test_a_failed_group_never_poisons_its_neighbours(db_url: str, engine: Engine) -> None:
    """Requests committed together: the bad one fails alone, the others land where they say."""
    writer = SpanWriter(make_engine(db_url, role="writer"))
    bad = _Job([span_row("a" * 32, "1" * 16, "bad", **UNSTORABLE)], ["victim"], None, None, Event())
    good = _Job([span_row("b" * 32, "2" * 16, "good")], ["neighbour"], None, None, Event())
    writer._commit_jobs([bad, good])  # what the writer thread does with requests that queued up
    assert bad.error is not None and good.error is None
    writer.start()
    writer.write_sync([span_row("c" * 32, "3" * 16, "later")], ["third"])
    writer.write_sync([span_row("d" * 32, "4" * 16, "victim-span")], ["victim"])
    writer.stop()
    writer.engine.dispose()
    assert _project_of_spans(engine) == {
        "good": "neighbour",
        "later": "third",
        "victim-span": "victim",
    }
