"""The span writer: one thread, group commit.

Request handlers hand their normalised spans to the writer and wait. The writer takes every
request that is waiting, writes all their spans in one transaction, commits, and only then wakes
the handlers, which answer 200. So an acknowledged span is on disk (SQLite runs with
synchronous=FULL), and the cost of a commit is shared by every request in the group. One writer
per database is also what SQLite wants; on PostgreSQL it keeps inserts in large batches.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Text,
    and_,
    bindparam,
    case,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from assay.errors import IngestError
from assay.store import projects as project_store
from assay.store.engine import json_text, json_text_any
from assay.store.locks import WriteLock
from assay.store.logs import insert_logs
from assay.store.same_call import SdkRootProjects, link_same_calls
from assay.store.tables import spans, traces

log = logging.getLogger("assay.writer")

PREVIEW_CHARS = 500
_STOP = object()


@dataclass(slots=True)
class _Job:
    rows: list[dict[str, Any]]
    project_of_row: list[str]
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None
    done: threading.Event | None = None
    error: BaseException | None = field(default=None)
    #: What the rows are: "spans" or "logs" (OTLP log records, see store/logs.py).
    kind: str = "spans"


class SpanWriter:
    """Serialises all span writes through one connection and commits them in groups."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_spans: int = 5_000,
        max_pending: int = 200_000,
        indexer: Callable[[Connection], int] | None = None,
        max_projects: int | None = None,
        max_new_projects_per_request: int | None = None,
        catch_up: Callable[[Connection], int] | None = None,
    ) -> None:
        self.engine = engine
        self._sdk_roots = SdkRootProjects()
        self._write_lock = WriteLock(engine)
        self.indexer = indexer
        #: Run after each group commit: indexes when the search index is too far behind.
        self.catch_up = catch_up
        self.idle_seconds = 0.25
        self.batch_spans = batch_spans
        self.max_pending = max_pending
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._is_sqlite = engine.dialect.name == "sqlite"
        #: Ids of committed projects only (see ``_commit``).
        self._projects: dict[str, int] = {}
        self.max_projects = max_projects
        self.max_new_projects_per_request = max_new_projects_per_request
        self.spans_written = 0
        self.commits = 0
        self._last_ingest = 0.0

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="assay-writer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what was handed over, then stop: nothing queued is dropped on shutdown."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None
        self._write_lock.close()

    @property
    def pending(self) -> int:
        return self._pending

    def ingest_quiet_for(self) -> float:
        """Seconds since a request's spans last arrived or were stored (0 while one is
        queued): background work (online scoring) waits for a pause in ingest."""
        if self._pending:
            return 0.0
        return time.monotonic() - self._last_ingest

    # --- submitting ---------------------------------------------------------------------

    def _reserve(self, count: int) -> None:
        with self._pending_lock:
            if self._pending and self._pending + count > self.max_pending:
                raise IngestError(
                    "the server is busy writing earlier spans; retry shortly",
                    status=503,
                    code="busy",
                )
            self._pending += count

    def _release(self, count: int) -> None:
        with self._pending_lock:
            self._pending -= count

    async def write(
        self, rows: list[dict[str, Any]], projects: list[str], *, kind: str = "spans"
    ) -> None:
        """Store ``rows`` (normalised spans, or log records with ``kind="logs"``;
        ``projects[i]`` names row i's project) durably."""
        if not rows:
            return
        self._reserve(len(rows))
        self._last_ingest = time.monotonic()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Job(rows, projects, future, loop, kind=kind))
        try:
            await future
        finally:
            self._last_ingest = time.monotonic()

    def write_sync(self, rows: list[dict[str, Any]], projects: list[str]) -> None:
        """Blocking variant for callers outside an event loop (CLI, tests)."""
        if not rows:
            return
        self._reserve(len(rows))
        job = _Job(rows, projects, None, None, threading.Event())
        self._queue.put(job)
        assert job.done is not None
        job.done.wait()
        if job.error is not None:
            raise job.error

    # --- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        idle_wait: float | None = 0.0 if self.indexer else None
        while not stopping:
            try:
                first = self._queue.get(timeout=idle_wait)
            except queue.Empty:
                # Nothing to ingest: spend the time on the search index, then wait longer
                # once it has caught up.
                idle_wait = 0.0 if self._index_some(self.indexer) else self.idle_seconds
                continue
            if self.indexer:
                idle_wait = 0.0
            if first is _STOP:
                break
            jobs = [first]
            count = len(first.rows)
            while count < self.batch_spans:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                jobs.append(job)
                count += len(job.rows)
            self._commit_jobs(jobs)
            if self.catch_up is not None:
                self._index_some(self.catch_up)

    def _index_some(self, index: Callable[[Connection], int] | None) -> int:
        assert index is not None
        try:
            with self._write_lock.held(), self.engine.begin() as conn:
                self._write_lock.in_transaction(conn)
                return index(conn)
        except Exception:
            log.exception("search indexing failed; will retry")
            return 0

    def _commit_jobs(self, jobs: list[_Job]) -> None:
        jobs = self._admit(jobs)
        if not jobs:
            return
        try:
            self._commit([job for job in jobs])
            for job in jobs:
                self._finish(job, None)
        except Exception as exc:
            log.exception("group commit of %d requests failed", len(jobs))
            if len(jobs) == 1:
                self._finish(jobs[0], exc)
                return
            # One bad request must not fail the others: retry each on its own.
            for job in jobs:
                try:
                    self._commit([job])
                    self._finish(job, None)
                except Exception as single_exc:
                    self._finish(job, single_exc)

    def _admit(self, jobs: list[_Job]) -> list[_Job]:
        """The requests that may be written; the others are answered with why not: a project
        name no project may have, or more new projects than the limits allow."""
        unknown = {name for job in jobs for name in job.project_of_row} - self._projects.keys()
        if not unknown:
            return jobs
        try:
            with self.engine.connect() as conn:
                # Committed projects only: this connection has no transaction of the writer's.
                self._projects.update(project_store.existing(conn, unknown))
                total = project_store.count(conn)
        except Exception:
            log.exception("could not read the projects; the commit will tell")
            return jobs
        admitted: list[_Job] = []
        planned: set[str] = set()
        for job in jobs:
            new = set(job.project_of_row) - self._projects.keys()
            refusal = self._refusal(new, total + len(planned | new))
            if refusal is None:
                planned |= new
                admitted.append(job)
            else:
                self._finish(job, refusal)
        return admitted

    def _refusal(self, new: set[str], total_after: int) -> IngestError | None:
        if not new:
            return None
        for name in sorted(new):
            problem = project_store.name_problem(name)
            if problem is not None:
                return IngestError(
                    f"project name {name[:80]!r} is not valid: {problem}", code="invalid_project"
                )
        sample = ", ".join(repr(name[:40]) for name in sorted(new)[:5])
        if len(new) > 5:
            sample += ", ..."
        per_request = self.max_new_projects_per_request
        if per_request is not None and len(new) > per_request:
            return IngestError(
                f"this request would create {len(new)} new projects ({sample}); at most "
                f"{per_request} may be created per request (ASSAY_MAX_NEW_PROJECTS_PER_REQUEST). "
                "Each service.name (or assay.project) is a project: check the exporters' "
                "resource attributes, or send fewer new ones per request",
                code="too_many_projects",
            )
        if self.max_projects is not None and total_after > self.max_projects:
            return IngestError(
                f"this request would create new projects ({sample}) past the server's limit of "
                f"{self.max_projects} projects (ASSAY_MAX_PROJECTS); nothing of it was stored. "
                "Send to an existing project (x-assay-project header), or ask an administrator "
                "to raise the limit",
                code="project_limit",
            )
        return None

    def _finish(self, job: _Job, error: BaseException | None) -> None:
        self._release(len(job.rows))
        if error is None and job.kind == "spans":
            self.spans_written += len(job.rows)
        if job.future is not None and job.loop is not None:
            future = job.future

            def resolve() -> None:
                if future.done():
                    return
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

            job.loop.call_soon_threadsafe(resolve)
        else:
            job.error = error
            assert job.done is not None
            job.done.set()

    def _commit(self, jobs: Sequence[_Job]) -> None:
        # Ids of projects created in this transaction join the cache only once it commits: a
        # rolled-back id may be handed to another project next (SQLite reuses it), or never
        # exist (PostgreSQL), and a cached one would send later spans there.
        created: dict[str, int] = {}
        with self._write_lock.held(), self.engine.begin() as conn:
            self._write_lock.in_transaction(conn)
            rows: list[dict[str, Any]] = []
            log_rows: list[dict[str, Any]] = []
            for job in jobs:
                into = log_rows if job.kind == "logs" else rows
                for row, project in zip(job.rows, job.project_of_row, strict=True):
                    row["project_id"] = self._project_id(conn, project, created)
                    into.append(row)
            if rows:
                if not self._is_sqlite:
                    strip_nul(rows)
                insert_spans(conn, rows)
                relinked = link_same_calls(conn, rows, self._sdk_roots)
                refresh_traces(conn, rows)
                batch = {(row["project_id"], row["trace_id"]) for row in rows}
                if relinked - batch:  # an SDK span stored earlier now counts nothing: re-sum
                    _recompute(conn, sorted(relinked - batch), [])
            insert_logs(conn, log_rows)
        self._projects.update(created)
        self.commits += 1

    def _project_id(self, conn: Connection, name: str, created: dict[str, int]) -> int:
        project_id = self._projects.get(name) or created.get(name)
        if project_id is None:
            project_id = project_store.ensure(conn, name)
            created[name] = project_id
        return project_id


