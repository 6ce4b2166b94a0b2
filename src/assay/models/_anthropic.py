"""Anthropic's Messages API through the official ``anthropic`` SDK.

Structured output (``response_format``) is Anthropic's ``output_config.format``. The Messages
API takes no temperature: a request's temperature is not sent (it still decides caching).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from assay.errors import UserError
from assay.models._sdk import Clients, as_model_error, load, missing_key, require
from assay.models._types import Message, Request, Response, ToolCall, Usage

#: Anthropic requires max_tokens on every call.
DEFAULT_MAX_TOKENS = 1024


def _content(item: Message) -> list[dict[str, Any]]:
    if item.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": item.tool_call_id or "", "content": item.content}
        ]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": item.content}] if item.content else []
    for call in item.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments or {}}
        )
    return blocks


def _messages(request: Request) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt apart, and the rest with tool results sent as the user's turn."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    turns: list[dict[str, Any]] = []
    for item in request.messages:
        if item.role == "system":
            continue
        role = "user" if item.role == "tool" else item.role
        blocks = _content(item)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic wants turns to alternate
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def messages_arguments(request: Request) -> dict[str, Any]:
    system, turns = _messages(request)
    arguments: dict[str, Any] = {
        "model": request.model,
        "messages": turns,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        arguments["system"] = system
    tools = [
        {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
        for t in request.tools
    ]
    choice: dict[str, Any] | None = None
    if request.response_format is not None:
        schema = dict(request.response_format)
        arguments["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if request.forced_tool is not None:
        choice = {"type": "tool", "name": request.forced_tool}
    elif request.tool_choice == "required":
        choice = {"type": "any"}
    elif request.tool_choice in ("auto", "none"):
        choice = {"type": request.tool_choice}
    if tools:
        arguments["tools"] = tools
    if choice is not None:
        arguments["tool_choice"] = choice
    return arguments


def _count(usage: Any, name: str) -> int:
    value = getattr(usage, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(usage: Any) -> Usage:
    # Anthropic counts cache reads and writes apart from input_tokens; ours include them.
    cache_read = _count(usage, "cache_read_input_tokens")
    uncached = _count(usage, "input_tokens") + _count(usage, "cache_creation_input_tokens")
    return Usage(
        input_tokens=uncached + cache_read,
        output_tokens=_count(usage, "output_tokens"),
        cached_tokens=cache_read,
    )


def messages_response(message: Any) -> Response:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content or ():
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(block.id, block.name, block.input, json.dumps(block.input)))
    return Response(
        text="".join(texts),
        tool_calls=tuple(calls),
        usage=_usage(message.usage),
        model=message.model or "",
        provider="anthropic",
        finish_reason=message.stop_reason,
        id=message.id,
    )


class AnthropicProvider:
    """Chat through ``anthropic.Anthropic``; ``api_key`` / ``base_url`` None let the SDK read
    ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``."""

    name = "anthropic"

    def __init__(
        self,
        endpoint: str,
        *,
        base_url: str | None,
        api_key: str | None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        require("anthropic", "anthropic")
        self.endpoint = endpoint
        options = {"base_url": base_url, "api_key": api_key, "max_retries": 0}
        options.update(client_options or {})
        self._clients = Clients(
            lambda: self._make("Anthropic", options), lambda: self._make("AsyncAnthropic", options)
        )

    def _make(self, kind: str, options: dict[str, Any]) -> Any:
        sdk = load("anthropic", "anthropic")
        client = getattr(sdk, kind)(**options)
        # The SDK accepts a missing key at construction and fails on the first call instead.
        if not (client.api_key or client.auth_token):
            raise missing_key("anthropic", "ANTHROPIC_API_KEY")
        return client

    def _error(self, error: Exception) -> Exception:
        return as_model_error(load("anthropic", "anthropic"), error, self.name, self.endpoint)

    def complete(self, request: Request, timeout: float) -> Response:
        arguments = messages_arguments(request)
        client = self._clients.sync()
        try:
            message = client.messages.create(**arguments, timeout=timeout)
        except Exception as error:
            raise self._error(error) from error
        return messages_response(message)

    async def acomplete(self, request: Request, timeout: float) -> Response:
        arguments = messages_arguments(request)
        client = self._clients.current_async()
        try:
            message = await client.messages.create(**arguments, timeout=timeout)
        except Exception as error:
            raise self._error(error) from error
        return messages_response(message)

    def embed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]:
        raise UserError(
            "Anthropic offers no embeddings; use an openai/, openai-compatible/ or mock/ model"
        )

    async def aembed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]:
        return self.embed(model, texts, timeout)
