"""``assay.wrap_anthropic(client)``: one span per ``messages.create`` / ``messages.stream`` call.

Anthropic reports cache reads and writes apart from ``input_tokens``; the span's
``gen_ai.usage.input_tokens`` is their sum, as OpenTelemetry GenAI and Assay's prices expect.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from assay.sdk._state import STATE
from assay.sdk.wrappers._common import (
    LlmCall,
    Operation,
    TracedAsyncStream,
    TracedStream,
    as_list,
    blob_part,
    field,
    function_definition,
    generic_part,
    instrumenting,
    is_async,
    json_value,
    message,
    number,
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

log = logging.getLogger("assay.sdk")

C = TypeVar("C")
PROVIDER = "anthropic"


def wrap_anthropic(client: C) -> C:
    """Trace ``client``'s ``messages.create`` and ``messages.stream``; returns the same client.

    Works for ``Anthropic`` and ``AsyncAnthropic``, streamed (``stream=True``) or not. Safe to
    call twice. Without ``assay.init()`` the wrapped methods only call through.
    """
    messages = resource(client, "messages")
    if messages is not None:
        asynchronous = is_async(getattr(messages, "create", None))
        patch(messages, "create", instrumenting(MESSAGES))
        patch(messages, "stream", _stream_helper(asynchronous))
    for name in ("with_options", "copy"):
        patch(client, name, rewrapping(wrap_anthropic))
    return client


# --- requests --------------------------------------------------------------------------------


def _media_part(block: Any, modality: str) -> dict[str, Any]:
    source = field(block, "source")
    kind = field(source, "type")
    if kind == "base64":
        return blob_part(modality, field(source, "media_type"), field(source, "data"))
    if kind == "url":
        return uri_part(modality, field(source, "url"))
    if kind == "text":
        return text_part(field(source, "data"))
    return generic_part(block)


def _tool_result(content: Any) -> Any:
    """A tool result's content: its text when it is only text, else the blocks."""
    blocks = as_list(content)
    if blocks is None:
        return content
    if all(field(b, "type") == "text" for b in blocks):
        return "".join(str(field(b, "text") or "") for b in blocks)
    return [_block_part(b) for b in blocks]


def _block_part(block: Any) -> dict[str, Any]:
    """One Anthropic content block as a GenAI message part."""
    kind = field(block, "type")
    if kind == "text":
        return text_part(field(block, "text"))
    if kind == "tool_use":
        return tool_call_part(field(block, "id"), field(block, "name"), field(block, "input"))
    if kind == "tool_result":
        return tool_response_part(
            field(block, "tool_use_id"), _tool_result(field(block, "content"))
        )
    if kind == "thinking":
        return reasoning_part(field(block, "thinking"))
    if kind == "image":
        return _media_part(block, "image")
    if kind == "document":
        return _media_part(block, "document")
    return generic_part(block)


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(content)]
    return [_block_part(block) for block in as_list(content) or []]


