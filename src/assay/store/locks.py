"""One writer at a time across processes.

Several server processes may share one database (`assay server --workers N`, or API servers
side by side on PostgreSQL). Their writers take turns: on SQLite through an advisory file lock
beside the database, which wakes the next writer at once (SQLite's own busy handler sleeps in
steps of up to 100 ms); on PostgreSQL through a transaction-level advisory lock, which also
makes span ids commit in order, as the background search indexer assumes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, text

try:
    import fcntl
except ImportError:  # Windows: one process per database
    fcntl = None  # type: ignore[assignment]

PG_WRITE_LOCK_KEY = 0x4153_5341_59  # "ASSAY"


class WriteLock:
    def __init__(self, engine: Engine) -> None:
        self._fd: int | None = None
        if engine.dialect.name == "sqlite" and fcntl is not None:
            database = engine.url.database
            if database and database != ":memory:":
                path = Path(database).expanduser()
                self._fd = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the file lock (SQLite) around a whole write transaction."""
        if self._fd is None:
            yield
            return
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @staticmethod
    def in_transaction(conn: Connection) -> None:
        """Take PostgreSQL's lock as the first thing a write transaction does."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK_KEY})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
