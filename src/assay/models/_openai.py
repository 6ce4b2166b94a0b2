"""OpenAI's Chat Completions and Embeddings, and every server that speaks them (Mistral, Ollama,
vLLM, llama.cpp server), through the official ``openai`` SDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assay.models._sdk import Clients, as_model_error, load, missing_key, require
from assay.models._types import Message, ModelError, Request, Response, ToolCall, Usage

EMBEDDING_BATCH = 1024


def _message(item: Message) -> dict[str, Any]:
    if item.role == "tool":
        return {"role": "tool", "tool_call_id": item.tool_call_id or "", "content": item.content}
    out: dict[str, Any] = {"role": item.role, "content": item.content}
    if item.tool_calls:
        out["content"] = item.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.raw_arguments},
            }
            for call in item.tool_calls
        ]
    return out


def _tool_choice(request: Request) -> Any:
    forced = request.forced_tool
    if forced is not None:
        return {"type": "function", "function": {"name": forced}}
    return request.tool_choice


def _response_format(schema: Any) -> dict[str, Any]:
    # Strict mode needs a closed schema; ask for it only when the schema is closed.
    strict = isinstance(schema, dict) and schema.get("additionalProperties") is False
    return {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": strict},
    }


def chat_arguments(request: Request, max_tokens_field: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
    }
    if request.tools:
        arguments["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters),
                },
            }
            for tool in request.tools
        ]
    if request.tool_choice is not None:
        arguments["tool_choice"] = _tool_choice(request)
    if request.temperature is not None:
        arguments["temperature"] = request.temperature
    if request.max_tokens is not None:
        arguments[max_tokens_field] = request.max_tokens
    if request.response_format is not None:
        arguments["response_format"] = _response_format(dict(request.response_format))
    if request.seed is not None:
        arguments["seed"] = request.seed
    return arguments


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=_count(getattr(usage, "prompt_tokens", 0)),
        output_tokens=_count(getattr(usage, "completion_tokens", 0)),
        cached_tokens=_count(getattr(usage.prompt_tokens_details, "cached_tokens", 0))
        if getattr(usage, "prompt_tokens_details", None)
        else 0,
        reasoning_tokens=_count(getattr(usage.completion_tokens_details, "reasoning_tokens", 0))
        if getattr(usage, "completion_tokens_details", None)
        else 0,
    )


def chat_response(completion: Any, provider: str) -> Response:
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise ModelError(f"{provider} answered with no choices")
    choice = choices[0]
    answer = choice.message
    calls = tuple(
        ToolCall.from_text(call.id, call.function.name, call.function.arguments or "")
        for call in answer.tool_calls or ()
        if getattr(call, "function", None) is not None
    )
    return Response(
        text=answer.content or "",
        tool_calls=calls,
        usage=_usage(completion.usage),
        model=completion.model or "",
        provider=provider,
        finish_reason=choice.finish_reason,
        id=completion.id,
    )


class OpenAIProvider:
    """Chat and embeddings through ``openai.OpenAI`` pointed at ``base_url``.

    ``api_key`` None lets the SDK read ``OPENAI_API_KEY`` (and ``base_url`` None,
    ``OPENAI_BASE_URL``), as it does on its own. ``max_tokens_field`` is
    ``max_completion_tokens`` for OpenAI (its reasoning models refuse ``max_tokens``) and
    ``max_tokens`` for the compatible servers, which may know only that.
    """

    def __init__(
        self,
        name: str,
        endpoint: str,
        *,
        base_url: str | None,
        api_key: str | None,
        api_key_variable: str = "OPENAI_API_KEY",
        max_tokens_field: str = "max_completion_tokens",
        client_options: dict[str, Any] | None = None,
    ) -> None:
        require("openai", "openai")
        self.name = name
        self.endpoint = endpoint
        self._max_tokens_field = max_tokens_field
        options = {"base_url": base_url, "api_key": api_key, "max_retries": 0}
        options.update(client_options or {})
        self._clients = Clients(
            lambda: self._make("OpenAI", options, api_key_variable),
            lambda: self._make("AsyncOpenAI", options, api_key_variable),
        )

    def _make(self, kind: str, options: dict[str, Any], api_key_variable: str) -> Any:
        sdk = load("openai", "openai")
        try:
            return getattr(sdk, kind)(**options)
        except sdk.OpenAIError:
            raise missing_key(self.name, api_key_variable) from None

    def _error(self, error: Exception) -> Exception:
        return as_model_error(load("openai", "openai"), error, self.name, self.endpoint)

    def complete(self, request: Request, timeout: float) -> Response:
        arguments = chat_arguments(request, self._max_tokens_field)
        client = self._clients.sync()
        try:
            completion = client.chat.completions.create(**arguments, timeout=timeout)
        except Exception as error:
            raise self._error(error) from error
        return chat_response(completion, self.name)

    async def acomplete(self, request: Request, timeout: float) -> Response:
        arguments = chat_arguments(request, self._max_tokens_field)
        client = self._clients.current_async()
        try:
            completion = await client.chat.completions.create(**arguments, timeout=timeout)
        except Exception as error:
            raise self._error(error) from error
        return chat_response(completion, self.name)

    def embed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]:
        client = self._clients.sync()
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), EMBEDDING_BATCH):
            batch = list(texts[start : start + EMBEDDING_BATCH])
            try:
                answer = client.embeddings.create(
                    model=model, input=batch, encoding_format="float", timeout=timeout
                )
            except Exception as error:
                raise self._error(error) from error
            vectors.extend(_vectors(answer))
            tokens += _count(getattr(answer.usage, "prompt_tokens", 0))
        return vectors, Usage(input_tokens=tokens)

    async def aembed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]:
        client = self._clients.current_async()
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), EMBEDDING_BATCH):
            batch = list(texts[start : start + EMBEDDING_BATCH])
            try:
                answer = await client.embeddings.create(
                    model=model, input=batch, encoding_format="float", timeout=timeout
                )
            except Exception as error:
                raise self._error(error) from error
            vectors.extend(_vectors(answer))
            tokens += _count(getattr(answer.usage, "prompt_tokens", 0))
        return vectors, Usage(input_tokens=tokens)


def _vectors(answer: Any) -> list[list[float]]:
    items = sorted(answer.data, key=lambda item: item.index)
    return [[float(x) for x in item.embedding] for item in items]
