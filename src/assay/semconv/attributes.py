"""Which span attribute means what, in the vocabularies Assay reads.

OpenTelemetry GenAI (``gen_ai.*``), OpenInference (``openinference.span.kind``, ``input.value``,
``llm.*``), OpenLLMetry (``traceloop.*``), Langfuse (``langfuse.*``), pydantic-ai and Logfire
(``final_result``, ``pydantic_ai.all_messages``, ``logfire.*``) and Assay's own (``assay.*``)
say the same things in different words. Ingest
(`assay.ingest.normalize`) derives its columns from them and the trajectory scorers
(`assay.scorers._spans`) read the eval runner's un-ingested spans with them: both read this one
table, so a span means the same to a scorer offline as in the stored trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

#: What a client's SDK dropped past its limits (OTLP's dropped_attributes_count, ...) is kept on
#: the span as the attributes ``assay.dropped.attributes``, ``.events`` and ``.links``, if not 0.
DROPPED_PREFIX = "assay.dropped."

#: An attribute whose text became the span's input or output column is stored once, in the
#: column; the attribute keeps ``{STORED_AS: "input"}`` (or "output") in its place.
STORED_AS = "$assay.stored_as"

#: On a model call made with a registry prompt (`assay.prompt`): its name and version.
PROMPT_NAME = "assay.prompt.name"
PROMPT_VERSION = "assay.prompt.version"

#: On a provider SDK's own span of a call that another span of another trace also reports:
#: "trace id/span id" of that span, where the call's tokens and cost are counted.
SAME_CALL_AS = "assay.same_call_as"

#: ``openinference.span.kind`` -> Assay's span type.
OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "TOOL": "tool",
    "AGENT": "agent",
    "RETRIEVER": "retrieval",
    "CHAIN": "chain",
    "EMBEDDING": "embedding",
    "RERANKER": "reranker",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "scorer",
    "PROMPT": "prompt",
}
#: OpenLLMetry's ``traceloop.span.kind`` -> Assay's span type.
TRACELOOP_KINDS = {
    "workflow": "chain",
    "task": "chain",
    "agent": "agent",
    "tool": "tool",
}
#: Langfuse's ``langfuse.observation.type`` -> Assay's span type ("span" stays a plain span).
LANGFUSE_TYPES = {
    "generation": "llm",
    "embedding": "embedding",
    "agent": "agent",
    "tool": "tool",
    "chain": "chain",
    "retriever": "retrieval",
    "evaluator": "scorer",
    "guardrail": "guardrail",
    "event": "event",
}
#: ``gen_ai.operation.name`` -> Assay's span type.
GENAI_OPERATIONS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "completion": "llm",
    "responses": "llm",
    "embeddings": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "retrieval": "retrieval",
}

#: Where each derived value may come from, best source first.
FIELDS: dict[str, tuple[str, ...]] = {
    "model": (
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.model_name",
        "llm.request.model_name",
        "langfuse.observation.model.name",
        "assay.model",
    ),
    "provider": (
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.provider",
        "llm.system",
        "assay.provider",
    ),
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "assay.usage.input_tokens",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "assay.usage.output_tokens",
    ),
    "cached_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "gen_ai.usage.input_tokens.cached",
        "llm.token_count.prompt_details.cache_read",
        "assay.usage.cached_tokens",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.output_tokens.reasoning",
        "gen_ai.usage.reasoning_tokens",
        "llm.token_count.completion_details.reasoning",
        "assay.usage.reasoning_tokens",
    ),
    "total_tokens": (
        "gen_ai.usage.total_tokens",
        "llm.token_count.total",
        "llm.usage.total_tokens",
        "assay.usage.total_tokens",
    ),
    "cost": ("assay.cost", "llm.cost.total", "gen_ai.usage.cost", "operation.cost"),
    "session_id": (
        "session.id",
        "langfuse.session.id",
        "traceloop.association.properties.session_id",
        "gen_ai.conversation.id",
        "assay.session_id",
    ),
    "user_id": (
        "user.id",
        "enduser.id",
        "langfuse.user.id",
        "traceloop.association.properties.user_id",
        "assay.user_id",
    ),
    "operation": ("gen_ai.operation.name",),
    "explicit_type": ("assay.span.type",),
    "openinference_kind": ("openinference.span.kind",),
    "traceloop_kind": ("traceloop.span.kind",),
    "langfuse_type": ("langfuse.observation.type",),
    "tool_name": ("gen_ai.tool.name", "tool.name"),
    "assay_in": ("assay.input",),
    "assay_out": ("assay.output",),
    "messages_in": ("gen_ai.input.messages", "gen_ai.prompt", "pydantic_ai.all_messages"),
    "messages_out": ("gen_ai.output.messages", "gen_ai.completion"),
    "system": ("gen_ai.system_instructions",),
    "tool_in": ("gen_ai.tool.call.arguments", "tool.parameters", "tool_arguments"),
    "tool_out": ("gen_ai.tool.call.result", "tool_response"),
    "plain_in": (
        "input.value",
        "traceloop.entity.input",
        "langfuse.observation.input",
        "langfuse.trace.input",
    ),
    "plain_out": (
        "output.value",
        "traceloop.entity.output",
        "langfuse.observation.output",
        "final_result",
        "langfuse.trace.output",
    ),
    "assay_tags": ("assay.tags",),
    "openinference_tags": ("tag.tags", "langfuse.trace.tags"),
    "openinference_metadata": ("metadata",),
    "assay_metadata": ("assay.metadata",),
    # Sources that hold a derived value inside JSON (read by `_from_documents`).
    "invocation_parameters": ("llm.invocation_parameters", "langfuse.observation.model.parameters"),
    "usage_details": ("langfuse.observation.usage_details",),
    "cost_details": ("langfuse.observation.cost_details",),
    "level": ("langfuse.observation.level",),
    "level_message": ("langfuse.observation.status_message",),
    "log_message": ("logfire.msg",),
    "log_kind": ("logfire.span_type",),
}
#: attribute key -> (the value it gives, its rank among that value's sources).
SOURCES = {key: (name, rank) for name, keys in FIELDS.items() for rank, key in enumerate(keys)}

#: Attributes whose value may be a span's input or output, in the order a span's plain (not
#: conversation) input and output are read.
INPUT_KEYS = (
    *FIELDS["assay_in"],
    *FIELDS["plain_in"],
    *FIELDS["tool_in"],
    *FIELDS["messages_in"],
)
OUTPUT_KEYS = (
    *FIELDS["assay_out"],
    *FIELDS["plain_out"],
    *FIELDS["tool_out"],
    *FIELDS["messages_out"],
)


def read_fields(attributes: Mapping[str, Any], others: list[str] | None = None) -> dict[str, Any]:
    """The derived values (`FIELDS`' names) a span's attributes give, each from its best source;
    one pass over the attributes, one dict lookup each. Empty values count as absent. Keys that
    are no source are appended to ``others`` when it is given."""
    values: dict[str, Any] = {}
    ranks: dict[str, int] = {}
    sources = SOURCES
    for key, value in attributes.items():
        hit = sources.get(key)
        if hit is None:
            if others is not None:
                others.append(key)
            continue
        if value is None or value == "":
            continue
        name, rank = hit
        if rank < ranks.get(name, 99):
            values[name] = value
            ranks[name] = rank
    if "invocation_parameters" in values or "usage_details" in values or "cost_details" in values:
        _from_documents(values)
    return values


#: Keys of usage documents (Langfuse's usage_details, OpenAI's usage) -> the value they give.
_USAGE_KEYS = {
    "input": "input_tokens",
    "input_tokens": "input_tokens",
    "prompt_tokens": "input_tokens",
    "output": "output_tokens",
    "output_tokens": "output_tokens",
    "completion_tokens": "output_tokens",
    "total": "total_tokens",
    "total_tokens": "total_tokens",
    "input_cached_tokens": "cached_tokens",
    "cache_read_input_tokens": "cached_tokens",
    "input_cache_read": "cached_tokens",
    "output_reasoning_tokens": "reasoning_tokens",
    "reasoning_tokens": "reasoning_tokens",
}


def _from_documents(values: dict[str, Any]) -> None:
    """Values that arrive inside a JSON attribute, used where no plain attribute gave them: the
    model of the invocation parameters (all an OpenInference span has when the call failed),
    and Langfuse's usage and cost documents."""
    if "model" not in values:
        parameters = maybe_json(values.get("invocation_parameters"))
        if isinstance(parameters, dict):
            model = parameters.get("model") or parameters.get("model_name")
            if isinstance(model, str) and model:
                values["model"] = model
    usage = maybe_json(values.get("usage_details"))
    if isinstance(usage, dict):
        for key, count in usage.items():
            name = _USAGE_KEYS.get(key)
            if name is not None and name not in values and as_int(count) is not None:
                values[name] = count
    cost = maybe_json(values.get("cost_details"))
    if "cost" not in values and isinstance(cost, dict):
        total = as_float(cost.get("total"))
        if total is None:
            parts = [as_float(part) for part in cost.values()]
            total = sum(p for p in parts if p is not None) if any(parts) else None
        if total is not None:
            values["cost"] = total


def first(attributes: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """The value of the first of ``keys`` present and not empty."""
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def span_type(values: Mapping[str, Any], has_model: bool) -> str:
    """A span's type from `read_fields` values: Assay's own, else OpenInference's kind, else the
    GenAI operation; a span naming a model is an LLM call; anything else is a plain span."""
    explicit = values.get("explicit_type")
    if isinstance(explicit, str) and explicit:
        return explicit[:32].lower()
    kind = values.get("openinference_kind")
    if isinstance(kind, str) and kind:
        return OPENINFERENCE_KINDS.get(kind.upper(), kind[:32].lower())
    kind = values.get("langfuse_type")
    if isinstance(kind, str) and kind.lower() in LANGFUSE_TYPES:
        return LANGFUSE_TYPES[kind.lower()]
    kind = values.get("traceloop_kind")
    if isinstance(kind, str) and kind.lower() in TRACELOOP_KINDS:
        return TRACELOOP_KINDS[kind.lower()]
    if values.get("log_kind") == "log":
        return "log"
    operation = values.get("operation")
    if isinstance(operation, str) and operation:
        return GENAI_OPERATIONS.get(operation, "llm" if has_model else operation[:32])
    return "llm" if has_model else "span"


# --- coercers: attribute values arrive as whatever the instrumentation sent -----------------------


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value  # through float, a timestamp in ns would lose its last digits
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def maybe_json(value: Any) -> Any:
    """A JSON object or array sent as text, parsed; anything else as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value
