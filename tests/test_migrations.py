"""Migrations go up and down on both engines, and leave exactly the schema the code expects."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
