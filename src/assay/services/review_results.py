"""What review queues produce: the labels (blind rules apply), exports, agreement between the
reviewers, and adjudication into gold labels.

Agreement is per rubric of a queue, over the items with two or more labels: percent agreement,
Cohen's kappa and Krippendorff's alpha, each with n and a 95% bootstrap interval, and the same
per pair of reviewers (:func:`assay.statistics.rater_agreement`). Categorical and pass/fail
rubrics are nominal, an ordered categorical rubric ordinal (kappa weighted linearly), a numeric
scale interval (kappa weighted quadratically); free text has none.

Gold labels are set by editors after comparing the reviewers' labels side by side; they are
kept apart from the individual labels, which stay as given.
"""

from __future__ import annotations

import copy
import csv
import io
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import orjson

from assay.errors import NotFound, UserError
from assay.services import rubrics as rubric_rules
from assay.services.principal import Principal
from assay.services.review import _queue, reviewer_name
from assay.statistics import Interval, rater_agreement
from assay.statistics._reliability import AgreementLevel
from assay.store import review as review_store
from assay.store import rubrics as rubric_store
from assay.store.database import Connection, Database

EXPORT_PAGE = 2_000
LEVELS: dict[str, AgreementLevel] = {
    "nominal": "nominal",
    "ordinal": "ordinal",
    "interval": "interval",
}
EXPORT_COLUMNS = (
    "label_id",
    "queue_id",
    "item_id",
    "item_kind",
    "item",
    "trace_id",
    "span_id",
    "reviewer",
    "rubric_id",
    "rubric",
    "rubric_version",
    "label",
    "value",
    "text",
    "rationale",
    "created_ns",
    "gold_label",
    "gold_value",
    "gold_author",
)


