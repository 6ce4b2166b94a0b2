"""Online scoring's SQL: connections, evaluators and their versions, rules, the job queue.

The queue's guarantees live here. A job is one (project, trace, span or '', evaluator version):
the UNIQUE constraint makes every enqueue idempotent, so schedulers, backfills and retries may
race. A worker claims a job by writing its name and a lease into the row (PostgreSQL: the
candidate row is locked with ``FOR UPDATE SKIP LOCKED``, so workers never wait for each other;
SQLite: the write transaction is the lock). A job is finished only by the worker whose lease it
still holds, in the same transaction that stores its score: a worker that lost its lease (it was
too slow, or killed and its job taken over) cannot add a second score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from assay.store import scores as score_store
from assay.store.listing import Filters
from assay.store.spans import span_conditions
from assay.store.tables import (
    connections,
    eval_jobs,
    evaluator_versions,
    evaluators,
    projects,
    rule_evaluators,
    rule_spend,
    rules,
    scores,
    spans,
    traces,
)
from assay.store.traces import trace_conditions

CHUNK = 500
#: Most spans one scheduler pass reads for one rule.
SCAN_WINDOW_SPANS = 20_000
LAST_ERRORS = 5


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert_ignoring_duplicates(conn: Connection, table: Any) -> Any:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    return dialect.insert(table).on_conflict_do_nothing()


# --- connections -------------------------------------------------------------------------------

CONNECTION_COLUMNS = [
    connections.c.id,
    connections.c.name,
    connections.c.provider,
    connections.c.base_url,
    connections.c.default_model,
    connections.c.max_concurrency,
    connections.c.key_last4,
    connections.c.created_ns,
    connections.c.updated_ns,
]


def _public_connection(row: Any) -> dict[str, Any]:
    found = dict(row._mapping)
    found["has_key"] = bool(found.pop("key_encrypted", None))
    return found


def insert_connection(conn: Connection, project_id: int, values: dict[str, Any]) -> int:
    return int(
        conn.execute(
            insert(connections).values(project_id=project_id, **values).returning(connections.c.id)
        ).scalar_one()
    )


def list_connections(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(*CONNECTION_COLUMNS, connections.c.key_encrypted)
        .where(connections.c.project_id == project_id)
        .order_by(connections.c.name)
    )
    return [_public_connection(row) for row in rows]


def connection_secret(conn: Connection, connection_id: int) -> dict[str, Any] | None:
    """A connection with its sealed key and its project's name: for the model calls only."""
    row = conn.execute(
        select(
            *CONNECTION_COLUMNS,
            connections.c.key_encrypted,
            connections.c.project_id,
            projects.c.name.label("project"),
        )
        .join(projects, projects.c.id == connections.c.project_id)
        .where(connections.c.id == connection_id)
    ).first()
    return dict(row._mapping) if row is not None else None


def public_connection(conn: Connection, connection_id: int) -> dict[str, Any] | None:
    found = connection_secret(conn, connection_id)
    if found is None:
        return None
    found["has_key"] = bool(found.pop("key_encrypted"))
    return found


def connection_id_by_name(conn: Connection, project_id: int, name: str) -> int | None:
    found = conn.execute(
        select(connections.c.id).where(
            connections.c.project_id == project_id, connections.c.name == name
        )
    ).scalar()
    return int(found) if found is not None else None


def update_connection(conn: Connection, connection_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(connections).where(connections.c.id == connection_id).values(**values))


def delete_connection(conn: Connection, connection_id: int) -> None:
    conn.execute(delete(connections).where(connections.c.id == connection_id))


# --- evaluators -------------------------------------------------------------------------------


def insert_evaluator(
    conn: Connection,
    project_id: int,
    *,
    name: str,
    kind: str,
    connection_id: int | None,
    created_ns: int,
) -> int:
    return int(
        conn.execute(
            insert(evaluators)
            .values(
                project_id=project_id,
                name=name,
                kind=kind,
                connection_id=connection_id,
                version=0,
                created_ns=created_ns,
                updated_ns=created_ns,
            )
            .returning(evaluators.c.id)
        ).scalar_one()
    )


