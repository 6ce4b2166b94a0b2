"""Review queues: items waiting for people, leased one at a time, labelled blind.

Who may do what: anyone in the project reads queues, progress, labels (blind rules below) and
agreement; annotators take items and label them; editors create and change queues and set gold
labels. A queue may name its reviewers; then only they take its items.

Blind review: a reviewer does not see other people's labels on an item until they have
submitted their own; an annotator sees others' labels only on items they have submitted.

Leases: :func:`next_item` leases an item to the caller for the queue's ``lease_seconds``; while
the lease holds, the item counts as taken for one of its ``reviews_per_item`` reviews. An
expired lease frees the review for someone else; the reviewer's own expired lease is renewed if
the item still has room.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.errors import Conflict, Forbidden, NotFound, UserError
from assay.services import rubrics as rubric_rules
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.store import review as review_store
from assay.store import review_items
from assay.store import rubrics as rubric_store
from assay.store import traces as trace_store
from assay.store.database import Connection, Database
from assay.store.engine import now_ns
from assay.store.listing import Filters

DEFAULT_LEASE_SECONDS = 15 * 60
MAX_REVIEWS_PER_ITEM = 20
MAX_ITEMS_PER_ADD = 100_000
ITEM_KINDS = ("trace", "span", "session", "experiment_row", "dataset_record")
SECOND_NS = 1_000_000_000


def reviewer_name(who: Principal) -> str:
    """The name a review is filed under: the person (a user, or a personal key's user); the
    API's open mode, which has no author, reviews as "local"."""
    return who.author or "local"


# --- queues -----------------------------------------------------------------------------------


def _positive_int(raw: dict[str, Any], key: str, default: int, top: int) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise UserError(f"{key!r} must be a whole number from 1 to {top}")
    return value


def _queue_fields(conn: Connection, found: int, raw: dict[str, Any]) -> dict[str, Any]:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise UserError("a queue needs a 'name' of 1 to 200 characters")
    rubric_ids = raw.get("rubrics", raw.get("rubric_ids")) or []
    if (
        not isinstance(rubric_ids, list)
        or not rubric_ids
        or not all(isinstance(r, int) and not isinstance(r, bool) for r in rubric_ids)
    ):
        raise UserError("a queue needs 'rubrics': a list of rubric ids of its project")
    rubric_ids = list(dict.fromkeys(rubric_ids))
    known = rubric_store.get_many(conn, rubric_ids)
    missing = [r for r in rubric_ids if r not in known or int(known[r]["project_id"]) != found]
    if missing:
        raise UserError(f"rubric {missing[0]} is not a rubric of this project")
    reviewers = raw.get("reviewers") or []
    if not isinstance(reviewers, list) or not all(isinstance(r, str) for r in reviewers):
        raise UserError("'reviewers' must be a list of user names (empty: any annotator)")
    description = raw.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 10_000):
        raise UserError("'description' must be a string of at most 10,000 characters")
    return {
        "name": name.strip(),
        "rubric_ids": rubric_ids,
        "reviewers": sorted(set(reviewers)),
        "reviews_per_item": _positive_int(raw, "reviews_per_item", 1, MAX_REVIEWS_PER_ITEM),
        "lease_seconds": _positive_int(raw, "lease_seconds", DEFAULT_LEASE_SECONDS, 86_400),
        "description": description,
    }


def _queue(conn: Connection, who: Principal, queue_id: int, role: str = "viewer") -> dict[str, Any]:
    """The queue, if ``who`` may see its project (else NotFound, worded alike for both) and
    holds ``role`` there (else Forbidden)."""
    found = review_store.get_queue(conn, queue_id)
    if found is None or not who.may_see(str(found["project"])):
        raise NotFound(f"queue {queue_id} does not exist")
    who.require(str(found["project"]), role)
    return found


def _with_rubrics(conn: Connection, queue: dict[str, Any]) -> dict[str, Any]:
    known = rubric_store.get_many(conn, queue["rubric_ids"])
    queue["rubrics"] = [known[r] for r in queue["rubric_ids"] if r in known]
    return queue


