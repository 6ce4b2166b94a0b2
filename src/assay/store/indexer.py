"""The search indexer as a thread of its own (PostgreSQL).

On SQLite the span writer builds the index between commits: there is one writer per database.
PostgreSQL takes concurrent writers, and building a tsvector is the database's own CPU work,
so there the index is built by this thread, beside ingest instead of in its way. Several server
processes may run one each; a transaction-level advisory lock lets one index at a time. When
ingest outruns the thread, the writer helps (``catch_up``, after its commits), under the same lock.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection, Engine, text

from assay.store import search

log = logging.getLogger("assay.indexer")
PG_INDEX_LOCK_KEY = 0x4153_5341_5A  # distinct from the span writers' key
#: Spans per transaction: large enough that the GIN merge at its end works in bulk, small
#: enough that one batch takes about a second.
BATCH = 5_000


def catch_up(conn: Connection, limit: int = search.MAX_LAG) -> int:
    """For the span writer after a commit: if the index is too far behind, index a batch.

    Waits for the indexer thread's batch in progress (the lock), which slows the writer
    exactly when ingest outruns the index.
    """
    if search.backlog(conn) <= limit:
        return 0
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_INDEX_LOCK_KEY})
    return search.index_if_behind(conn, limit)


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
            return search.index_batch(conn, batch=BATCH)

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