def add_version(
    conn: Connection,
    evaluator_id: int,
    *,
    definition: dict[str, Any],
    version_hash: str,
    author: str | None,
    created_ns: int,
) -> int:
    """A new version (the next number) of the evaluator, made current."""
    current = conn.execute(
        select(evaluators.c.version).where(evaluators.c.id == evaluator_id)
    ).scalar_one()
    number = int(current) + 1
    conn.execute(
        insert(evaluator_versions).values(
            evaluator_id=evaluator_id,
            version=number,
            version_hash=version_hash,
            author=author,
            created_ns=created_ns,
            definition=definition,
        )
    )
    conn.execute(
        update(evaluators)
        .where(evaluators.c.id == evaluator_id)
        .values(version=number, updated_ns=created_ns)
    )
    return number


def set_evaluator_connection(
    conn: Connection, evaluator_id: int, connection_id: int | None
) -> None:
    conn.execute(
        update(evaluators)
        .where(evaluators.c.id == evaluator_id)
        .values(connection_id=connection_id)
    )


EVALUATOR_COLUMNS = [
    evaluators.c.id,
    evaluators.c.name,
    evaluators.c.kind,
    evaluators.c.connection_id,
    evaluators.c.version,
    evaluators.c.created_ns,
    evaluators.c.updated_ns,
    evaluators.c.project_id,
    projects.c.name.label("project"),
    evaluator_versions.c.id.label("version_id"),
    evaluator_versions.c.version_hash,
    evaluator_versions.c.definition,
]


def _evaluators_query() -> Any:
    return (
        select(*EVALUATOR_COLUMNS)
        .join(projects, projects.c.id == evaluators.c.project_id)
        .join(
            evaluator_versions,
            and_(
                evaluator_versions.c.evaluator_id == evaluators.c.id,
                evaluator_versions.c.version == evaluators.c.version,
            ),
        )
    )


def get_evaluator(conn: Connection, evaluator_id: int) -> dict[str, Any] | None:
    row = conn.execute(_evaluators_query().where(evaluators.c.id == evaluator_id)).first()
    return dict(row._mapping) if row is not None else None


def evaluator_by_name(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        _evaluators_query().where(evaluators.c.project_id == project_id, evaluators.c.name == name)
    ).first()
    return dict(row._mapping) if row is not None else None


def list_evaluators(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _evaluators_query().where(evaluators.c.project_id == project_id).order_by(evaluators.c.name)
    )
    return [dict(row._mapping) for row in rows]


def evaluator_versions_of(conn: Connection, evaluator_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            evaluator_versions.c.id,
            evaluator_versions.c.version,
            evaluator_versions.c.version_hash,
            evaluator_versions.c.author,
            evaluator_versions.c.created_ns,
            evaluator_versions.c.definition,
        )
        .where(evaluator_versions.c.evaluator_id == evaluator_id)
        .order_by(evaluator_versions.c.version.desc())
    )
    return [dict(row._mapping) for row in rows]


def version_row(conn: Connection, version_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(
            evaluator_versions.c.id.label("version_id"),
            evaluator_versions.c.version,
            evaluator_versions.c.version_hash,
            evaluator_versions.c.definition,
            evaluators.c.id,
            evaluators.c.name,
            evaluators.c.kind,
            evaluators.c.connection_id,
        )
        .join(evaluators, evaluators.c.id == evaluator_versions.c.evaluator_id)
        .where(evaluator_versions.c.id == version_id)
    ).first()
    return dict(row._mapping) if row is not None else None


# --- rules ------------------------------------------------------------------------------------

RULE_COLUMNS = [
    rules.c.id,
    rules.c.name,
    rules.c.target,
    rules.c.span_type,
    rules.c.span_name,
    rules.c.filter,
    rules.c.sample_rate,
    rules.c.delay_seconds,
    rules.c.daily_budget_usd,
    rules.c.calls_per_minute,
    rules.c.enabled,
    rules.c.paused_reason,
    rules.c.actions,
    rules.c.route_cursor,
    rules.c.cursor_span_id,
    rules.c.matched,
    rules.c.sampled,
    rules.c.created_ns,
    rules.c.updated_ns,
    rules.c.project_id,
    projects.c.name.label("project"),
]


def max_span_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(spans.c.id), 0))).scalar_one())


def insert_rule(
    conn: Connection, project_id: int, values: dict[str, Any], evaluator_ids: list[int]
) -> int:
    rule_id = int(
        conn.execute(
            insert(rules)
            .values(project_id=project_id, matched=0, sampled=0, **values)
            .returning(rules.c.id)
        ).scalar_one()
    )
    set_rule_evaluators(conn, rule_id, evaluator_ids)
    return rule_id


