"""Metrics under /api/v1: a metric's time series per group, for dashboards and scripts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import metrics
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["metrics"])

Metric = Literal[
    "count",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "tokens",
    "cost",
    "score_mean",
]


@router.get(
    "/projects/{project}/metrics",
    summary="A metric over time, per bucket and group, with intervals",
    description=(
        '`{"series": [{"group", "points": [{"t", "value", "n", "low", "high"}]}]}`. '
        "Latency percentiles are nearest-rank (percentile_disc) in milliseconds with an "
        "order-statistic 95% interval; error_rate has a Wilson interval, score_mean a t "
        "interval; count, tokens and cost are totals. The trace list's filters (model, tag, "
        "metadata, status, ...) narrow the traces."
    ),
)
def metric_series(
    request: Request,
    project: str,
    metric: Metric,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO 8601, epoch ns, or 1h/24h/7d/30d back")
    ] = None,
    until: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch ns")] = None,
    bucket: Annotated[
        Literal["hour", "day"] | None, Query(description="default: from the range")
    ] = None,
    group_by: Annotated[
        str | None,
        Query(max_length=210, description="model, tag, prompt_version or metadata.KEY"),
    ] = None,
    score: Annotated[
        str | None, Query(max_length=200, description="score_mean: the score's name")
    ] = None,
    source: Literal["human", "llm", "code"] | None = None,
    who: Principal = Depends(api_principal),
) -> JSON:
    # The declared parameters describe the API; the service reads every pair (the filters
    # too) and names each one it cannot use.
    pairs = list(request.query_params.multi_items())
    return JSON(metrics.metric_series(runtime_of(request), who, project, pairs))
