"""``assay.wrap_openai(client)``: one span per Chat Completions, Responses or Embeddings call.

Messages are recorded in the OpenTelemetry GenAI shape (``{"role", "parts": [...]}``), whatever
API produced them, so one reader understands every provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from assay.sdk.wrappers._common import (
    Operation,
    as_list,
    blob_part,
    field,
    function_definition,
    generic_part,
    instrumenting,
    message,
    patch,
    plain,
    reasoning_part,
    request_parameters,
    resource,
    rewrapping,
    text_part,
    tool_call_part,
    tool_response_part,
    uri_part,
)

C = TypeVar("C")
PROVIDER = "openai"


def wrap_openai(client: C) -> C:
    """Trace ``client``'s model calls; returns the same client. Safe to call twice.

    Covers ``chat.completions.create``, ``responses.create`` and ``embeddings.create`` of
    ``OpenAI`` and ``AsyncOpenAI`` (and OpenAI-compatible servers reached through them), streamed
    or not. Clients made from it with ``with_options()`` / ``copy()`` are traced too. Without
    ``assay.init()`` the wrapped methods only call through.
    """
    for path, operation in (
        (("chat", "completions"), CHAT),
        (("responses",), RESPONSES),
        (("embeddings",), EMBEDDINGS),
    ):
        target = resource(client, *path)
        if target is not None:
            patch(target, "create", instrumenting(operation))
    for name in ("with_options", "copy"):
        patch(client, name, rewrapping(wrap_openai))
    return client


# --- shared readers --------------------------------------------------------------------------


def _usage(
    usage: Any, input_key: str, output_key: str, input_details: str, output_details: str
) -> dict[str, Any]:
    if usage is None:
        return {}
    return {
        "gen_ai.usage.input_tokens": field(usage, input_key),
        "gen_ai.usage.output_tokens": field(usage, output_key),
        "gen_ai.usage.cache_read.input_tokens": field(usage, input_details, "cached_tokens"),
        "gen_ai.usage.reasoning.output_tokens": field(usage, output_details, "reasoning_tokens"),
    }


def _response_identity(response: Any) -> dict[str, Any]:
    return {
        "gen_ai.response.id": field(response, "id"),
        "gen_ai.response.model": field(response, "model"),
        "openai.response.service_tier": field(response, "service_tier"),
        "openai.response.system_fingerprint": field(response, "system_fingerprint"),
    }


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Chat tools nest the function (``{"type", "function": {...}}``); Responses tools do not."""
    items = as_list(tools)
    if items is None:
        return None
    definitions = []
    for tool in items:
        function = field(tool, "function") or tool
        if field(tool, "type") in ("function", None) and field(function, "name"):
            definitions.append(
                function_definition(
                    field(function, "name"),
                    field(function, "description"),
                    field(function, "parameters"),
                )
            )
        else:
            definitions.append(plain(tool))
    return definitions


def _output_type(kwargs: Mapping[str, Any]) -> str | None:
    kind = field(kwargs, "response_format", "type") or field(kwargs, "text", "format", "type")
    return "json" if kind in ("json_object", "json_schema") else None


# --- Chat Completions ------------------------------------------------------------------------


def _chat_content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for part in as_list(content) or []:
        kind = field(part, "type")
        if kind == "text":
            parts.append(text_part(field(part, "text")))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": field(part, "refusal")})
        elif kind == "image_url":
            parts.append(uri_part("image", field(part, "image_url", "url")))
        elif kind == "input_audio":
            audio = field(part, "input_audio")
            parts.append(
                blob_part("audio", f"audio/{field(audio, 'format')}", field(audio, "data"))
            )
        else:
            parts.append(generic_part(part))
    return parts


def _chat_tool_calls(calls: Any) -> list[dict[str, Any]]:
    return [
        tool_call_part(
            field(call, "id"), field(call, "function", "name"), field(call, "function", "arguments")
        )
        for call in as_list(calls) or []
    ]


def _chat_message(item: Any, finish_reason: Any = None) -> dict[str, Any]:
    """One Chat Completions message (a request dict or a response model) as GenAI parts."""
    role = field(item, "role") or "assistant"
    if role in ("tool", "function"):
        call_id = field(item, "tool_call_id") or field(item, "name")
        parts = [tool_response_part(call_id, field(item, "content"))]
    else:
        parts = _chat_content_parts(field(item, "content"))
        refusal = field(item, "refusal")
        if refusal:
            parts.append({"type": "refusal", "content": refusal})
        parts.extend(_chat_tool_calls(field(item, "tool_calls")))
        legacy_call = field(item, "function_call")
        if legacy_call is not None:
            parts.append(
                tool_call_part(None, field(legacy_call, "name"), field(legacy_call, "arguments"))
            )
    return message(role, parts, name=field(item, "name"), finish_reason=finish_reason)