def set_rule_evaluators(conn: Connection, rule_id: int, evaluator_ids: list[int]) -> None:
    conn.execute(delete(rule_evaluators).where(rule_evaluators.c.rule_id == rule_id))
    if evaluator_ids:
        conn.execute(
            insert(rule_evaluators),
            [{"rule_id": rule_id, "evaluator_id": e} for e in dict.fromkeys(evaluator_ids)],
        )


def update_rule(conn: Connection, rule_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(rules).where(rules.c.id == rule_id).values(**values))


def _with_evaluators(conn: Connection, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [rule["id"] for rule in found]
    by_rule: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for row in conn.execute(
            select(rule_evaluators.c.rule_id, rule_evaluators.c.evaluator_id)
            .where(rule_evaluators.c.rule_id.in_(ids))
            .order_by(rule_evaluators.c.evaluator_id)
        ):
            by_rule[row.rule_id].append(int(row.evaluator_id))
    for rule in found:
        rule["evaluators"] = by_rule[rule["id"]]
    return found


def get_rule(conn: Connection, rule_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(*RULE_COLUMNS)
        .join(projects, projects.c.id == rules.c.project_id)
        .where(rules.c.id == rule_id)
    ).first()
    return _with_evaluators(conn, [dict(row._mapping)])[0] if row is not None else None


def list_rules(conn: Connection, project_id: int | None = None) -> list[dict[str, Any]]:
    query = select(*RULE_COLUMNS).join(projects, projects.c.id == rules.c.project_id)
    if project_id is not None:
        query = query.where(rules.c.project_id == project_id)
    rows = conn.execute(query.order_by(rules.c.id))
    return _with_evaluators(conn, [dict(row._mapping) for row in rows])


def current_versions(conn: Connection, evaluator_ids: list[int]) -> list[dict[str, Any]]:
    if not evaluator_ids:
        return []
    rows = conn.execute(_evaluators_query().where(evaluators.c.id.in_(evaluator_ids)))
    return [dict(row._mapping) for row in rows]


def job_counts(conn: Connection, rule_id: int) -> dict[str, int]:
    counts = {"pending": 0, "running": 0, "done": 0, "failed": 0, "retrying": 0}
    for row in conn.execute(
        select(eval_jobs.c.status, func.count())
        .where(eval_jobs.c.rule_id == rule_id)
        .group_by(eval_jobs.c.status)
    ):
        counts[str(row[0])] = int(row[1])
    counts["retrying"] = int(
        conn.execute(
            select(func.count()).where(
                eval_jobs.c.rule_id == rule_id,
                eval_jobs.c.status == "pending",
                eval_jobs.c.attempts > 0,
            )
        ).scalar_one()
    )
    return counts


def last_errors(conn: Connection, rule_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            eval_jobs.c.trace_id,
            eval_jobs.c.span_id,
            eval_jobs.c.status,
            eval_jobs.c.attempts,
            eval_jobs.c.last_error,
            func.coalesce(eval_jobs.c.finished_ns, eval_jobs.c.started_ns).label("at_ns"),
        )
        .where(eval_jobs.c.rule_id == rule_id, eval_jobs.c.last_error.is_not(None))
        .order_by(func.coalesce(eval_jobs.c.finished_ns, eval_jobs.c.started_ns).desc())
        .limit(LAST_ERRORS)
    )
    return [dict(row._mapping) for row in rows]


def spend(conn: Connection, rule_id: int, day: str) -> tuple[float, int, float]:
    """(cost today, calls today, cost this month) for a rule; ``day`` is YYYY-MM-DD."""
    today = conn.execute(
        select(rule_spend.c.cost, rule_spend.c.calls).where(
            rule_spend.c.rule_id == rule_id, rule_spend.c.day == day
        )
    ).first()
    month = conn.execute(
        select(func.coalesce(func.sum(rule_spend.c.cost), 0.0)).where(
            rule_spend.c.rule_id == rule_id, rule_spend.c.day.like(day[:7] + "-%")
        )
    ).scalar_one()
    if today is None:
        return 0.0, 0, float(month)
    return float(today.cost), int(today.calls), float(month)


def calls_since(conn: Connection, rule_id: int, since_ns: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                eval_jobs.c.rule_id == rule_id,
                eval_jobs.c.status.in_(("running", "done", "failed")),
                eval_jobs.c.started_ns >= since_ns,
            )
        ).scalar_one()
    )


