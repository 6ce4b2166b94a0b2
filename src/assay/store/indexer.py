"""The search indexer as a thread of its own (PostgreSQL).

On SQLite the span writer builds the index between commits: there is one writer per database.
PostgreSQL takes concurrent writers, and building a tsvector is the database's own CPU work,
so there the index is built by this thread, beside ingest instead of in its way. Several server
processes may run one each; a transaction-level advisory lock lets one index at a time.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, text

from assay.store import search

log = logging.getLogger("assay.indexer")
PG_INDEX_LOCK_KEY = 0x4153_5341_5A  # distinct from the span writers' key


class SearchIndexer:
    #: Refresh the planner's statistics after this many newly indexed spans: a table that grew
    #: fast has none yet, and PostgreSQL then plans a short id-range scan as a full scan.
    ANALYZE_EVERY = 200_000

    def __init__(self, engine: Engine, idle_seconds: float = 0.5) -> None:
        self.engine = engine
        self.idle_seconds = idle_seconds
        self._since_analyze = self.ANALYZE_EVERY  # analyse once soon after start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="assay-indexer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def index_once(self) -> int:
        with self.engine.begin() as conn:
            locked = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PG_INDEX_LOCK_KEY}
            ).scalar()
            if not locked:
                return 0
            return search.index_batch(conn, batch=2_000)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                indexed = self.index_once()
            except Exception:
                log.exception("search indexing failed; will retry")
                indexed = 0
            self._since_analyze += indexed
            if self._since_analyze >= self.ANALYZE_EVERY and not indexed:
                self._analyze()
            if not indexed:
                self._stop.wait(self.idle_seconds)

    def _analyze(self) -> None:
        try:
            with self.engine.connect() as conn:
                for table in ("spans", "traces", "span_search"):
                    conn.execute(text(f"ANALYZE {table}"))
                conn.commit()
            self._since_analyze = 0
        except Exception:
            log.exception("ANALYZE failed; will retry")
