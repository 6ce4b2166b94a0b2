"""Datasets under /api/v1/projects/{project}/datasets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from assay.server.api import project_id_for
from assay.server.auth import Principal, principal, runtime_of
from assay.server.responses import JSON, ApiError
from assay.store import datasets as dataset_store
from assay.store import projects as project_store

router = APIRouter(prefix="/api/v1/projects/{project}/datasets", tags=["datasets"])

MAX_RECORDS_PER_CHANGE = 50_000


class DatasetIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/]+$")
    description: str | None = Field(default=None, max_length=10_000)


class ChangesIn(BaseModel):
    insert: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RECORDS_PER_CHANGE)
    update: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RECORDS_PER_CHANGE)
    delete: list[str] = Field(default_factory=list, max_length=MAX_RECORDS_PER_CHANGE)
    message: str | None = Field(default=None, max_length=10_000)


def _dataset(conn: Any, who: Principal, project: str, name: str) -> dict[str, Any]:
    project_id = project_id_for(conn, who, project)
    found = dataset_store.get(conn, project_id, name)
    if found is None:
        raise ApiError(404, "not_found", f"dataset {name!r} does not exist in {project!r}")
    return found


@router.get("", summary="List datasets")
def list_datasets(request: Request, project: str, who: Principal = Depends(principal)) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        items = dataset_store.list_datasets(conn, project_id_for(conn, who, project))
    return JSON({"items": items, "next_cursor": None})


@router.post("", status_code=201, summary="Create a dataset (or return the existing one)")
def create_dataset(
    request: Request, project: str, body: DatasetIn, who: Principal = Depends(principal)
) -> JSON:
    who.require("editor")
    if not who.may_see(project):
        raise ApiError(404, "not_found", f"project {project!r} does not exist")
    with runtime_of(request).updates.begin() as conn:
        project_id = project_store.ensure(conn, project)
        dataset = dataset_store.create(conn, project_id, body.name, body.description)
    return JSON(dataset, status_code=201)


@router.get("/{name}", summary="One dataset: its current version and size")
def get_dataset(
    request: Request, project: str, name: str, who: Principal = Depends(principal)
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        return JSON(_dataset(conn, who, project, name))


@router.get("/{name}/records", summary="Records, at the current or a pinned version")
def list_records(
    request: Request,
    project: str,
    name: str,
    who: Principal = Depends(principal),
    version: int | None = Query(default=None, ge=0),
    limit: int = Query(default=1000, ge=1, le=10_000),
    cursor: str | None = None,
) -> JSON:
    if cursor is not None and not cursor.isdigit():
        raise ApiError(400, "bad_request", "cursor is not valid; pass next_cursor unchanged")
    with runtime_of(request).engine.connect() as conn:
        dataset = _dataset(conn, who, project, name)
        pinned = dataset["version"] if version is None else version
        if pinned > dataset["version"]:
            raise ApiError(
                404,
                "not_found",
                f"dataset {name!r} has no version {pinned} (latest: {dataset['version']})",
            )
        items, next_id = dataset_store.records(
            conn, dataset["id"], pinned, limit=limit, after_id=int(cursor) if cursor else None
        )
    return JSON(
        {
            "items": items,
            "version": pinned,
            "next_cursor": str(next_id) if next_id is not None else None,
        }
    )


@router.post("/{name}/changes", status_code=201, summary="Insert, update, delete: one version")
def change_records(
    request: Request,
    project: str,
    name: str,
    body: ChangesIn,
    who: Principal = Depends(principal),
) -> JSON:
    who.require("editor")
    changes = dataset_store.Changes(
        insert=body.insert,
        update=body.update,
        delete=body.delete,
        message=body.message,
        author=who.key_name,
    )
    with runtime_of(request).updates.begin() as conn:
        dataset = _dataset(conn, who, project, name)
        entry = dataset_store.apply(conn, dataset, changes)
    return JSON(entry, status_code=201)


@router.get("/{name}/versions", summary="The dataset's versions, newest first")
def list_versions(
    request: Request, project: str, name: str, who: Principal = Depends(principal)
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        dataset = _dataset(conn, who, project, name)
        items = dataset_store.versions(conn, dataset["id"])
    return JSON({"items": items, "next_cursor": None})
