"""Migrations go up and down on both engines, and leave exactly the schema the code expects."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from assay.store import migrate
from assay.store.engine import make_engine
from assay.store.tables import metadata

# Built by migrations with engine-specific DDL (FTS5 / tsvector), not described in tables.py.
ENGINE_SPECIFIC = {"span_search", "alembic_version"}


def _ignore_engine_specific(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
    if type_ == "table":
        return name not in ENGINE_SPECIFIC and not (name or "").startswith("span_search_")
    return True


def test_upgrade_matches_the_tables_and_downgrade_removes_them(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"projects", "spans", "traces", "scores", "api_keys", "span_search"} <= tables
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": _ignore_engine_specific, "compare_type": True}
        )
        differences = compare_metadata(context, metadata)
    assert differences == []

    migrate.downgrade(engine, "base")
    leftover = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert leftover == set()
    migrate.upgrade(engine)  # and back up again, from nothing
    assert "spans" in inspect(engine).get_table_names()
    engine.dispose()


def test_migrations_import_nothing_from_the_app() -> None:
    for path in migrate.MIGRATIONS.rglob("*.py"):
        source = path.read_text()
        assert "from assay" not in source and "import assay" not in source, path


def test_a_trace_id_shared_by_projects_becomes_one_trace_per_project(db_url: str) -> None:
    """0005: spans stored under the first project's trace row are split into one row each."""
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0004")
    shared, alone = "a" * 32, "b" * 32
    span_defaults: dict[str, Any] = {
        "parent_span_id": None,
        "kind": 1,
        "status_code": 0,
        "type": "span",
        "is_error": False,
        "ingested_ns": 1,
        "tags": "[]",
        "metadata": "{}",
        "attributes": "{}",
        "events": "[]",
        "links": "[]",
        "resource": "{}",
        "scope": "{}",
        "input_tokens": None,
        "cost": None,
        "model": None,
        "input": None,
    }
    spans: list[dict[str, Any]] = [
        # project 1 owns the shared trace's row; project 2's sub-agent spans were filed under it.
        {
            "project_id": 1,
            "trace_id": shared,
            "span_id": "1" * 16,
            "name": "supervisor",
            "is_root": True,
            "start_ns": 100,
            "end_ns": 900,
            "input": "plan",
            "input_tokens": 5,
            "cost": 0.5,
            "model": "m1",
        },
        {
            "project_id": 2,
            "trace_id": shared,
            "span_id": "2" * 16,
            "name": "sub-agent",
            "is_root": False,
            "parent_span_id": "1" * 16,
            "start_ns": 200,
            "end_ns": 300,
            "is_error": True,
            "input_tokens": 7,
            "cost": 0.25,
            "model": "m2",
            "type": "llm",
        },
        {
            "project_id": 2,
            "trace_id": shared,
            "span_id": "3" * 16,
            "name": "tool",
            "is_root": False,
            "parent_span_id": "2" * 16,
            "start_ns": 250,
            "end_ns": 260,
        },
        {
            "project_id": 2,
            "trace_id": alone,
            "span_id": "4" * 16,
            "name": "own",
            "is_root": True,
            "start_ns": 1,
            "end_ns": 2,
        },
    ]
    trace_row = (
        "INSERT INTO traces (trace_id, project_id, root_span_id, name, start_ns, end_ns, "
        "duration_ns, status_code, span_count, error_count, input_tokens, cost, tags, metadata)"
        " VALUES (:t, :p, :root, :name, :start, :end, :duration, 0, :count, :errors, :tokens,"
        " :cost, '[]', '{}')"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (id, name, created_ns, settings) VALUES "
                "(1, 'a', 1, '{}'), (2, 'b', 1, '{}')"
            )
        )
        for row in spans:
            values = {**span_defaults, **row}
            values["duration_ns"] = values["end_ns"] - values["start_ns"]
            names = ", ".join(values)
            conn.execute(
                text(f"INSERT INTO spans ({names}) VALUES ({', '.join(':' + n for n in values)})"),
                values,
            )
        conn.execute(
            text(trace_row),
            [
                {
                    "t": shared,
                    "p": 1,
                    "root": "1" * 16,
                    "name": "supervisor",
                    "start": 100,
                    "end": 900,
                    "duration": 800,
                    "count": 3,
                    "errors": 1,
                    "tokens": 12,
                    "cost": 0.75,
                },
                {
                    "t": alone,
                    "p": 2,
                    "root": "4" * 16,
                    "name": "own",
                    "start": 1,
                    "end": 2,
                    "duration": 1,
                    "count": 1,
                    "errors": 0,
                    "tokens": 0,
                    "cost": 0,
                },
            ],
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        found = {
            (row.project_id, row.trace_id): row
            for row in conn.execute(text("SELECT * FROM traces"))
        }
    assert set(found) == {(1, shared), (2, shared), (2, alone)}
    supervisor, sub_agent = found[(1, shared)], found[(2, shared)]
    assert (supervisor.name, supervisor.span_count, supervisor.error_count) == ("supervisor", 1, 0)
    assert (supervisor.input_tokens, supervisor.cost, supervisor.input_preview) == (5, 0.5, "plan")
    assert (sub_agent.span_count, sub_agent.error_count, sub_agent.input_tokens) == (2, 1, 7)
    assert (sub_agent.start_ns, sub_agent.end_ns, sub_agent.root_span_id) == (200, 300, None)
    assert sub_agent.models == ",m2," and sub_agent.cost == 0.25
    assert found[(2, alone)].name == "own"
    # And a project may now store a span id the other one used, in the same trace.
    with engine.begin() as conn:
        values = {**span_defaults, **spans[0], "project_id": 2, "duration_ns": 800}
        names = ", ".join(values)
        conn.execute(
            text(f"INSERT INTO spans ({names}) VALUES ({', '.join(':' + n for n in values)})"),
            values,
        )
    engine.dispose()
