"""Experiments under /api/v1: create, add rows, finish, list, read, compare."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from assay.evals import ExperimentRow
from assay.server.bounds import ApiModel, Count32, RowId
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import experiments
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["experiments"])


class ExperimentIn(ApiModel):
    eval_name: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, max_length=200)
    dataset: str | None = Field(default=None, max_length=200)
    dataset_version: Count32 | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RowIn(ExperimentRow, ApiModel):
    """The experiment row schema the runner sends (`assay.evals.ExperimentRow`), every value
    storable and the counts within their 32-bit columns."""

    trial: Count32 = 0
    input_tokens: Count32 | None = None
    output_tokens: Count32 | None = None


class ExperimentUpdate(ApiModel):
    status: Literal["running", "complete", "incomplete"]
    summary: dict[str, Any] | None = None


@router.post("/projects/{project}/experiments", status_code=201, summary="Start an experiment")
def create_experiment(
    request: Request, project: str, body: ExperimentIn, who: Principal = Depends(api_principal)
) -> JSON:
    created = experiments.create_experiment(runtime_of(request), who, project, body.model_dump())
    return JSON(created, status_code=201)


@router.get("/projects/{project}/experiments", summary="List experiments, newest first")
def list_experiments(
    request: Request,
    project: str,
    who: Principal = Depends(api_principal),
    eval_name: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSON:
    items = experiments.list_experiments(runtime_of(request), who, project, eval_name, limit)
    return JSON({"items": items, "next_cursor": None})


@router.get("/experiments/{experiment_id}", summary="One experiment with its summary")
def get_experiment(
    request: Request, experiment_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    return JSON(experiments.get_experiment(runtime_of(request), who, experiment_id))


@router.patch("/experiments/{experiment_id}", summary="Finish an experiment")
def update_experiment(
    request: Request,
    experiment_id: RowId,
    body: ExperimentUpdate,
    who: Principal = Depends(api_principal),
) -> JSON:
    finished = experiments.finish_experiment(
        runtime_of(request), who, experiment_id, body.status, body.summary
    )
    return JSON(finished)


@router.post("/experiments/{experiment_id}/rows", status_code=201, summary="Add rows")
def add_rows(
    request: Request,
    experiment_id: RowId,
    body: list[RowIn],
    who: Principal = Depends(api_principal),
) -> JSON:
    rows = [row.model_dump() for row in body]
    count = experiments.add_rows(runtime_of(request), who, experiment_id, rows)
    return JSON({"stored": count}, status_code=201)


@router.get("/experiments/{experiment_id}/rows", summary="An experiment's rows")
def list_rows(
    request: Request, experiment_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    items = experiments.experiment_rows(runtime_of(request), who, experiment_id)
    return JSON({"items": items, "next_cursor": None})


@router.get(
    "/experiments/{baseline_id}/compare/{candidate_id}",
    summary="Per-case deltas and per-score paired comparison (candidate minus baseline)",
)
def compare_experiments(
    request: Request,
    baseline_id: RowId,
    candidate_id: RowId,
    who: Principal = Depends(api_principal),
) -> JSON:
    result = experiments.compare_experiments(runtime_of(request), who, baseline_id, candidate_id)
    return JSON({"baseline": baseline_id, "candidate": candidate_id, **result})
