"""Datasets: named, versioned records. Every change set makes one new version."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from assay.errors import UserError
from assay.store.engine import now_ns
from assay.store.tables import dataset_records, dataset_versions, datasets, spans

RECORD_COLUMNS = [
    dataset_records.c.record_id,
    dataset_records.c.input,
    dataset_records.c.expected,
    dataset_records.c.metadata,
    dataset_records.c.tags,
    dataset_records.c.source_trace_id,
    dataset_records.c.source_span_id,
    dataset_records.c.version_added,
]


class DatasetNotFound(UserError):
    pass


@dataclass
class Changes:
    """One change set: new records, updated fields of existing ones, records to delete."""

    insert: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    message: str | None = None
    author: str | None = None

    def __bool__(self) -> bool:
        return bool(self.insert or self.update or self.delete)


def _row(mapping: Any) -> dict[str, Any]:
    return dict(mapping)


def create(
    conn: Connection, project_id: int, name: str, description: str | None = None
) -> dict[str, Any]:
    """Create dataset ``name`` (or return it if it exists)."""
    existing = get(conn, project_id, name)
    if existing is not None:
        return existing
    now = now_ns()
    conn.execute(
        datasets.insert().values(
            project_id=project_id,
            name=name,
            description=description,
            version=0,
            created_ns=now,
            updated_ns=now,
        )
    )
    found = get(conn, project_id, name)
    assert found is not None
    return found


def get(conn: Connection, project_id: int, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(datasets).where(datasets.c.project_id == project_id, datasets.c.name == name)
    ).first()
    if row is None:
        return None
    result = _row(row._mapping)
    result["record_count"] = count(conn, int(row.id), int(row.version))
    return result


def require(conn: Connection, project_id: int, name: str) -> dict[str, Any]:
    found = get(conn, project_id, name)
    if found is None:
        raise DatasetNotFound(f"dataset {name!r} does not exist")
    return found


def list_datasets(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(datasets).where(datasets.c.project_id == project_id).order_by(datasets.c.name)
    ).all()
    out = []
    for row in rows:
        item = _row(row._mapping)
        item["record_count"] = count(conn, int(row.id), int(row.version))
        out.append(item)
    return out


def _at_version(dataset_id: int, version: int) -> Any:
    r = dataset_records.c
    return and_(
        r.dataset_id == dataset_id,
        r.version_added <= version,
        or_(r.version_removed.is_(None), r.version_removed > version),
    )


def count(conn: Connection, dataset_id: int, version: int) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(dataset_records)
            .where(_at_version(dataset_id, version))
        ).scalar_one()
    )


def records(
    conn: Connection,
    dataset_id: int,
    version: int,
    *,
    limit: int = 1000,
    after_id: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Records as they were at ``version``, in insertion order; returns (rows, next cursor)."""
    query = select(dataset_records.c.id, *RECORD_COLUMNS).where(_at_version(dataset_id, version))
    if after_id is not None:
        query = query.where(dataset_records.c.id > after_id)
    rows = conn.execute(query.order_by(dataset_records.c.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for row in rows:
        item = _row(row._mapping)
        item.pop("id")
        item["version"] = item.pop("version_added")
        items.append(item)
    return items, (int(rows[-1].id) if more else None)


def versions(conn: Connection, dataset_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(dataset_versions)
        .where(dataset_versions.c.dataset_id == dataset_id)
        .order_by(dataset_versions.c.version.desc())
    ).all()
    return [_row(row._mapping) for row in rows]


def _clean_record(raw: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a record must be an object with at least 'input'")
    if "input" not in raw:
        raise UserError(f"{where}: a record needs an 'input'")
    unknown = set(raw) - {
        "id",
        "record_id",
        "input",
        "expected",
        "metadata",
        "tags",
        "source_trace_id",
        "source_span_id",
    }
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UserError(f"{where}: 'metadata' must be an object")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise UserError(f"{where}: 'tags' must be a list of strings")
    return {
        "record_id": str(raw.get("record_id") or raw.get("id") or uuid.uuid4()),
        "input": raw["input"],
        "expected": raw.get("expected"),
        "metadata": metadata,
        "tags": tags,
        "source_trace_id": raw.get("source_trace_id"),
        "source_span_id": raw.get("source_span_id"),
    }


def apply(conn: Connection, dataset: dict[str, Any], changes: Changes) -> dict[str, Any]:
    """Apply a change set atomically and return the new version's entry.

    Everything is checked before anything is written, so a bad change set changes nothing.
    """
    if not changes:
        raise UserError("nothing to change: give records to insert, update or delete")
    dataset_id = int(dataset["id"])
    current = int(dataset["version"])
    inserts = [_clean_record(r, f"insert[{i}]") for i, r in enumerate(changes.insert)]
    live = set(
        conn.execute(
            select(dataset_records.c.record_id).where(_at_version(dataset_id, current))
        ).scalars()
    )
    for i, record in enumerate(inserts):
        if record["record_id"] in live:
            raise UserError(f"insert[{i}]: record {record['record_id']!r} already exists")
    seen_ids = [r["record_id"] for r in inserts]
    if len(seen_ids) != len(set(seen_ids)):
        raise UserError("the change set inserts the same record id twice")
    touched = [u.get("record_id") or u.get("id") for u in changes.update] + list(changes.delete)
    for record_id in touched:
        if record_id not in live:
            raise UserError(f"record {record_id!r} is not in the dataset (version {current})")
    if len(touched) != len(set(touched)):
        raise UserError("the change set touches the same record twice")

    version = current + 1
    now = now_ns()
    retired = [str(u.get("record_id") or u.get("id")) for u in changes.update] + [
        str(d) for d in changes.delete
    ]
    if retired:
        conn.execute(
            update(dataset_records)
            .where(
                _at_version(dataset_id, current),
                dataset_records.c.record_id.in_(retired),
            )
            .values(version_removed=version)
        )
    rows = [
        {**record, "dataset_id": dataset_id, "version_added": version, "created_ns": now}
        for record in inserts
    ]
    if changes.update:
        previous = {
            row.record_id: _row(row._mapping)
            for row in conn.execute(
                select(*RECORD_COLUMNS).where(
                    dataset_records.c.dataset_id == dataset_id,
                    dataset_records.c.version_removed == version,
                    dataset_records.c.record_id.in_(
                        [str(u.get("record_id") or u.get("id")) for u in changes.update]
                    ),
                )
            )
        }
        for i, change in enumerate(changes.update):
            record_id = str(change.get("record_id") or change.get("id"))
            merged = {**previous[record_id], **{k: v for k, v in change.items() if k != "id"}}
            merged.pop("version_added", None)
            clean = _clean_record(merged, f"update[{i}]")
            rows.append(
                {**clean, "dataset_id": dataset_id, "version_added": version, "created_ns": now}
            )
    if rows:
        conn.execute(dataset_records.insert(), rows)
    conn.execute(
        datasets.update().where(datasets.c.id == dataset_id).values(version=version, updated_ns=now)
    )
    entry = {
        "dataset_id": dataset_id,
        "version": version,
        "created_ns": now,
        "author": changes.author,
        "message": changes.message,
        "added": len(inserts),
        "updated": len(changes.update),
        "deleted": len(changes.delete),
    }
    conn.execute(dataset_versions.insert().values(**entry))
    return entry


def get_record(
    conn: Connection, dataset_id: int, version: int, record_id: str
) -> dict[str, Any] | None:
    """One record as it was at ``version``."""
    row = conn.execute(
        select(*RECORD_COLUMNS).where(
            _at_version(dataset_id, version), dataset_records.c.record_id == record_id
        )
    ).first()
    if row is None:
        return None
    item = _row(row._mapping)
    item["version"] = item.pop("version_added")
    return item


def version_changes(conn: Connection, dataset_id: int, version: int) -> dict[str, list[str]]:
    """The record ids a version added, updated and deleted.

    An update retires the old row and adds a new one in the same version, so a record id that
    both left and arrived at ``version`` was updated.
    """
    r = dataset_records.c
    arrived = set(
        conn.execute(
            select(r.record_id).where(r.dataset_id == dataset_id, r.version_added == version)
        ).scalars()
    )
    left = set(
        conn.execute(
            select(r.record_id).where(r.dataset_id == dataset_id, r.version_removed == version)
        ).scalars()
    )
    return {
        "added": sorted(arrived - left),
        "updated": sorted(arrived & left),
        "deleted": sorted(left - arrived),
    }


def _parsed(text: str | None) -> Any:
    """Span input/output is stored as text; JSON text becomes the value it encodes."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def span_source(
    conn: Connection, project_id: int, trace_id: str, span_id: str | None
) -> dict[str, Any] | None:
    """What a record copies from a span (the trace's root span when ``span_id`` is None)."""
    query = select(
        spans.c.trace_id, spans.c.span_id, spans.c.name, spans.c.input, spans.c.output
    ).where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
    if span_id:
        query = query.where(spans.c.span_id == span_id)
    else:
        query = query.order_by(spans.c.is_root.desc(), spans.c.start_ns, spans.c.id).limit(1)
    row = conn.execute(query).first()
    if row is None:
        return None
    item = _row(row._mapping)
    item["input"], item["output"] = _parsed(item["input"]), _parsed(item["output"])
    return item


__all__ = [
    "Changes",
    "DatasetNotFound",
    "apply",
    "count",
    "create",
    "get",
    "get_record",
    "list_datasets",
    "records",
    "require",
    "span_source",
    "version_changes",
    "versions",
]
