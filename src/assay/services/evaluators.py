"""Evaluators stored on the server: LLM judges and parameterised built-in scorers, versioned.

A judge's stored definition is what `assay.judge` hashes into its version (prompt, choices,
model, options, verdict protocol), so a judge pushed from code (``judge.push(project)``,
``assay evaluators push FILE``) and the same judge edited in the browser have one version hash.
Every edit that changes the definition is a new version; scores keep the version they were
made with. "Try on this trace" renders the prompt and asks the model without saving anything.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assay import scorers as builtin_scorers
from assay.errors import NotFound, UserError
from assay.evals._scorer import Score, Scorer, to_scores
from assay.models import ModelError, Response
from assay.scorers.judges import PROTOCOL, Judge, judge
from assay.services.connections import ModelAccess, model_access, resolve_connection
from assay.services.egress import EgressRefused, guarded_client
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.services.runtime import Runtime
from assay.store import online as online_store
from assay.store.database import Connection
from assay.store.engine import now_ns

KINDS = ("judge", "builtin")
#: Built-in scorers an evaluator may name: the heuristic and trajectory ones (the judges are
#: made with kind "judge"; embeddings need a local model the server may not have).
BUILTINS: dict[str, Callable[..., Scorer]] = {
    name: getattr(builtin_scorers, name)
    for name in (
        "exact_match",
        "contains",
        "regex",
        "edit_similarity",
        "numeric_close",
        "json_valid",
        "json_schema",
        "json_diff",
        "list_overlap",
        "tool_called",
        "tool_not_called",
        "tool_order",
        "tool_args",
        "step_budget",
        "cost_budget",
        "latency_budget",
        "no_errors",
        "final_answer",
    )
}
#: Judge options a definition may carry besides prompt, choices and model.
JUDGE_OPTIONS: dict[str, Any] = {
    "use_reasoning": True,
    "system": None,
    "mode": "tool",
    "temperature": 0.0,
    "max_tokens": None,
    "variables": {},
    "model_settings": {},
}
PROVIDER_PREFIXES = ("openai", "anthropic", "mistral", "ollama", "openai-compatible", "mock")


# --- definitions ------------------------------------------------------------------------------


def make_judge(name: str, definition: Mapping[str, Any], **model_options: Any) -> Judge:
    """The `assay.judge` a stored definition describes (UserError naming what is wrong)."""
    protocol = definition.get("protocol", PROTOCOL)
    if not isinstance(protocol, list | tuple) or list(protocol) != list(PROTOCOL):
        raise UserError(
            "this judge was defined with another version of the verdict protocol than the "
            "server's: upgrade assay where the judge was pushed from, or on the server"
        )
    for key in ("prompt", "choices", "model"):
        if not definition.get(key):
            raise UserError(f"a judge evaluator needs {key!r}")
    if not isinstance(definition["prompt"], str) or not isinstance(definition["model"], str):
        raise UserError("a judge's prompt and model are text")
    settings = {k: v for k, v in (definition.get("model_settings") or {}).items() if v is not None}
    return judge(
        name,
        definition["prompt"],
        definition["choices"],
        definition["model"],
        bool(definition.get("use_reasoning", True)),
        system=definition.get("system"),
        mode=definition.get("mode", "tool"),
        temperature=definition.get("temperature", 0.0),
        max_tokens=definition.get("max_tokens"),
        variables=definition.get("variables") or {},
        model_options={**settings, **model_options},
    )


def make_builtin(name: str, definition: Mapping[str, Any]) -> Scorer:
    scorer_name = definition.get("scorer")
    factory = BUILTINS.get(str(scorer_name))
    if factory is None:
        raise UserError(
            f"built-in scorer {scorer_name!r} is not one of {', '.join(sorted(BUILTINS))}"
        )
    params = definition.get("params") or {}
    if not isinstance(params, dict):
        raise UserError("a built-in scorer's params are an object")
    if "name" in inspect.signature(factory).parameters:
        params = {**params, "name": name}
    try:
        return factory(**params)
    except TypeError as error:
        raise UserError(f"{scorer_name}: {error}") from None


def canonical(name: str, kind: str, definition: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The definition as stored, and its version hash (what `assay.judge` computes)."""
    if kind == "judge":
        made = make_judge(name, definition)
        stored = {k: v for k, v in made.definition.items() if k != "kind"}
        return stored, made.version
    if kind == "builtin":
        scorer = make_builtin(name, definition)
        stored = {"scorer": definition["scorer"], "params": dict(definition.get("params") or {})}
        return stored, scorer.version
    raise UserError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")