def create_queue(db: Database, who: Principal, project: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A new queue (editors); :class:`Conflict` when the name is taken."""
    who.require(project, "editor")
    with db.write() as conn:
        found = project_id(conn, who, project, "editor")
        fields = _queue_fields(conn, found, raw)
        if review_store.find_queue(conn, found, fields["name"]) is not None:
            raise Conflict(f"queue {fields['name']!r} exists in {project!r}")
        queue_id = review_store.create_queue(conn, found, {**fields, "author": who.author})
        return _with_rubrics(conn, _queue(conn, who, queue_id))


def update_queue(
    db: Database, who: Principal, queue_id: int, raw: dict[str, Any]
) -> dict[str, Any]:
    """Change a queue's name, rubrics, reviewers, reviews per item or lease (editors)."""
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "editor")
        fields = _queue_fields(conn, int(queue["project_id"]), {**queue, **raw})
        if fields["name"] != queue["name"] and review_store.find_queue(
            conn, int(queue["project_id"]), fields["name"]
        ):
            raise Conflict(f"another queue is named {fields['name']!r}")
        review_store.update_queue(conn, queue_id, fields)
        return _with_rubrics(conn, _queue(conn, who, queue_id))


def get_queue(db: Database, who: Principal, queue_id: int) -> dict[str, Any]:
    """A queue with its rubrics and progress (items, done, per reviewer)."""
    with db.read() as conn:
        queue = _with_rubrics(conn, _queue(conn, who, queue_id))
        queue["progress"] = review_store.progress(conn, queue_id, now_ns())
        return queue


def list_queues(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    """The project's queues with their item counts (items, done, labels given)."""
    with db.read() as conn:
        return review_store.list_queues(conn, project_id(conn, who, project))


def progress(db: Database, who: Principal, queue_id: int) -> dict[str, Any]:
    with db.read() as conn:
        _queue(conn, who, queue_id)
        return review_store.progress(conn, queue_id, now_ns())


# --- adding items -----------------------------------------------------------------------------


@dataclass
class ItemsToAdd:
    """What to add to a queue: any mix of the five kinds of item."""

    trace_ids: list[str] = field(default_factory=list)
    #: (trace id, span id)
    spans: list[tuple[str, str]] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    experiment_rows: list[int] = field(default_factory=list)
    #: (dataset name, record id)
    dataset_records: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.trace_ids)
            + len(self.spans)
            + len(self.session_ids)
            + len(self.experiment_rows)
            + len(self.dataset_records)
        )


def _missing(what: str, names: Sequence[Any]) -> NotFound:
    shown = ", ".join(str(name) for name in names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return NotFound(f"{what} not in this project: {shown}{more}; nothing was added")


def _trace_items(conn: Connection, found: int, wanted: ItemsToAdd) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    trace_ids = list(dict.fromkeys(t.lower() for t in wanted.trace_ids))
    if trace_ids:
        held = review_store.existing_traces(conn, found, trace_ids)
        if missing := [t for t in trace_ids if t not in held]:
            raise _missing("traces", missing)
        items += [{"kind": "trace", "ref": f"trace:{t}", "trace_id": t} for t in trace_ids]
    pairs = list(dict.fromkeys((t.lower(), s.lower()) for t, s in wanted.spans))
    if pairs:
        held_spans = review_store.existing_spans(conn, found, pairs)
        if missing_spans := [f"{t}/{s}" for t, s in pairs if (t, s) not in held_spans]:
            raise _missing("spans", missing_spans)
        items += [
            {"kind": "span", "ref": f"span:{t}/{s}", "trace_id": t, "span_id": s} for t, s in pairs
        ]
    sessions = list(dict.fromkeys(wanted.session_ids))
    if sessions:
        held_sessions = review_store.existing_sessions(conn, found, sessions)
        if missing_sessions := [s for s in sessions if s not in held_sessions]:
            raise _missing("sessions", missing_sessions)
        items += [{"kind": "session", "ref": f"session:{s}", "session_id": s} for s in sessions]
    return items


def _stored_items(conn: Connection, found: int, wanted: ItemsToAdd) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    rows = list(dict.fromkeys(wanted.experiment_rows))
    if rows:
        held = review_items.experiment_rows_in(conn, found, rows)
        if missing := [r for r in rows if r not in held]:
            raise _missing("experiment rows", missing)
        items += [
            {
                "kind": "experiment_row",
                "ref": f"experiment_row:{r}",
                "experiment_row_id": r,
                "trace_id": held[r],
            }
            for r in rows
        ]
    records = list(dict.fromkeys(wanted.dataset_records))
    if records:
        ids = review_items.dataset_ids(conn, found, list({name for name, _ in records}))
        for name, _record in records:
            if name not in ids:
                raise _missing("datasets", [name])
        by_dataset: dict[str, list[str]] = {}
        for name, record_id in records:
            by_dataset.setdefault(name, []).append(record_id)
        for name, record_ids in by_dataset.items():
            current = review_items.current_records(conn, ids[name], record_ids)
            if missing_records := [r for r in record_ids if r not in current]:
                raise _missing(f"records of dataset {name!r}", missing_records)
            items += [
                {
                    "kind": "dataset_record",
                    "ref": f"dataset_record:{ids[name]}/{r}",
                    "dataset_id": ids[name],
                    "record_id": r,
                    "trace_id": current[r],
                }
                for r in record_ids
            ]
    return items


def add_items(db: Database, who: Principal, queue_id: int, wanted: ItemsToAdd) -> dict[str, int]:
    """Add traces, spans, sessions, experiment rows or dataset records (annotators and up);
    all must be in the queue's project, or nothing is added. Items already in the queue are
    left as they are. Returns {"added", "already"}."""
    if len(wanted) > MAX_ITEMS_PER_ADD:
        raise UserError(f"add at most {MAX_ITEMS_PER_ADD} items at once")
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "annotator")
        items = items_to_add(conn, int(queue["project_id"]), wanted)
        added = review_store.add_items(conn, queue_id, items, who.author)
    return {"added": added, "already": len(items) - added}


