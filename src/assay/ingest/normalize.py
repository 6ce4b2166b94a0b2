"""Derive Assay's columns from the attribute vocabularies of `assay.semconv.attributes`.

OpenTelemetry GenAI (``gen_ai.*``), OpenInference (``openinference.span.kind``, ``input.value``,
``llm.*``), OpenLLMetry, Langfuse, pydantic-ai, Logfire and Assay's own (``assay.*``) say the
same things in different words. Normalisation reads them all into one set of columns (type,
input, output, model, tokens, cost, ...) and never fails a span: an attribute it does not
understand stays in ``attributes`` untouched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import orjson

from assay.ingest.otlp import MAX_NAME_CHARS, RawSpan
from assay.semconv.attributes import (
    INPUT_KEYS,
    OUTPUT_KEYS,
    STORED_AS,
    as_float,
    as_int,
    first,
    maybe_json,
    read_fields,
)
from assay.semconv.attributes import (
    span_type as type_of_span,
)

STATUS_ERROR = 2

_FLAT_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_FLAT_PROMPT = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(.+)$")

CostFunction = Callable[[str | None, str | None, int | None, int | None, int | None], float | None]


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    if "." not in path:  # most message attributes: role, content
        target[path] = value
        return
    node = target
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _unflatten_messages(attrs: dict[str, Any]) -> tuple[list[Any] | None, list[Any] | None]:
    """Rebuild message lists from OpenInference's and OpenLLMetry's flattened attributes."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in attrs.items():
        if not (key.startswith("llm.") or key.startswith("gen_ai.")):
            continue
        match = _FLAT_MESSAGE.match(key)
        if match:
            side = "input" if match.group(1) == "input" else "output"
        else:
            match = _FLAT_PROMPT.match(key)
            if not match:
                continue
            side = "input" if match.group(1) == "prompt" else "output"
        index = int(match.group(2))
        message = found.setdefault(side, {}).setdefault(index, {})
        _set_path(message, match.group(3), value)

    def ordered(side: str) -> list[Any] | None:
        messages = found.get(side)
        if not messages:
            return None
        return [
            _tidy_message(message) if any(type(v) is dict for v in message.values()) else message
            for message in (messages[i] for i in sorted(messages))
        ]

    return ordered("input"), ordered("output")


def _as_lists(node: Any) -> Any:
    """Flattened keys index lists with numbers (``contents.0``, ``tool_calls.1``); `_set_path`
    rebuilt those levels as dicts keyed "0", "1", ...: make every such dict a list again, in
    index order, at any depth."""
    if not isinstance(node, dict):
        return node
    tidy = {key: _as_lists(value) for key, value in node.items()}
    if tidy and all(isinstance(key, str) and key.isdigit() for key in tidy):
        return [tidy[key] for key in sorted(tidy, key=int)]
    return tidy


def _tidy_message(message: dict[str, Any]) -> dict[str, Any]:
    """OpenInference nests list items under their kind (tool_calls.N.tool_call.function.*,
    contents.N.message_content.text): lists of the items themselves. A tool call that is also
    one of the message's contents (``contents.N.tool_call``, as the Anthropic instrumentor
    sends it) is kept once, in ``tool_calls``."""
    tidy: dict[str, Any] = _as_lists(message)
    calls = tidy.get("tool_calls")
    if isinstance(calls, list):
        tidy["tool_calls"] = calls = [_unwrapped(call, "tool_call") for call in calls]
    contents = tidy.get("contents")
    if isinstance(contents, list):
        called = {c.get("id") for c in calls or [] if isinstance(c, dict) and c.get("id")}
        kept = []
        for item in contents:
            item = _unwrapped(item, "message_content")
            call = item.pop("tool_call", None) if isinstance(item, dict) else None
            if isinstance(call, dict):
                if call.get("id") in called:
                    continue
                item = {**item, **call}
            kept.append(item)
        tidy["contents"] = kept
    return tidy


def _unwrapped(item: Any, wrapper: str) -> Any:
    if isinstance(item, dict) and isinstance(item.get(wrapper), dict):
        return {**item[wrapper], **{k: v for k, v in item.items() if k != wrapper}}
    return item