def _chat_request(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    attributes = request_parameters(kwargs)
    messages = as_list(kwargs.get("messages"))
    if messages is not None:
        attributes["gen_ai.input.messages"] = [_chat_message(m) for m in messages]
    attributes["gen_ai.tool.definitions"] = _tool_definitions(kwargs.get("tools"))
    attributes["gen_ai.output.type"] = _output_type(kwargs)
    attributes["openai.request.reasoning_effort"] = field(kwargs, "reasoning_effort")
    return attributes


def _chat_usage(usage: Any) -> dict[str, Any]:
    return _usage(
        usage,
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    )


def _chat_response(response: Any) -> dict[str, Any]:
    choices = as_list(field(response, "choices")) or []
    return {
        **_response_identity(response),
        **_chat_usage(field(response, "usage")),
        "gen_ai.response.finish_reasons": [
            str(field(choice, "finish_reason")) for choice in choices
        ],
        "gen_ai.output.messages": [
            _chat_message(field(choice, "message"), field(choice, "finish_reason"))
            for choice in choices
        ],
    }


class _ChoiceDraft:
    """One choice of a streamed chat completion, put back together from its deltas."""

    __slots__ = ("finish_reason", "refusal", "role", "text", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None

    def add(self, delta: Any, finish_reason: Any) -> bool:
        if finish_reason:
            self.finish_reason = str(finish_reason)
        if delta is None:
            return False
        self.role = field(delta, "role") or self.role
        produced = False
        content = field(delta, "content")
        if isinstance(content, str) and content:
            self.text.append(content)
            produced = True
        refusal = field(delta, "refusal")
        if isinstance(refusal, str) and refusal:
            self.refusal.append(refusal)
            produced = True
        for call in as_list(field(delta, "tool_calls")) or []:
            self._add_tool_call(call)
            produced = True
        return produced

    def _add_tool_call(self, call: Any) -> None:
        index = field(call, "index") or 0
        draft = self.tool_calls.setdefault(index, {"id": None, "name": None, "arguments": []})
        draft["id"] = field(call, "id") or draft["id"]
        draft["name"] = field(call, "function", "name") or draft["name"]
        arguments = field(call, "function", "arguments")
        if isinstance(arguments, str):
            draft["arguments"].append(arguments)

    def message(self) -> dict[str, Any]:
        parts = [text_part("".join(self.text))] if self.text else []
        if self.refusal:
            parts.append({"type": "refusal", "content": "".join(self.refusal)})
        for index in sorted(self.tool_calls):
            call = self.tool_calls[index]
            parts.append(tool_call_part(call["id"], call["name"], "".join(call["arguments"])))
        return message(self.role or "assistant", parts, finish_reason=self.finish_reason)


class _ChatStream:
    """Accumulates ``ChatCompletionChunk``s; usage comes in the last one with ``include_usage``."""

    def __init__(self) -> None:
        self.last_chunk: Any = None
        self.usage: Any = None
        self.choices: dict[int, _ChoiceDraft] = {}

    def observe(self, chunk: Any) -> bool:
        self.last_chunk = chunk
        usage = field(chunk, "usage")
        if usage is not None:
            self.usage = usage
        produced = False
        for choice in as_list(field(chunk, "choices")) or []:
            draft = self.choices.setdefault(field(choice, "index") or 0, _ChoiceDraft())
            if draft.add(field(choice, "delta"), field(choice, "finish_reason")):
                produced = True
        return produced

    def attributes(self) -> Mapping[str, Any]:
        drafts = [self.choices[index] for index in sorted(self.choices)]
        return {
            **_response_identity(self.last_chunk),
            **_chat_usage(self.usage),
            "gen_ai.response.finish_reasons": [d.finish_reason for d in drafts if d.finish_reason],
            "gen_ai.output.messages": [d.message() for d in drafts],
        }


CHAT = Operation("chat", PROVIDER, "llm", _chat_request, _chat_response, _ChatStream)


# --- Responses -------------------------------------------------------------------------------


def _responses_content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for part in as_list(content) or []:
        kind = field(part, "type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(text_part(field(part, "text")))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": field(part, "refusal")})
        elif kind == "input_image" and field(part, "image_url"):
            parts.append(uri_part("image", field(part, "image_url")))
        else:
            parts.append(generic_part(part))
    return parts


def _reasoning_text(item: Any) -> str:
    summary = as_list(field(item, "summary")) or []
    return "".join(str(field(s, "text") or "") for s in summary)


def _responses_item(item: Any) -> dict[str, Any]:
    """One item of a Responses ``input`` or ``output`` list as a GenAI message."""
    kind = field(item, "type")
    if kind == "function_call":
        call = tool_call_part(field(item, "call_id"), field(item, "name"), field(item, "arguments"))
        return message("assistant", [call])
    if kind == "function_call_output":
        return message("tool", [tool_response_part(field(item, "call_id"), field(item, "output"))])
    if kind == "reasoning":
        return message("assistant", [reasoning_part(_reasoning_text(item))])
    if kind in ("message", None):
        return message(
            field(item, "role") or "user", _responses_content_parts(field(item, "content"))
        )
    return message("assistant", [generic_part(item)])


def _responses_input(kwargs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    given_input = kwargs.get("input")
    items = [text_part(given_input)] if isinstance(given_input, str) else None
    messages: list[dict[str, Any]] = []
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str):
        messages.append(message("system", [text_part(instructions)]))
    if items is not None:
        messages.append(message("user", items))
    else:
        messages.extend(_responses_item(item) for item in as_list(given_input) or [])
    return messages or None


def _conversation_id(conversation: Any) -> Any:
    """``conversation`` is an id or ``{"id": ...}``."""
    return conversation if isinstance(conversation, str) else field(conversation, "id")


def _responses_request(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **request_parameters(kwargs),
        "gen_ai.input.messages": _responses_input(kwargs),
        "gen_ai.tool.definitions": _tool_definitions(kwargs.get("tools")),
        "gen_ai.output.type": _output_type(kwargs),
        "gen_ai.conversation.id": _conversation_id(kwargs.get("conversation")),
        "openai.request.reasoning_effort": field(kwargs, "reasoning", "effort"),
        "openai.request.previous_response_id": field(kwargs, "previous_response_id"),
    }


def _finish_reason(response: Any) -> str | None:
    """Chat Completions' words where they apply: ``stop``, ``tool_calls``, else the status."""
    status = field(response, "status")
    if status == "completed":
        items = as_list(field(response, "output")) or []
        calls = any(field(item, "type") == "function_call" for item in items)
        return "tool_calls" if calls else "stop"
    reason = field(response, "incomplete_details", "reason") or status
    return str(reason) if reason else None


def _responses_output(response: Any, finish_reason: str | None) -> list[dict[str, Any]]:
    """All output items merged into one assistant message, as Chat Completions would give."""
    parts: list[dict[str, Any]] = []
    for item in as_list(field(response, "output")) or []:
        parts.extend(_responses_item(item)["parts"])
    return [message("assistant", parts, finish_reason=finish_reason)]


def _responses_response(response: Any) -> dict[str, Any]:
    usage = _usage(
        field(response, "usage"),
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
        "output_tokens_details",
    )
    finish_reason = _finish_reason(response)
    return {
        **_response_identity(response),
        **usage,
        "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else None,
        "gen_ai.output.messages": _responses_output(response, finish_reason),
    }


class _ResponsesStream:
    """Responses streams carry the whole response in their created and final events."""

    def __init__(self) -> None:
        self.response: Any = None
        self.text: list[str] = []

    def observe(self, event: Any) -> bool:
        response = field(event, "response")
        if response is not None:
            self.response = response
        kind = field(event, "type")
        if kind == "response.output_text.delta":
            self.text.append(str(field(event, "delta") or ""))
        return isinstance(kind, str) and kind.endswith(".delta")

    def attributes(self) -> Mapping[str, Any]:
        attributes = _responses_response(self.response) if self.response is not None else {}
        if not as_list(field(self.response, "output")) and self.text:
            # The stream ended before its final event: keep what had arrived.
            partial = message("assistant", [text_part("".join(self.text))])
            attributes["gen_ai.output.messages"] = [partial]
        return attributes


RESPONSES = Operation(
    "responses", PROVIDER, "llm", _responses_request, _responses_response, _ResponsesStream
)


# --- Embeddings ------------------------------------------------------------------------------


def _embeddings_request(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    encoding = kwargs.get("encoding_format")
    return {
        **request_parameters(kwargs),
        "gen_ai.request.encoding_formats": [encoding] if isinstance(encoding, str) else None,
        "assay.input": plain(kwargs.get("input")),
    }


def _embeddings_response(response: Any) -> dict[str, Any]:
    data = as_list(field(response, "data")) or []
    first = field(data[0], "embedding") if data else None
    dimensions = len(first) if isinstance(first, list) else None
    return {
        "gen_ai.response.model": field(response, "model"),
        "gen_ai.usage.input_tokens": field(response, "usage", "prompt_tokens"),
        "gen_ai.embeddings.dimension.count": dimensions,
        "assay.output": {"embeddings": len(data), "dimensions": dimensions},
    }


EMBEDDINGS = Operation(
    "embeddings", PROVIDER, "embedding", _embeddings_request, _embeddings_response
)