# --- the scheduler ----------------------------------------------------------------------------


def scheduling_due(conn: Connection) -> bool:
    """Whether any enabled rule's cursor is behind the newest span: the scheduler's one
    query per tick while nothing new has been stored."""
    behind = conn.execute(
        select(
            select(func.max(spans.c.id)).scalar_subquery()
            > select(func.min(rules.c.cursor_span_id))
            .where(rules.c.enabled.is_(True))
            .scalar_subquery()
        )
    ).scalar()
    return bool(behind)


def ready_window(conn: Connection, cursor: int, horizon_ns: int) -> int:
    """The highest span id such that every span after ``cursor`` up to it was stored before
    ``horizon_ns`` (span ids are assigned in commit order), at most a window ahead."""
    first_unready = conn.execute(
        select(func.min(spans.c.id)).where(spans.c.id > cursor, spans.c.ingested_ns > horizon_ns)
    ).scalar()
    upper = int(first_unready) - 1 if first_unready is not None else max_span_id(conn)
    return min(upper, cursor + SCAN_WINDOW_SPANS)


def _quiet_traces(project_id: int, cursor: int, upper: int, horizon_ns: int) -> Any:
    """Traces of the project with a span in (cursor, upper] and none stored after the horizon
    (their last span is older than the rule's delay), as a subquery: one statement, however
    many traces the window holds."""
    later = spans.alias("later")
    return (
        select(spans.c.trace_id)
        .where(
            spans.c.id > cursor,
            spans.c.id <= upper,
            spans.c.project_id == project_id,
            ~exists().where(
                later.c.project_id == project_id,
                later.c.trace_id == spans.c.trace_id,
                later.c.ingested_ns > horizon_ns,
            ),
        )
        .distinct()
    )


def _target_conditions(
    conn: Connection, rule: dict[str, Any], filters: Filters, project_id: int
) -> tuple[Any, list[Any]]:
    if rule["target"] == "trace":
        conditions = trace_conditions(conn, filters, project_id, "start")
        conditions.append(traces.c.root_span_id.is_not(None))
        return traces, conditions
    conditions = span_conditions(conn, filters, project_id, "start")
    if rule.get("span_type"):
        conditions.append(spans.c.type == rule["span_type"])
    if rule.get("span_name"):
        conditions.append(spans.c.name == rule["span_name"])
    return spans, conditions


def quiet_items(
    conn: Connection,
    rule: dict[str, Any],
    filters: Filters,
    cursor: int,
    upper: int,
    horizon_ns: int,
) -> list[tuple[str, str]]:
    """(trace id, span id or '') of what the rule scores among the traces that went quiet in
    the window (cursor, upper]."""
    table, conditions = _target_conditions(conn, rule, filters, rule["project_id"])
    quiet = _quiet_traces(rule["project_id"], cursor, upper, horizon_ns)
    if table is traces:
        query = select(traces.c.trace_id).where(*conditions, traces.c.trace_id.in_(quiet))
        return [(str(row[0]), "") for row in conn.execute(query)]
    query = select(spans.c.trace_id, spans.c.span_id).where(
        *conditions, spans.c.trace_id.in_(quiet)
    )
    return [(str(row[0]), str(row[1])) for row in conn.execute(query)]