def _event_messages(events: list[dict[str, Any]]) -> tuple[list[Any] | None, list[Any] | None]:
    """Older GenAI conventions put messages in events such as gen_ai.user.message."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    for event in events:
        name = event.get("name", "")
        if not name.startswith("gen_ai."):
            continue
        attrs = event.get("attributes") or {}
        if name == "gen_ai.choice":
            outputs.append(maybe_json(first(attrs, ("message", "gen_ai.event.content"))))
        elif name.endswith(".message"):
            role = name[len("gen_ai.") : -len(".message")]
            content = maybe_json(first(attrs, ("content", "gen_ai.event.content")))
            if isinstance(content, dict):
                inputs.append({"role": role, **content})
            else:
                inputs.append({"role": role, "content": content})
    return inputs or None, outputs or None


_FLATTENED = ("llm.input_messages.", "llm.output_messages.", "gen_ai.prompt.", "gen_ai.completion.")
_METADATA_PREFIXES = (
    "assay.metadata.",
    "langfuse.trace.metadata.",
    "langfuse.observation.metadata.",
)


class _Found:
    """The derived-column sources present on one span."""

    __slots__ = ("flattened", "metadata_keys", "values")

    def __init__(self, attrs: dict[str, Any]) -> None:
        others: list[str] = []
        self.values = read_fields(attrs, others)
        self.flattened = False
        self.metadata_keys: list[str] = []
        for key in others:
            if key.startswith(_FLATTENED):
                self.flattened = True
            elif key.startswith(_METADATA_PREFIXES):
                self.metadata_keys.append(key)


def _io(
    attrs: dict[str, Any], found: _Found, events: list[dict[str, Any]], span_type: str
) -> tuple[Any, Any]:
    values = found.values
    messages_in = values.get("messages_in")
    messages_out = values.get("messages_out")
    if found.flattened and (messages_in is None or messages_out is None):
        flat_in, flat_out = _unflatten_messages(attrs)
        messages_in = messages_in if messages_in is not None else flat_in
        messages_out = messages_out if messages_out is not None else flat_out
    if messages_in is None and messages_out is None and events:
        messages_in, messages_out = _event_messages(events)
    system = values.get("system")
    if system is not None and messages_in is not None:
        parsed = maybe_json(messages_in)
        if isinstance(parsed, list):
            messages_in = [{"role": "system", "content": maybe_json(system)}, *parsed]
    assay_in, assay_out = values.get("assay_in"), values.get("assay_out")
    tool_in, tool_out = values.get("tool_in"), values.get("tool_out")
    plain_in, plain_out = values.get("plain_in"), values.get("plain_out")
    # Conversations read best as messages; other spans as their plain values.
    if span_type == "llm":
        order_in = (assay_in, messages_in, plain_in, tool_in)
        order_out = (assay_out, messages_out, plain_out, tool_out)
    else:
        order_in = (assay_in, plain_in, tool_in, messages_in)
        order_out = (assay_out, plain_out, tool_out, messages_out)
    return (
        _readable(next((v for v in order_in if v is not None), None)),
        _readable(next((v for v in order_out if v is not None), None)),
    )


def _readable(value: Any) -> Any:
    """A decorated function's call as OpenLLMetry and Langfuse record it (``{"args": ["Hi"],
    "kwargs": {}}``) reads as its one argument, and a JSON string (``'"Hi"'``) as its text;
    anything else as it is."""
    if not isinstance(value, str) or not value.startswith(('{"args"', '"')):
        return value
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, dict) and parsed.keys() == {"args", "kwargs"}:
        args, kwargs = parsed["args"], parsed["kwargs"]
        if isinstance(args, list) and len(args) == 1 and not kwargs:
            return args[0]
        if args == [] and isinstance(kwargs, dict) and kwargs:
            return kwargs
    return value


def _tags(values: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    for name in ("assay_tags", "openinference_tags"):
        value = maybe_json(values.get(name))
        if isinstance(value, list):
            tags.extend(str(tag)[:200] for tag in value if tag is not None)
        elif isinstance(value, str) and value:
            tags.append(value[:200])
    return list(dict.fromkeys(tags))[:100] if tags else tags


def _metadata(attrs: dict[str, Any], found: _Found) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for name, key in (("openinference_metadata", "metadata"), ("assay_metadata", "assay.metadata")):
        value = maybe_json(found.values.get(name))
        if isinstance(value, dict):
            metadata.update(value)
        elif value is not None:
            metadata[key] = value
    for key in found.metadata_keys:
        prefix = next(p for p in _METADATA_PREFIXES if key.startswith(p))
        value = attrs[key]
        if prefix != _METADATA_PREFIXES[0] and isinstance(value, str):
            value = _json_or_text(value)  # Langfuse sends each metadata value as JSON
        metadata[key[len(prefix) :]] = value
    return metadata


def _json_or_text(value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _error(span: RawSpan, values: dict[str, Any]) -> str | None:
    if span.status_code != STATUS_ERROR:
        if str(values.get("level") or "").upper() == "ERROR":  # Langfuse's observation level
            return str(values.get("level_message") or span.status_message or "error")
        return None
    for event in span.events:
        if event.get("name") == "exception":
            attrs = event.get("attributes") or {}
            kind = attrs.get("exception.type")
            message = attrs.get("exception.message")
            if kind or message:
                return f"{kind}: {message}" if kind and message else str(kind or message)
    return span.status_message or "error"


# An attribute whose text became the span's input or output column is stored once, in the
# column; the attribute keeps the STORED_AS marker, which the API answers as it is unless asked
# for the full form (store/spans.py).
_WORTH_SHARING = 256


def _without_copies(
    attrs: dict[str, Any], input_text: str | None, output_text: str | None
) -> dict[str, Any]:
    stored = attrs
    for column, text, keys in (
        ("input", input_text, INPUT_KEYS),
        ("output", output_text, OUTPUT_KEYS),
    ):
        if text is None or len(text) < _WORTH_SHARING:
            continue
        for key in keys:
            if stored.get(key) is text:
                if stored is attrs:
                    stored = dict(attrs)
                stored[key] = {STORED_AS: column}
                break
    return stored


# Token counts are stored in 32-bit columns (store/tables.py); a count outside them is not a
# real count, so the column stays empty and the attribute keeps what was sent.
_MAX_TOKENS = 2**31 - 1


def _tokens(value: int | None) -> int | None:
    return value if value is not None and 0 <= value <= _MAX_TOKENS else None


def _bounded(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def _name(span: RawSpan, values: dict[str, Any]) -> str:
    """Logfire names a log line's span by its template ("answered {city}"); the message it
    formatted reads better."""
    message = values.get("log_message")
    if values.get("log_kind") == "log" and isinstance(message, str) and message:
        return message[:MAX_NAME_CHARS]
    return span.name


def normalize(span: RawSpan, cost_of: CostFunction, ingested_ns: int) -> dict[str, Any]:
    """One storable row: the raw span plus every derived column."""
    attrs = span.attributes
    found = _Found(attrs)
    values = found.values
    model = _bounded(values.get("model"), 200)
    provider = _bounded(values.get("provider"), 100)
    span_type = type_of_span(values, model is not None)
    input_value, output_value = _io(attrs, found, span.events, span_type)
    input_tokens = _tokens(as_int(values.get("input_tokens")))
    output_tokens = _tokens(as_int(values.get("output_tokens")))
    cached_tokens = _tokens(as_int(values.get("cached_tokens")))
    total_tokens = _tokens(as_int(values.get("total_tokens")))
    if total_tokens is None and (input_tokens is not None or output_tokens is not None):
        total_tokens = _tokens((input_tokens or 0) + (output_tokens or 0))
    cost = as_float(values.get("cost"))
    if cost is not None and not math.isfinite(cost):
        cost = None
    if cost is None and (input_tokens or output_tokens):
        cost = cost_of(model, provider, input_tokens, output_tokens, cached_tokens)
    error = _error(span, values)
    input_text = _as_text(input_value)
    output_text = _as_text(output_value)
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": _name(span, values),
        "kind": span.kind,
        "start_ns": span.start_ns,
        "end_ns": span.end_ns,
        "status_code": span.status_code,
        "status_message": span.status_message,
        "attributes": _without_copies(attrs, input_text, output_text),
        "events": span.events,
        "links": span.links,
        "resource": span.resource,
        "scope": span.scope,
        "is_root": span.parent_span_id is None,
        "type": span_type,
        "is_error": error is not None,
        "error": error,
        "duration_ns": max(0, span.end_ns - span.start_ns),
        "input": input_text,
        "output": output_text,
        "model": model,
        "provider": provider,
        "operation": _bounded(values.get("operation"), 100),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": cached_tokens,
        "reasoning_tokens": _tokens(as_int(values.get("reasoning_tokens"))),
        "total_tokens": total_tokens,
        "cost": cost,
        "session_id": _bounded(values.get("session_id"), 200),
        "user_id": _bounded(values.get("user_id"), 200),
        "tags": _tags(values),
        "metadata": _metadata(attrs, found),
        "ingested_ns": ingested_ns,
    }
