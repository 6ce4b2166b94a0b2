"""Datasets: versioned sets of records, read by anyone in the project.

Editors create datasets and insert, update and delete records; annotators may add a span to an
existing dataset (curating examples is annotation work), but creating one that way needs an
editor.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from assay.errors import NotFound, UserError
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.store import datasets as dataset_store
from assay.store.database import Connection, Database
from assay.store.datasets import Changes

__all__ = [
    "Changes",
    "add_span",
    "add_spans",
    "change_records",
    "create_dataset",
    "dataset_view",
    "insert_spans",
    "get_dataset",
    "list_datasets",
    "list_records",
    "list_versions",
    "record_view",
]


def _dataset(
    conn: Connection, who: Principal, project: str, name: str, role: str = "viewer"
) -> dict[str, Any]:
    found = dataset_store.get(conn, project_id(conn, who, project, role), name)
    if found is None:
        raise NotFound(f"dataset {name!r} does not exist in {project!r}")
    return found


def list_datasets(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return dataset_store.list_datasets(conn, project_id(conn, who, project))


def create_dataset(
    db: Database, who: Principal, project: str, name: str, description: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The new dataset, or the existing one of that name; and whether it existed."""
    who.require(project, "editor")
    with db.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        existed = dataset_store.get(conn, found, name) is not None
        return dataset_store.create(conn, found, name, description), existed


def get_dataset(db: Database, who: Principal, project: str, name: str) -> dict[str, Any]:
    with db.read() as conn:
        return _dataset(conn, who, project, name)


def list_records(
    db: Database,
    who: Principal,
    project: str,
    name: str,
    *,
    version: int | None,
    limit: int,
    after_id: int | None,
) -> tuple[list[dict[str, Any]], int, int | None]:
    """One page of records at ``version`` (the current one if None): the records, the
    version read, and the id to continue after."""
    with db.read() as conn:
        dataset = _dataset(conn, who, project, name)
        pinned = dataset["version"] if version is None else version
        if pinned > dataset["version"]:
            raise NotFound(
                f"dataset {name!r} has no version {pinned} (latest: {dataset['version']})"
            )
        items, next_id = dataset_store.records(
            conn, dataset["id"], pinned, limit=limit, after_id=after_id
        )
    return items, pinned, next_id


def change_records(
    db: Database, who: Principal, project: str, name: str, changes: Changes
) -> dict[str, Any]:
    """Insert, update and delete records as one new version (editors); the version entry."""
    who.require(project, "editor")
    with db.write() as conn:
        dataset = _dataset(conn, who, project, name, "editor")
        return dataset_store.apply(conn, dataset, replace(changes, author=who.author))


def list_versions(db: Database, who: Principal, project: str, name: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return dataset_store.versions(conn, _dataset(conn, who, project, name)["id"])


def dataset_view(
    db: Database,
    who: Principal,
    project: str,
    name: str,
    *,
    version: int | None,
    after_id: int | None,
    page_size: int,
) -> dict[str, Any]:
    """What the dataset page shows: a page of records at a version, the count, the versions
    and what the version changed."""
    with db.read() as conn:
        dataset = _dataset(conn, who, project, name)
        latest = int(dataset["version"])
        pinned = latest if version is None or version > latest else version
        records, next_id = dataset_store.records(
            conn, int(dataset["id"]), pinned, limit=page_size, after_id=after_id
        )
        return {
            "dataset": dataset,
            "version": pinned,
            "latest": latest,
            "records": records,
            "next_id": next_id,
            "count": dataset_store.count(conn, int(dataset["id"]), pinned),
            "versions": dataset_store.versions(conn, int(dataset["id"])),
            "changes": (
                dataset_store.version_changes(conn, int(dataset["id"]), pinned) if pinned else None
            ),
        }


def record_view(
    db: Database,
    who: Principal,
    project: str,
    name: str,
    *,
    record_id: str | None = None,
    version: int | None = None,
    role: str = "viewer",
) -> dict[str, Any]:
    """A dataset at a version, with one of its records (``record_id``) or none (a new one)."""
    with db.read() as conn:
        dataset = _dataset(conn, who, project, name, role)
        latest = int(dataset["version"])
        pinned = latest if version is None or version > latest else version
        record = None
        if record_id is not None:
            record = dataset_store.get_record(conn, int(dataset["id"]), pinned, record_id)
            if record is None:
                raise NotFound(f"there is no record {record_id!r} in dataset {name!r}")
    return {"dataset": dataset, "version": pinned, "latest": latest, "record": record}


def add_span(
    db: Database,
    who: Principal,
    project: str,
    dataset_name: str,
    trace_id: str,
    span_id: str | None,
    *,
    expected: Any = None,
    expected_given: bool = False,
) -> int:
    """Copy a span (the trace's root if ``span_id`` is None) into a dataset as a record; the
    new version. Annotators may add to an existing dataset; a new one needs an editor. Without
    ``expected_given`` the record expects what the span answered."""
    who.require(project, "annotator")
    with db.write() as conn:
        found = project_id(conn, who, project, "annotator")
        source = dataset_store.span_source(conn, found, trace_id, span_id)
        if source is None:
            raise UserError("that trace or span is not in this project")
        dataset = dataset_store.get(conn, found, dataset_name)
        if dataset is None:
            if not who.can(project, "editor"):
                raise UserError(
                    f"there is no dataset {dataset_name!r}; creating one needs an editor"
                )
            dataset = dataset_store.create(conn, found, dataset_name)
        record = {
            "input": source["input"],
            "expected": expected if expected_given else source["output"],
            "metadata": {"source_span_name": source["name"]},
            "source_trace_id": source["trace_id"],
            "source_span_id": source["span_id"],
        }
        changes = Changes(insert=[record], message=f"from trace {trace_id}", author=who.author)
        return int(dataset_store.apply(conn, dataset, changes)["version"])


def add_spans(
    db: Database,
    who: Principal,
    project: str,
    dataset_name: str,
    picked: list[dict[str, Any]],
    *,
    message: str,
) -> dict[str, Any]:
    """Copy several spans into a dataset as one new version (editors; the dataset is made when
    missing). Each of ``picked``: ``trace_id``, ``span_id`` (None: the root), ``expected`` and
    ``metadata``. The version entry; UserError naming a trace that is not in the project."""
    who.require(project, "editor")
    with db.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        dataset = dataset_store.get(conn, found, dataset_name)
        if dataset is None:
            dataset = dataset_store.create(conn, found, dataset_name)
        return insert_spans(conn, found, dataset, picked, message=message, author=who.author)


def insert_spans(
    conn: Connection,
    project_id_: int,
    dataset: dict[str, Any],
    picked: list[dict[str, Any]],
    *,
    message: str,
    author: str | None,
) -> dict[str, Any]:
    """:func:`add_spans` inside the caller's transaction (the caller checked the role). An
    item with ``expected_from_output`` expects what its span answered (a proposal to review)."""
    records = []
    for item in picked:
        source = dataset_store.span_source(conn, project_id_, item["trace_id"], item.get("span_id"))
        if source is None:
            raise UserError(f"trace {item['trace_id']} is no longer in the project")
        expected = source["output"] if item.get("expected_from_output") else item.get("expected")
        records.append(
            {
                "input": source["input"],
                "expected": expected,
                "metadata": {"source_span_name": source["name"], **item.get("metadata", {})},
                "source_trace_id": source["trace_id"],
                "source_span_id": source["span_id"],
            }
        )
    changes = Changes(insert=records, message=message, author=author)
    return dataset_store.apply(conn, dataset, changes)
