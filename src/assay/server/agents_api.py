"""Agent endpoints under /api/v1: register the team's agent (`assay agent serve` does), list,
delete, run once with overrides, run over a dataset as an experiment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from assay.server.bounds import INT32_MAX, ApiModel, RowId
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import agents, playground
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["agents"])

Who = Annotated[Principal, Depends(api_principal)]


class AgentIn(ApiModel):
    name: str = Field(min_length=1, max_length=200, pattern=agents.NAME_PATTERN)
    url: str = Field(min_length=1, max_length=agents.MAX_URL_CHARS)
    target: str | None = Field(default=None, max_length=500)


class HeartbeatIn(ApiModel):
    online: bool = True


class PromptOverride(ApiModel):
    version: int | None = Field(default=None, ge=1, le=INT32_MAX)
    label: str | None = Field(default=None, min_length=1, max_length=100)
    messages: list[dict[str, Any]] | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    response_format: dict[str, Any] | None = None


class Overrides(ApiModel):
    prompts: dict[str, PromptOverride] = Field(default_factory=dict, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class RunIn(ApiModel):
    input: Any = None
    overrides: Overrides = Field(default_factory=Overrides)


class DatasetRunIn(ApiModel):
    dataset: str = Field(min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1, le=INT32_MAX)
    overrides: Overrides = Field(default_factory=Overrides)
    scorers: list[str | dict[str, Any]] = Field(default_factory=list, max_length=20)
    evaluators: list[Annotated[int, Field(ge=1, le=INT32_MAX)] | str] = Field(
        default_factory=list, max_length=20
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)


def _overrides(given: Overrides) -> dict[str, Any]:
    return given.model_dump(exclude_none=True, exclude_defaults=True)


@router.post(
    "/projects/{project}/agents",
    status_code=201,
    summary="Register an agent endpoint (again: a new URL and token); the token is shown once",
)
def register_agent(request: Request, project: str, body: AgentIn, who: Who) -> JSON:
    made = agents.register_agent(
        runtime_of(request), who, project, name=body.name, url=body.url, target=body.target
    )
    return JSON(made, status_code=201)


@router.get("/projects/{project}/agents", summary="List agent endpoints with their status")
def list_agents(request: Request, project: str, who: Who) -> JSON:
    return JSON(
        {"items": agents.list_agents(runtime_of(request), who, project), "next_cursor": None}
    )


@router.delete("/agents/{agent_id}", status_code=204, summary="Forget an agent endpoint")
def delete_agent(request: Request, agent_id: RowId, who: Who) -> Response:
    agents.delete_agent(runtime_of(request), who, agent_id)
    return Response(status_code=204)


@router.post("/agents/{agent_id}/heartbeat", summary="The serving process is up, or stopping")
def heartbeat(request: Request, agent_id: RowId, body: HeartbeatIn, who: Who) -> JSON:
    return JSON(agents.heartbeat(runtime_of(request), who, agent_id, body.online))


@router.post(
    "/agents/{agent_id}/runs",
    summary="Run the agent once on an input, with prompt versions and parameters overridden",
)
async def run_agent(request: Request, agent_id: RowId, body: RunIn, who: Who) -> JSON:
    result = await run_in_threadpool(
        agents.run_agent,
        runtime_of(request),
        who,
        None,
        agent_id,
        body.input,
        _overrides(body.overrides),
    )
    return JSON(result)


@router.post(
    "/agents/{agent_id}/dataset-runs",
    status_code=202,
    summary="Run the agent over a dataset version, stored as an experiment (runs in the "
    "background: follow the experiment; 409 while the server runs two already)",
)
async def run_on_dataset(request: Request, agent_id: RowId, body: DatasetRunIn, who: Who) -> JSON:
    experiment = await run_in_threadpool(
        lambda: playground.run_agent_on_dataset(
            runtime_of(request),
            who,
            None,
            agent_id,
            body.dataset,
            body.version,
            _overrides(body.overrides),
            body.scorers,
            body.evaluators,
            name=body.name,
            wait=False,
        )
    )
    return JSON({"experiment_id": experiment["id"], "experiment": experiment}, status_code=202)
