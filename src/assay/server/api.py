"""The REST API under /api/v1: projects, traces, spans, scores. Routes parse, call a service,
and answer JSON; the services check access and own the transactions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, field_validator

from assay.semconv.prices import parse_overrides
from assay.server.bounds import ApiModel
from assay.server.responses import JSON, ApiError
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import calibration, logs, projects, scores, traces
from assay.services.filters import RANGES, parse_filters
from assay.services.principal import Principal
from assay.services.traces import Filters

router = APIRouter(prefix="/api/v1", tags=["api"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]


def filters(
    since: Annotated[str | None, Query(description="ISO 8601 or epoch ns; inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 or epoch ns; exclusive")] = None,
    range: Annotated[str | None, Query(description=f"a recent window: {', '.join(RANGES)}")] = None,
    name: str | None = None,
    type: Annotated[str | None, Query(description="llm, tool, agent, retrieval, ...")] = None,
    status: Annotated[Literal["ok", "error", "unset"] | None, Query()] = None,
    model: str | None = None,
    tag: Annotated[list[str], Query(description="repeatable; all must match")] = [],  # noqa: B006
    metadata: Annotated[list[str], Query(description="key=value, repeatable; all must match")] = [],  # noqa: B006
    session_id: str | None = None,
    user_id: str | None = None,
    trace_id: str | None = None,
    min_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    max_duration_ms: Annotated[float | None, Query(ge=0)] = None,
    min_cost: Annotated[float | None, Query(ge=0)] = None,
    max_cost: Annotated[float | None, Query(ge=0)] = None,
    score: Annotated[str | None, Query(description="score name")] = None,
    min_score: float | None = None,
    max_score: float | None = None,
    score_label: Annotated[
        str | None, Query(max_length=200, description="a score's label, e.g. incorrect")
    ] = None,
    score_source: Annotated[Literal["human", "llm", "code"] | None, Query()] = None,
    disagreement: Annotated[
        str | None,
        Query(
            max_length=401,
            description="score NAME (or HUMAN,JUDGE): a person's and a judge's score disagree",
        ),
    ] = None,
    q: Annotated[
        str | None, Query(max_length=500, description="words to find in input or output")
    ] = None,
    prompt: Annotated[
        str | None, Query(max_length=200, description="registry prompt name a call used")
    ] = None,
    prompt_version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="with prompt: that version only")
    ] = None,
) -> Filters:
    """The declared parameters describe the API (and FastAPI checks their types); the one
    filter parser the UI also uses reads them."""
    single = {
        "since": since,
        "until": until,
        "range": range,
        "name": name,
        "type": type,
        "status": status,
        "model": model,
        "session_id": session_id,
        "user_id": user_id,
        "trace_id": trace_id,
        "min_duration_ms": min_duration_ms,
        "max_duration_ms": max_duration_ms,
        "min_cost": min_cost,
        "max_cost": max_cost,
        "score": score,
        "min_score": min_score,
        "max_score": max_score,
        "score_label": score_label,
        "score_source": score_source,
        "disagreement": disagreement,
        "q": q,
        "prompt": prompt,
        "prompt_version": prompt_version,
    }
    pairs = [(key, str(value)) for key, value in single.items() if value is not None]
    pairs += [("tag", value) for value in tag] + [("metadata", value) for value in metadata]
    found, problems = parse_filters(pairs)
    if problems:
        raise ApiError(400, "bad_request", "; ".join(str(problem) for problem in problems))
    return found


@router.get("/projects", summary="List projects with span and trace counts")
def list_projects(
    request: Request,
    who: Principal = Depends(api_principal),
    limit: Limit = 100,
    cursor: str | None = None,
) -> JSON:
    items, next_cursor = projects.list_projects(runtime_of(request), who, limit=limit, after=cursor)
    return JSON({"items": items, "next_cursor": next_cursor})


class ProjectUpdate(ApiModel):
    settings: dict[str, Any] = Field(
        description='Project settings, e.g. {"prices": {"my-model": {"input": 1, "output": 2}}}'
    )

    @field_validator("settings")
    @classmethod
    def _check_prices(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "prices" in value:
            parse_overrides(value["prices"])
        return value


@router.patch("/projects/{project}", summary="Change a project's settings (price overrides)")
def update_project(
    request: Request, project: str, body: ProjectUpdate, who: Principal = Depends(api_principal)
) -> JSON:
    calibration.check_settings(body.settings)
    settings = projects.update_settings(runtime_of(request), who, project, body.settings)
    return JSON({"name": project, "settings": settings})


@router.get("/projects/{project}/traces", summary="List traces (root span, sums, scores)")
def list_traces(
    request: Request,
    project: str,
    f: Filters = Depends(filters),
    who: Principal = Depends(api_principal),
    limit: Limit = 50,
    cursor: str | None = None,
    sort: Literal["start", "duration", "cost"] = "start",
    order: Literal["asc", "desc"] = "desc",
) -> JSON:
    runtime = runtime_of(request)
    page = traces.list_traces(
        runtime,
        who,
        project,
        f,
        limit=limit,
        cursor=cursor,
        sort=sort,
        order=order,
        max_bytes=runtime.settings.max_page_bytes,
    )
    return JSON({"items": page.items, "next_cursor": page.next_cursor})


@router.get(
    "/projects/{project}/spans",
    summary="List spans",
    description=(
        "Spans with previews of their input, output and attribute texts (`truncated` names "
        "what was cut; the trace routes answer the whole values). A page ends before `limit` "
        "when it would grow past about ASSAY_MAX_PAGE_BYTES; follow `next_cursor`."
    ),
)
def list_spans(
    request: Request,
    project: str,
    f: Filters = Depends(filters),
    who: Principal = Depends(api_principal),
    limit: Limit = 50,
    cursor: str | None = None,
    sort: Literal["start", "duration", "cost"] = "start",
    order: Literal["asc", "desc"] = "desc",
) -> JSON:
    runtime = runtime_of(request)
    page = traces.list_spans(
        runtime,
        who,
        project,
        f,
        limit=limit,
        cursor=cursor,
        sort=sort,
        order=order,
        max_bytes=runtime.settings.max_page_bytes,
    )
    return JSON({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/projects/{project}/logs", summary="List OTLP log records, newest first")
def list_logs(
    request: Request,
    project: str,
    who: Principal = Depends(api_principal),
    q: Annotated[str | None, Query(max_length=500, description="text in the body")] = None,
    since: Annotated[str | None, Query(description="ISO 8601 or epoch ns; inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 or epoch ns; exclusive")] = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> JSON:
    page = logs.list_logs(
        runtime_of(request),
        who,
        project,
        q=q,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return JSON({"items": page.items, "next_cursor": page.next_cursor})


FULL_HELP = (
    "An attribute whose text is the span's input or output column is answered as "
    '{"$assay.stored_as": "input"} (or "output"), so a large value comes once; '
    "full=true repeats the text in the attribute (the raw form)."
)


@router.get(
    "/projects/{project}/traces/{trace_id}",
    summary="One trace of a project: every span as a tree, with scores",
)
def get_project_trace(
    request: Request,
    project: str,
    trace_id: str,
    who: Principal = Depends(api_principal),
    full: Annotated[bool, Query(description=FULL_HELP)] = False,
) -> JSON:
    return JSON(traces.get_trace(runtime_of(request), who, trace_id, project, full))


@router.get(
    "/traces/{trace_id}",
    summary="One trace, in whichever of the caller's projects holds it",
    description=(
        "A trace id names one trace per project. When several projects the caller may read "
        "hold it (a trace that crossed services reporting to different projects), the answer "
        "is 409 listing them: use `?project=` or /api/v1/projects/{project}/traces/{trace_id}."
    ),
)
def get_trace(
    request: Request,
    trace_id: str,
    who: Principal = Depends(api_principal),
    project: Annotated[str | None, Query(description="the project whose trace to read")] = None,
    full: Annotated[bool, Query(description=FULL_HELP)] = False,
) -> JSON:
    return JSON(traces.get_trace(runtime_of(request), who, trace_id, project or None, full))


class ScoreIn(ApiModel):
    trace_id: str = Field(min_length=32, max_length=32, pattern="^[0-9a-fA-F]{32}$")
    span_id: str | None = Field(
        default=None, min_length=16, max_length=16, pattern="^[0-9a-fA-F]{16}$"
    )
    name: str = Field(min_length=1, max_length=200)
    value: float | None = None
    label: str | None = Field(default=None, max_length=200)
    rationale: str | None = Field(default=None, max_length=100_000)
    source: Literal["code", "llm", "human"] = "human"
    author: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)


@router.post("/projects/{project}/scores", status_code=201, summary="Attach scores")
def create_scores(
    request: Request,
    project: str,
    body: ScoreIn | list[ScoreIn],
    who: Principal = Depends(api_principal),
) -> JSON:
    items = body if isinstance(body, list) else [body]
    ids = scores.add_scores(
        runtime_of(request), who, project, [item.model_dump() for item in items]
    )
    return JSON({"ids": ids}, status_code=201)
