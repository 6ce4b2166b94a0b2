"""Experiments under /api/v1: create, add rows, finish, list, read, compare."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from assay.evals._compare import compare
from assay.server.api import project_id_for
from assay.server.auth import Principal, principal, runtime_of
from assay.server.responses import JSON, ApiError
from assay.store import datasets as dataset_store
from assay.store import experiments as experiment_store
from assay.store import projects as project_store
from assay.store.tables import projects

router = APIRouter(prefix="/api/v1", tags=["experiments"])


class ExperimentIn(BaseModel):
    eval_name: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    dataset: str | None = Field(default=None, max_length=200)
    dataset_version: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RowIn(BaseModel):
    case_key: str = Field(min_length=1, max_length=64)
    trial: int = Field(default=0, ge=0)
    input: Any = None
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = Field(default=None, max_length=100_000)
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    trace_id: str | None = Field(default=None, max_length=32)
    scores: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class ExperimentUpdate(BaseModel):
    status: Literal["running", "complete", "incomplete"]
    summary: dict[str, Any] | None = None


def _experiment(conn: Connection, who: Principal, experiment_id: int) -> dict[str, Any]:
    found = experiment_store.get(conn, experiment_id)
    if found is not None and who.project is not None:
        name = conn.execute(
            projects.select()
            .with_only_columns(projects.c.name)
            .where(projects.c.id == found["project_id"])
        ).scalar()
        if name != who.project:
            found = None
    if found is None:
        raise ApiError(404, "not_found", f"experiment {experiment_id} does not exist")
    return found


@router.post("/projects/{project}/experiments", status_code=201, summary="Start an experiment")
def create_experiment(
    request: Request, project: str, body: ExperimentIn, who: Principal = Depends(principal)
) -> JSON:
    who.require("editor")
    if not who.may_see(project):
        raise ApiError(404, "not_found", f"project {project!r} does not exist")
    with runtime_of(request).updates.begin() as conn:
        project_id = project_store.ensure(conn, project)
        values = body.model_dump()
        if body.dataset:
            dataset = dataset_store.require(conn, project_id, body.dataset)
            values["dataset_id"] = dataset["id"]
            if body.dataset_version is None:
                values["dataset_version"] = dataset["version"]
        experiment = experiment_store.create(conn, project_id, values)
    return JSON(experiment, status_code=201)


@router.get("/projects/{project}/experiments", summary="List experiments, newest first")
def list_experiments(
    request: Request,
    project: str,
    who: Principal = Depends(principal),
    eval_name: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        project_id = project_id_for(conn, who, project)
        items = experiment_store.list_experiments(conn, project_id, eval_name, limit)
    return JSON({"items": items, "next_cursor": None})


@router.get("/experiments/{experiment_id}", summary="One experiment with its summary")
def get_experiment(
    request: Request, experiment_id: int, who: Principal = Depends(principal)
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        return JSON(_experiment(conn, who, experiment_id))


@router.patch("/experiments/{experiment_id}", summary="Finish an experiment")
def update_experiment(
    request: Request,
    experiment_id: int,
    body: ExperimentUpdate,
    who: Principal = Depends(principal),
) -> JSON:
    who.require("editor")
    with runtime_of(request).updates.begin() as conn:
        _experiment(conn, who, experiment_id)
        experiment_store.finish(conn, experiment_id, body.status, body.summary)
        return JSON(experiment_store.get(conn, experiment_id))


@router.post("/experiments/{experiment_id}/rows", status_code=201, summary="Add rows")
def add_rows(
    request: Request,
    experiment_id: int,
    body: list[RowIn],
    who: Principal = Depends(principal),
) -> JSON:
    who.require("editor")
    with runtime_of(request).updates.begin() as conn:
        _experiment(conn, who, experiment_id)
        count = experiment_store.upsert_rows(conn, experiment_id, [r.model_dump() for r in body])
    return JSON({"stored": count}, status_code=201)


@router.get("/experiments/{experiment_id}/rows", summary="An experiment's rows")
def list_rows(request: Request, experiment_id: int, who: Principal = Depends(principal)) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        _experiment(conn, who, experiment_id)
        items = experiment_store.rows(conn, experiment_id)
    return JSON({"items": items, "next_cursor": None})


@router.get(
    "/experiments/{baseline_id}/compare/{candidate_id}",
    summary="Per-case deltas and per-score paired comparison (candidate minus baseline)",
)
def compare_experiments(
    request: Request, baseline_id: int, candidate_id: int, who: Principal = Depends(principal)
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        _experiment(conn, who, baseline_id)
        _experiment(conn, who, candidate_id)
        result = compare(
            experiment_store.rows(conn, baseline_id), experiment_store.rows(conn, candidate_id)
        )
    return JSON({"baseline": baseline_id, "candidate": candidate_id, **result})
