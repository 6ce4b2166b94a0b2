"""The REST API under /api/v1. Routes stay thin: parse, check access, call the store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Connection

from assay.ingest.prices import parse_overrides
from assay.server.auth import Principal, principal, runtime_of
from assay.server.responses import JSON, ApiError
from assay.store import projects as project_store
from assay.store import queries
from assay.store import scores as score_store

router = APIRouter(prefix="/api/v1", tags=["api"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]


def _time(value: str | None, name: str) -> int | None:
    """Epoch nanoseconds, or an ISO-8601 time (UTC unless it says otherwise)."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400,
            "bad_request",
            f"{name}={value!r} is not a time; use ISO 8601 (2026-01-31T12:00:00Z) "
            "or nanoseconds since the epoch",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1_000_000_000)


def _metadata_pairs(raw: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ApiError(400, "bad_request", f"metadata={item!r} must look like key=value")
        pairs.append((key, value))
    return pairs


def filters(
    since: Annotated[str | None, Query(description="ISO 8601 or epoch ns; inclusive")] = None,
    until: Annotated[str | None, Query(description="ISO 8601 or epoch ns; exclusive")] = None,
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
    q: Annotated[
        str | None, Query(max_length=500, description="words to find in input or output")
    ] = None,
) -> queries.Filters:
    return queries.Filters(
        since=_time(since, "since"),
        until=_time(until, "until"),
        name=name,
        type=type,
        status=status,
        model=model,
        tags=tag,
        metadata=_metadata_pairs(metadata),
        session_id=session_id,
        user_id=user_id,
        trace_id=trace_id,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        min_cost=min_cost,
        max_cost=max_cost,
        score=score,
        min_score=min_score,
        max_score=max_score,
        q=q,
    )


def project_id_for(conn: Connection, who: Principal, project: str) -> int:
    project_id = project_store.get_id(conn, project) if who.may_see(project) else None
    if project_id is None:
        raise ApiError(404, "not_found", f"project {project!r} does not exist")
    return project_id


@router.get("/projects", summary="List projects with span and trace counts")
def list_projects(
    request: Request,
    who: Principal = Depends(principal),
    limit: Limit = 100,
    cursor: str | None = None,
) -> JSON:
    names = None if who.project is None else {who.project}
    with runtime_of(request).engine.connect() as conn:
        items = project_store.list_projects(conn, names=names, limit=limit + 1, after=cursor)
    more = len(items) > limit
    items = items[:limit]
    return JSON({"items": items, "next_cursor": items[-1]["name"] if more else None})


class ProjectUpdate(BaseModel):
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
    request: Request, project: str, body: ProjectUpdate, who: Principal = Depends(principal)
) -> JSON:
    who.require("admin")
    runtime = runtime_of(request)
    with runtime.updates.begin() as conn:
        project_id_for(conn, who, project)
        settings = project_store.update_settings(conn, project, body.settings)
    runtime.forget_prices(project)
    return JSON({"name": project, "settings": settings})


@router.get("/projects/{project}/traces", summary="List traces (root span, sums, scores)")
def list_traces(
    request: Request,
    project: str,
    f: queries.Filters = Depends(filters),
    who: Principal = Depends(principal),
    limit: Limit = 50,
    cursor: str | None = None,
    sort: Literal["start", "duration", "cost"] = "start",
    order: Literal["asc", "desc"] = "desc",
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        project_id = project_id_for(conn, who, project)
        page = queries.list_traces(
            conn, project_id, f, limit=limit, cursor=cursor, sort=sort, order=order
        )
    return JSON({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/projects/{project}/spans", summary="List spans")
def list_spans(
    request: Request,
    project: str,
    f: queries.Filters = Depends(filters),
    who: Principal = Depends(principal),
    limit: Limit = 50,
    cursor: str | None = None,
    sort: Literal["start", "duration", "cost"] = "start",
    order: Literal["asc", "desc"] = "desc",
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        project_id = project_id_for(conn, who, project)
        page = queries.list_spans(
            conn, project_id, f, limit=limit, cursor=cursor, sort=sort, order=order
        )
    return JSON({"items": page.items, "next_cursor": page.next_cursor})


def _trace_json(conn: Connection, who: Principal, project_id: int, trace_id: str) -> JSON:
    trace = queries.get_trace(conn, project_id, trace_id)
    if trace is None:
        raise ApiError(404, "not_found", f"trace {trace_id!r} does not exist")
    # The other side of a trace that crossed projects, named only to those who may read it.
    trace["linked_projects"] = [
        name
        for other_id, name in queries.projects_holding_trace(conn, trace_id)
        if other_id != project_id and who.may_see(name)
    ]
    return JSON(trace)


@router.get(
    "/projects/{project}/traces/{trace_id}",
    summary="One trace of a project: every span as a tree, with scores",
)
def get_project_trace(
    request: Request, project: str, trace_id: str, who: Principal = Depends(principal)
) -> JSON:
    with runtime_of(request).engine.connect() as conn:
        return _trace_json(conn, who, project_id_for(conn, who, project), trace_id.lower())


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
    who: Principal = Depends(principal),
    project: Annotated[str | None, Query(description="the project whose trace to read")] = None,
) -> JSON:
    trace_id = trace_id.lower()
    with runtime_of(request).engine.connect() as conn:
        if project:
            return _trace_json(conn, who, project_id_for(conn, who, project), trace_id)
        holders = [
            (project_id, name)
            for project_id, name in queries.projects_holding_trace(conn, trace_id)
            if who.may_see(name)
        ]
        if not holders:
            raise ApiError(404, "not_found", f"trace {trace_id!r} does not exist")
        if len(holders) > 1:
            names = ", ".join(repr(name) for _, name in holders)
            raise ApiError(
                409,
                "ambiguous_trace",
                f"trace {trace_id!r} is in several projects ({names}); read one with "
                f"/api/v1/projects/{quote(holders[0][1], safe='')}/traces/{trace_id} "
                "or add ?project=NAME",
            )
        return _trace_json(conn, who, holders[0][0], trace_id)


class ScoreIn(BaseModel):
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
    who: Principal = Depends(principal),
) -> JSON:
    who.require("annotator")
    if not who.may_see(project):
        raise ApiError(404, "not_found", f"project {project!r} does not exist")
    items = body if isinstance(body, list) else [body]
    if any(item.value is None and item.label is None for item in items):
        raise ApiError(400, "bad_request", "a score needs a value, a label, or both")
    with runtime_of(request).updates.begin() as conn:
        project_id = project_id_for(conn, who, project)
        try:
            ids = score_store.insert(conn, project_id, [item.model_dump() for item in items])
        except score_store.TargetMissing as missing:
            raise ApiError(404, "not_found", str(missing)) from None
    return JSON({"ids": ids}, status_code=201)
