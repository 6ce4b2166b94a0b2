"""Review queues: their items, the reviews (leases and submissions), labels and gold labels.

A reviewer's next item is found by one indexed walk over the queue's open items in order
(``ix_queue_items_next``), skipping those the reviewer has already answered and those whose
remaining reviews are all leased to other people. Leasing takes a per-queue lock on PostgreSQL
(SQLite's write transactions are serial already), so two reviewers asking at once never both
take the last open review of an item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    delete,
    func,
    select,
    text,
    update,
)

from assay.store.engine import now_ns
from assay.store.tables import (
    gold_labels,
    projects,
    queue_items,
    queues,
    reviews,
    scores,
    spans,
    traces,
)

#: pg_advisory_xact_lock(class, id): the class keeps queue locks apart from other locks.
PG_QUEUE_LOCK_CLASS = 0x5245_5657  # "REVW"
INSERT_CHUNK = 500

# --- queues ---------------------------------------------------------------------------------

_QUEUE_COLUMNS = [
    queues.c.id,
    queues.c.project_id,
    projects.c.name.label("project"),
    queues.c.name,
    queues.c.description,
    queues.c.reviews_per_item,
    queues.c.lease_seconds,
    queues.c.rubric_ids,
    queues.c.reviewers,
    queues.c.created_ns,
    queues.c.author,
]


def _queue_select() -> Any:
    return select(*_QUEUE_COLUMNS).join(projects, projects.c.id == queues.c.project_id)


def create_queue(conn: Connection, project_id: int, fields: dict[str, Any]) -> int:
    return int(
        conn.execute(
            queues.insert()
            .values(project_id=project_id, created_ns=now_ns(), **fields)
            .returning(queues.c.id)
        ).scalar_one()
    )


def update_queue(conn: Connection, queue_id: int, fields: dict[str, Any]) -> None:
    conn.execute(update(queues).where(queues.c.id == queue_id).values(**fields))
    if "reviews_per_item" in fields:
        conn.execute(
            update(queue_items)
            .where(queue_items.c.queue_id == queue_id)
            .values(is_done=queue_items.c.reviews_done >= fields["reviews_per_item"])
        )


def get_queue(conn: Connection, queue_id: int) -> dict[str, Any] | None:
    row = conn.execute(_queue_select().where(queues.c.id == queue_id)).first()
    return None if row is None else dict(row._mapping)


def find_queue(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        _queue_select().where(queues.c.project_id == project_id, queues.c.name == name)
    ).first()
    return None if row is None else dict(row._mapping)


def list_queues(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _queue_select().where(queues.c.project_id == project_id).order_by(queues.c.name)
    ).all()
    found = [dict(row._mapping) for row in rows]
    counts = _item_counts(conn, [int(q["id"]) for q in found])
    for queue in found:
        queue.update(counts.get(int(queue["id"]), {"items": 0, "done": 0, "labels_given": 0}))
    return found


def _item_counts(conn: Connection, queue_ids: list[int]) -> dict[int, dict[str, int]]:
    if not queue_ids:
        return {}
    q = queue_items.c
    rows = conn.execute(
        select(
            q.queue_id,
            func.count(),
            func.sum(case((q.is_done, 1), else_=0)),
            func.sum(q.reviews_done),
        )
        .where(q.queue_id.in_(queue_ids))
        .group_by(q.queue_id)
    ).all()
    return {
        int(queue_id): {"items": int(n), "done": int(done or 0), "labels_given": int(given or 0)}
        for queue_id, n, done, given in rows
    }


def lock_queue(conn: Connection, queue_id: int) -> None:
    """Serialise leases and submissions in one queue (PostgreSQL; SQLite already is)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:kind, :id)"),
            {"kind": PG_QUEUE_LOCK_CLASS, "id": queue_id},
        )


# --- items ----------------------------------------------------------------------------------


def existing_traces(conn: Connection, project_id: int, trace_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(trace_ids), INSERT_CHUNK):
        chunk = list(trace_ids[start : start + INSERT_CHUNK])
        found.update(
            conn.execute(
                select(traces.c.trace_id).where(
                    traces.c.project_id == project_id, traces.c.trace_id.in_(chunk)
                )
            ).scalars()
        )
    return found


