"""The engines of one store, and the two ways the layers above use them: a read, a write.

The service layer opens every transaction through :class:`Database`, so nothing above the
store names an engine, a connection or SQLAlchemy itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from assay.store import migrate
from assay.store.engine import make_engine, ping

__all__ = ["Connection", "Database", "Engine"]


@dataclass
class Database:
    #: Readers: a pool; pages and the API read here.
    engine: Engine
    #: Small writes from the API, the UI and the CLI (scores, datasets, users, settings). On
    #: SQLite a separate pool whose transactions take the write lock as they begin.
    updates: Engine

    @classmethod
    def for_commands(cls, url: str) -> Database:
        """One migrated engine for a CLI command's few reads and writes."""
        engine = make_engine(url, role="updates")
        migrate.upgrade(engine)
        return cls(engine=engine, updates=engine)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.updates.begin() as conn:
            yield conn

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def answers(self) -> bool:
        return ping(self.engine)

    def dispose(self) -> None:
        if self.updates is not self.engine:
            self.updates.dispose()
        self.engine.dispose()