def list_items(
    db: Database,
    who: Principal,
    queue_id: int,
    *,
    after_id: int | None,
    limit: int,
    done: bool | None,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the queue's items (without their labels) and the id to continue after."""
    with db.read() as conn:
        _queue(conn, who, queue_id)
        rows = review_store.list_items(
            conn, queue_id, after_id=after_id, limit=limit + 1, done=done
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, int(rows[-1]["id"]) if more and rows else None


def _blind_filter(
    conn: Connection, who: Principal, rows: list[dict[str, Any]], queues: dict[int, Any]
) -> list[dict[str, Any]]:
    """Drop labels the caller may not see yet: other people's labels on items the caller has
    not submitted, when the caller reviews (annotators) or holds the item open."""
    me = reviewer_name(who)
    states = review_store.my_states(conn, me, {int(row["item_id"]) for row in rows})
    kept = []
    for row in rows:
        if row["reviewer"] == me:
            kept.append(row)
            continue
        state = states.get(int(row["item_id"]))
        project = str(queues[int(row["queue_id"])]["project"])
        if state == "submitted" or (
            state is None and (not who.can(project, "annotator") or who.can(project, "editor"))
        ):
            kept.append(row)
    return kept


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    metadata = row.pop("metadata", None) or {}
    row["label_id"] = row.pop("id")
    row["text"] = metadata.get("text")
    if "choices" in metadata:
        row["choices"] = metadata["choices"]
    return row


def list_labels(
    db: Database,
    who: Principal,
    *,
    queue_id: int | None = None,
    rubric_id: int | None = None,
    after_id: int | None = None,
    limit: int = 1000,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of reviewers' labels of a queue or a rubric (blind rules apply), in id order,
    with the gold label of each item and rubric; and the id to continue after."""
    with db.read() as conn:
        queues, project_ids = _scope(conn, who, queue_id, rubric_id)
        rows = review_store.labels(
            conn,
            queue_ids=list(queues) if queue_id is not None else None,
            rubric_id=rubric_id,
            project_id=project_ids[0] if queue_id is None else None,
            after_id=after_id,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last = int(rows[-1]["id"]) if more and rows else None
        visible = [row for row in rows if int(row["queue_id"]) in queues]
        visible = _blind_filter(conn, who, visible, queues)
        gold = review_store.gold_for_items(conn, {int(row["item_id"]) for row in visible})
    out = []
    for row in visible:
        flat = _flatten(row)
        found = gold.get((int(flat["item_id"]), int(flat["rubric_id"])))
        flat["gold"] = (
            None
            if found is None
            else {
                "label": found["label"],
                "value": found["value"],
                "author": found["author"],
                "rationale": found["rationale"],
            }
        )
        out.append(flat)
    return out, last


def _scope(
    conn: Connection, who: Principal, queue_id: int | None, rubric_id: int | None
) -> tuple[dict[int, dict[str, Any]], list[int]]:
    """The queues whose labels are asked for, and the project they are in."""
    if queue_id is not None:
        queue = _queue(conn, who, queue_id)
        return {queue_id: queue}, [int(queue["project_id"])]
    if rubric_id is None:
        raise UserError("name a queue or a rubric")
    rubric = rubric_store.get(conn, rubric_id)
    if rubric is None or not who.may_see(str(rubric["project"])):
        raise NotFound(f"rubric {rubric_id} does not exist")
    found = int(rubric["project_id"])
    queues = {int(q["id"]): q for q in review_store.list_queues(conn, found)}
    return queues, [found]


def export_labels(
    db: Database,
    who: Principal,
    *,
    queue_id: int | None = None,
    rubric_id: int | None = None,
    fmt: str = "jsonl",
) -> Iterator[str]:
    """Every label of a queue or a rubric the caller may see, exactly once, as CSV or JSON
    lines: item, trace id, reviewer, rubric, label, value, rationale, time, gold."""
    if fmt not in ("csv", "jsonl"):
        raise UserError("format must be csv or jsonl")
    # Check access before the first byte is sent, so a refusal is a clean 404/403.
    list_labels(db, who, queue_id=queue_id, rubric_id=rubric_id, limit=1)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if fmt == "csv":
            writer.writerow(EXPORT_COLUMNS)
        after: int | None = None
        while True:
            page, after = list_labels(
                db, who, queue_id=queue_id, rubric_id=rubric_id, after_id=after, limit=EXPORT_PAGE
            )
            for row in page:
                gold = row.pop("gold") or {}
                row["gold_label"] = gold.get("label")
                row["gold_value"] = gold.get("value")
                row["gold_author"] = gold.get("author")
                if fmt == "jsonl":
                    yield (
                        orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
                        + "\n"
                    )
                else:
                    writer.writerow([_cell(row.get(column)) for column in EXPORT_COLUMNS])
            if fmt == "csv":
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            if after is None:
                return

    return lines()


def _cell(value: Any) -> Any:
    return "" if value is None else value


# --- agreement --------------------------------------------------------------------------------


def _interval(found: Interval) -> dict[str, Any]:
    return {"value": found.value, "low": found.low, "high": found.high, "n": found.n}


def _unit_value(rubric: dict[str, Any], level: str, label: dict[str, Any]) -> Hashable | None:
    if level == "interval":
        return None if label["value"] is None else float(label["value"])
    if level == "ordinal":
        order = [choice["name"] for choice in rubric["choices"]]
        return order.index(label["label"]) if label["label"] in order else None
    return None if label["label"] is None else str(label["label"])


#: Agreement as last computed per (database, queue, seed), with the version of the labels and
#: rubrics it was computed from: the bootstrap takes a second or more on a queue of a few
#: hundred labels, and the quality page asks for it on every load. The answer depends only on
#: those inputs (the bootstrap is seeded), so a cached one is the same answer.
_AGREEMENTS: OrderedDict[tuple[str, int, int], tuple[tuple[Any, ...], dict[str, Any]]] = (
    OrderedDict()
)
_AGREEMENTS_LOCK = threading.Lock()
AGREEMENTS_CACHED = 64


def agreement(db: Database, who: Principal, queue_id: int, *, seed: int = 0) -> dict[str, Any]:
    """Per rubric of the queue: n items with two or more labels, percent agreement, kappa and
    alpha, each with a 95% bootstrap interval (``low``, ``high``), and the same per pair of
    reviewers. Computed again only when the queue's labels or rubrics changed."""
    with db.read() as conn:
        queue = _queue(conn, who, queue_id)
        known = rubric_store.get_many(conn, queue["rubric_ids"])
        version = (
            tuple((r, known[r]["version"]) for r in queue["rubric_ids"] if r in known),
            review_store.labels_version(conn, queue_id),
        )
        key = (db.engine.url.render_as_string(hide_password=True), queue_id, seed)
        with _AGREEMENTS_LOCK:
            cached = _AGREEMENTS.get(key)
        if cached is not None and cached[0] == version:
            return copy.deepcopy(cached[1])
        rows = []
        after: int | None = None
        while True:
            page = review_store.labels(conn, queue_ids=[queue_id], after_id=after, limit=10_000)
            rows += page
            if len(page) < 10_000:
                break
            after = int(page[-1]["id"])
    out = []
    for rubric_id in queue["rubric_ids"]:
        rubric = known.get(rubric_id)
        if rubric is None:
            continue
        level = LEVELS.get(rubric_rules.agreement_level(rubric) or "")
        entry: dict[str, Any] = {
            "rubric_id": rubric_id,
            "rubric": rubric["name"],
            "kind": rubric["kind"],
            "level": level,
        }
        if level is None:
            out.append({**entry, "n": 0, "note": "free text has no agreement to measure"})
            continue
        units: dict[int, dict[Hashable, Hashable]] = {}
        for row in rows:
            if row["rubric_id"] != rubric_id:
                continue
            value = _unit_value(rubric, level, row)
            if value is not None:
                units.setdefault(int(row["item_id"]), {})[row["reviewer"]] = value
        order = list(range(len(rubric["choices"]))) if level == "ordinal" else None
        found = rater_agreement(
            list(units.values()),
            level,
            order=order,
            seed=seed,
        )
        entry.update(
            {
                "n": found.n,
                "reviewers": found.raters,
                "percent_agreement": _interval(found.percent),
                "kappa": _interval(found.kappa),
                "kappa_weights": None
                if level == "nominal"
                else ("linear" if level == "ordinal" else "quadratic"),
                "alpha": _interval(found.alpha),
                "resamples": found.resamples,
                "confidence": found.confidence,
                "pairs": [
                    {
                        "a": pair.a,
                        "b": pair.b,
                        "n": pair.n,
                        "percent_agreement": _interval(pair.percent),
                        "kappa": _interval(pair.kappa),
                        "alpha": _interval(pair.alpha),
                    }
                    for pair in found.pairs
                ],
            }
        )
        out.append(entry)
    result = {"queue_id": queue_id, "rubrics": out}
    with _AGREEMENTS_LOCK:
        _AGREEMENTS[key] = (version, copy.deepcopy(result))
        _AGREEMENTS.move_to_end(key)
        while len(_AGREEMENTS) > AGREEMENTS_CACHED:
            _AGREEMENTS.popitem(last=False)
    return result


# --- adjudication -----------------------------------------------------------------------------


def adjudication(
    db: Database,
    who: Principal,
    queue_id: int,
    *,
    disagreements_only: bool = True,
    after_item: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """Items with two or more labels, with every label and rationale side by side per rubric,
    and the gold label if set (editors). With ``disagreements_only``, only items where the
    labels of some rubric differ."""
    with db.read() as conn:
        queue = _queue(conn, who, queue_id, "editor")
        out: list[dict[str, Any]] = []
        after = after_item
        while len(out) <= limit:
            items = review_store.labelled_items(conn, queue_id, after_id=after, limit=500)
            if not items:
                break
            after = int(items[-1])
            labels = review_store.labels_of_items(conn, items)
            gold = review_store.gold(conn, queue_id, items)
            for item_id in items:
                mine = [row for row in labels if int(row["item_id"]) == item_id]
                by_rubric: dict[int, list[dict[str, Any]]] = {}
                for row in mine:
                    by_rubric.setdefault(int(row["rubric_id"]), []).append(_flatten(dict(row)))
                differs = any(
                    len({(r["label"], r["value"], r["text"]) for r in rows}) > 1
                    for rows in by_rubric.values()
                )
                if disagreements_only and not differs:
                    continue
                out.append(
                    {
                        "item_id": item_id,
                        "item": mine[0]["item"] if mine else None,
                        "trace_id": mine[0]["trace_id"] if mine else None,
                        "disagree": differs,
                        "labels": by_rubric,
                        "gold": [g for g in gold if int(g["item_id"]) == item_id],
                    }
                )
        more = len(out) > limit
        out = out[:limit]
    del queue
    return out, int(out[-1]["item_id"]) if more and out else None


def set_gold(
    db: Database,
    who: Principal,
    queue_id: int,
    item_id: int,
    labels: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Set the final (gold) labels of an item (editors), one per rubric given, checked against
    the rubric like a reviewer's label; the reviewers' own labels are left as they are."""
    with db.write() as conn:
        queue = _queue(conn, who, queue_id, "editor")
        item = review_store.get_item(conn, queue_id, item_id)
        if item is None:
            raise NotFound(f"queue {queue_id} has no item {item_id}")
        known = rubric_store.get_many(conn, queue["rubric_ids"])
        for i, raw in enumerate(labels):
            rubric = known.get(raw.get("rubric_id"))  # type: ignore[arg-type]
            if rubric is None:
                raise UserError(f"labels[{i}]: rubric {raw.get('rubric_id')!r} is not the queue's")
            label = rubric_rules.normalise_label(rubric, raw)
            review_store.set_gold(
                conn,
                {
                    "queue_id": queue_id,
                    "item_id": item_id,
                    "rubric_id": label.rubric_id,
                    "rubric_version": label.rubric_version,
                    "value": label.value,
                    "label": label.label,
                    "rationale": label.rationale,
                    "metadata": label.metadata,
                    "author": who.author,
                },
            )
        return review_store.gold(conn, queue_id, [item_id])