def _input_messages(kwargs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    messages = as_list(kwargs.get("messages"))
    if messages is None:
        return None
    converted = []
    system = kwargs.get("system")
    if system is not None and (isinstance(system, str) or as_list(system)):
        converted.append(message("system", _content_parts(system)))
    for item in messages:
        converted.append(message(field(item, "role"), _content_parts(field(item, "content"))))
    return converted


def _tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    items = as_list(tools)
    if items is None:
        return None
    return [
        function_definition(
            field(tool, "name"), field(tool, "description"), field(tool, "input_schema")
        )
        if field(tool, "input_schema") is not None
        else plain(tool)
        for tool in items
    ]


def _request(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **request_parameters(kwargs),
        "gen_ai.input.messages": _input_messages(kwargs),
        "gen_ai.tool.definitions": _tool_definitions(kwargs.get("tools")),
        "anthropic.request.thinking.budget_tokens": field(kwargs, "thinking", "budget_tokens"),
    }


# --- responses -------------------------------------------------------------------------------


def _usage(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    uncached = number(field(usage, "input_tokens"))
    read = number(field(usage, "cache_read_input_tokens"))
    written = number(field(usage, "cache_creation_input_tokens"))
    total_input = None if uncached is None else uncached + (read or 0) + (written or 0)
    return {
        "gen_ai.usage.input_tokens": total_input,
        "gen_ai.usage.output_tokens": number(field(usage, "output_tokens")),
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": written,
    }


def _response(response: Any) -> dict[str, Any]:
    stop_reason = field(response, "stop_reason")
    parts = _content_parts(field(response, "content"))
    return {
        "gen_ai.response.id": field(response, "id"),
        "gen_ai.response.model": field(response, "model"),
        "gen_ai.response.finish_reasons": [str(stop_reason)] if stop_reason else None,
        "gen_ai.output.messages": [
            message(field(response, "role") or "assistant", parts, finish_reason=stop_reason)
        ],
        **_usage(field(response, "usage")),
    }


class _MessagesStream:
    """Puts a message back together from ``message_start`` / ``content_block_*`` events."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self.usage: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, list[str]] = {}

    def observe(self, event: Any) -> bool:
        kind = field(event, "type")
        if kind == "message_start":
            start = field(event, "message")
            self.message.update(id=field(start, "id"), model=field(start, "model"))
            self._add_usage(field(start, "usage"))
        elif kind == "content_block_start":
            self.blocks[field(event, "index") or 0] = plain(field(event, "content_block")) or {}
        elif kind == "content_block_delta":
            return self._add_delta(field(event, "index") or 0, field(event, "delta"))
        elif kind == "message_delta":
            self.message["stop_reason"] = field(event, "delta", "stop_reason")
            self._add_usage(field(event, "usage"))
        return False

    def _add_usage(self, usage: Any) -> None:
        for key, value in (plain(usage) or {}).items():
            if value is not None:
                self.usage[key] = value

    def _add_delta(self, index: int, delta: Any) -> bool:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        kind = field(delta, "type")
        if kind == "text_delta":
            block["text"] = str(block.get("text") or "") + str(field(delta, "text") or "")
        elif kind == "input_json_delta":
            self.partial_json.setdefault(index, []).append(str(field(delta, "partial_json") or ""))
        elif kind == "thinking_delta":
            block["thinking"] = str(block.get("thinking") or "") + str(field(delta, "thinking"))
        else:
            return False
        return True

    def _content(self) -> list[dict[str, Any]]:
        content = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            pieces = self.partial_json.get(index)
            if pieces:
                block["input"] = json_value("".join(pieces))
            content.append(block)
        return content

    def attributes(self) -> Mapping[str, Any]:
        return _response({**self.message, "content": self._content(), "usage": self.usage})


MESSAGES = Operation("chat", PROVIDER, "llm", _request, _response, _MessagesStream)


# --- messages.stream(...) --------------------------------------------------------------------


def _stream_helper(is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    manager_class = _AsyncStreamManager if is_async else _StreamManager

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def stream(*args: Any, **kwargs: Any) -> Any:
            manager = original(*args, **kwargs)
            if STATE.tracer is None:
                return manager
            return manager_class(manager, kwargs)

        return stream

    return make


def _trace_raw_stream(
    stream: Any, call: LlmCall, proxy: type[TracedStream | TracedAsyncStream]
) -> None:
    """The SDK's ``MessageStream`` reads events from ``_raw_stream``: read them there too."""
    try:
        raw = stream._raw_stream
        stream._raw_stream = proxy(raw, call, _MessagesStream())
    except Exception:
        log.debug(
            "Assay: could not follow a messages.stream(); its span has no output", exc_info=True
        )


class _ManagerProxy:
    __slots__ = ("_assay_call", "_assay_kwargs", "_assay_manager")

    def __init__(self, manager: Any, kwargs: Mapping[str, Any]) -> None:
        self._assay_manager = manager
        self._assay_kwargs = kwargs
        self._assay_call: LlmCall | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_assay_"):
            raise AttributeError(name)
        return getattr(self._assay_manager, name)

    def _assay_end(self) -> None:
        if self._assay_call is not None:
            self._assay_call.end()


class _StreamManager(_ManagerProxy):
    """``with client.messages.stream(...) as stream:``; the span covers the whole stream."""

    __slots__ = ()

    def __enter__(self) -> Any:
        call = MESSAGES.begin(self._assay_kwargs)
        if call is None:
            return self._assay_manager.__enter__()
        self._assay_call = call
        token = call.activate()
        try:
            stream = self._assay_manager.__enter__()
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.deactivate(token)
        _trace_raw_stream(stream, call, TracedStream)
        return stream

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return self._assay_manager.__exit__(exc_type, exc, tb)
        finally:
            self._assay_end()


class _AsyncStreamManager(_ManagerProxy):
    """``async with client.messages.stream(...) as stream:``."""

    __slots__ = ()

    async def __aenter__(self) -> Any:
        call = MESSAGES.begin(self._assay_kwargs)
        if call is None:
            return await self._assay_manager.__aenter__()
        self._assay_call = call
        token = call.activate()
        try:
            stream = await self._assay_manager.__aenter__()
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.deactivate(token)
        _trace_raw_stream(stream, call, TracedAsyncStream)
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            return await self._assay_manager.__aexit__(exc_type, exc, tb)
        finally:
            self._assay_end()
