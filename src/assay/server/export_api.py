"""Exports under /api/v1/projects/{project}: a dataset version, or labelled traces, as
fine-tuning JSONL (OpenAI chat, Anthropic messages) or records (JSONL, CSV).

The file streams. What was skipped (record ids and reasons) is the same request with
``report=1``: a JSON report, computed by running the export through without sending it. Every
file response names that URL in its ``X-Assay-Export-Report`` header.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.responses import Response

from assay.server.bounds import ApiModel, VersionQuery
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import export
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1/projects/{project}", tags=["export"])

Who = Annotated[Principal, Depends(api_principal)]
FormatQuery = Annotated[
    str,
    Query(
        alias="format",
        max_length=40,
        description="openai-chat, anthropic, jsonl or csv",
    ),
]
ReportQuery = Annotated[
    bool, Query(description="answer the JSON report (exported, skipped and why) instead")
]
EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file (JSON lines or CSV); with report=1 the JSON report",
        "content": {"application/x-ndjson": {}, "text/csv": {}, "application/json": {}},
    }
}


def _answer(started: export.Export, report: bool, report_url: str) -> Response:
    if report:
        return JSON(export.run_report(started))
    return StreamingResponse(
        started.lines,
        media_type=f"{started.media_type}; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{started.filename}"',
            "X-Assay-Export-Report": report_url,
        },
    )


@router.get(
    "/datasets/{name}/export",
    summary="A dataset version as fine-tuning JSONL (OpenAI, Anthropic) or records (JSONL, CSV)",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
def export_dataset(
    request: Request,
    project: str,
    name: str,
    who: Who,
    fmt: FormatQuery,
    version: VersionQuery = None,
    report: ReportQuery = False,
) -> Response:
    started = export.export_dataset(
        runtime_of(request), who, project, name, fmt=fmt, version=version
    )
    pinned = started.report.source["version"]
    query = urlencode({"format": fmt, "version": pinned, "report": 1})
    url = f"/api/v1/projects/{quote(project, safe='')}/datasets/{quote(name, safe='')}/export"
    return _answer(started, report, f"{url}?{query}")


class TraceExportIn(ApiModel):
    format: str = Field(max_length=40, description="openai-chat, anthropic, jsonl or csv")
    label: str = Field(
        min_length=1, max_length=200, description="a rubric's (or human score's) name"
    )
    label_value: str | None = Field(
        default=None, max_length=200, description="the label the traces must carry"
    )
    score_value: float | None = Field(default=None, description="or the value they must carry")
    filter: dict[str, Any] = Field(
        default_factory=dict, description="the traces list's filter, as an object"
    )
    span: str = Field(default="llm", max_length=10, description="llm (last model call) or root")
    limit: int | None = Field(default=None, ge=1, le=10_000_000)


@router.post(
    "/exports",
    summary="Traces of a filter carrying a person's label, as fine-tuning JSONL or records",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
def export_traces(
    request: Request,
    project: str,
    body: TraceExportIn,
    who: Who,
    report: ReportQuery = False,
) -> Response:
    started = export.export_traces(
        runtime_of(request),
        who,
        project,
        fmt=body.format,
        label=body.label,
        label_value=body.label_value,
        score_value=body.score_value,
        filters=body.filter,
        span=body.span,
        limit=body.limit,
    )
    url = f"/api/v1/projects/{quote(project, safe='')}/exports?report=1"
    return _answer(started, report, url)
