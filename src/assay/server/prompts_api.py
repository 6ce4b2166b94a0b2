"""The prompt registry under /api/v1/projects/{project}/prompts: versions, labels, history,
undo and diffs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from assay.server.bounds import INT32_MAX, ApiModel, Count32
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import prompts
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1/projects/{project}/prompts", tags=["prompts"])

Who = Annotated[Principal, Depends(api_principal)]
PromptName = Annotated[str, Path(min_length=1, max_length=200)]
LabelName = Annotated[str, Path(min_length=1, max_length=100)]


class MessageIn(ApiModel):
    role: str = Field(description="system, user or assistant")
    content: str = Field(max_length=prompts.MAX_CONTENT_CHARS, description="a template")


class PromptIn(ApiModel):
    name: str = Field(min_length=1, max_length=200, pattern=prompts.NAME_PATTERN)
    messages: list[MessageIn] = Field(min_length=1, max_length=prompts.MAX_MESSAGES)
    model: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    response_format: dict[str, Any] | None = None
    message: str | None = Field(default=None, max_length=10_000, description="commit message")


class LabelIn(ApiModel):
    version: Annotated[Count32, Field(ge=1)]


@router.post("", status_code=201, summary="Save a version of a prompt (created on first save)")
def save_prompt(request: Request, project: str, body: PromptIn, who: Who) -> JSON:
    saved, created = prompts.save_version(
        runtime_of(request), who, project, body.model_dump(exclude_none=True)
    )
    return JSON({**saved, "created": created}, status_code=201 if created else 200)


@router.get("", summary="List a project's prompts with their latest version and labels")
def list_prompts(request: Request, project: str, who: Who) -> JSON:
    items = prompts.list_prompts(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/{name}", summary="One version: ?label=production, ?version=N, else the latest")
def get_prompt(
    request: Request,
    project: str,
    name: PromptName,
    who: Who,
    label: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> JSON:
    found = prompts.get_prompt(
        runtime_of(request), who, project, name, label=label, version=version
    )
    return JSON(found)


@router.get("/{name}/versions", summary="Every version of a prompt, newest first")
def list_versions(request: Request, project: str, name: PromptName, who: Who) -> JSON:
    items = prompts.list_versions(runtime_of(request), who, project, name)
    return JSON({"items": items, "next_cursor": None})


@router.get("/{name}/labels", summary="The labels and every move of them, newest first")
def label_history(
    request: Request,
    project: str,
    name: PromptName,
    who: Who,
    label: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> JSON:
    return JSON(prompts.label_history(runtime_of(request), who, project, name, label))


@router.put("/{name}/labels/{label}", summary="Point a label at a version (recorded)")
def move_label(
    request: Request, project: str, name: PromptName, label: LabelName, body: LabelIn, who: Who
) -> JSON:
    return JSON(prompts.move_label(runtime_of(request), who, project, name, label, body.version))


@router.post("/{name}/labels/{label}/undo", summary="Undo the label's latest move")
def undo_label(
    request: Request, project: str, name: PromptName, label: LabelName, who: Who
) -> JSON:
    return JSON(prompts.undo_label(runtime_of(request), who, project, name, label))


@router.get("/{name}/diff", summary="What changed between two versions")
def diff_versions(
    request: Request,
    project: str,
    name: PromptName,
    who: Who,
    old: Annotated[int, Query(alias="from", ge=1, le=INT32_MAX)],
    new: Annotated[int, Query(alias="to", ge=1, le=INT32_MAX)],
) -> JSON:
    return JSON(prompts.diff_versions(runtime_of(request), who, project, name, old, new))
