"""Monitors under /api/v1: a metric over a window against a threshold, with a webhook."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from assay.server.bounds import ApiModel, RowId
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import monitors
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["monitors"])


class MonitorIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=64, description=", ".join(monitors.METRICS))
    params: dict[str, Any] = Field(
        default_factory=dict,
        description='score_mean: {"score": NAME, "source": human|llm|code}; any: {"filter": {...}}',
    )
    window_minutes: int = Field(description="the window: the last N minutes")
    threshold: float
    direction: Literal["below", "above"]
    webhook_url: str | None = Field(default=None, max_length=2000)
    renotify_minutes: int | None = Field(
        default=None, description="while alerting, notify again after N minutes (0: never)"
    )
    enabled: bool = True


class MonitorChange(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metric: str | None = Field(default=None, min_length=1, max_length=64)
    params: dict[str, Any] | None = None
    window_minutes: int | None = None
    threshold: float | None = None
    direction: Literal["below", "above"] | None = None
    webhook_url: str | None = Field(default=None, max_length=2000)
    renotify_minutes: int | None = None
    enabled: bool | None = None


@router.post("/projects/{project}/monitors", status_code=201, summary="Create a monitor")
def create_monitor(
    request: Request, project: str, body: MonitorIn, who: Principal = Depends(api_principal)
) -> JSON:
    made = monitors.create_monitor(runtime_of(request), who, project, body.model_dump())
    return JSON(made, status_code=201)


@router.get("/projects/{project}/monitors", summary="A project's monitors and their states")
def list_monitors(request: Request, project: str, who: Principal = Depends(api_principal)) -> JSON:
    items = monitors.list_monitors(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/monitors/{monitor_id}", summary="A monitor: its state and evaluation history")
def get_monitor(
    request: Request,
    monitor_id: RowId,
    history: int = Query(default=monitors.HISTORY_SHOWN, ge=1, le=1000),
    who: Principal = Depends(api_principal),
) -> JSON:
    return JSON(monitors.get_monitor(runtime_of(request), who, monitor_id, history=history))


@router.patch("/monitors/{monitor_id}", summary="Change a monitor (webhook_url null removes it)")
def update_monitor(
    request: Request,
    monitor_id: RowId,
    body: MonitorChange,
    who: Principal = Depends(api_principal),
) -> JSON:
    changes = body.model_dump(exclude_unset=True)
    return JSON(monitors.update_monitor(runtime_of(request), who, monitor_id, changes))


@router.delete("/monitors/{monitor_id}", status_code=204, summary="Delete a monitor")
def delete_monitor(
    request: Request, monitor_id: RowId, who: Principal = Depends(api_principal)
) -> Response:
    monitors.delete_monitor(runtime_of(request), who, monitor_id)
    return Response(status_code=204)


@router.post("/monitors/{monitor_id}/evaluate", summary="Evaluate a monitor now")
def evaluate_monitor(
    request: Request, monitor_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    return JSON(monitors.evaluate_now(runtime_of(request), who, monitor_id))