def add_traces(
    conn: Connection, queue: dict[str, Any], trace_ids: list[str], author: str | None
) -> int:
    """:func:`add_items` of traces inside the caller's transaction (the caller checked the
    role); how many were new to the queue."""
    items = items_to_add(conn, int(queue["project_id"]), ItemsToAdd(trace_ids=trace_ids))
    return review_store.add_items(conn, int(queue["id"]), items, author)


def items_to_add(conn: Connection, project_id_: int, wanted: ItemsToAdd) -> list[dict[str, Any]]:
    """The queue items naming what is wanted, all in the project (else NotFound, before anything
    is written): for :func:`add_items` and for rules that route items to people."""
    return _trace_items(conn, project_id_, wanted) + _stored_items(conn, project_id_, wanted)


def add_by_filter(
    db: Database,
    who: Principal,
    queue_id: int,
    filters: Filters,
    *,
    sample: int | None = None,
    seed: int | None = None,
) -> dict[str, int]:
    """Add the traces the trace-list filter matches: all of them (at most
    :data:`MAX_ITEMS_PER_ADD`), or a uniform random sample of ``sample``. Returns {"matched",
    "added", "already"}."""
    if sample is not None and not 1 <= sample <= MAX_ITEMS_PER_ADD:
        raise UserError(f"'sample' must be from 1 to {MAX_ITEMS_PER_ADD}")
    with db.read() as conn:
        queue = _queue(conn, who, queue_id, "annotator")
        matched: list[str] = []
        cursor: str | None = None
        while True:
            page = trace_store.list_traces(
                conn, int(queue["project_id"]), filters, limit=1000, cursor=cursor
            )
            matched += [str(row["trace_id"]) for row in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
            if sample is None and len(matched) > MAX_ITEMS_PER_ADD:
                raise UserError(
                    f"the filter matches more than {MAX_ITEMS_PER_ADD} traces; narrow it or "
                    "take a sample"
                )
    chosen = matched
    if sample is not None and sample < len(matched):
        chosen = random.Random(seed).sample(matched, sample)
    result = add_items(db, who, queue_id, ItemsToAdd(trace_ids=chosen))
    return {"matched": len(matched), **result}


# --- the reviewer's loop ----------------------------------------------------------------------


def _may_review(who: Principal, queue: dict[str, Any]) -> str:
    """The caller's reviewer name, if they may review in the queue."""
    who.require(str(queue["project"]), "annotator")
    me = reviewer_name(who)
    if queue["reviewers"] and me not in queue["reviewers"]:
        raise Forbidden(f"you are not among the reviewers of queue {queue['name']!r}")
    return me


def _item_view(
    conn: Connection,
    who: Principal,
    queue: dict[str, Any],
    item: dict[str, Any],
    review: dict[str, Any] | None,
) -> dict[str, Any]:
    """An item as the reviewer view shows it: what to read, the rubrics, the caller's own
    labels (a draft after an undo, or what they submitted), and, only once the caller may see
    them, other people's labels and the gold labels."""
    found = int(queue["project_id"])
    labels = review_store.item_labels(conn, int(item["id"]))
    me = reviewer_name(who)
    mine = [label for label in labels if review and label["reviewer"] == me]
    shown_others = _may_see_others(who, queue, review)
    counts = review_store.counts(conn, int(queue["id"]), me)
    return {
        "queue_id": int(queue["id"]),
        "item_id": int(item["id"]),
        "kind": item["kind"],
        "ref": item["ref"],
        "trace_id": item["trace_id"],
        "span_id": item["span_id"],
        "session_id": item["session_id"],
        "experiment_row_id": item["experiment_row_id"],
        "record_id": item["record_id"],
        "project": queue["project"],
        "trace_url": (
            f"/p/{queue['project']}/traces/{item['trace_id']}" if item["trace_id"] else None
        ),
        "content": review_items.content(conn, found, item),
        "rubrics": _with_rubrics(conn, dict(queue))["rubrics"],
        "review": None
        if review is None
        else {
            "id": int(review["id"]),
            "state": review["state"],
            "leased_until_ns": review["leased_until_ns"],
        },
        "my_labels": mine,
        "labels": [label for label in labels if label["reviewer"] != me] if shown_others else None,
        "gold": review_store.gold(conn, int(queue["id"]), [int(item["id"])])
        if shown_others
        else None,
        "reviews_done": item["reviews_done"],
        "progress": counts,
    }


def _may_see_others(who: Principal, queue: dict[str, Any], review: dict[str, Any] | None) -> bool:
    if review is not None:
        return bool(review["state"] == "submitted")
    project = str(queue["project"])
    # Viewers cannot review; editors adjudicate. Annotators might get the item later.
    return not who.can(project, "annotator") or who.can(project, "editor")


def _lease_next(
    conn: Connection, who: Principal, queue: dict[str, Any], me: str, now: int
) -> dict[str, Any] | None:
    queue_id = int(queue["id"])
    until = now + int(queue["lease_seconds"]) * SECOND_NS
    review_store.lock_queue(conn, queue_id)
    held = review_store.own_lease(conn, queue_id, me, now)
    if held is not None:
        item_id = int(held["item_id"])
    else:
        rpi = int(queue["reviews_per_item"])
        found = review_store.open_item(conn, queue_id, me, rpi, now)
        if found is None:  # skipped items come back once nothing else is left
            found = review_store.open_item(conn, queue_id, me, rpi, now, skipped=True)
        if found is None:
            return None
        item_id = found
    review_store.lease(conn, queue_id, item_id, me, now, until)
    item = review_store.get_item(conn, queue_id, item_id)
    assert item is not None
    return _item_view(conn, who, queue, item, review_store.review_of(conn, item_id, me))


def next_item(db: Database, who: Principal, queue_id: int) -> dict[str, Any] | None:
    """The caller's next item, leased to them (the same one while their lease holds); None when
    the queue has nothing left for them."""
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "annotator")
        me = _may_review(who, queue)
        return _lease_next(conn, who, queue, me, now_ns())


