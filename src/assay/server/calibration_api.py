"""Judge calibration under /api/v1: calibration runs, their disagreements, comparing two judge
versions, the gate `assay eval --require-calibrated` asks, and agreement over time."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from assay.server.bounds import ApiModel, RefId, RowId
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import calibration
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["judge calibration"])

#: A judge choice's rubric value: a rubric choice's name, or a number on a numeric rubric.
Target = Annotated[str, Field(min_length=1, max_length=200)] | float


class CalibrationIn(ApiModel):
    rubric_id: RefId
    version: RefId | None = None
    mapping: dict[Annotated[str, Field(max_length=200)], Target] | None = Field(
        default=None, max_length=100
    )


class MappingIn(ApiModel):
    mapping: dict[Annotated[str, Field(max_length=200)], Target] = Field(max_length=100)


class DatasetIn(ApiModel):
    dataset: str = Field(min_length=1, max_length=200)


@router.post(
    "/evaluators/{evaluator_id}/calibrations",
    status_code=201,
    summary="Calibrate a judge version against a rubric's human labels",
)
def calibrate(
    request: Request,
    evaluator_id: RowId,
    body: CalibrationIn,
    who: Principal = Depends(api_principal),
) -> JSON:
    made = calibration.calibrate(
        runtime_of(request),
        who,
        evaluator_id,
        rubric_id=body.rubric_id,
        version=body.version,
        mapping=body.mapping,
    )
    return JSON(made, status_code=201)


@router.get("/evaluators/{evaluator_id}/calibrations", summary="An evaluator's calibrations")
def list_calibrations(
    request: Request, evaluator_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    items = calibration.list_calibrations(runtime_of(request), who, evaluator_id)
    return JSON({"items": items, "next_cursor": None})


@router.get(
    "/evaluators/{evaluator_id}/calibrations/compare",
    summary="Two calibrations on the same items: McNemar's test on agreement with people",
)
def compare(
    request: Request,
    evaluator_id: RowId,
    baseline: Annotated[int, Query(ge=1, le=2**31 - 1)],
    candidate: Annotated[int, Query(ge=1, le=2**31 - 1)],
    who: Principal = Depends(api_principal),
) -> JSON:
    found = calibration.compare(runtime_of(request), who, evaluator_id, baseline, candidate)
    return JSON(found)


@router.get(
    "/evaluators/{evaluator_id}/calibrations/{calibration_id}",
    summary="A calibration's figures, each with n and a 95% interval, and the ceiling",
)
def get_calibration(
    request: Request,
    evaluator_id: RowId,
    calibration_id: RowId,
    who: Principal = Depends(api_principal),
) -> JSON:
    return JSON(calibration.get_calibration(runtime_of(request), who, evaluator_id, calibration_id))


@router.put(
    "/evaluators/{evaluator_id}/calibrations/{calibration_id}/mapping",
    summary="Read a calibration through another mapping of judge choices to rubric values",
)
def remap(
    request: Request,
    evaluator_id: RowId,
    calibration_id: RowId,
    body: MappingIn,
    who: Principal = Depends(api_principal),
) -> JSON:
    found = calibration.remap(runtime_of(request), who, evaluator_id, calibration_id, body.mapping)
    return JSON(found)


@router.get(
    "/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements",
    summary="Items where the judge and the people disagree, both rationales side by side",
)
def disagreements(
    request: Request,
    evaluator_id: RowId,
    calibration_id: RowId,
    who: Principal = Depends(api_principal),
) -> JSON:
    items = calibration.disagreements(runtime_of(request), who, evaluator_id, calibration_id)
    return JSON({"items": items, "next_cursor": None})


@router.post(
    "/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements/dataset",
    status_code=201,
    summary="Add the disagreements to a dataset (expecting the people's label)",
)
def disagreements_to_dataset(
    request: Request,
    evaluator_id: RowId,
    calibration_id: RowId,
    body: DatasetIn,
    who: Principal = Depends(api_principal),
) -> JSON:
    found = calibration.disagreements_to_dataset(
        runtime_of(request), who, evaluator_id, calibration_id, body.dataset
    )
    return JSON(found, status_code=201)


@router.get(
    "/evaluators/{evaluator_id}/agreement",
    summary="Agreement with people per window; drift flagged (and acted on)",
)
def agreement(
    request: Request,
    evaluator_id: RowId,
    window: Literal["day", "week"] = "week",
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    who: Principal = Depends(api_principal),
) -> JSON:
    found = calibration.agreement(
        runtime_of(request), who, evaluator_id, window=window, version=version
    )
    return JSON(found)


@router.get(
    "/projects/{project}/judges/{name}/gate",
    summary="Whether a stored judge (at a version hash) is calibrated enough to gate",
)
def gate(
    request: Request,
    project: str,
    name: str,
    version_hash: Annotated[str | None, Query(max_length=64)] = None,
    who: Principal = Depends(api_principal),
) -> JSON:
    found: dict[str, Any] = calibration.gate(runtime_of(request), who, project, name, version_hash)
    return JSON(found)