def items_in_range(
    conn: Connection,
    rule: dict[str, Any],
    filters: Filters,
    *,
    since_ns: int | None,
    until_ns: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[tuple[int, str, str]]:
    """(start, trace id, span id or '') of what the rule scores in a time range, by start time:
    one page after ``after`` (a backfill walks the range in pages)."""
    table, conditions = _target_conditions(conn, rule, filters, rule["project_id"])
    c = table.c
    if since_ns is not None:
        conditions.append(c.start_ns >= since_ns)
    if until_ns is not None:
        conditions.append(c.start_ns < until_ns)
    key = c.trace_id if table is traces else c.span_id
    if after is not None:
        conditions.append(or_(c.start_ns > after[0], and_(c.start_ns == after[0], key > after[1])))
    columns = [c.start_ns, c.trace_id] + ([] if table is traces else [c.span_id])
    query = select(*columns).where(*conditions).order_by(c.start_ns, key).limit(limit)
    return [
        (int(row[0]), str(row[1]), str(row[2]) if table is spans else "")
        for row in conn.execute(query)
    ]


def advance_cursor(
    conn: Connection, rule_id: int, old: int, new: int, matched: int, sampled: int, now_ns: int
) -> bool:
    """Move the rule's scheduler cursor from ``old`` (only if still there: another scheduler
    may have moved it) and add to its counts."""
    moved = conn.execute(
        update(rules)
        .where(rules.c.id == rule_id, rules.c.cursor_span_id == old)
        .values(
            cursor_span_id=new,
            matched=rules.c.matched + matched,
            sampled=rules.c.sampled + sampled,
            updated_ns=now_ns,
        )
    )
    return moved.rowcount == 1


def add_counts(conn: Connection, rule_id: int, matched: int, sampled: int) -> None:
    conn.execute(
        update(rules)
        .where(rules.c.id == rule_id)
        .values(matched=rules.c.matched + matched, sampled=rules.c.sampled + sampled)
    )


def enqueue(conn: Connection, jobs: list[dict[str, Any]]) -> None:
    """Add jobs; one already there for the same item and evaluator version is left alone."""
    for chunk in _chunks(jobs, 1000):
        conn.execute(_insert_ignoring_duplicates(conn, eval_jobs), list(chunk))


# --- the workers ------------------------------------------------------------------------------

JOB_COLUMNS = [
    eval_jobs.c.id,
    eval_jobs.c.project_id,
    eval_jobs.c.rule_id,
    eval_jobs.c.evaluator_version_id,
    eval_jobs.c.trace_id,
    eval_jobs.c.span_id,
    eval_jobs.c.attempts,
]


def budgeted_rules(conn: Connection) -> list[dict[str, Any]]:
    """Rules that are off, or have a budget or a rate cap: the ones a claim must check."""
    rows = conn.execute(
        select(
            rules.c.id,
            rules.c.enabled,
            rules.c.daily_budget_usd,
            rules.c.calls_per_minute,
        ).where(
            or_(
                rules.c.enabled.is_(False),
                rules.c.daily_budget_usd.is_not(None),
                rules.c.calls_per_minute.is_not(None),
            )
        )
    )
    return [dict(row._mapping) for row in rows]


def running_count(conn: Connection, rule_id: int, now_ns: int) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                eval_jobs.c.rule_id == rule_id,
                eval_jobs.c.status == "running",
                eval_jobs.c.lease_expires_ns >= now_ns,
            )
        ).scalar_one()
    )