def get_item(db: Database, who: Principal, queue_id: int, item_id: int) -> dict[str, Any]:
    """One item of the queue as the caller may see it (blind rules apply); for going back to
    an item the caller submitted, and for adjudication."""
    with db.read() as conn:
        queue = _queue(conn, who, queue_id)
        item = review_store.get_item(conn, queue_id, item_id)
        if item is None:
            raise NotFound(f"queue {queue_id} has no item {item_id}")
        review = review_store.review_of(conn, item_id, reviewer_name(who))
        return _item_view(conn, who, queue, item, review)


def _check_labels(
    conn: Connection, queue: dict[str, Any], given: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    known = rubric_store.get_many(conn, queue["rubric_ids"])
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, raw in enumerate(given):
        rubric_id = raw.get("rubric_id")
        if rubric_id not in known:
            raise UserError(f"labels[{i}]: rubric {rubric_id!r} is not one of this queue's")
        if rubric_id in seen:
            raise UserError(f"labels[{i}]: rubric {rubric_id} is labelled twice")
        seen.add(rubric_id)
        label = rubric_rules.normalise_label(known[rubric_id], raw)
        out.append(
            {
                "rubric_id": label.rubric_id,
                "rubric_version": label.rubric_version,
                "name": label.name,
                "value": label.value,
                "label": label.label,
                "rationale": label.rationale,
                "metadata": label.metadata,
            }
        )
    missing = [
        rubric["name"]
        for rubric_id, rubric in known.items()
        if rubric_id not in seen and rubric["kind"] != "text"
    ]
    if missing:
        raise UserError(f"label every rubric of the queue; missing: {', '.join(missing)}")
    return out


def submit_labels(
    db: Database,
    who: Principal,
    queue_id: int,
    item_id: int,
    labels: Sequence[dict[str, Any]],
    *,
    next_item: bool = True,
) -> dict[str, Any]:
    """Submit the caller's labels for an item and lease them the next one.

    Labels are human scores: the caller is the author, with the rubric and its version and
    the rationale. Submitting again for an item the caller already submitted replaces their
    labels (going back to correct one). An item whose reviews are all given or leased to
    others is a :class:`Conflict`. Returns {"label_ids", "next"} (``next`` None when nothing
    is left)."""
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "annotator")
        me = _may_review(who, queue)
        checked = _check_labels(conn, queue, labels)
        review_store.lock_queue(conn, queue_id)
        item = review_store.get_item(conn, queue_id, item_id)
        if item is None:
            raise NotFound(f"queue {queue_id} has no item {item_id}")
        now = now_ns()
        review = review_store.review_of(conn, item_id, me)
        holds = review is not None and (
            review["state"] == "submitted"
            or (review["state"] == "leased" and review["leased_until_ns"] > now)
        )
        rpi = int(queue["reviews_per_item"])
        if not holds and review_store.others_holding(conn, item_id, me, now) >= rpi:
            raise Conflict(
                f"item {item_id} already has its {rpi} review(s) given or under way; "
                "take the next item instead",
                code="item_taken",
            )
        if review is not None and review["state"] == "submitted":
            review_store.withdraw(conn, review, rpi, now, now)
        review_id = review_store.lease(conn, queue_id, item_id, me, now, now)
        ids = review_store.submit(
            conn,
            project_id=int(queue["project_id"]),
            review_id=review_id,
            item=item,
            reviews_per_item=rpi,
            reviewer=me,
            labels=checked,
            now=now,
        )
        following = _lease_next(conn, who, queue, me, now) if next_item else None
    return {"label_ids": ids, "next": following}


