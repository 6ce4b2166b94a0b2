"""Engines for both databases, with every engine-specific setting in one place."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from assay.errors import ConfigError

__all__ = ["Engine", "make_engine", "normalize_url", "now_ns", "ping"]


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick our drivers."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"database URL {url!r} is not valid; use sqlite:///path/to/assay.db or "
            "postgresql://user@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise ConfigError(
            f"database {backend!r} is not supported; use SQLite (default) or PostgreSQL"
        )
    return parsed.render_as_string(hide_password=False)


def json_text(value: Any) -> str:
    """JSON for both engines: orjson (fast, never fails on odd types), with NUL escaped as
    U+FFFD because PostgreSQL's JSONB cannot store \\u0000."""
    text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\\ufffd")
    return text


def json_text_any(value: Any) -> str:
    """JSON as SQLite stores it (NUL escapes and all)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(cache_kib: int, synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers proceed while the single writer commits.
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before ingest answers 200 ("acknowledged means durable");
        # the group commit amortises the fsync over many requests.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Wait instead of failing when another process (e.g. `assay keys`) holds the lock.
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    return on_connect


def make_engine(url: str, *, role: str = "reader") -> Engine:
    """An engine for readers (a pool), for the span writer (one connection), or for small
    writes from the API and the CLI ("updates": a pool whose transactions take SQLite's write
    lock when they begin, so they wait for it rather than fail half-way)."""
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=1 if role == "writer" else 8,
            max_overflow=0 if role == "writer" else 8,
            connect_args={"check_same_thread": False},
            json_serializer=json_text,
        )
        event.listen(
            engine,
            "connect",
            _sqlite_pragmas(65536 if role == "writer" else 16384, "FULL"),
        )
        # pysqlite's own transaction handling defers BEGIN; take control so that a write
        # transaction starts with BEGIN IMMEDIATE and never fails half-way on a lock.
        event.listen(engine, "connect", _disable_pysqlite_begin)
        immediate = role in ("writer", "updates")
        event.listen(engine, "begin", _begin_immediate if immediate else _begin_deferred)
        return engine
    return create_engine(
        url,
        pool_size=1 if role == "writer" else 10,
        max_overflow=0 if role == "writer" else 10,
        pool_pre_ping=True,
        json_serializer=json_text,
    )


def _disable_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def now_ns() -> int:
    return time.time_ns()
