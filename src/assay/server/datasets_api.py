"""Datasets under /api/v1/projects/{project}/datasets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from assay.server.bounds import INT64_MAX, ApiModel, VersionQuery
from assay.server.responses import JSON, ApiError
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import datasets
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1/projects/{project}/datasets", tags=["datasets"])

MAX_RECORDS_PER_CHANGE = 50_000


class DatasetIn(ApiModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/]+$")
    description: str | None = Field(default=None, max_length=10_000)


class ChangesIn(ApiModel):
    insert: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RECORDS_PER_CHANGE)
    update: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RECORDS_PER_CHANGE)
    delete: list[str] = Field(default_factory=list, max_length=MAX_RECORDS_PER_CHANGE)
    message: str | None = Field(default=None, max_length=10_000)


@router.get("", summary="List datasets")
def list_datasets(request: Request, project: str, who: Principal = Depends(api_principal)) -> JSON:
    items = datasets.list_datasets(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.post("", status_code=201, summary="Create a dataset (or return the existing one)")
def create_dataset(
    request: Request, project: str, body: DatasetIn, who: Principal = Depends(api_principal)
) -> JSON:
    dataset, _existed = datasets.create_dataset(
        runtime_of(request), who, project, body.name, body.description
    )
    return JSON(dataset, status_code=201)


@router.get("/{name}", summary="One dataset: its current version and size")
def get_dataset(
    request: Request, project: str, name: str, who: Principal = Depends(api_principal)
) -> JSON:
    return JSON(datasets.get_dataset(runtime_of(request), who, project, name))


@router.get("/{name}/records", summary="Records, at the current or a pinned version")
def list_records(
    request: Request,
    project: str,
    name: str,
    who: Principal = Depends(api_principal),
    version: VersionQuery = None,
    limit: int = Query(default=1000, ge=1, le=10_000),
    cursor: str | None = None,
) -> JSON:
    if cursor is not None and not (cursor.isdigit() and int(cursor) <= INT64_MAX):
        raise ApiError(400, "bad_request", "cursor is not valid; pass next_cursor unchanged")
    items, pinned, next_id = datasets.list_records(
        runtime_of(request),
        who,
        project,
        name,
        version=version,
        limit=limit,
        after_id=int(cursor) if cursor else None,
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
    who: Principal = Depends(api_principal),
) -> JSON:
    changes = datasets.Changes(
        insert=body.insert, update=body.update, delete=body.delete, message=body.message
    )
    entry = datasets.change_records(runtime_of(request), who, project, name, changes)
    return JSON(entry, status_code=201)


@router.get("/{name}/versions", summary="The dataset's versions, newest first")
def list_versions(
    request: Request, project: str, name: str, who: Principal = Depends(api_principal)
) -> JSON:
    items = datasets.list_versions(runtime_of(request), who, project, name)
    return JSON({"items": items, "next_cursor": None})
