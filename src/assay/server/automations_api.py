"""Automations under /api/v1: traces matching a filter added to a dataset or a review queue on
a schedule or as they arrive, and the history of their runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from assay.errors import UserError
from assay.server.bounds import INT32_MAX, ApiModel, RowId
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import automations
from assay.services.filters import parse_time
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["automations"])

Schedule = Literal["hourly", "daily", "weekly", "on_arrival"]
#: "all", or a random sample of N traces.
Sample = Literal["all"] | Annotated[int, Field(ge=1, le=automations.MAX_SAMPLE)]


class DatasetTarget(ApiModel):
    dataset: str = Field(min_length=1, max_length=200)


class QueueTarget(ApiModel):
    queue: int = Field(ge=1, le=INT32_MAX)


Target = DatasetTarget | QueueTarget


class AutomationIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    filter: dict[str, Any] = Field(
        default_factory=dict,
        description='The traces list\'s filters, e.g. {"score": "thumbs_up", "max_score": 0}, '
        '{"score": "correctness", "score_label": "incorrect", "score_source": "llm"}, '
        '{"disagreement": "correctness"}, {"tag": ["prod"]}',
    )
    sample: Sample = "all"
    schedule: Schedule
    target: Target
    max_per_run: int = Field(
        default=automations.DEFAULT_MAX_PER_RUN, ge=1, le=automations.MAX_PER_RUN
    )
    enabled: bool = True


class AutomationChange(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    filter: dict[str, Any] | None = None
    sample: Sample | None = None
    schedule: Schedule | None = None
    target: Target | None = None
    max_per_run: int | None = Field(default=None, ge=1, le=automations.MAX_PER_RUN)
    enabled: bool | None = None


class RunIn(ApiModel):
    since: str | None = Field(
        default=None, max_length=40, description="ISO 8601 or epoch ns: run over a chosen window"
    )
    until: str | None = Field(default=None, max_length=40, description="ISO 8601 or epoch ns")


def _time(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    found = parse_time(value)
    if found is None:
        raise UserError(f"{field}: {value[:40]!r} is not a time; use ISO 8601 or epoch ns")
    return found


def _fields(body: ApiModel) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True)


@router.post(
    "/projects/{project}/automations",
    status_code=201,
    summary="Create an automation: traces matching a filter into a dataset or a review queue",
)
def create_automation(
    request: Request, project: str, body: AutomationIn, who: Principal = Depends(api_principal)
) -> JSON:
    fields = body.model_dump()
    made = automations.create_automation(runtime_of(request), who, project, fields)
    return JSON(made, status_code=201)


@router.get(
    "/projects/{project}/automations", summary="A project's automations, each with its last run"
)
def list_automations(
    request: Request, project: str, who: Principal = Depends(api_principal)
) -> JSON:
    items = automations.list_automations(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/automations/{automation_id}", summary="One automation with its last run")
def get_automation(
    request: Request, automation_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    return JSON(automations.get_automation(runtime_of(request), who, automation_id))


@router.patch(
    "/automations/{automation_id}",
    summary="Change an automation; enabled: false pauses it",
)
def update_automation(
    request: Request,
    automation_id: RowId,
    body: AutomationChange,
    who: Principal = Depends(api_principal),
) -> JSON:
    changed = automations.update_automation(runtime_of(request), who, automation_id, _fields(body))
    return JSON(changed)


@router.delete("/automations/{automation_id}", status_code=204, summary="Delete an automation")
def delete_automation(
    request: Request, automation_id: RowId, who: Principal = Depends(api_principal)
) -> Response:
    automations.delete_automation(runtime_of(request), who, automation_id)
    return Response(status_code=204)


@router.post(
    "/automations/{automation_id}/run",
    summary="Run an automation now: the last complete period (or a chosen window), or what "
    "arrived since its last run",
)
def run_automation(
    request: Request,
    automation_id: RowId,
    body: RunIn | None = None,
    who: Principal = Depends(api_principal),
) -> JSON:
    chosen = body or RunIn()
    run = automations.run_now(
        runtime_of(request),
        who,
        automation_id,
        since_ns=_time(chosen.since, "since"),
        until_ns=_time(chosen.until, "until"),
    )
    return JSON(run)


@router.get("/automations/{automation_id}/runs", summary="An automation's runs, newest first")
def list_runs(
    request: Request,
    automation_id: RowId,
    who: Principal = Depends(api_principal),
    limit: Annotated[int, Query(ge=1, le=automations.MAX_RUNS_SHOWN)] = 50,
) -> JSON:
    items = automations.list_runs(runtime_of(request), who, automation_id, limit=limit)
    return JSON({"items": items, "next_cursor": None})