def existing_spans(
    conn: Connection, project_id: int, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    by_trace: dict[str, list[str]] = {}
    for trace_id, span_id in pairs:
        by_trace.setdefault(trace_id, []).append(span_id)
    for trace_id, span_ids in by_trace.items():
        rows = conn.execute(
            select(spans.c.span_id).where(
                spans.c.project_id == project_id,
                spans.c.trace_id == trace_id,
                spans.c.span_id.in_(span_ids),
            )
        ).scalars()
        found.update((trace_id, span_id) for span_id in rows)
    return found


def existing_sessions(conn: Connection, project_id: int, session_ids: Sequence[str]) -> set[str]:
    rows = conn.execute(
        select(traces.c.session_id)
        .where(traces.c.project_id == project_id, traces.c.session_id.in_(list(session_ids)))
        .distinct()
    ).scalars()
    return {str(row) for row in rows}


def add_items(
    conn: Connection, queue_id: int, items: Iterable[dict[str, Any]], added_by: str | None
) -> int:
    """Add items (each with ``kind``, ``ref`` and the columns naming its target); those the
    queue already holds are left as they are. Returns how many were new."""
    wanted = {item["ref"]: item for item in items}
    if not wanted:
        return 0
    refs = list(wanted)
    held: set[str] = set()
    for start in range(0, len(refs), INSERT_CHUNK):
        held.update(
            conn.execute(
                select(queue_items.c.ref).where(
                    queue_items.c.queue_id == queue_id,
                    queue_items.c.ref.in_(refs[start : start + INSERT_CHUNK]),
                )
            ).scalars()
        )
    now = now_ns()
    fresh = [
        {
            "queue_id": queue_id,
            "kind": item["kind"],
            "ref": ref,
            "trace_id": item.get("trace_id"),
            "span_id": item.get("span_id"),
            "session_id": item.get("session_id"),
            "experiment_row_id": item.get("experiment_row_id"),
            "dataset_id": item.get("dataset_id"),
            "record_id": item.get("record_id"),
            "reviews_done": 0,
            "is_done": False,
            "added_ns": now,
            "added_by": added_by,
        }
        for ref, item in wanted.items()
        if ref not in held
    ]
    for start in range(0, len(fresh), INSERT_CHUNK):
        conn.execute(queue_items.insert(), fresh[start : start + INSERT_CHUNK])
    return len(fresh)


def get_item(conn: Connection, queue_id: int, item_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(queue_items).where(queue_items.c.queue_id == queue_id, queue_items.c.id == item_id)
    ).first()
    return None if row is None else dict(row._mapping)


def list_items(
    conn: Connection, queue_id: int, *, after_id: int | None, limit: int, done: bool | None
) -> list[dict[str, Any]]:
    query = select(queue_items).where(queue_items.c.queue_id == queue_id)
    if after_id is not None:
        query = query.where(queue_items.c.id > after_id)
    if done is not None:
        query = query.where(queue_items.c.is_done == done)
    rows = conn.execute(query.order_by(queue_items.c.id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


# --- reviews: leases, submissions, skips ----------------------------------------------------


def own_lease(conn: Connection, queue_id: int, reviewer: str, now: int) -> dict[str, Any] | None:
    """The reviewer's open lease in the queue, if it has not expired."""
    r = reviews.c
    row = conn.execute(
        select(reviews)
        .where(
            r.queue_id == queue_id,
            r.reviewer == reviewer,
            r.state == "leased",
            r.leased_until_ns > now,
        )
        .order_by(r.opened_ns.desc())
        .limit(1)
    ).first()
    return None if row is None else dict(row._mapping)


CANDIDATE_CHUNK = 64


def open_item(
    conn: Connection,
    queue_id: int,
    reviewer: str,
    reviews_per_item: int,
    now: int,
    *,
    skipped: bool = False,
) -> int | None:
    """The first item that still needs a review the reviewer may give: not done, not answered
    (or, with ``skipped``, skipped) by them, and with a review left after other people's
    unexpired leases.

    Open items are read in id order a chunk at a time (an index range scan on both engines,
    whatever the planner's statistics say) and the reviews of each chunk checked with two
    indexed lookups."""
    i, r = queue_items.c, reviews.c
    after: int | None = None
    while True:
        query = select(i.id, i.reviews_done).where(i.queue_id == queue_id, i.is_done.is_(False))
        if after is not None:
            query = query.where(i.id > after)
        chunk = conn.execute(query.order_by(i.id).limit(CANDIDATE_CHUNK)).all()
        if not chunk:
            return None
        ids = [int(row.id) for row in chunk]
        mine: dict[int, str] = dict(
            conn.execute(
                select(r.item_id, r.state).where(r.item_id.in_(ids), r.reviewer == reviewer)
            ).all()
        )
        leased: dict[int, int] = dict(
            conn.execute(
                select(r.item_id, func.count())
                .where(
                    r.item_id.in_(ids),
                    r.state == "leased",
                    r.leased_until_ns > now,
                    r.reviewer != reviewer,
                )
                .group_by(r.item_id)
            ).all()
        )
        for row in chunk:
            state = mine.get(row.id)
            wanted = state == "skipped" if skipped else state not in ("submitted", "skipped")
            if wanted and row.reviews_done + leased.get(row.id, 0) < reviews_per_item:
                return int(row.id)
        after = ids[-1]


def review_of(conn: Connection, item_id: int, reviewer: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(reviews).where(reviews.c.item_id == item_id, reviews.c.reviewer == reviewer)
    ).first()
    return None if row is None else dict(row._mapping)


def lease(
    conn: Connection, queue_id: int, item_id: int, reviewer: str, now: int, until: int
) -> int:
    """Lease the item to the reviewer (a new review, or their earlier one re-opened)."""
    found = review_of(conn, item_id, reviewer)
    if found is None:
        return int(
            conn.execute(
                reviews.insert()
                .values(
                    queue_id=queue_id,
                    item_id=item_id,
                    reviewer=reviewer,
                    state="leased",
                    leased_until_ns=until,
                    opened_ns=now,
                )
                .returning(reviews.c.id)
            ).scalar_one()
        )
    conn.execute(
        update(reviews)
        .where(reviews.c.id == found["id"])
        .values(state="leased", leased_until_ns=until, opened_ns=now, submitted_ns=None)
    )
    return int(found["id"])


def others_holding(conn: Connection, item_id: int, reviewer: str, now: int) -> int:
    """Reviews of the item by other people that count against its quota: submitted, or
    leased and not expired."""
    r = reviews.c
    return int(
        conn.execute(
            select(func.count())
            .select_from(reviews)
            .where(
                r.item_id == item_id,
                r.reviewer != reviewer,
                (r.state == "submitted") | and_(r.state == "leased", r.leased_until_ns > now),
            )
        ).scalar_one()
    )


def submit(
    conn: Connection,
    *,
    project_id: int,
    review_id: int,
    item: dict[str, Any],
    reviews_per_item: int,
    reviewer: str,
    labels: Sequence[dict[str, Any]],
    now: int,
) -> list[int]:
    """Mark the review submitted, store its labels as human scores, count it on the item."""
    conn.execute(
        update(reviews)
        .where(reviews.c.id == review_id)
        .values(state="submitted", submitted_ns=now, leased_until_ns=now)
    )
    ids = [
        int(
            conn.execute(
                scores.insert()
                .values(
                    project_id=project_id,
                    trace_id=item.get("trace_id"),
                    span_id=item.get("span_id"),
                    name=label["name"],
                    value=label["value"],
                    label=label["label"],
                    rationale=label["rationale"],
                    source="human",
                    author=reviewer,
                    metadata={
                        **label["metadata"],
                        "queue_id": item["queue_id"],
                        "item": item["ref"],
                    },
                    created_ns=now,
                    rubric_id=label["rubric_id"],
                    rubric_version=label["rubric_version"],
                    review_id=review_id,
                )
                .returning(scores.c.id)
            ).scalar_one()
        )
        for label in labels
    ]
    _count_reviews(conn, int(item["id"]), reviews_per_item)
    return ids


def _count_reviews(conn: Connection, item_id: int, reviews_per_item: int) -> None:
    done = (
        select(func.count())
        .select_from(reviews)
        .where(reviews.c.item_id == item_id, reviews.c.state == "submitted")
        .scalar_subquery()
    )
    conn.execute(update(queue_items).where(queue_items.c.id == item_id).values(reviews_done=done))
    conn.execute(
        update(queue_items)
        .where(queue_items.c.id == item_id)
        .values(is_done=queue_items.c.reviews_done >= reviews_per_item)
    )


def skip(conn: Connection, review_id: int, now: int) -> None:
    conn.execute(
        update(reviews)
        .where(reviews.c.id == review_id)
        .values(state="skipped", leased_until_ns=now, submitted_ns=None)
    )


def release(conn: Connection, review_id: int) -> None:
    """Give a lease back (the reviewer went back to an earlier item)."""
    conn.execute(delete(reviews).where(reviews.c.id == review_id, reviews.c.state == "leased"))


def last_submitted(conn: Connection, queue_id: int, reviewer: str) -> dict[str, Any] | None:
    r = reviews.c
    row = conn.execute(
        select(reviews)
        .where(r.queue_id == queue_id, r.reviewer == reviewer, r.state == "submitted")
        .order_by(r.submitted_ns.desc(), r.id.desc())
        .limit(1)
    ).first()
    return None if row is None else dict(row._mapping)


def withdraw(
    conn: Connection, review: dict[str, Any], reviews_per_item: int, now: int, until: int
) -> list[dict[str, Any]]:
    """Undo a submission: its labels are removed (and returned, to refill the form) and the
    item is leased to the reviewer again."""
    taken = labels_of_reviews(conn, [int(review["id"])])
    conn.execute(delete(scores).where(scores.c.review_id == review["id"]))
    conn.execute(
        update(reviews)
        .where(reviews.c.id == review["id"])
        .values(state="leased", leased_until_ns=until, opened_ns=now, submitted_ns=None)
    )
    _count_reviews(conn, int(review["item_id"]), reviews_per_item)
    return taken


# --- labels ---------------------------------------------------------------------------------

LABEL_COLUMNS = [
    scores.c.id,
    reviews.c.queue_id,
    reviews.c.item_id,
    queue_items.c.kind.label("item_kind"),
    queue_items.c.ref.label("item"),
    scores.c.trace_id,
    scores.c.span_id,
    scores.c.author.label("reviewer"),
    scores.c.rubric_id,
    scores.c.rubric_version,
    scores.c.name.label("rubric"),
    scores.c.value,
    scores.c.label,
    scores.c.rationale,
    scores.c.metadata,
    scores.c.created_ns,
]


def _labels_select() -> Any:
    return (
        select(*LABEL_COLUMNS)
        .join(reviews, reviews.c.id == scores.c.review_id)
        .join(queue_items, queue_items.c.id == reviews.c.item_id)
    )


def labels_of_reviews(conn: Connection, review_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not review_ids:
        return []
    rows = conn.execute(
        _labels_select().where(scores.c.review_id.in_(list(review_ids))).order_by(scores.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def item_labels(conn: Connection, item_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        _labels_select().where(reviews.c.item_id == item_id).order_by(scores.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def labels(
    conn: Connection,
    *,
    queue_ids: Sequence[int] | None = None,
    rubric_id: int | None = None,
    project_id: int | None = None,
    after_id: int | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Reviewers' labels in id order: of some queues, of a rubric (in a project), or both."""
    query = _labels_select().where(scores.c.review_id.is_not(None))
    if queue_ids is not None:
        query = query.where(reviews.c.queue_id.in_(list(queue_ids)))
    if rubric_id is not None:
        query = query.where(scores.c.rubric_id == rubric_id)
    if project_id is not None:
        query = query.where(scores.c.project_id == project_id)
    if after_id is not None:
        query = query.where(scores.c.id > after_id)
    rows = conn.execute(query.order_by(scores.c.id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def labels_version(conn: Connection, queue_id: int) -> tuple[int, int, int]:
    """What changes whenever a label of the queue is given, changed or taken back: how many
    labels it has, the largest label id and the latest submission (a changed label is a new
    row of a review submitted again)."""
    row = conn.execute(
        select(func.count(scores.c.id), func.max(scores.c.id), func.max(reviews.c.submitted_ns))
        .select_from(scores.join(reviews, reviews.c.id == scores.c.review_id))
        .where(reviews.c.queue_id == queue_id)
    ).one()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0)


def submitted_items(conn: Connection, queue_id: int, reviewer: str) -> set[int]:
    r = reviews.c
    return set(
        conn.execute(
            select(r.item_id).where(
                r.queue_id == queue_id, r.reviewer == reviewer, r.state == "submitted"
            )
        ).scalars()
    )


# --- progress -------------------------------------------------------------------------------


def progress(conn: Connection, queue_id: int, now: int) -> dict[str, Any]:
    counts = _item_counts(conn, [queue_id]).get(
        queue_id, {"items": 0, "done": 0, "labels_given": 0}
    )
    r = reviews.c
    rows = conn.execute(
        select(r.reviewer, r.state, func.count(), func.max(r.submitted_ns))
        .where(r.queue_id == queue_id, (r.state != "leased") | (r.leased_until_ns > now))
        .group_by(r.reviewer, r.state)
    ).all()
    people: dict[str, dict[str, Any]] = {}
    for reviewer, state, n, last in rows:
        entry = people.setdefault(
            reviewer,
            {"reviewer": reviewer, "submitted": 0, "skipped": 0, "leased": 0, "last_ns": None},
        )
        entry[state] = int(n)
        if state == "submitted":
            entry["last_ns"] = last
    return {**counts, "reviewers": sorted(people.values(), key=lambda e: e["reviewer"])}


def counts(conn: Connection, queue_id: int, reviewer: str) -> dict[str, int]:
    """What the reviewer view's progress bar needs, from index-only counts: items, done, and
    how many the reviewer has submitted."""
    i, r = queue_items.c, reviews.c
    items = conn.execute(
        select(func.count()).select_from(queue_items).where(i.queue_id == queue_id)
    ).scalar_one()
    done = conn.execute(
        select(func.count())
        .select_from(queue_items)
        .where(i.queue_id == queue_id, i.is_done.is_(True))
    ).scalar_one()
    mine = conn.execute(
        select(func.count())
        .select_from(reviews)
        .where(r.queue_id == queue_id, r.reviewer == reviewer, r.state == "submitted")
    ).scalar_one()
    return {"items": int(items), "done": int(done), "mine": int(mine)}


# --- gold labels ----------------------------------------------------------------------------


def set_gold(conn: Connection, values: dict[str, Any]) -> int:
    """Set (or replace) the gold label of an item for a rubric."""
    conn.execute(
        delete(gold_labels).where(
            gold_labels.c.item_id == values["item_id"],
            gold_labels.c.rubric_id == values["rubric_id"],
        )
    )
    return int(
        conn.execute(
            gold_labels.insert().values(created_ns=now_ns(), **values).returning(gold_labels.c.id)
        ).scalar_one()
    )


def gold(
    conn: Connection, queue_id: int, item_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    query = select(gold_labels).where(gold_labels.c.queue_id == queue_id)
    if item_ids is not None:
        query = query.where(gold_labels.c.item_id.in_(list(item_ids)))
    rows = conn.execute(query.order_by(gold_labels.c.id)).all()
    return [dict(row._mapping) for row in rows]


def gold_for_items(
    conn: Connection, item_ids: Iterable[int]
) -> dict[tuple[int, int], dict[str, Any]]:
    wanted = list(item_ids)
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for start in range(0, len(wanted), INSERT_CHUNK):
        rows = conn.execute(
            select(gold_labels).where(
                gold_labels.c.item_id.in_(wanted[start : start + INSERT_CHUNK])
            )
        ).all()
        for row in rows:
            out[int(row.item_id), int(row.rubric_id)] = dict(row._mapping)
    return out


def my_states(conn: Connection, reviewer: str, item_ids: Iterable[int]) -> dict[int, str]:
    """The reviewer's review state on each of the items they have a review of."""
    wanted = list(item_ids)
    out: dict[int, str] = {}
    for start in range(0, len(wanted), INSERT_CHUNK):
        rows = conn.execute(
            select(reviews.c.item_id, reviews.c.state).where(
                reviews.c.reviewer == reviewer,
                reviews.c.item_id.in_(wanted[start : start + INSERT_CHUNK]),
            )
        ).all()
        out.update({int(item_id): str(state) for item_id, state in rows})
    return out


def labelled_items(
    conn: Connection, queue_id: int, *, after_id: int | None, limit: int
) -> list[int]:
    """Items of the queue with two or more submitted reviews, in order."""
    i = queue_items.c
    query = select(i.id).where(i.queue_id == queue_id, i.reviews_done >= 2)
    if after_id is not None:
        query = query.where(i.id > after_id)
    return [int(x) for x in conn.execute(query.order_by(i.id).limit(limit)).scalars()]


def labels_of_items(conn: Connection, item_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not item_ids:
        return []
    rows = conn.execute(
        _labels_select().where(reviews.c.item_id.in_(list(item_ids))).order_by(scores.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]