def _dialect_insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


JSON_COLUMNS = frozenset(
    column.name
    for column in spans.c
    if column.name in ("attributes", "events", "links", "resource", "scope", "tags", "metadata")
)
_TEXT_COLUMNS = frozenset(
    column.name for column in spans.c if isinstance(column.type, String | Text)
)
INSERT_COLUMNS = tuple(column.name for column in spans.c if column.name != "id")
_compiled_inserts: dict[str, tuple[str, tuple[str, ...]]] = {}


def _compiled_span_insert(conn: Connection) -> tuple[str, tuple[str, ...]]:
    """The span INSERT compiled once per dialect, with its parameter order."""
    name = conn.dialect.name
    cached = _compiled_inserts.get(name)
    if cached is None:
        statement = _dialect_insert(conn, spans).on_conflict_do_nothing(
            index_elements=["project_id", "trace_id", "span_id"]
        )
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(INSERT_COLUMNS))
        order = tuple(compiled.positiontup or ()) if compiled.positional else INSERT_COLUMNS
        cached = (compiled.string, order)
        _compiled_inserts[name] = cached
    return cached


def _span_params(
    rows: list[dict[str, Any]], order: tuple[str, ...], encode: Callable[[Any], str]
) -> list[Any]:
    json_positions = [i for i, name in enumerate(order) if name in JSON_COLUMNS]
    values_of = operator.itemgetter(*order)
    # Spans of one request share their resource and scope objects: encode each once.
    shared: dict[int, tuple[Any, str]] = {}
    params: list[Any] = []
    for row in rows:
        values = list(values_of(row))
        for i in json_positions:
            value = values[i]
            if not value:
                values[i] = "[]" if isinstance(value, list) else "{}"
                continue
            known = shared.get(id(value))
            if known is not None and known[0] is value:
                values[i] = known[1]
                continue
            encoded = encode(value)
            if isinstance(value, dict) and len(value) > 2:
                shared[id(value)] = (value, encoded)
            values[i] = encoded
        params.append(tuple(values))
    return params