def judge_definition(fields: Mapping[str, Any], default_model: str | None) -> dict[str, Any]:
    """A judge definition from the API's flat fields (prompt, choices, model, options)."""
    definition = {k: fields[k] for k in ("prompt", "choices", "model") if fields.get(k)}
    definition.setdefault("model", default_model or "")
    for key, default in JUDGE_OPTIONS.items():
        value = fields.get(key)
        definition[key] = default if value is None else value
    return definition


# --- views ------------------------------------------------------------------------------------


def _view(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": found["id"],
        "project": found["project"],
        "name": found["name"],
        "kind": found["kind"],
        "connection_id": found["connection_id"],
        "version": found["version"],
        "version_hash": found["version_hash"],
        "definition": found["definition"],
        "created_ns": found["created_ns"],
        "updated_ns": found["updated_ns"],
    }


def _evaluator_of(conn: Connection, who: Principal, evaluator_id: int, role: str) -> dict[str, Any]:
    found = online_store.get_evaluator(conn, evaluator_id)
    if found is None or not who.may_see(found["project"]):
        raise NotFound(f"evaluator {evaluator_id} does not exist")
    who.require(found["project"], role)
    return found


def _default_model(conn: Connection, connection_id: int | None) -> str | None:
    if connection_id is None:
        return None
    found = online_store.connection_secret(conn, connection_id)
    return found["default_model"] if found else None


# --- use cases --------------------------------------------------------------------------------


def create_evaluator(
    rt: Runtime,
    who: Principal,
    project: str,
    *,
    name: str,
    kind: str,
    fields: Mapping[str, Any],
    connection: int | str | None,
) -> dict[str, Any]:
    """A new evaluator at version 1. ``fields``: a judge's prompt, choices, model and options,
    or a built-in's ``scorer`` and ``params``."""
    stamp = now_ns()
    with rt.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        if online_store.evaluator_by_name(conn, found, name) is not None:
            raise UserError(
                f"project {project!r} already has an evaluator named {name!r}; edit it instead"
            )
        connection_id = resolve_connection(conn, found, connection)
        definition = (
            judge_definition(fields, _default_model(conn, connection_id))
            if kind == "judge"
            else dict(fields)
        )
        stored, version_hash = canonical(name, kind, definition)
        evaluator_id = online_store.insert_evaluator(
            conn, found, name=name, kind=kind, connection_id=connection_id, created_ns=stamp
        )
        online_store.add_version(
            conn,
            evaluator_id,
            definition=stored,
            version_hash=version_hash,
            author=who.author,
            created_ns=stamp,
        )
        return _view(_evaluator_of(conn, who, evaluator_id, "editor"))


def update_evaluator(
    rt: Runtime,
    who: Principal,
    evaluator_id: int,
    *,
    fields: Mapping[str, Any],
    connection: int | str | None = None,
) -> dict[str, Any]:
    """Edit an evaluator: a changed definition is a new version; the same one is not."""
    stamp = now_ns()
    with rt.write() as conn:
        current = _evaluator_of(conn, who, evaluator_id, "editor")
        connection_id = current["connection_id"]
        if connection is not None:
            connection_id = resolve_connection(conn, current["project_id"], connection)
            online_store.set_evaluator_connection(conn, evaluator_id, connection_id)
        merged = {**current["definition"], **{k: v for k, v in fields.items() if v is not None}}
        stored, version_hash = canonical(current["name"], current["kind"], merged)
        if version_hash != current["version_hash"]:
            online_store.add_version(
                conn,
                evaluator_id,
                definition=stored,
                version_hash=version_hash,
                author=who.author,
                created_ns=stamp,
            )
        return _view(_evaluator_of(conn, who, evaluator_id, "editor"))


