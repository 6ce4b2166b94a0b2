"""The playground: try a prompt (a registry version, or a draft being edited) on one input with
the answer streaming in, run it over a whole dataset version as an experiment, compare versions.

What runs the prompt is a **target**. The one here is the bare model through a project's
provider connection (`ModelTarget`); the team's own agent served by ``assay agent serve``
(services/agents.py) plugs in as another target with the same protocol:

    class Target(Protocol):
        #: Shown on the experiment ("model: openai-compatible/gpt-4o-mini", "agent: support").
        label: str

        def run(
            self, inputs: Mapping[str, Any], prompt: PromptDraft, params: Mapping[str, Any]
        ) -> RunOutput: ...

    # Optional: a target that can stream also has
        def stream(
            self, inputs: Mapping[str, Any], prompt: PromptDraft, params: Mapping[str, Any]
        ) -> Iterator[str | RunOutput]: ...
    # yielding text pieces as they arrive and, last, the whole RunOutput.

- ``inputs``: the variables of one case: what the user typed, or a dataset record's input (an
  object's keys are the variables; any other value is the variable ``input``).
- ``prompt``: the `PromptDraft` to run: messages (templates), model, params, tools, response
  format, and the registry name and version it came from (None for an unsaved draft).
- ``params``: the playground's overrides of ``prompt.params`` (temperature, max_tokens, ...).
- ``RunOutput``: ``output`` (text, or JSON data), ``trace_id`` (the run's trace, if the target
  records one: the agent's does), ``error`` (a message, and then no output), ``usage``
  (tokens and cost), ``latency_ms``.

``run`` never raises for a failure of one case: it returns a RunOutput with ``error``; the
dataset run stores that row with its error and goes on. It may raise `UserError` for a mistake
that fails every case alike (a template that cannot be rendered). It is called from worker
threads, up to `MAX_PARALLEL` at once. A target without ``stream`` is run and shown whole.

Roles: annotators and editors run the playground (single runs and dataset runs, which store an
experiment); editors save versions and move labels (services/prompts.py checks that).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from assay.errors import Conflict, NotFound, UserError
from assay.evals import summarise
from assay.evals._scorer import Scorer
from assay.evals.rows import jsonable
from assay.evals.summary import summary_dict
from assay.models import ModelError
from assay.models._sdk import as_model_error, load
from assay.scorers._template import PromptTemplate
from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.services import evaluators, prompts
from assay.services.connections import ModelAccess, model_access, resolve_connection
from assay.services.egress import EgressRefused, guarded_client
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.services.runtime import Runtime
from assay.store import datasets as dataset_store
from assay.store import experiments as experiment_store
from assay.store import online as online_store
from assay.store import prompts as prompt_store
from assay.store.database import Connection

log = logging.getLogger("assay.playground")

#: Who may run the playground (a paid model call; a dataset run stores an experiment).
RUN_ROLE = "annotator"
#: A dataset run covers at most this many records; larger datasets run with ``assay eval``.
MAX_RUN_RECORDS = 1000
#: Cases of one dataset run in flight at once (and never more than the connection allows).
MAX_PARALLEL = 4
#: Dataset runs going at once in this server process; another waits this long for one of
#: them to end, and is then refused (409).
MAX_BACKGROUND_RUNS = 2
RUN_SLOT_WAIT_S = 10.0
#: Rows are stored in batches of this many, so the page's progress moves as they finish.
ROW_BATCH = 5
#: Versions shown side by side on the same inputs.
MAX_SIDE_BY_SIDE = 3
#: Built-in scorers a dataset run may use without a stored evaluator (they need no settings).
QUICK_SCORERS = ("exact_match", "edit_similarity", "contains", "json_valid", "numeric_close")
#: Parameters passed on to the provider; others are refused with their names.
PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
)
CALL_TIMEOUT_S = 120.0
#: Anthropic needs a max_tokens; this is used when the prompt sets none.
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024
EVAL_PREFIX = "playground:"


# --- the protocol ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptDraft:
    """A prompt to run: a stored version (``name`` and ``version`` set) or a draft."""

    messages: tuple[Mapping[str, str], ...]
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    tools: Sequence[Mapping[str, Any]] | None = None
    response_format: Mapping[str, Any] | None = None
    name: str | None = None
    version: int | None = None
    variables: tuple[str, ...] = ()

    def definition(self) -> dict[str, Any]:
        """What a saved version of this draft holds (services/prompts.py's check_definition)."""
        return {
            "messages": [dict(m) for m in self.messages],
            "model": self.model,
            "params": dict(self.params),
            "tools": list(self.tools) if self.tools is not None else None,
            "response_format": dict(self.response_format) if self.response_format else None,
        }


@dataclass(frozen=True)
class RunUsage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None


@dataclass(frozen=True)
class RunOutput:
    """What a target answered for one case (``error`` set: it failed, and why)."""

    output: Any = None
    trace_id: str | None = None
    error: str | None = None
    usage: RunUsage = field(default_factory=RunUsage)
    latency_ms: float | None = None
    model: str | None = None


@runtime_checkable
class Target(Protocol):
    label: str

    def run(
        self, inputs: Mapping[str, Any], prompt: PromptDraft, params: Mapping[str, Any]
    ) -> RunOutput: ...


@runtime_checkable
class StreamingTarget(Target, Protocol):
    def stream(
        self, inputs: Mapping[str, Any], prompt: PromptDraft, params: Mapping[str, Any]
    ) -> Iterator[str | RunOutput]: ...


# --- drafts and their variables -------------------------------------------------------------


def make_draft(raw: Mapping[str, Any], *, name: str | None, version: int | None) -> PromptDraft:
    """A draft from the playground's fields, checked as a version would be (templates too)."""
    definition, variables = prompts.check_definition(dict(raw))
    return PromptDraft(
        messages=tuple(definition["messages"]),
        model=definition["model"],
        params=definition["params"],
        tools=definition["tools"],
        response_format=definition["response_format"],
        name=name,
        version=version,
        variables=tuple(variables),
    )


def _stored_draft(conn: Connection, pid: int, name: str, version: int | None) -> PromptDraft:
    found = prompt_store.find(conn, pid, name)
    if found is None:
        raise NotFound(f"prompt {name!r} does not exist")
    prompt_id = int(found["id"])
    chosen = version or int(found["version"])
    stored = prompt_store.get_version(conn, prompt_id, chosen)
    if stored is None:
        raise NotFound(f"prompt {name!r} has no version {chosen}")
    return make_draft(stored, name=name, version=chosen)


def _pinned(conn: Connection, pid: int, draft: PromptDraft) -> PromptDraft:
    """The draft with its version kept only when it is exactly that stored version (an edited
    draft of v2 is not v2: an experiment must not claim it was)."""
    if draft.name is None or draft.version is None:
        return replace(draft, version=None)
    found = prompt_store.find(conn, pid, draft.name)
    stored = prompt_store.get_version(conn, int(found["id"]), draft.version) if found else None
    if stored is None:
        return replace(draft, version=None)
    same = all(stored.get(key) == value for key, value in draft.definition().items())
    return draft if same else replace(draft, version=None)


def case_variables(record_input: Any) -> dict[str, Any]:
    """A dataset record's input as the prompt's variables: an object's keys, else ``input``."""
    if isinstance(record_input, Mapping):
        return {str(k): v for k, v in record_input.items()}
    return {"input": record_input}


def render_messages(draft: PromptDraft, inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    """The messages with the variables filled in, in the judges' sandbox (UserError naming a
    missing variable or what the template tried)."""
    missing = [name for name in draft.variables if inputs.get(name) is None]
    if missing:
        raise UserError(
            f"no value for {', '.join(missing)}: fill the variables, or pick a record whose "
            "input has these keys"
        )
    where = f"prompt {draft.name!r}" if draft.name else "the prompt"
    rendered = []
    for i, message in enumerate(draft.messages):
        template = PromptTemplate(
            message["content"],
            allowed=None,
            what=f"{where} messages[{i}] ({message['role']})",
            allow_empty=True,
        )
        rendered.append({"role": message["role"], "content": template.render(inputs)})
    return rendered


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise UserError(
            f"unknown model parameter {', '.join(unknown)}; the playground passes on "
            f"{', '.join(PARAMS)}"
        )
    return {k: v for k, v in params.items() if v is not None}


# --- the bare model through a connection ----------------------------------------------------


def _egress_refusal(error: BaseException | None) -> EgressRefused | None:
    for _ in range(10):
        if error is None or isinstance(error, EgressRefused):
            return error
        error = error.__cause__ or error.__context__
    return None


class ModelTarget:
    """The bare model: the prompt rendered and sent to ``model`` through a connection (its key,
    only to its saved base URL, through the egress policy), with no retries of its own."""

    def __init__(self, rt: Runtime, access: ModelAccess, model: str, project: str) -> None:
        self.rt = rt
        self.access = access
        self.model = evaluators.bare_model(model)
        self.project = project
        self.label = f"model: {access.provider}/{self.model}"
        #: Cases of a dataset run in flight at once: no more than the connection allows.
        self.max_parallel = access.max_concurrency
        rt.egress.check_url(access.base_url)

    # -- the two provider families --

    def _anthropic(self) -> bool:
        return self.access.provider == "anthropic"

    def _client(self) -> Any:
        http = guarded_client(self.rt.egress, CALL_TIMEOUT_S)
        key = self.access.api_key or "no-key"
        if self._anthropic():
            return load("anthropic", "anthropic").Anthropic(
                base_url=self.access.base_url, api_key=key, http_client=http, max_retries=0
            )
        return load("openai", "openai").OpenAI(
            base_url=self.access.base_url, api_key=key, http_client=http, max_retries=0
        )

    def _arguments(
        self, messages: list[dict[str, str]], prompt: PromptDraft, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        merged = check_params({**prompt.params, **params})
        if self._anthropic():
            system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
            arguments: dict[str, Any] = {
                "model": self.model,
                "messages": [m for m in messages if m["role"] != "system"],
                "max_tokens": int(merged.pop("max_tokens", ANTHROPIC_DEFAULT_MAX_TOKENS)),
            }
            if system:
                arguments["system"] = system
            if "stop" in merged:
                stop = merged.pop("stop")
                arguments["stop_sequences"] = [stop] if isinstance(stop, str) else stop
            for dropped in ("seed", "presence_penalty", "frequency_penalty"):
                merged.pop(dropped, None)
            if prompt.tools:
                arguments["tools"] = list(prompt.tools)
            return {**arguments, **merged}
        arguments = {"model": self.model, "messages": messages, **merged}
        if "max_tokens" in arguments and self.access.provider == "openai":
            arguments["max_completion_tokens"] = arguments.pop("max_tokens")
        if prompt.tools:
            arguments["tools"] = list(prompt.tools)
        if prompt.response_format:
            arguments["response_format"] = dict(prompt.response_format)
        return arguments

    def _failure(self, error: Exception, started: float) -> RunOutput:
        refused = _egress_refusal(error)
        if refused is None and not isinstance(error, ModelError):
            sdk = "anthropic" if self._anthropic() else "openai"
            error = as_model_error(load(sdk, sdk), error, self.access.provider, self.model)
        text = str(refused or error) or type(error).__name__
        if self.access.api_key:
            text = text.replace(self.access.api_key, "***")
        return RunOutput(error=text[:2000], latency_ms=(time.monotonic() - started) * 1000)

    def _cost(self, model: str | None, usage: RunUsage, cached: int = 0) -> float | None:
        if usage.input_tokens is None and usage.output_tokens is None:
            return None
        cost: float | None = self.rt.prices_for(self.project).cost(
            model or self.model,
            self.access.provider,
            usage.input_tokens or 0,
            usage.output_tokens or 0,
            cached,
        )
        return cost

    def run(
        self, inputs: Mapping[str, Any], prompt: PromptDraft, params: Mapping[str, Any]
    ) -> RunOutput:
        final: RunOutput | None = None
        for piece in self._call(render_messages(prompt, inputs), prompt, params, stream=False):
            if isinstance(piece, RunOutput):
                final = piece
        assert final is not None
        return final

    def stream(
        self, inputs: Mapping[str, Any], prompt: PromptDraft, params: Mapping[str, Any]
    ) -> Iterator[str | RunOutput]:
        messages = render_messages(prompt, inputs)  # a template error fails before any call
        return self._call(messages, prompt, params, stream=True)

    def _call(
        self,
        messages: list[dict[str, str]],
        prompt: PromptDraft,
        params: Mapping[str, Any],
        *,
        stream: bool,
    ) -> Iterator[str | RunOutput]:
        arguments = self._arguments(messages, prompt, params)
        started = time.monotonic()
        try:
            client = self._client()
            if self._anthropic():
                yield from self._anthropic_call(client, arguments, stream, started)
            else:
                yield from self._openai_call(client, arguments, stream, started)
        except EgressRefused as refused:
            yield RunOutput(error=str(refused), latency_ms=(time.monotonic() - started) * 1000)
        except Exception as error:  # the provider's or the network's: this case's error
            yield self._failure(error, started)

    def _openai_call(
        self, client: Any, arguments: dict[str, Any], stream: bool, started: float
    ) -> Iterator[str | RunOutput]:
        if not stream:
            completion = client.chat.completions.create(**arguments, timeout=CALL_TIMEOUT_S)
            choice = completion.choices[0] if completion.choices else None
            message = choice.message if choice else None
            calls = [
                {"name": c.function.name, "arguments": c.function.arguments}
                for c in (message.tool_calls or [] if message else [])
                if getattr(c, "function", None) is not None
            ]
            text = (message.content if message else None) or ""
            usage = _openai_usage(completion.usage)
            yield self._finished(text, calls, usage, completion.model, started)
            return
        chunks = client.chat.completions.create(
            **arguments,
            stream=True,
            stream_options={"include_usage": True},
            timeout=CALL_TIMEOUT_S,
        )
        parts: list[str] = []
        calls_by_index: dict[int, dict[str, str]] = {}
        usage, model = RunUsage(), None
        for chunk in chunks:
            model = getattr(chunk, "model", None) or model
            if getattr(chunk, "usage", None) is not None:
                usage = _openai_usage(chunk.usage)
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    parts.append(delta.content)
                    yield delta.content
                for call in delta.tool_calls or []:
                    slot = calls_by_index.setdefault(call.index, {"name": "", "arguments": ""})
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
        calls = [calls_by_index[i] for i in sorted(calls_by_index)]
        yield self._finished("".join(parts), calls, usage, model, started)

    def _anthropic_call(
        self, client: Any, arguments: dict[str, Any], stream: bool, started: float
    ) -> Iterator[str | RunOutput]:
        if not stream:
            message = client.messages.create(**arguments, timeout=CALL_TIMEOUT_S)
            text = "".join(b.text for b in message.content if b.type == "text")
            calls = [
                {"name": b.name, "arguments": b.input}
                for b in message.content
                if b.type == "tool_use"
            ]
            usage = _anthropic_usage(message.usage)
            yield self._finished(text, calls, usage, message.model, started)
            return
        events = client.messages.create(**arguments, stream=True, timeout=CALL_TIMEOUT_S)
        parts: list[str] = []
        input_tokens = output_tokens = None
        model = None
        for event in events:
            if event.type == "message_start":
                model = event.message.model
                input_tokens = _anthropic_usage(event.message.usage).input_tokens
            elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
                yield event.delta.text
            elif event.type == "message_delta" and event.usage is not None:
                output_tokens = event.usage.output_tokens
        usage = RunUsage(input_tokens=input_tokens, output_tokens=output_tokens)
        yield self._finished("".join(parts), [], usage, model, started)

    def _finished(
        self,
        text: str,
        calls: list[dict[str, Any]],
        usage: RunUsage,
        model: str | None,
        started: float,
    ) -> RunOutput:
        output: Any = {"text": text, "tool_calls": calls} if calls else text
        return RunOutput(
            output=output,
            usage=replace(usage, cost=self._cost(model, usage)),
            latency_ms=(time.monotonic() - started) * 1000,
            model=model,
        )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _openai_usage(usage: Any) -> RunUsage:
    if usage is None:
        return RunUsage()
    return RunUsage(
        input_tokens=_count(getattr(usage, "prompt_tokens", None)),
        output_tokens=_count(getattr(usage, "completion_tokens", None)),
    )


def _anthropic_usage(usage: Any) -> RunUsage:
    if usage is None:
        return RunUsage()
    counted = [
        _count(getattr(usage, name, None)) or 0
        for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    ]
    return RunUsage(
        input_tokens=sum(counted), output_tokens=_count(getattr(usage, "output_tokens", None))
    )


# --- the use cases --------------------------------------------------------------------------

#: How the playground makes a target: the lead wires the agent target in here.
TargetFactory = Callable[[Runtime, Connection, int, str, Mapping[str, Any]], Target]


def model_target(
    rt: Runtime, conn: Connection, pid: int, project: str, choice: Mapping[str, Any]
) -> Target:
    """The bare-model target of ``choice`` ({"connection": id or name, "model": ...})."""
    connection_id = resolve_connection(conn, pid, choice.get("connection"))
    if connection_id is None:
        raise UserError("choose a connection to call the model through (Judges → Connections)")
    access = model_access(rt, conn, connection_id)
    model = str(choice.get("model") or access.default_model or "").strip()
    if not model:
        raise UserError("choose a model (this connection has no default model)")
    return ModelTarget(rt, access, model, project)


@dataclass(frozen=True)
class RunRequest:
    """What a single run, a side-by-side or a dataset run is asked to run."""

    #: A draft's fields (messages, model, params, tools, response_format), or None: the stored
    #: version ``prompt``@``version`` as it is.
    draft: Mapping[str, Any] | None
    prompt: str | None
    version: int | None
    connection: int | str | None
    model: str | None
    params: Mapping[str, Any] = field(default_factory=dict)


def _prepare(
    rt: Runtime, conn: Connection, who: Principal, project: str, ask: RunRequest
) -> tuple[int, PromptDraft, Target]:
    pid = project_id(conn, who, project, RUN_ROLE)
    if ask.prompt is not None:
        prompts.check_name(ask.prompt)
    if ask.draft is None:
        if ask.prompt is None:
            raise UserError("give the prompt's messages, or name a saved prompt and version")
        draft = _stored_draft(conn, pid, ask.prompt, ask.version)
    else:
        draft = _pinned(conn, pid, make_draft(ask.draft, name=ask.prompt, version=ask.version))
    check_params(ask.params)
    model = ask.model or draft.model
    target = model_target(rt, conn, pid, project, {"connection": ask.connection, "model": model})
    return pid, draft, target


def stream_once(
    rt: Runtime, who: Principal, project: str, ask: RunRequest, inputs: Mapping[str, Any]
) -> Iterator[str | RunOutput]:
    """Run once on ``inputs`` (annotators and up): text pieces as they arrive, then the
    whole `RunOutput`. Mistakes that fail before the call (no connection, a variable without
    a value, a template that tries something unsafe) raise `UserError` here, before any piece."""
    with rt.read() as conn:
        _pid, draft, target = _prepare(rt, conn, who, project, ask)
    if isinstance(target, StreamingTarget):
        return target.stream(inputs, draft, ask.params)
    return iter([target.run(inputs, draft, ask.params)])


def run_once(
    rt: Runtime, who: Principal, project: str, ask: RunRequest, inputs: Mapping[str, Any]
) -> RunOutput:
    """`stream_once` waited for: the whole answer."""
    final = RunOutput(error="the target answered nothing")
    for piece in stream_once(rt, who, project, ask, inputs):
        if isinstance(piece, RunOutput):
            final = piece
    return final


def dataset_records(
    rt: Runtime, who: Principal, project: str, dataset: str, version: int | None, limit: int = 50
) -> dict[str, Any]:
    """The first records of a dataset version, to fill the variables from (annotators)."""
    with rt.read() as conn:
        pid = project_id(conn, who, project, RUN_ROLE)
        found = dataset_store.get(conn, pid, dataset)
        if found is None:
            raise NotFound(f"dataset {dataset!r} does not exist in {project!r}")
        pinned = int(found["version"]) if version is None else version
        if pinned > int(found["version"]):
            raise NotFound(f"dataset {dataset!r} has no version {pinned}")
        items, _next = dataset_store.records(conn, int(found["id"]), pinned, limit=limit)
    return {
        "dataset": dataset,
        "version": pinned,
        "records": [
            {
                "record_id": item["record_id"],
                "input": item["input"],
                "variables": case_variables(item["input"]),
                "expected": item["expected"],
            }
            for item in items
        ],
    }


# --- dataset runs ---------------------------------------------------------------------------

_RUN_SLOTS = threading.BoundedSemaphore(MAX_BACKGROUND_RUNS)
_RUNNING: dict[int, threading.Thread] = {}
_RUNNING_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Scoring:
    """One scorer of a dataset run: a built-in, or a stored evaluator (a judge calls its own
    connection)."""

    name: str
    builtin: Scorer | None = None
    judge: Any = None
    secret: str = ""


def _scorings(
    rt: Runtime, conn: Connection, pid: int, quick: Sequence[str], evaluator_ids: Sequence[int]
) -> list[_Scoring]:
    found: list[_Scoring] = []
    for name in quick:
        if name not in QUICK_SCORERS:
            raise UserError(f"scorer {name!r} is not one of {', '.join(QUICK_SCORERS)}")
        found.append(_Scoring(name, builtin=evaluators.make_builtin(name, {"scorer": name})))
    for evaluator_id in evaluator_ids:
        stored = online_store.get_evaluator(conn, evaluator_id)
        if stored is None or stored["project_id"] != pid:
            raise UserError(f"evaluator {evaluator_id} is not an evaluator of this project")
        name, definition = str(stored["name"]), dict(stored["definition"])
        if stored["kind"] == "builtin":
            found.append(_Scoring(name, builtin=evaluators.make_builtin(name, definition)))
            continue
        if stored["connection_id"] is None:
            raise UserError(f"judge {name!r} has no connection to call its model through")
        access = model_access(rt, conn, int(stored["connection_id"]))
        made = evaluators.runnable_judge(rt, name, definition, access, timeout=CALL_TIMEOUT_S)
        found.append(_Scoring(name, judge=made, secret=access.api_key))
    return found


def _score(rt: Runtime, project: str, scoring: _Scoring, item: dict[str, Any]) -> dict[str, Any]:
    if scoring.builtin is not None:
        outcome = evaluators.run_builtin(scoring.builtin, item)
    else:
        outcome = evaluators.run_judge(scoring.judge, item, scoring.secret, rt.prices_for(project))
    score = outcome.score
    return {
        "name": scoring.name,
        "value": score.value if score else None,
        "label": score.label if score else None,
        "rationale": score.rationale if score else None,
        "error": outcome.error,
    }


def start_dataset_run(
    rt: Runtime,
    who: Principal,
    project: str,
    ask: RunRequest,
    *,
    dataset: str,
    dataset_version: int | None,
    scorers: Sequence[str] = (),
    evaluator_ids: Sequence[int] = (),
    wait: bool = False,
) -> dict[str, Any]:
    """Run over every record of a dataset version (annotators and up), as an experiment: it is
    created now (status ``running``) and filled by a background thread, its rows stored as they
    finish; the answer is the experiment, at once (``wait``: when the run is over). At most
    `MAX_RUN_RECORDS` records; at most `MAX_BACKGROUND_RUNS` runs at once per server."""
    with rt.read() as conn:
        pid, draft, target = _prepare(rt, conn, who, project, ask)
        found = dataset_store.get(conn, pid, dataset)
        if found is None:
            raise NotFound(f"dataset {dataset!r} does not exist in {project!r}")
        pinned = int(found["version"]) if dataset_version is None else dataset_version
        if pinned > int(found["version"]) or pinned < 1:
            raise NotFound(f"dataset {dataset!r} has no version {pinned}")
        records, more = dataset_store.records(conn, int(found["id"]), pinned, limit=MAX_RUN_RECORDS)
        if more is not None:
            raise UserError(
                f"dataset {dataset!r} v{pinned} has more than {MAX_RUN_RECORDS:,} records; the "
                "playground runs at most that many: run it with `assay eval` instead"
            )
        if not records:
            raise UserError(f"dataset {dataset!r} v{pinned} has no records to run on")
        scoring = _scorings(rt, conn, pid, scorers, evaluator_ids)
    if not _RUN_SLOTS.acquire(timeout=RUN_SLOT_WAIT_S):
        raise Conflict(
            f"{MAX_BACKGROUND_RUNS} playground runs are going on this server already; "
            "start this one when one of them has finished"
        )
    try:
        experiment = _create_experiment(
            rt, who, project, pid, draft, target, ask, found, pinned, len(records), scoring
        )
    except BaseException:
        _RUN_SLOTS.release()
        raise
    experiment_id = int(experiment["id"])
    worker = threading.Thread(
        target=_run_dataset,
        args=(rt, project, experiment_id, draft, target, ask.params, records, scoring),
        name=f"assay-playground-{experiment_id}",
        daemon=True,
    )
    with _RUNNING_LOCK:
        _RUNNING[experiment_id] = worker
    worker.start()
    if wait:
        worker.join()
    return run_status(rt, who, project, experiment_id)


def _create_experiment(
    rt: Runtime,
    who: Principal,
    project: str,
    pid: int,
    draft: PromptDraft,
    target: Target,
    ask: RunRequest,
    dataset: Mapping[str, Any],
    version: int,
    cases: int,
    scoring: Sequence[_Scoring],
) -> dict[str, Any]:
    prompt_part = draft.name or "draft"
    if draft.name and draft.version:
        prompt_part = f"{draft.name}@v{draft.version}"
    elif draft.name:
        prompt_part = f"{draft.name} (edited draft)"
    metadata: dict[str, Any] = {
        "source": "playground",
        "target": target.label,
        "params": jsonable(dict(ask.params)),
        "scorers": [s.name for s in scoring],
        "cases": cases,
        "started_by": who.author,
        "definition": jsonable(draft.definition()),
    }
    if draft.name is not None and draft.version is not None:
        metadata[PROMPT_NAME] = draft.name
        metadata[PROMPT_VERSION] = draft.version
    elif draft.name is not None:
        metadata["prompt_draft_of"] = draft.name
    name = f"{prompt_part} on {dataset['name']}@v{version}"[:200]
    with rt.write() as conn:
        project_id(conn, who, project, RUN_ROLE)
        return experiment_store.create(
            conn,
            pid,
            {
                "eval_name": f"{EVAL_PREFIX}{draft.name or 'draft'}"[:200],
                "name": name,
                "dataset_id": dataset["id"],
                "dataset_version": version,
                "metadata": metadata,
            },
        )


def _run_case(
    rt: Runtime,
    project: str,
    draft: PromptDraft,
    target: Target,
    params: Mapping[str, Any],
    record: Mapping[str, Any],
    scoring: Sequence[_Scoring],
) -> dict[str, Any]:
    inputs = case_variables(record["input"])
    try:
        result = target.run(inputs, draft, params)
    except UserError as error:
        result = RunOutput(error=str(error))
    except Exception as error:  # a target's bug is this case's error, shown on its row
        log.exception("playground target failed")
        result = RunOutput(error=f"{type(error).__name__}: {error}")
    row: dict[str, Any] = {
        "case_key": str(record["record_id"])[:64],
        "trial": 0,
        "input": record["input"],
        "expected": record["expected"],
        "metadata": record.get("metadata") or {},
        "output": jsonable(result.output),
        "error": result.error[:100_000] if result.error else None,
        "latency_ms": result.latency_ms,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "cost": result.usage.cost,
        "trace_id": result.trace_id,
        "scores": [],
    }
    if result.error is None:
        item = {
            "input": record["input"],
            "output": result.output,
            "expected": record["expected"],
            "metadata": record.get("metadata") or {},
            "context": None,
        }
        row["scores"] = [_score(rt, project, s, item) for s in scoring]
    return row


def _run_dataset(
    rt: Runtime,
    project: str,
    experiment_id: int,
    draft: PromptDraft,
    target: Target,
    params: Mapping[str, Any],
    records: list[dict[str, Any]],
    scoring: Sequence[_Scoring],
) -> None:
    done: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    status = "incomplete"
    try:
        parallel = max(1, min(MAX_PARALLEL, getattr(target, "max_parallel", MAX_PARALLEL)))
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            futures = [
                pool.submit(_run_case, rt, project, draft, target, params, r, scoring)
                for r in records
            ]
            for future in concurrent.futures.as_completed(futures):
                pending.append(future.result())
                if len(pending) >= ROW_BATCH:
                    _store_rows(rt, experiment_id, pending)
                    done.extend(pending)
                    pending = []
        _store_rows(rt, experiment_id, pending)
        done.extend(pending)
        status = "complete"
    except Exception:
        log.exception("playground run %s stopped", experiment_id)
    finally:
        try:
            with rt.write() as conn:
                experiment_store.finish(conn, experiment_id, status, summary_dict(summarise(done)))
        except Exception:
            log.exception("playground run %s could not be finished", experiment_id)
        with _RUNNING_LOCK:
            _RUNNING.pop(experiment_id, None)
        _RUN_SLOTS.release()


def _store_rows(rt: Runtime, experiment_id: int, rows: list[dict[str, Any]]) -> None:
    if rows:
        with rt.write() as conn:
            experiment_store.upsert_rows(conn, experiment_id, rows)


def wait_for_run(experiment_id: int, timeout: float) -> bool:
    """Wait for a dataset run of this process to end (tests, the demo); False on time-out."""
    with _RUNNING_LOCK:
        worker = _RUNNING.get(experiment_id)
    if worker is not None:
        worker.join(timeout)
        return not worker.is_alive()
    return True


def wait_for_all_runs(timeout: float) -> bool:
    """Wait for every dataset run of this process to end (tests); False on time-out."""
    deadline = time.monotonic() + timeout
    while True:
        with _RUNNING_LOCK:
            running = list(_RUNNING.values())
        if not running:
            return True
        for worker in running:
            worker.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _RUNNING_LOCK:
                return not _RUNNING


def _previous_run(conn: Connection, experiment: Mapping[str, Any]) -> dict[str, Any] | None:
    """The newest finished run of an earlier version of the same prompt on the same dataset."""
    metadata = experiment.get("metadata") or {}
    name, version = metadata.get(PROMPT_NAME), metadata.get(PROMPT_VERSION)
    if not isinstance(name, str) or not isinstance(version, int):
        return None
    earlier = [
        item
        for item in experiment_store.prompt_runs(
            conn, int(experiment["project_id"]), name, experiment.get("dataset_id")
        )
        if isinstance((item["metadata"] or {}).get(PROMPT_VERSION), int)
        and item["metadata"][PROMPT_VERSION] < version
        and item["status"] == "complete"
    ]
    if not earlier:
        return None
    best = max(earlier, key=lambda e: (e["metadata"][PROMPT_VERSION], e["created_ns"], e["id"]))
    return {"id": best["id"], "name": best["name"], "version": best["metadata"][PROMPT_VERSION]}


def run_status(rt: Runtime, who: Principal, project: str, experiment_id: int) -> dict[str, Any]:
    """A dataset run's progress (anyone who may read the project): rows done of the cases,
    errors, status, its summary when done, and the previous version's run to compare with."""
    with rt.read() as conn:
        pid = project_id(conn, who, project)
        found = experiment_store.get_in_project(conn, pid, experiment_id)
        metadata = (found or {}).get("metadata") or {}
        if found is None or metadata.get("source") != "playground":
            raise NotFound(f"playground run {experiment_id} is not in {project!r}")
        rows, errors = experiment_store.row_counts(conn, experiment_id)
        previous = _previous_run(conn, found)
    return {
        "experiment_id": experiment_id,
        "name": found["name"],
        "status": found["status"],
        "cases": int(metadata.get("cases") or 0),
        "done": rows,
        "errors": errors,
        "summary": found["summary"] or {},
        "prompt": metadata.get(PROMPT_NAME),
        "prompt_version": metadata.get(PROMPT_VERSION),
        "previous": previous,
    }
