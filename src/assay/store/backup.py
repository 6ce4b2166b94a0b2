"""Back up a store to one file and restore it into a new, empty database.

SQLite: ``VACUUM INTO`` writes a compact copy from a single read transaction, so the copy is
consistent while the server keeps writing (WAL lets readers and the writer run side by side).
A restore copies that file into the target through SQLite's backup API.

PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot, without blocking writers) and
``pg_restore`` in a single transaction. Both are the PostgreSQL client tools; they must be on
PATH and at least as new as the server.

A restore refuses a target that already holds projects: it never merges into or overwrites
data. After it, the schema is brought up to date, so a backup from an older Assay restores into
a newer one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select

from assay.errors import StorageError, UserError
from assay.store import migrate
from assay.store.engine import make_engine
from assay.store.tables import projects, spans

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(UserError):
    """A backup or restore could not be made; the message says what to change."""


@dataclass(frozen=True)
class Summary:
    """What a backup or a restored database holds."""

    engine: str  # sqlite | postgresql
    path: Path
    bytes: int
    projects: int
    spans: int


def backup(database_url: str, path: Path) -> Summary:
    """Write a consistent copy of the store at ``database_url`` to the new file ``path``."""
    path = path.expanduser().resolve()
    if path.exists():
        raise BackupError(f"{path} already exists; choose a new file name or remove it first")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a directory")
    engine = make_engine(database_url)
    try:
        counts = _counts(engine)
        if counts is None:
            raise BackupError("the database holds no Assay store; nothing to back up")
        if engine.dialect.name == "sqlite":
            _backup_sqlite(engine, path)
        else:
            _run_pg_tool(
                "pg_dump",
                ["--format=custom", "--no-owner", "--no-privileges", "--file", str(path)],
                engine,
            )
        # The copy holds every trace, password hash and key hash: readable by its owner only.
        path.chmod(0o600)
        return Summary(engine.dialect.name, path, path.stat().st_size, *counts)
    finally:
        engine.dispose()


def restore(path: Path, database_url: str) -> Summary:
    """Restore the backup file ``path`` into the database at ``database_url``, which must hold
    no data yet (a new SQLite file, or a new or freshly migrated PostgreSQL database)."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    kind = _backup_kind(path)
    engine = make_engine(database_url)
    try:
        target = engine.dialect.name
        if kind != target:
            raise BackupError(
                f"{path} is a {kind} backup but the target database is {target}; "
                f"restore it into a {kind} database (--db)"
            )
        counts = _counts(engine)
        if counts is not None and counts[0] > 0:
            raise BackupError(
                "the target database already holds data; restore into a new, empty database"
            )
        if target == "sqlite":
            _restore_sqlite(path, engine)
        else:
            args = ["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
            if counts is not None:  # an empty but migrated schema: replace it
                args += ["--clean", "--if-exists"]
            _run_pg_tool("pg_restore", [*args, str(path)], engine, dbname_flag=True)
        engine.dispose()
        migrate.upgrade(engine)
        restored = _counts(engine)
        if restored is None:
            raise StorageError(f"{path} restored, but the database holds no Assay store")
        return Summary(target, path, path.stat().st_size, *restored)
    finally:
        engine.dispose()


def _counts(engine: Engine) -> tuple[int, int] | None:
    """(projects, spans) in the store, or None if it has no Assay schema yet."""
    if not inspect(engine).has_table("spans"):
        return None
    with engine.connect() as conn:
        project_count = conn.execute(select(func.count()).select_from(projects)).scalar()
        span_count = conn.execute(select(func.count()).select_from(spans)).scalar()
    return int(project_count or 0), int(span_count or 0)


def _backup_kind(path: Path) -> str:
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    if head == SQLITE_MAGIC:
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(
        f"{path} is not an Assay backup (neither a SQLite file nor a pg_dump archive)"
    )


def _sqlite_file(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("backup and restore need a SQLite database file, not an in-memory one")
    return Path(database).expanduser()


def _backup_sqlite(engine: Engine, path: Path) -> None:
    # Outside SQLAlchemy: VACUUM cannot run in the transaction it would begin.
    source = sqlite3.connect(_sqlite_file(engine), timeout=30, isolation_level=None)
    try:
        source.execute("VACUUM INTO ?", (str(path),))
    finally:
        source.close()


def _restore_sqlite(path: Path, engine: Engine) -> None:
    database = _sqlite_file(engine)
    engine.dispose()
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(database, timeout=30)
    try:
        check = source.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise BackupError(f"{path} is damaged (SQLite quick_check: {check}); not restored")
        source.backup(target)
    finally:
        target.close()
        source.close()


def _libpq_url(engine: Engine) -> tuple[str, dict[str, str]]:
    """The database as a libpq URL without the password, and the environment carrying it
    (a password in the command line would show in the process list)."""
    url = engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run_pg_tool(tool: str, args: list[str], engine: Engine, *, dbname_flag: bool = False) -> None:
    executable = shutil.which(tool)
    if executable is None:
        raise BackupError(
            f"{tool} was not found on PATH; install the PostgreSQL client tools "
            f"(Debian/Ubuntu: apt install postgresql-client) at least as new as the server"
        )
    dsn, env = _libpq_url(engine)
    target = ["--dbname", dsn] if dbname_flag else [dsn]
    result = subprocess.run(
        [executable, *args, *target], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{tool} failed: {' '.join(detail[-3:]) or 'no output'}")