def push_evaluator(
    rt: Runtime,
    who: Principal,
    project: str,
    *,
    name: str,
    kind: str,
    definition: Mapping[str, Any],
    version_hash: str | None,
    connection: int | str | None,
) -> dict[str, Any]:
    """Store a judge defined in code under its name: created, or a new version if its hash
    differs from the current one. ``version_hash`` is what the code computed; the server's
    must agree (else the two sides run different assay versions)."""
    stored, computed = canonical(name, kind, definition)
    if version_hash and version_hash != computed:
        raise UserError(
            f"the server computes version {computed} for this judge, the code {version_hash}: "
            "the two run different assay versions; upgrade one of them"
        )
    stamp = now_ns()
    with rt.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        existing = online_store.evaluator_by_name(conn, found, name)
        connection_id = resolve_connection(conn, found, connection)
        if existing is None:
            evaluator_id = online_store.insert_evaluator(
                conn, found, name=name, kind=kind, connection_id=connection_id, created_ns=stamp
            )
        else:
            evaluator_id = existing["id"]
            if existing["kind"] != kind:
                raise UserError(f"evaluator {name!r} is a {existing['kind']}, not a {kind}")
            if connection_id is not None:
                online_store.set_evaluator_connection(conn, evaluator_id, connection_id)
        if existing is None or existing["version_hash"] != computed:
            online_store.add_version(
                conn,
                evaluator_id,
                definition=stored,
                version_hash=computed,
                author=who.author,
                created_ns=stamp,
            )
        return _view(_evaluator_of(conn, who, evaluator_id, "editor"))


def get_evaluator(rt: Runtime, who: Principal, evaluator_id: int) -> dict[str, Any]:
    """An evaluator with all its versions, newest first."""
    with rt.read() as conn:
        found = _view(_evaluator_of(conn, who, evaluator_id, "viewer"))
        found["versions"] = online_store.evaluator_versions_of(conn, evaluator_id)
    return found


def list_evaluators(rt: Runtime, who: Principal, project: str) -> list[dict[str, Any]]:
    with rt.read() as conn:
        return [
            _view(e) for e in online_store.list_evaluators(conn, project_id(conn, who, project))
        ]


# --- running one ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One evaluator's work on one item: the score, or why there is none."""

    score: Score | None = None
    error: str | None = None
    #: A provider error worth trying again later (429, 5xx, a connection that dropped).
    retryable: bool = False
    cost: float | None = None
    prompt: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)


def _egress_refusal(error: BaseException) -> EgressRefused | None:
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, EgressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def bare_model(model: str) -> str:
    prefix, slash, rest = model.partition("/")
    return rest if slash and prefix in PROVIDER_PREFIXES else model


def runnable_judge(
    rt: Runtime, name: str, definition: Mapping[str, Any], access: ModelAccess, timeout: float
) -> Judge:
    """The judge wired to a connection: its key, only to its saved base URL, through the
    egress policy, with no retries of its own (the job queue retries, visibly)."""
    rt.egress.check_url(access.base_url)
    model = f"{access.provider}/{bare_model(str(definition.get('model') or ''))}"
    stored = {**definition, "model": model}
    return make_judge(
        name,
        stored,
        base_url=access.base_url,
        api_key=access.api_key or "no-key",
        http_client=guarded_client(rt.egress, timeout),
        retries=0,
        cache=False,
        timeout=timeout,
        max_concurrency=access.max_concurrency,
    )


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def run_judge(made: Judge, item: Mapping[str, Any], secret: str, prices: Any) -> Outcome:
    classifier = made.classifier
    values = classifier.values(item)
    outcome = Outcome()
    problem = classifier.missing(values)
    if problem is not None:
        outcome.error = problem
        return outcome
    asks = classifier.asks(values)
    outcome.prompt = [message for ask in asks for message in ask["messages"]]
    try:
        outcome.responses = [classifier.model.generate(**ask) for ask in asks]
    except ModelError as error:
        refused = _egress_refusal(error)
        outcome.error = _scrub(str(refused or error), secret)
        outcome.retryable = refused is None and error.retryable
        return outcome
    except EgressRefused as refused:
        outcome.error = str(refused)
        return outcome
    costs = []
    for response in outcome.responses:
        usage = response.usage
        cost = usage.cost
        if cost is None:
            cost = prices.cost(
                response.model,
                response.provider,
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_tokens,
            )
        costs.append(cost or 0.0)
    outcome.cost = sum(costs)
    score = classifier.score(values, outcome.responses)
    if score.error:
        outcome.error = _scrub(score.error, secret)
    else:
        outcome.score = score
    return outcome


