"""`assay db backup` / `assay db restore`: a round trip on both engines gives the same store."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select

from assay.store import migrate
from assay.store import spans as span_store
from assay.store.engine import make_engine
from assay.store.listing import Filters
from assay.store.tables import metadata, projects
from tests.conftest import PG_ADMIN_DSN, LiveServer, _pg_url
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span


def _assay(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", *args],
        env={**os.environ, "ASSAY_HOME": str(home), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def fresh_url(dialect: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same engine to restore into."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path}/restored/assay.db"
        return
    name = f"assay_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _contents(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
        }


def test_backup_while_serving_then_restore_gives_the_same_store(
    live: LiveServer, db_url: str, fresh_url: str, tmp_path: Path
) -> None:
    spans_sent = [
        span(new_trace_id(), new_span_id(), f"s{i}", attributes={"input.value": f"refund {i}"})
        for i in range(30)
    ]
    with live.client() as client:
        body = protobuf(spans_sent, service="shop")
        response = client.post("/v1/traces", content=body, headers=PB)
        assert response.status_code == 200
        base = "/api/v1/projects/shop/datasets"
        assert client.post(base, json={"name": "golden"}).status_code == 201
        records = [{"input": {"q": f"question {i}"}, "expected": f"answer {i}"} for i in range(5)]
        changed = client.post(f"{base}/golden/changes", json={"insert": records})
        assert changed.status_code == 201, changed.text

    backup_file = tmp_path / "store.backup"
    made = _assay("db", "backup", str(backup_file), "--db", db_url, home=tmp_path)  # server up
    assert made.returncode == 0, made.stderr
    assert "1 projects and 30 spans" in made.stdout
    assert backup_file.stat().st_mode & 0o777 == 0o600
    again = _assay("db", "backup", str(backup_file), "--db", db_url, home=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr

    restored = _assay("db", "restore", str(backup_file), "--db", fresh_url, home=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert "1 projects and 30 spans" in restored.stdout

    original, copy = make_engine(db_url), make_engine(fresh_url)
    try:
        before, after = _contents(original), _contents(copy)
        assert len(after["spans"]) == 30 and len(after["dataset_records"]) == 5
        assert after == before
        with copy.connect() as conn:  # search works on the copy (index or tail)
            project_id = conn.execute(select(projects.c.id)).scalar_one()
            found = span_store.list_spans(conn, project_id, Filters(q="refund"), limit=100)
            assert len(found.items) == 30
    finally:
        original.dispose()
        copy.dispose()

    # A restore never merges into data: the copy now holds some.
    refused = _assay("db", "restore", str(backup_file), "--db", fresh_url, home=tmp_path)
    assert refused.returncode == 1
    assert "already holds data" in refused.stderr and "Traceback" not in refused.stderr


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    result = _assay(
        "db", "restore", str(bogus), "--db", f"sqlite:///{tmp_path}/new.db", home=tmp_path
    )
    assert result.returncode == 1
    assert "not an Assay backup" in result.stderr and "Traceback" not in result.stderr


def test_postgres_backup_names_the_missing_tool(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite backs up in-process")
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    engine.dispose()
    result = subprocess.run(
        [sys.executable, "-m", "assay.cli", "db", "backup", str(tmp_path / "b"), "--db", db_url],
        env={**os.environ, "PATH": str(tmp_path), "ASSAY_HOME": str(tmp_path)},  # no pg_dump
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "pg_dump was not found on PATH" in result.stderr
    assert "Traceback" not in result.stderr