def skip_item(db: Database, who: Principal, queue_id: int, item_id: int) -> dict[str, Any] | None:
    """Put an item aside (it comes back once nothing else is left) and lease the next one."""
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "annotator")
        me = _may_review(who, queue)
        review_store.lock_queue(conn, queue_id)
        review = review_store.review_of(conn, item_id, me)
        now = now_ns()
        if review is None or review["state"] != "leased":
            raise Conflict(f"item {item_id} is not open for you; take it with /next first")
        review_store.skip(conn, int(review["id"]), now)
        return _lease_next(conn, who, queue, me, now)


def undo_last(db: Database, who: Principal, queue_id: int) -> dict[str, Any] | None:
    """Take back the caller's last submission in the queue: its labels are removed (and
    returned as ``my_labels``, to refill the form) and the item is leased to them again.
    None when they have submitted nothing here."""
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "annotator")
        me = _may_review(who, queue)
        review_store.lock_queue(conn, queue_id)
        last = review_store.last_submitted(conn, queue_id, me)
        if last is None:
            return None
        now = now_ns()
        # Any other item they hold goes back to the queue: they are back on this one.
        held = review_store.own_lease(conn, queue_id, me, now)
        if held is not None and held["item_id"] != last["item_id"]:
            review_store.release(conn, int(held["id"]))
        until = now + int(queue["lease_seconds"]) * SECOND_NS
        taken = review_store.withdraw(conn, last, int(queue["reviews_per_item"]), now, until)
        item = review_store.get_item(conn, queue_id, int(last["item_id"]))
        assert item is not None
        view = _item_view(conn, who, queue, item, review_store.review_of(conn, int(item["id"]), me))
        view["my_labels"] = taken
        return view