def run_builtin(scorer: Scorer, item: Mapping[str, Any]) -> Outcome:
    arguments = scorer.arguments({**item, "expected": item.get("expected")})
    try:
        result = scorer.fn(**arguments)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        found = to_scores(scorer, result)
    except Exception as error:  # a scorer's bug is the job's error, shown on the rule
        return Outcome(error=f"{type(error).__name__}: {error}")
    if not found:
        return Outcome(error="the scorer skipped this item (it needs an expected value?)")
    first = found[0]
    if first.error:
        return Outcome(error=first.error)
    return Outcome(score=first, cost=0.0)


def try_evaluator(
    rt: Runtime,
    who: Principal,
    project: str,
    *,
    trace_id: str,
    span_id: str = "",
    evaluator_id: int | None = None,
    kind: str = "judge",
    fields: Mapping[str, Any] | None = None,
    connection: int | str | None = None,
) -> dict[str, Any]:
    """Run a stored evaluator (``evaluator_id``, with ``fields`` overriding its definition) or
    an unsaved one on one trace (or span) of the project: the rendered prompt, the verdict and
    the rationale. Nothing is stored; the call is paid for (editors and up)."""
    trace_id, span_id = trace_id.lower(), span_id.lower()
    with rt.read() as conn:
        found = project_id(conn, who, project, "editor")
        definition: dict[str, Any] = {}
        connection_id = None
        name = "try"
        if evaluator_id is not None:
            current = _evaluator_of(conn, who, evaluator_id, "editor")
            if current["project"] != project:
                raise NotFound(f"evaluator {evaluator_id} is not in project {project!r}")
            definition, kind = dict(current["definition"]), current["kind"]
            connection_id, name = current["connection_id"], current["name"]
        if connection is not None:
            connection_id = resolve_connection(conn, found, connection)
        if kind == "judge":
            given = {k: v for k, v in (fields or {}).items() if v is not None}
            definition = judge_definition(
                {**definition, **given}, _default_model(conn, connection_id)
            )
        else:
            definition = {**definition, **(fields or {})}
        item = online_store.judged_item(conn, found, trace_id, span_id)
        if item is None:
            what = f"span {span_id} of trace {trace_id}" if span_id else f"trace {trace_id}"
            raise NotFound(f"{what} is not in project {project!r}")
        access = model_access(rt, conn, connection_id) if connection_id else None
    stored, version_hash = canonical(name, kind, definition)
    if kind == "judge":
        if access is None:
            raise UserError("a judge needs a connection to call its model; name one")
        made = runnable_judge(rt, name, stored, access, timeout=60.0)
        outcome = run_judge(made, item, access.api_key, rt.prices_for(project))
    else:
        outcome = run_builtin(make_builtin(name, stored), item)
    score = outcome.score
    return {
        "version_hash": version_hash,
        "prompt": outcome.prompt,
        "label": score.label if score else None,
        "value": score.value if score else None,
        "rationale": score.rationale if score else None,
        "error": outcome.error,
        "cost": outcome.cost,
        "model": outcome.responses[0].model if outcome.responses else None,
    }
