"""`judge(...)`: a scorer that asks a model to choose one of a few declared options.

The score is the choice's value, the label the choice, the rationale the reasoning; an unusable
answer is an error score carrying the raw answer, never a silent 0. Every judge's version is a
hash of its definition (prompt, choices, model, options and the way the verdict is asked for),
so a changed prompt shows in the stored scores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.models import Model, ModelError, Response, Tool, get_model
from assay.scorers._template import PROMPT_NAMES, PromptTemplate
from assay.scorers.judges._verdict import (
    PROTOCOL,
    VERDICT_TOOL,
    Mode,
    Verdict,
    instructions,
    read_verdict,
    verdict_schema,
)
from assay.settings import setting


def default_model() -> str:
    """The model judges use when none is named: ASSAY_JUDGE_MODEL, else DEFAULT_JUDGE_MODEL."""
    return str(setting("judge_model"))


def _check_choices(choices: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(choices, Mapping) or len(choices) < 2:
        raise UserError('a judge needs at least two choices, e.g. {"yes": 1.0, "no": 0.0}')
    checked = {}
    for key, value in choices.items():
        if not isinstance(key, str) or not key.strip():
            raise UserError(f"judge choices must be named by non-empty text; got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise UserError(f"choice {key!r} is worth {value!r}; give a number in [0, 1]")
        checked[key] = float(value)
    return checked


# --- context ---------------------------------------------------------------------------------


def _passage(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        for key in ("content", "text", "page_content", "document"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return json.dumps(item, ensure_ascii=False, default=str)


def find_context(metadata: Mapping[str, Any] | None, trace: Sequence[Any] | None) -> Any:
    """``metadata["context"]``, else what the case's retrieval spans returned, passages joined
    by blank lines; None when there is neither."""
    if metadata and metadata.get("context") is not None:
        return metadata["context"]
    passages: list[str] = []
    for span in trace or ():
        if isinstance(span, Mapping) and span.get("type") == "retrieval":
            output = span.get("output")
            items = output if isinstance(output, list) else [output]
            passages.extend(_passage(item) for item in items if item is not None)
    return "\n\n".join(passages) if passages else None


# --- the judge -------------------------------------------------------------------------------


class Classifier:
    """One judge's work: render the prompt, ask the model for a verdict, score it."""

    kind = "judge"

    def __init__(
        self,
        name: str,
        prompt: PromptTemplate,
        choices: dict[str, float],
        model: str | Model,
        *,
        use_reasoning: bool,
        system: str | None,
        mode: Mode,
        temperature: float | None,
        max_tokens: int | None,
        cache: bool | None,
        variables: Mapping[str, Any],
        model_options: Mapping[str, Any],
    ) -> None:
        if mode not in ("tool", "json"):
            raise UserError(f"judge mode must be 'tool' or 'json'; got {mode!r}")
        self.name = name
        self.prompt = prompt
        self.choices = choices
        self.use_reasoning = use_reasoning
        self.system = system
        self.mode = mode
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.cache = cache
        self.variables = dict(variables)
        self._model = model if isinstance(model, Model) else None
        self.model_name = model.name if isinstance(model, Model) else model
        self._model_options = dict(model_options)
        keys = list(choices)
        self._schema = verdict_schema(keys, use_reasoning)
        self._instructions = instructions(keys, use_reasoning, mode)

    def definition(self) -> dict[str, Any]:
        """Everything that shapes the verdict; its hash is the judge's version."""
        given = self._model.describe() if self._model is not None else self._model_options
        # Where the model is reached (base URL, key, time-outs) does not change the judge.
        answering = {k: given.get(k) for k in ("temperature", "max_tokens")}
        return {
            "kind": self.kind,
            "prompt": self.prompt.source,
            "choices": self.choices,
            "model": self.model_name,
            "model_settings": answering,
            "use_reasoning": self.use_reasoning,
            "system": self.system,
            "mode": self.mode,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "variables": self.variables,
            "protocol": PROTOCOL,
        }

    def version(self) -> str:
        text = json.dumps(self.definition(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def model(self) -> Model:
        # Made on first use, so defining a judge needs no API key.
        if self._model is None:
            self._model = get_model(self.model_name, **self._model_options)
        return self._model

    # What one case asks of the model; the pairwise judge asks twice.

    def values(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        metadata = arguments.get("metadata") or {}
        values = {**self.variables, **{k: arguments.get(k) for k in PROMPT_NAMES}}
        if "context" in self.prompt.names:
            values["context"] = find_context(metadata, arguments.get("trace"))
        return values

    def asks(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [self.ask(values)]

    def ask(self, values: Mapping[str, Any]) -> dict[str, Any]:
        text = self.prompt.render(values).rstrip() + "\n\n" + self._instructions
        messages = [{"role": "user", "content": text}]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        options: dict[str, Any] = {
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "cache": self.cache,
        }
        if self.mode == "tool":
            options["tools"] = [Tool(VERDICT_TOOL, "Record your verdict.", self._schema)]
            options["tool_choice"] = VERDICT_TOOL
        else:
            options["response_format"] = self._schema
        return options

    def score(self, values: Mapping[str, Any], responses: Sequence[Response]) -> Score:
        [response] = responses
        verdict = read_verdict(response, list(self.choices))
        if verdict.choice is None:
            return self.unusable(verdict, response)
        return Score(
            self.name,
            self.choices[verdict.choice],
            label=verdict.choice,
            rationale=verdict.reasoning,
            metadata=self.about(responses),
        )

    def unusable(self, verdict: Verdict, response: Response) -> Score:
        metadata = {"raw": verdict.raw, **self.about([response])}
        return Score(self.name, None, error=verdict.problem, metadata=metadata)

    def about(self, responses: Sequence[Response]) -> dict[str, Any]:
        costs = [r.usage.cost for r in responses if r.usage.cost is not None]
        return {
            "model": responses[0].model or self.model_name,
            "cache_hit": all(r.cache_hit for r in responses),
            "cost": sum(costs) if costs else None,
        }

    def failed(self, error: ModelError) -> Score:
        return Score(self.name, None, error=f"ModelError: {error}")

    # Running, sync and async.

    def run(self, arguments: Mapping[str, Any]) -> Score:
        values = self.values(arguments)
        problem = self.missing(values)
        if problem is not None:
            return Score(self.name, None, error=problem)
        model = self.model
        try:
            responses = [model.generate(**ask) for ask in self.asks(values)]
        except ModelError as error:
            return self.failed(error)
        return self.score(values, responses)

    async def arun(self, arguments: Mapping[str, Any]) -> Score:
        values = self.values(arguments)
        problem = self.missing(values)
        if problem is not None:
            return Score(self.name, None, error=problem)
        model = self.model
        try:
            calls = [model.agenerate(**ask) for ask in self.asks(values)]
            responses = list(await asyncio.gather(*calls))
        except ModelError as error:
            return self.failed(error)
        return self.score(values, responses)

    def missing(self, values: Mapping[str, Any]) -> str | None:
        """Why this case cannot be judged (a prompt name it needs is empty), or None."""
        for name in ("expected", "context"):
            if name in self.prompt.names and values.get(name) in (None, ""):
                where = 'metadata["context"] or a retrieval span' if name == "context" else name
                return (
                    f"judge {self.name!r} needs {{{{{name}}}}}, and this case has none in {where}"
                )
        return None


@dataclass(frozen=True)
class Judge(Scorer):
    """A scorer backed by an LLM judge. Call it like a function, ``judge(output=..., ...)``, for
    one `Score`; ``await judge.ascore(...)`` in async code. An `assay.Eval` awaits it."""

    classifier: Classifier = field(repr=False, compare=False)

    def __call__(
        self,
        *,
        input: Any = None,
        output: Any = None,
        expected: Any = None,
        metadata: Mapping[str, Any] | None = None,
        trace: Sequence[Any] | None = None,
    ) -> Score:
        arguments = {
            "input": input,
            "output": output,
            "expected": expected,
            "metadata": metadata,
            "trace": trace,
        }
        return self.classifier.run(arguments)

    async def ascore(
        self,
        *,
        input: Any = None,
        output: Any = None,
        expected: Any = None,
        metadata: Mapping[str, Any] | None = None,
        trace: Sequence[Any] | None = None,
    ) -> Score:
        arguments = {
            "input": input,
            "output": output,
            "expected": expected,
            "metadata": metadata,
            "trace": trace,
        }
        return await self.classifier.arun(arguments)

    @property
    def definition(self) -> dict[str, Any]:
        return self.classifier.definition()

    def push(
        self,
        project: str | None = None,
        *,
        connection: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
    ) -> dict[str, Any]:
        """Store this judge on the server as an evaluator of ``project`` (default
        ASSAY_PROJECT) under its name, with the same definition and version hash; a changed
        judge becomes a new version, an unchanged one stays as it is. ``connection`` names the
        project's provider connection its server-side runs use. Returns the evaluator."""
        from urllib.parse import quote

        from assay.client import Client

        client = Client(url, api_key)
        try:
            found: dict[str, Any] = client.post(
                f"/api/v1/projects/{quote(str(setting('project', project)), safe='')}"
                "/evaluators/push",
                json={
                    "name": self.name,
                    "kind": "judge",
                    "definition": self.definition,
                    "version": self.version,
                    "connection": connection,
                },
            )
        finally:
            client.close()
        return found


def _as_judge(classifier: Classifier) -> Judge:
    async def score(
        input: Any = None,
        output: Any = None,
        expected: Any = None,
        metadata: Mapping[str, Any] | None = None,
        trace: Sequence[Any] | None = None,
    ) -> Score:
        arguments = {
            "input": input,
            "output": output,
            "expected": expected,
            "metadata": metadata,
            "trace": trace,
        }
        return await classifier.arun(arguments)

    wants = ["input", "output", "expected", "metadata"]
    if "context" in classifier.prompt.names:
        wants.append("trace")  # the context may come from the case's retrieval spans
    return Judge(
        fn=score,
        name=classifier.name,
        version=classifier.version(),
        wants=tuple(wants),
        is_async=True,
        classifier=classifier,
    )


def judge(
    name: str,
    prompt: str,
    choices: Mapping[str, float],
    model: str | Model | None = None,
    use_reasoning: bool = True,
    *,
    system: str | None = None,
    mode: Mode = "tool",
    temperature: float | None = 0.0,
    max_tokens: int | None = None,
    cache: bool | None = None,
    variables: Mapping[str, Any] | None = None,
    model_options: Mapping[str, Any] | None = None,
) -> Judge:
    """An LLM judge named ``name``.

    ``prompt`` is a template with ``{{input}}``, ``{{output}}``, ``{{expected}}``,
    ``{{metadata.key}}`` and ``{{context}}`` (``metadata["context"]``, else the text the case's
    retrieval spans returned), plus any names in ``variables``; it renders in a sandbox. The
    judge must pick one key of ``choices``; the score is that key's value in [0, 1].
    ``use_reasoning`` asks for step-by-step reasoning before the choice, kept as the rationale.

    ``model`` is a model string (default ASSAY_JUDGE_MODEL, else ``openai/gpt-4.1-mini``) or a
    `Model`; ``model_options`` go to ``get_model`` (``base_url``, ``api_key``, ``timeout``, ...).
    ``mode="tool"`` forces a tool call; ``"json"`` asks for structured output instead, for
    servers without forced tool calls. At temperature 0 (the default) answers are cached on
    disk, so a re-run is free; ``cache=False`` turns that off.
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError("a judge needs a name")
    variables = dict(variables or {})
    clash = set(variables) & set(PROMPT_NAMES)
    if clash:
        raise UserError(f"judge variables may not reuse the names {', '.join(sorted(clash))}")
    template = PromptTemplate(prompt, PROMPT_NAMES + tuple(variables))
    classifier = Classifier(
        name,
        template,
        _check_choices(choices),
        model or default_model(),
        use_reasoning=use_reasoning,
        system=system,
        mode=mode,
        temperature=temperature,
        max_tokens=max_tokens,
        cache=cache,
        variables=variables,
        model_options=model_options or {},
    )
    return _as_judge(classifier)


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    known: dict[str, Any] = {
        "use_reasoning": True,
        "system": None,
        "mode": "tool",
        "temperature": 0.0,
        "max_tokens": None,
        "cache": None,
        "variables": {},
        "model_options": {},
    }
    unknown = set(options) - set(known)
    if unknown:
        raise UserError(f"unknown judge options: {', '.join(sorted(unknown))}")
    merged = {**known, **options}
    merged["variables"] = merged["variables"] or {}
    merged["model_options"] = merged["model_options"] or {}
    return merged