def lock_rule(conn: Connection, rule_id: int) -> None:
    """Serialise claims of one budgeted rule (PostgreSQL; SQLite's writes are serial)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(rules.c.id).where(rules.c.id == rule_id).with_for_update())


def claim_candidates(
    conn: Connection, now_ns: int, blocked: Iterable[int], limit: int
) -> list[dict[str, Any]]:
    """Jobs a worker may take now: pending and due, or running with an expired lease (its
    worker died), locked for this transaction on PostgreSQL and skipped by other workers."""
    blocked = list(blocked)
    found: list[dict[str, Any]] = []
    for condition in (
        and_(eval_jobs.c.status == "running", eval_jobs.c.lease_expires_ns < now_ns),
        and_(eval_jobs.c.status == "pending", eval_jobs.c.next_attempt_ns <= now_ns),
    ):
        query = select(*JOB_COLUMNS).where(condition)
        if blocked:
            query = query.where(
                or_(eval_jobs.c.rule_id.is_(None), eval_jobs.c.rule_id.not_in(blocked))
            )
        query = query.order_by(eval_jobs.c.next_attempt_ns, eval_jobs.c.id).limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        found.extend(dict(row._mapping) for row in conn.execute(query))
        if len(found) >= limit:
            break
    return found[:limit]


def claimable(conn: Connection, now_ns: int) -> bool:
    """Whether some job is due or has an expired lease: a read, so that idle workers never
    take the write lock just to find nothing."""
    found = conn.execute(
        select(eval_jobs.c.id)
        .where(
            or_(
                and_(eval_jobs.c.status == "pending", eval_jobs.c.next_attempt_ns <= now_ns),
                and_(eval_jobs.c.status == "running", eval_jobs.c.lease_expires_ns < now_ns),
            )
        )
        .limit(1)
    ).first()
    return found is not None


def take(conn: Connection, job_id: int, owner: str, now_ns: int, lease_ns: int) -> None:
    conn.execute(
        update(eval_jobs)
        .where(eval_jobs.c.id == job_id)
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_ns=now_ns + lease_ns,
            started_ns=now_ns,
            attempts=eval_jobs.c.attempts + 1,
        )
    )


def _release(conn: Connection, job_id: int, owner: str, values: dict[str, Any]) -> bool:
    changed = conn.execute(
        update(eval_jobs)
        .where(
            eval_jobs.c.id == job_id,
            eval_jobs.c.lease_owner == owner,
            eval_jobs.c.status == "running",
        )
        .values(**values)
    )
    return changed.rowcount == 1


def add_spend(conn: Connection, rule_id: int, day: str, cost: float) -> None:
    changed = conn.execute(
        update(rule_spend)
        .where(rule_spend.c.rule_id == rule_id, rule_spend.c.day == day)
        .values(cost=rule_spend.c.cost + cost, calls=rule_spend.c.calls + 1)
    )
    if changed.rowcount == 0:
        conn.execute(
            _insert_ignoring_duplicates(conn, rule_spend).values(
                rule_id=rule_id, day=day, cost=cost, calls=1
            )
        )


def finish(
    conn: Connection,
    job: dict[str, Any],
    owner: str,
    *,
    score: dict[str, Any] | None,
    cost: float | None,
    error: str | None,
    day: str,
    now_ns: int,
) -> bool:
    """Close a job the worker still holds: done with its score, or failed with its error; the
    call's cost goes to the rule's spend. False (and nothing written) if the lease was lost."""
    values: dict[str, Any] = {
        "status": "failed" if score is None else "done",
        "finished_ns": now_ns,
        "cost": cost,
        "last_error": error,
        "lease_expires_ns": None,
    }
    if not _release(conn, job["id"], owner, values):
        return False
    if score is not None:
        [score_id] = score_store.insert(conn, job["project_id"], [score])
        conn.execute(update(eval_jobs).where(eval_jobs.c.id == job["id"]).values(score_id=score_id))
    if job["rule_id"] is not None and cost is not None:
        add_spend(conn, job["rule_id"], day, cost)
    return True


def retry_later(
    conn: Connection, job: dict[str, Any], owner: str, *, error: str, at_ns: int
) -> bool:
    return _release(
        conn,
        job["id"],
        owner,
        {"status": "pending", "next_attempt_ns": at_ns, "last_error": error, "lease_owner": None},
    )


def pending_total(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).where(eval_jobs.c.status.in_(("pending", "running")))
        ).scalar_one()
    )


# --- what a judge reads -----------------------------------------------------------------------

TRACE_SPAN_LIMIT = 500


def judged_item(
    conn: Connection, project_id: int, trace_id: str, span_id: str
) -> dict[str, Any] | None:
    """The input, output and metadata of a trace (its root span's) or of one span, and the
    trace's spans for judges that read context from retrieval spans."""
    trace = conn.execute(
        select(traces.c.root_span_id, traces.c.metadata).where(
            traces.c.project_id == project_id, traces.c.trace_id == trace_id
        )
    ).first()
    if trace is None:
        return None
    wanted = span_id or trace.root_span_id
    rows = [
        dict(row._mapping)
        for row in conn.execute(
            select(
                spans.c.span_id,
                spans.c.parent_span_id,
                spans.c.name,
                spans.c.type,
                spans.c.input,
                spans.c.output,
                spans.c.metadata,
            )
            .where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
            .order_by(spans.c.start_ns, spans.c.id)
            .limit(TRACE_SPAN_LIMIT)
        )
    ]
    target = next((row for row in rows if row["span_id"] == wanted), None)
    if target is None and span_id:
        return None
    metadata = dict(trace.metadata or {})
    if target is not None and span_id:
        metadata = dict(target["metadata"] or {})
    return {
        "input": target["input"] if target else None,
        "output": target["output"] if target else None,
        "metadata": metadata,
        "trace": rows,
    }


def project_name(conn: Connection, project_id: int) -> str:
    return str(
        conn.execute(select(projects.c.name).where(projects.c.id == project_id)).scalar_one()
    )


def score_counts(conn: Connection) -> Counter[str]:
    """How many scores each trace has (tests: at most one per trace and evaluator)."""
    found: Counter[str] = Counter()
    for row in conn.execute(select(scores.c.trace_id)):
        found[str(row[0])] += 1
    return found
