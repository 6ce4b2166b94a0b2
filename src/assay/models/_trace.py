"""Every model call as an ``llm`` span with OpenTelemetry GenAI attributes, as the client
wrappers record them, so ingest reads both the same way."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from assay.models._types import Message, Request, Response, ToolCall, Usage
from assay.sdk import span as trace_span
from assay.sdk.wrappers._common import (
    function_definition,
    message,
    set_attributes,
    text_part,
    tool_call_part,
    tool_response_part,
)


def _calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [tool_call_part(c.id, c.name, c.raw_arguments) for c in calls]


def _message(item: Message) -> dict[str, Any]:
    if item.role == "tool":
        return message("tool", [tool_response_part(item.tool_call_id, item.content)])
    parts = [text_part(item.content)] if item.content else []
    return message(item.role, parts + _calls(item.tool_calls))


def request_attributes(request: Request) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.request.temperature": request.temperature,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.seed": request.seed,
        "gen_ai.input.messages": [_message(m) for m in request.messages],
        "gen_ai.output.type": "json" if request.response_format is not None else None,
    }
    if request.tools:
        attributes["gen_ai.tool.definitions"] = [
            function_definition(t.name, t.description, dict(t.parameters)) for t in request.tools
        ]
    if request.tool_choice is not None:
        attributes["assay.request.tool_choice"] = request.tool_choice
    return attributes


def usage_attributes(usage: Usage) -> dict[str, Any]:
    return {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
        "assay.cost": usage.cost,
    }


def response_attributes(response: Response) -> dict[str, Any]:
    parts = [text_part(response.text)] if response.text else []
    output = message(
        "assistant", parts + _calls(response.tool_calls), finish_reason=response.finish_reason
    )
    return {
        "gen_ai.response.id": response.id,
        "gen_ai.response.model": response.model or None,
        "gen_ai.response.finish_reasons": (
            [response.finish_reason] if response.finish_reason else None
        ),
        "gen_ai.output.messages": [output],
        "assay.cache_hit": response.cache_hit,
        **usage_attributes(response.usage),
    }


class CallRecord:
    """What a call adds to its span as it goes: retries, then the answer."""

    __slots__ = ("_span",)

    def __init__(self, span: Any) -> None:
        self._span = span

    def retried(self, attempts: int) -> None:
        if self._span is not None:
            set_attributes(self._span, {"assay.retries": attempts})

    def answered(self, response: Response) -> None:
        if self._span is not None:
            set_attributes(self._span, response_attributes(response))

    def set(self, attributes: dict[str, Any]) -> None:
        if self._span is not None:
            set_attributes(self._span, attributes)


@contextmanager
def llm_span(
    operation: str, provider: str, model: str, attributes: dict[str, Any], kind: str = "llm"
) -> Iterator[CallRecord]:
    """A span around one call; an exception leaving it marks the span as failed."""
    start = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    with trace_span(f"{operation} {model}", type=kind, **start) as handle:
        record = CallRecord(handle.otel_span)
        record.set(attributes)
        yield record
