"""Online scoring under /api/v1: provider connections, evaluators, rules and backfills."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from assay.errors import UserError
from assay.server.bounds import INT32_MAX, ApiModel, RowId
from assay.server.responses import JSON
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import connections, evaluators, rules
from assay.services.filters import parse_time
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["online scoring"])

Name = Field(min_length=1, max_length=200)


# --- connections ------------------------------------------------------------------------------


#: A connection or evaluator named by id or by name.
Ref = (
    Annotated[int, Field(ge=1, le=INT32_MAX)] | Annotated[str, Field(min_length=1, max_length=200)]
)


class ConnectionIn(ApiModel):
    name: str = Name
    provider: Literal["openai", "anthropic", "mistral", "ollama", "openai-compatible"]
    base_url: str | None = Field(default=None, max_length=2000)
    api_key: str | None = Field(default=None, max_length=1000)
    default_model: str | None = Field(default=None, max_length=200)
    max_concurrency: int = Field(default=4, ge=1, le=256)


class ConnectionChange(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    provider: Literal["openai", "anthropic", "mistral", "ollama", "openai-compatible"] | None = None
    base_url: str | None = Field(default=None, max_length=2000)
    api_key: str | None = Field(default=None, max_length=1000)
    default_model: str | None = Field(default=None, max_length=200)
    max_concurrency: int | None = Field(default=None, ge=1, le=256)


@router.post(
    "/projects/{project}/connections", status_code=201, summary="Create a provider connection"
)
def create_connection(
    request: Request, project: str, body: ConnectionIn, who: Principal = Depends(api_principal)
) -> JSON:
    made = connections.create_connection(runtime_of(request), who, project, **body.model_dump())
    return JSON(made, status_code=201)


@router.get("/projects/{project}/connections", summary="List connections (never their keys)")
def list_connections(
    request: Request, project: str, who: Principal = Depends(api_principal)
) -> JSON:
    items = connections.list_connections(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/connections/{connection_id}", summary="One connection (never its key)")
def get_connection(
    request: Request, connection_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    return JSON(connections.get_connection(runtime_of(request), who, connection_id))


@router.patch(
    "/connections/{connection_id}",
    summary="Change a connection; a new base URL needs the API key again",
)
def update_connection(
    request: Request,
    connection_id: RowId,
    body: ConnectionChange,
    who: Principal = Depends(api_principal),
) -> JSON:
    changes = body.model_dump(exclude_unset=True)
    return JSON(connections.update_connection(runtime_of(request), who, connection_id, changes))


@router.delete("/connections/{connection_id}", status_code=204, summary="Delete a connection")
def delete_connection(
    request: Request, connection_id: RowId, who: Principal = Depends(api_principal)
) -> Response:
    connections.delete_connection(runtime_of(request), who, connection_id)
    return Response(status_code=204)


# --- evaluators -------------------------------------------------------------------------------


class JudgeFields(ApiModel):
    prompt: str | None = Field(default=None, max_length=100_000)
    choices: dict[str, float] | None = None
    model: str | None = Field(default=None, max_length=200)
    use_reasoning: bool | None = None
    system: str | None = Field(default=None, max_length=100_000)
    mode: Literal["tool", "json"] | None = None
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    variables: dict[str, Any] | None = None
    # A built-in scorer: its name and parameters.
    scorer: str | None = Field(default=None, max_length=100)
    params: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class EvaluatorIn(JudgeFields):
    name: str = Name
    kind: Literal["judge", "builtin"] = "judge"
    connection: Ref | None = None


class EvaluatorChange(JudgeFields):
    connection: Ref | None = None


class EvaluatorPush(ApiModel):
    name: str = Name
    kind: Literal["judge", "builtin"] = "judge"
    definition: dict[str, Any]
    version: str | None = Field(default=None, max_length=64)
    connection: Ref | None = None


class TryIn(JudgeFields):
    trace_id: str = Field(min_length=1, max_length=32)
    span_id: str = Field(default="", max_length=16)
    evaluator_id: int | None = Field(default=None, ge=1, le=INT32_MAX)
    kind: Literal["judge", "builtin"] = "judge"
    connection: Ref | None = None


@router.post("/projects/{project}/evaluators", status_code=201, summary="Create an evaluator")
def create_evaluator(
    request: Request, project: str, body: EvaluatorIn, who: Principal = Depends(api_principal)
) -> JSON:
    fields = body.fields()
    for key in ("name", "kind", "connection"):
        fields.pop(key, None)
    made = evaluators.create_evaluator(
        runtime_of(request),
        who,
        project,
        name=body.name,
        kind=body.kind,
        fields=fields,
        connection=body.connection,
    )
    return JSON(made, status_code=201)


@router.get("/projects/{project}/evaluators", summary="List a project's evaluators")
def list_evaluators(
    request: Request, project: str, who: Principal = Depends(api_principal)
) -> JSON:
    items = evaluators.list_evaluators(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.post(
    "/projects/{project}/evaluators/push",
    summary="Store a judge defined in code (same definition, same version hash)",
)
def push_evaluator(
    request: Request, project: str, body: EvaluatorPush, who: Principal = Depends(api_principal)
) -> JSON:
    made = evaluators.push_evaluator(
        runtime_of(request),
        who,
        project,
        name=body.name,
        kind=body.kind,
        definition=body.definition,
        version_hash=body.version,
        connection=body.connection,
    )
    return JSON(made)


@router.post(
    "/projects/{project}/evaluators/try",
    summary="Try an evaluator on one trace: the rendered prompt, verdict and rationale; "
    "nothing is saved",
)
def try_evaluator(
    request: Request, project: str, body: TryIn, who: Principal = Depends(api_principal)
) -> JSON:
    fields = body.fields()
    for key in ("trace_id", "span_id", "evaluator_id", "kind", "connection"):
        fields.pop(key, None)
    result = evaluators.try_evaluator(
        runtime_of(request),
        who,
        project,
        trace_id=body.trace_id,
        span_id=body.span_id,
        evaluator_id=body.evaluator_id,
        kind=body.kind,
        fields=fields,
        connection=body.connection,
    )
    return JSON(result)


@router.get("/evaluators/{evaluator_id}", summary="One evaluator with its versions")
def get_evaluator(
    request: Request, evaluator_id: RowId, who: Principal = Depends(api_principal)
) -> JSON:
    return JSON(evaluators.get_evaluator(runtime_of(request), who, evaluator_id))


@router.patch("/evaluators/{evaluator_id}", summary="Edit an evaluator: a new version")
def update_evaluator(
    request: Request,
    evaluator_id: RowId,
    body: EvaluatorChange,
    who: Principal = Depends(api_principal),
) -> JSON:
    fields = body.fields()
    fields.pop("connection", None)
    changed = evaluators.update_evaluator(
        runtime_of(request), who, evaluator_id, fields=fields, connection=body.connection
    )
    return JSON(changed)


# --- rules ------------------------------------------------------------------------------------


class ActionIn(ApiModel):
    """Add what the rule's judges scored to a review queue: when the judge disagrees with
    end-user feedback, cannot decide (an error, a tie), or as a random share."""

    when: Literal["disagrees_with_feedback", "undecided", "sample"]
    queue: Ref
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    feedback: str | None = Field(default=None, min_length=1, max_length=200)
    pass_at: float | None = Field(default=None, ge=-1e12, le=1e12)
    feedback_pass_at: float | None = Field(default=None, ge=-1e12, le=1e12)


def _actions(given: list[ActionIn] | None) -> list[dict[str, Any]] | None:
    if given is None:
        return None
    return [action.model_dump(exclude_none=True) for action in given]


class RuleIn(ApiModel):
    name: str = Name
    evaluators: list[Ref] = Field(min_length=1, max_length=50)
    target: Literal["trace", "span"] = "trace"
    span_type: str | None = Field(default=None, max_length=32)
    span_name: str | None = Field(default=None, max_length=1000)
    filter: dict[str, Any] = Field(default_factory=dict)
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    delay_seconds: int = Field(default=60, ge=0, le=7 * 86_400)
    daily_budget_usd: float | None = Field(default=None, ge=0)
    calls_per_minute: int | None = Field(default=None, ge=1, le=INT32_MAX)
    enabled: bool = True
    actions: list[ActionIn] | None = Field(default=None, max_length=rules.MAX_ACTIONS)


class RuleChange(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    evaluators: list[Ref] | None = Field(default=None, min_length=1, max_length=50)
    span_type: str | None = Field(default=None, max_length=32)
    span_name: str | None = Field(default=None, max_length=1000)
    filter: dict[str, Any] | None = None
    sample_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    delay_seconds: int | None = Field(default=None, ge=0, le=7 * 86_400)
    daily_budget_usd: float | None = Field(default=None, ge=0)
    calls_per_minute: int | None = Field(default=None, ge=1, le=INT32_MAX)
    enabled: bool | None = None
    actions: list[ActionIn] | None = Field(default=None, max_length=rules.MAX_ACTIONS)


class BackfillIn(ApiModel):
    since: str | None = None
    until: str | None = None
    preview: bool = False


@router.post("/projects/{project}/rules", status_code=201, summary="Create an online rule")
def create_rule(
    request: Request, project: str, body: RuleIn, who: Principal = Depends(api_principal)
) -> JSON:
    fields = {**body.model_dump(), "actions": _actions(body.actions)}
    made = rules.create_rule(runtime_of(request), who, project, fields)
    return JSON(made, status_code=201)


@router.get("/projects/{project}/rules", summary="A project's rules with their status")
def list_rules(request: Request, project: str, who: Principal = Depends(api_principal)) -> JSON:
    items = rules.list_rules(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/rules/{rule_id}", summary="One rule with its status counts, spend and pause")
def get_rule(request: Request, rule_id: RowId, who: Principal = Depends(api_principal)) -> JSON:
    return JSON(rules.get_rule(runtime_of(request), who, rule_id))


@router.patch("/rules/{rule_id}", summary="Change a rule (enabled: false pauses it)")
def update_rule(
    request: Request, rule_id: RowId, body: RuleChange, who: Principal = Depends(api_principal)
) -> JSON:
    changes = body.model_dump(exclude_unset=True)
    if "actions" in changes:
        changes["actions"] = _actions(body.actions)
    return JSON(rules.update_rule(runtime_of(request), who, rule_id, changes))


def _time(field: str, value: str | None) -> int | None:
    if value is None:
        return None
    found = parse_time(value)
    if found is None:
        raise UserError(f"{field}: {value!r} is not a time; use ISO 8601 or epoch nanoseconds")
    return found


@router.post(
    "/rules/{rule_id}/backfill",
    summary="Score older traces in [since, until): preview the count and cost, or start",
)
def backfill(
    request: Request, rule_id: RowId, body: BackfillIn, who: Principal = Depends(api_principal)
) -> JSON:
    result = rules.backfill(
        runtime_of(request),
        who,
        rule_id,
        since_ns=_time("since", body.since),
        until_ns=_time("until", body.until),
        preview=body.preview,
    )
    return JSON(result, status_code=200 if body.preview else 202)