def strip_nul(rows: list[dict[str, Any]]) -> None:
    """PostgreSQL text cannot hold NUL: keep the span and mark where the NUL was."""
    for row in rows:
        for name in _TEXT_COLUMNS:
            value = row[name]
            if value is not None and "\x00" in value:
                row[name] = value.replace("\x00", "\ufffd")


def insert_spans(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert spans, ignoring ones already stored (same project, trace id and span id).

    The hot path of ingest: the statement is compiled once and rows go to the driver as plain
    tuples with JSON already encoded (by orjson), skipping per-value type processing, which cost
    more than the insert itself. On PostgreSQL the rows are COPYed; only when a batch holds a
    span already stored (a re-sent batch) does it fall back to INSERT ... ON CONFLICT DO NOTHING.
    """
    if not rows:
        return
    sql, order = _compiled_span_insert(conn)
    if conn.dialect.name == "sqlite":
        # SQLite keeps JSON's \\u0000 escapes as they are; only PostgreSQL needs them replaced.
        params = _span_params(rows, order, json_text_any)
        conn.exec_driver_sql(sql, params)
        return
    params = _span_params(rows, order, json_text)
    if _copy_spans(conn, order, params):
        return
    conn.exec_driver_sql(sql, [dict(zip(order, values, strict=True)) for values in params])


def _copy_spans(conn: Connection, order: tuple[str, ...], params: list[Any]) -> bool:
    """COPY rows into spans inside a savepoint; False if one of them was already stored."""
    import psycopg

    driver = conn.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    columns = ", ".join(f'"{name}"' for name in order)
    try:
        with (
            driver.transaction(),
            driver.cursor() as cursor,
            cursor.copy(f"COPY spans ({columns}) FROM STDIN") as copy,
        ):
            for values in params:
                copy.write_row(values)
    except psycopg.errors.UniqueViolation:
        return False
    return True


def _delimited_set(column: Any, dialect: str) -> Any:
    """The distinct values of ``column`` as ",a,b,"; NULL when there are none."""
    if dialect == "sqlite":
        joined = func.group_concat(column.distinct())
    else:
        joined = func.string_agg(column.distinct(), literal(","))
    return literal(",").op("||")(joined).op("||")(literal(","))


def _trace_aggregates(dialect: str) -> Any:
    s = spans.c
    parent = spans.alias("parent")
    # An LLM span inside an LLM span (a wrapper around a client that traces itself, say)
    # reports the same call twice: only the outer one counts towards the trace's sums.
    counted = ~and_(s.type == "llm", parent.c.type == "llm")
    counted = func.coalesce(counted, True)

    def counted_sum(column: Any) -> Any:
        return func.coalesce(func.sum(case((counted, column), else_=None)), 0)

    return (
        select(
            s.trace_id,
            s.project_id,
            func.min(s.start_ns),
            func.max(s.end_ns),
            func.max(s.end_ns) - func.min(s.start_ns),
            func.count(),
            func.sum(case((s.is_error, 1), else_=0)),
            counted_sum(s.input_tokens),
            counted_sum(s.output_tokens),
            counted_sum(s.total_tokens),
            counted_sum(s.cost),
            func.max(s.session_id),
            func.max(s.user_id),
            _delimited_set(s.model, dialect),
            _delimited_set(s.type, dialect),
        )
        .select_from(
            spans.outerjoin(
                parent,
                and_(
                    parent.c.project_id == s.project_id,
                    parent.c.trace_id == s.trace_id,
                    parent.c.span_id == s.parent_span_id,
                ),
            )
        )
        .where(
            s.project_id == bindparam("project_id"),
            s.trace_id.in_(bindparam("trace_ids", expanding=True)),
        )
        .group_by(s.project_id, s.trace_id)
    )


_AGGREGATE_COLUMNS = [
    "trace_id",
    "project_id",
    "start_ns",
    "end_ns",
    "duration_ns",
    "span_count",
    "error_count",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "session_id",
    "user_id",
    "models",
    "span_types",
]


def refresh_traces(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Bring the trace rows touched by ``rows`` (just inserted spans) up to date.

    A trace is (project, trace id): spans of another project under the same id never touch it.
    A trace seen for the first time (the usual case: all its spans in one batch) is summed
    here from the batch. A trace that already has a row is recomputed from its stored spans,
    which keeps the sums right when a batch is re-sent or spans arrive over several requests.
    """
    by_trace: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_trace.setdefault((row["project_id"], row["trace_id"]), []).append(row)
    if not by_trace:
        return
    known: set[tuple[int, str]] = set()
    for project_id, trace_ids in _by_project(by_trace):
        # SQLite caps bound parameters per statement; chunk to stay far below it.
        for start in range(0, len(trace_ids), 500):
            chunk = trace_ids[start : start + 500]
            found = conn.execute(
                select(traces.c.trace_id).where(
                    traces.c.project_id == project_id, traces.c.trace_id.in_(chunk)
                )
            ).scalars()
            known.update((project_id, trace_id) for trace_id in found)
    fresh = [_summarise(by_trace[key]) for key in sorted(by_trace) if key not in known]
    if fresh:
        conn.execute(traces.insert(), fresh)
    if known:
        _recompute(conn, sorted(known), [row for key in known for row in by_trace[key]])


def _by_project(keys: Iterable[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    """(project id, its trace ids) for a set of (project id, trace id) keys."""
    grouped: dict[int, list[str]] = {}
    for project_id, trace_id in sorted(keys):
        grouped.setdefault(project_id, []).append(trace_id)
    return sorted(grouped.items())


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A new trace's row, from its spans in this batch (each span counted once)."""
    spans_by_id = {row["span_id"]: row for row in rows}
    unique = list(spans_by_id.values())
    start = min(row["start_ns"] for row in unique)
    end = max(row["end_ns"] for row in unique)
    root = next((row for row in unique if row["is_root"]), None)
    sessions = [row["session_id"] for row in unique if row["session_id"]]
    users = [row["user_id"] for row in unique if row["user_id"]]
    models = sorted({row["model"] for row in unique if row["model"]})
    # An LLM span inside an LLM span reports the same call twice: count the outer one only.
    nested = {
        row["span_id"]
        for row in unique
        if row["type"] == "llm"
        and row["parent_span_id"] in spans_by_id
        and spans_by_id[row["parent_span_id"]]["type"] == "llm"
    }
    counted = [row for row in unique if row["span_id"] not in nested]
    types = sorted({row["type"] for row in unique})
    return {
        "trace_id": unique[0]["trace_id"],
        "project_id": unique[0]["project_id"],
        "root_span_id": root["span_id"] if root else None,
        "name": root["name"] if root else None,
        "start_ns": start,
        "end_ns": end,
        "duration_ns": end - start,
        "status_code": root["status_code"] if root else 0,
        "span_count": len(unique),
        "error_count": sum(1 for row in unique if row["is_error"]),
        "input_tokens": sum(row["input_tokens"] or 0 for row in counted),
        "output_tokens": sum(row["output_tokens"] or 0 for row in counted),
        "total_tokens": sum(row["total_tokens"] or 0 for row in counted),
        "cost": sum(row["cost"] or 0.0 for row in counted),
        "input_preview": _preview(root["input"]) if root else None,
        "output_preview": _preview(root["output"]) if root else None,
        "session_id": (root and root["session_id"]) or (max(sessions) if sessions else None),
        "user_id": (root and root["user_id"]) or (max(users) if users else None),
        "models": f",{','.join(models)}," if models else None,
        "span_types": f",{','.join(types)},",
        "tags": root["tags"] if root else [],
        "metadata": root["metadata"] if root else {},
    }


def _recompute(conn: Connection, keys: list[tuple[int, str]], rows: list[dict[str, Any]]) -> None:
    insert = _dialect_insert(conn, traces)
    statement = insert.from_select(_AGGREGATE_COLUMNS, _trace_aggregates(conn.dialect.name))
    updates = {name: getattr(statement.excluded, name) for name in _AGGREGATE_COLUMNS[2:]}
    # A trace's session/user may come from any span; keep the one from the root if set.
    updates["session_id"] = func.coalesce(traces.c.session_id, statement.excluded.session_id)
    updates["user_id"] = func.coalesce(traces.c.user_id, statement.excluded.user_id)
    statement = statement.on_conflict_do_update(
        index_elements=["project_id", "trace_id"], set_=updates
    )
    for project_id, trace_ids in _by_project(keys):
        for start in range(0, len(trace_ids), 500):
            conn.execute(
                statement, {"project_id": project_id, "trace_ids": trace_ids[start : start + 500]}
            )

    roots = [row for row in rows if row["is_root"]]
    if roots:
        conn.execute(
            update(traces)
            .where(
                traces.c.project_id == bindparam("t_project_id"),
                traces.c.trace_id == bindparam("t_trace_id"),
            )
            .values(
                root_span_id=bindparam("t_span_id"),
                name=bindparam("t_name"),
                status_code=bindparam("t_status"),
                input_preview=bindparam("t_input"),
                output_preview=bindparam("t_output"),
                tags=bindparam("t_tags", type_=traces.c.tags.type),
                metadata=bindparam("t_metadata", type_=traces.c.metadata.type),
                session_id=func.coalesce(
                    bindparam("t_session", type_=traces.c.session_id.type), traces.c.session_id
                ),
                user_id=func.coalesce(
                    bindparam("t_user", type_=traces.c.user_id.type), traces.c.user_id
                ),
            ),
            [
                {
                    "t_project_id": row["project_id"],
                    "t_trace_id": row["trace_id"],
                    "t_span_id": row["span_id"],
                    "t_name": row["name"],
                    "t_status": row["status_code"],
                    "t_input": _preview(row["input"]),
                    "t_output": _preview(row["output"]),
                    "t_tags": row["tags"],
                    "t_metadata": row["metadata"],
                    "t_session": row["session_id"],
                    "t_user": row["user_id"],
                }
                for row in roots
            ],
        )


def _preview(text: str | None) -> str | None:
    if text is None or len(text) <= PREVIEW_CHARS:
        return text
    return text[:PREVIEW_CHARS] + "…"
