"""A local model server for tests: OpenAI- and Anthropic-compatible, canned and deterministic.

Point the real client libraries at it, so no test reaches the internet::

    with FakeLLM() as fake:
        client = openai.OpenAI(base_url=fake.openai_url, api_key="test", max_retries=0)
        anthropic.Anthropic(base_url=fake.anthropic_url, api_key="test", max_retries=0)

Endpoints: ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings`` (OpenAI) and
``/v1/messages`` (Anthropic), each streamed (server-sent events) when the request says
``"stream": true``. Answers are fixed text, or a call of the first tool when the request offers
tools, with the token usage below (cached and reasoning tokens included) so tests can assert exact
numbers. The model name picks failures: ``fail`` answers 400, ``fail-mid-stream`` sends an
error event after the first tokens of a Chat Completions stream. The response's model is the
requested one with a date suffix, as the providers answer. ``requests`` keeps every request body
received, ``arrivals`` the monotonic time each arrived.

A test can script answers (`Answer`): ``fake.script(a, b)`` queues one answer per request, in
order; ``fake.always(a)`` answers every request the queue does not. A scripted answer calls the
first offered tool with given arguments (a dict, or raw text that is not JSON), writes given text,
or fails with an HTTP status and headers (``Answer(status=429, headers={"retry-after": "0.2"})``).
Chat Completions and Messages take every kind; other endpoints take only the failures.
A scripted text answer to a Chat Completions request that asks for a stream is streamed word by
word. ``fake.reset()`` forgets the requests and the script.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

FAIL_MODEL = "fail"
FAIL_MID_STREAM_MODEL = "fail-mid-stream"
OPENAI_MODEL_SUFFIX = "-2024-07-18"
ANTHROPIC_MODEL_SUFFIX = "-20250929"
CREATED = 1_700_000_000

CHAT_TEXT = "The capital of France is Paris."
ANTHROPIC_TEXT = "Paris is the capital of France."
TOOL_PREAMBLE = "Let me look that up."
TOOL_ARGUMENTS = {"city": "Paris", "unit": "celsius"}
REASONING_SUMMARY = "The user asks for a capital."
TOOL_CALL_ID = "call_fake_1"
FIRST_TOKEN_DELAY_S = 0.03
EMBEDDING_DIMENSIONS = 8
EMBEDDING_TOKENS_PER_INPUT = 5


@dataclass(frozen=True)
class OpenAIUsage:
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True)
class AnthropicUsage:
    input_tokens: int  # not cached: Anthropic counts cache reads and writes apart
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    output_tokens: int

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens


CHAT_USAGE = OpenAIUsage(
    input_tokens=1200, cached_tokens=1024, output_tokens=40, reasoning_tokens=12
)
RESPONSES_USAGE = OpenAIUsage(
    input_tokens=900, cached_tokens=512, output_tokens=300, reasoning_tokens=256
)
ANTHROPIC_USAGE = AnthropicUsage(
    input_tokens=50, cache_read_input_tokens=2000, cache_creation_input_tokens=300, output_tokens=80
)


def _pieces(text: str) -> list[str]:
    """Text as the deltas a stream sends: word by word, spaces kept."""
    words = text.split(" ")
    return [w if i == len(words) - 1 else f"{w} " for i, w in enumerate(words)]


def _first_tool_name(body: dict[str, Any]) -> str | None:
    """The name of the first tool offered, in Chat, Responses or Anthropic shape."""
    tools = body.get("tools") or []
    if not tools:
        return None
    tool = tools[0]
    name = tool.get("name") or (tool.get("function") or {}).get("name")
    return str(name) if name else None


def _sse(data: Any, event: str | None = None) -> str:
    prefix = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{prefix}data: {payload}\n\n"


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream")


# --- OpenAI: Chat Completions ----------------------------------------------------------------


def _chat_usage() -> dict[str, Any]:
    u = CHAT_USAGE
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens, "audio_tokens": 0},
    }


def _chat_envelope(body: dict[str, Any], obj: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake-1",
        "object": obj,
        "created": CREATED,
        "model": f"{body['model']}{OPENAI_MODEL_SUFFIX}",
        "system_fingerprint": "fp_fake",
        "service_tier": "default",
    }


def _chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    tool = _first_tool_name(body)
    message: dict[str, Any] = {"role": "assistant", "content": CHAT_TEXT, "refusal": None}
    if tool:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": TOOL_CALL_ID,
                "type": "function",
                "function": {"name": tool, "arguments": json.dumps(TOOL_ARGUMENTS)},
            }
        ]
    choices = [
        {
            "index": i,
            "message": message,
            "finish_reason": "tool_calls" if tool else "stop",
            "logprobs": None,
        }
        for i in range(int(body.get("n") or 1))
    ]
    return {**_chat_envelope(body, "chat.completion"), "choices": choices, "usage": _chat_usage()}


def _chat_deltas(body: dict[str, Any], text: str = CHAT_TEXT) -> list[dict[str, Any]]:
    tool = _first_tool_name(body)
    if not tool:
        return [{"content": piece} for piece in _pieces(text)]
    arguments = json.dumps(TOOL_ARGUMENTS)
    start = {
        "index": 0,
        "id": TOOL_CALL_ID,
        "type": "function",
        "function": {"name": tool, "arguments": ""},
    }
    half = len(arguments) // 2
    rest = [arguments[:half], arguments[half:]]
    return [{"tool_calls": [start]}] + [
        {"tool_calls": [{"index": 0, "function": {"arguments": part}}]} for part in rest
    ]


async def _chat_events(body: dict[str, Any], text: str = CHAT_TEXT) -> AsyncIterator[str]:
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    envelope = _chat_envelope(body, "chat.completion.chunk")
    extra = {"usage": None} if with_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**envelope, "choices": [choice], **extra})

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    await asyncio.sleep(FIRST_TOKEN_DELAY_S)
    for n, delta in enumerate(_chat_deltas(body, text)):
        if n == 2 and body["model"] == FAIL_MID_STREAM_MODEL:
            yield _sse({"error": {"message": "The server is overloaded", "type": "server_error"}})
            return
        yield chunk(delta)
    yield chunk({}, "tool_calls" if _first_tool_name(body) else "stop")
    if with_usage:
        yield _sse({**envelope, "choices": [], "usage": _chat_usage()})
    yield _sse("[DONE]")


# --- OpenAI: Responses -----------------------------------------------------------------------


def _responses_output(body: dict[str, Any]) -> list[dict[str, Any]]:
    reasoning = {
        "type": "reasoning",
        "id": "rs_fake_1",
        "summary": [{"type": "summary_text", "text": REASONING_SUMMARY}],
    }
    tool = _first_tool_name(body)
    if tool:
        call = {
            "type": "function_call",
            "id": "fc_fake_1",
            "call_id": TOOL_CALL_ID,
            "name": tool,
            "arguments": json.dumps(TOOL_ARGUMENTS),
            "status": "completed",
        }
        return [reasoning, call]
    text = {"type": "output_text", "text": CHAT_TEXT, "annotations": []}
    answer = {
        "type": "message",
        "id": "msg_fake_1",
        "status": "completed",
        "role": "assistant",
        "content": [text],
    }
    return [reasoning, answer]


def _response(body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    u = RESPONSES_USAGE
    done = status == "completed"
    return {
        "id": "resp_fake_1",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "model": f"{body['model']}{OPENAI_MODEL_SUFFIX}",
        "output": _responses_output(body) if done else [],
        "usage": {
            "input_tokens": u.input_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens},
            "output_tokens": u.output_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.input_tokens + u.output_tokens,
        }
        if done
        else None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": body.get("temperature", 1.0),
        "tool_choice": "auto",
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
    }


async def _responses_events(body: dict[str, Any]) -> AsyncIterator[str]:
    sequence = iter(range(1_000))

    def event(kind: str, **fields: Any) -> str:
        return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    yield event("response.created", response=_response(body, "in_progress"))
    await asyncio.sleep(FIRST_TOKEN_DELAY_S)
    if not _first_tool_name(body):
        for piece in _pieces(CHAT_TEXT):
            yield event(
                "response.output_text.delta",
                item_id="msg_fake_1",
                output_index=1,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
    yield event("response.completed", response=_response(body))


# --- OpenAI: Embeddings ----------------------------------------------------------------------


def _vector(index: int) -> list[float]:
    return [round((index + 1) * 0.125 * (d + 1), 4) for d in range(EMBEDDING_DIMENSIONS)]


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    given = body.get("input")
    inputs = given if isinstance(given, list) else [given]
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i in range(len(inputs)):
        vector = _vector(i)
        packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append(
            {"object": "embedding", "index": i, "embedding": packed if as_base64 else vector}
        )
    tokens = EMBEDDING_TOKENS_PER_INPUT * len(inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- Anthropic: Messages ---------------------------------------------------------------------


def _anthropic_content(body: dict[str, Any]) -> list[dict[str, Any]]:
    tool = _first_tool_name(body)
    if not tool:
        return [{"type": "text", "text": ANTHROPIC_TEXT}]
    return [
        {"type": "text", "text": TOOL_PREAMBLE},
        {"type": "tool_use", "id": "toolu_fake_1", "name": tool, "input": TOOL_ARGUMENTS},
    ]


def _anthropic_usage(output_tokens: int) -> dict[str, Any]:
    u = ANTHROPIC_USAGE
    return {
        "input_tokens": u.input_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "output_tokens": output_tokens,
    }


def _anthropic_message(body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
    final = bool(content)
    tool = _first_tool_name(body)
    return {
        "id": "msg_fake_1",
        "type": "message",
        "role": "assistant",
        "model": f"{body['model']}{ANTHROPIC_MODEL_SUFFIX}",
        "content": content,
        "stop_reason": ("tool_use" if tool else "end_turn") if final else None,
        "stop_sequence": None,
        "usage": _anthropic_usage(ANTHROPIC_USAGE.output_tokens if final else 1),
    }


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start: dict[str, Any]
    if block["type"] == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
    else:
        start = {**block, "input": {}}
        arguments = json.dumps(block["input"])
        half = len(arguments) // 2
        deltas = [
            {"type": "input_json_delta", "partial_json": part}
            for part in (arguments[:half], arguments[half:])
        ]
    events = [("content_block_start", {"index": index, "content_block": start})]
    events += [("content_block_delta", {"index": index, "delta": d}) for d in deltas]
    events.append(("content_block_stop", {"index": index}))
    return events


async def _anthropic_events(body: dict[str, Any]) -> AsyncIterator[str]:
    def event(kind: str, fields: dict[str, Any]) -> str:
        return _sse({"type": kind, **fields}, kind)

    yield event("message_start", {"message": _anthropic_message(body, [])})
    yield event("ping", {})
    await asyncio.sleep(FIRST_TOKEN_DELAY_S)
    content = _anthropic_content(body)
    for index, block in enumerate(content):
        for kind, fields in _block_events(index, block):
            yield event(kind, fields)
    final = _anthropic_message(body, content)
    delta = {"stop_reason": final["stop_reason"], "stop_sequence": None}
    usage = {"output_tokens": ANTHROPIC_USAGE.output_tokens}
    yield event("message_delta", {"delta": delta, "usage": usage})
    yield event("message_stop", {})


# --- scripted answers ------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a call of the first offered tool with ``arguments`` (a dict, or raw
    text sent as the call's arguments), plain ``text``, or an HTTP error ``status``."""

    arguments: Any = None
    text: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


def _scripted_chat(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
    finish = "stop"
    if answer.arguments is not None:
        arguments = answer.arguments
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        tool = _first_tool_name(body) or "answer"
        message["tool_calls"] = [
            {"id": TOOL_CALL_ID, "type": "function", "function": {"name": tool, "arguments": text}}
        ]
        finish = "tool_calls"
    choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
    envelope = _chat_envelope(body, "chat.completion")
    return {**envelope, "choices": [choice], "usage": _chat_usage()}


def _scripted_message(body: dict[str, Any], answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text is not None:
        content.append({"type": "text", "text": answer.text})
    if isinstance(answer.arguments, dict):
        tool = _first_tool_name(body) or "answer"
        content.append(
            {"type": "tool_use", "id": "toolu_fake_1", "name": tool, "input": answer.arguments}
        )
    elif answer.arguments is not None:
        # A tool_use input is always an object: raw text arrives as text.
        content.append({"type": "text", "text": str(answer.arguments)})
    message = _anthropic_message(body, content)
    message["stop_reason"] = "tool_use" if isinstance(answer.arguments, dict) else "end_turn"
    return message


def _status_error(answer: Answer, anthropic_shape: bool) -> JSONResponse:
    kind = "rate_limit_error" if answer.status == 429 else "api_error"
    error = {"type": kind, "message": f"scripted HTTP {answer.status}"}
    body = {"type": "error", "error": error} if anthropic_shape else {"error": error}
    return JSONResponse(body, status_code=answer.status, headers=dict(answer.headers))


# --- the app ---------------------------------------------------------------------------------


def _openai_error(model: str) -> JSONResponse:
    error = {
        "message": f"The model `{model}` does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    return JSONResponse({"error": error}, status_code=400)


def _anthropic_error(model: str) -> JSONResponse:
    error = {"type": "invalid_request_error", "message": f"model: {model} is not available"}
    return JSONResponse({"type": "error", "error": error}, status_code=400)


Handler = Callable[[dict[str, Any]], Any]


class FakeLLM:
    """The fake model server, run by uvicorn in a thread of the test process."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.arrivals: list[float] = []
        self.url = ""
        self._script: list[Answer] = []
        self._always: Answer | None = None
        self._script_lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order."""
        with self._script_lock:
            self._script.extend(answers)

    def always(self, answer: Answer | None) -> None:
        """Answer every request the script does not with this (None: the canned answers)."""
        self._always = answer

    def reset(self) -> None:
        with self._script_lock:
            self._script.clear()
            self._always = None
            self.requests.clear()
            self.arrivals.clear()

    def _received(self, path: str, body: dict[str, Any]) -> Answer | None:
        with self._script_lock:
            self.requests.append((path, body))
            self.arrivals.append(time.monotonic())
            return self._script.pop(0) if self._script else self._always

    def app(self) -> Starlette:
        routes = [
            Route(
                "/v1/chat/completions",
                self._openai(_chat_completion, _chat_events),
                methods=["POST"],
            ),
            Route("/v1/responses", self._openai(_response, _responses_events), methods=["POST"]),
            Route("/v1/embeddings", self._openai(_embeddings, None), methods=["POST"]),
            Route("/v1/messages", self._anthropic(), methods=["POST"]),
        ]
        return Starlette(routes=routes)

    def _openai(
        self, answer: Handler, events: Callable[[dict[str, Any]], AsyncIterator[str]] | None
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            body = await request.json()
            scripted = self._received(request.url.path, body)
            if scripted is not None and scripted.status != 200:
                return _status_error(scripted, anthropic_shape=False)
            if scripted is not None and answer is _chat_completion:
                if body.get("stream") and scripted.text is not None and scripted.arguments is None:
                    return _stream(_chat_events(body, scripted.text))
                return JSONResponse(_scripted_chat(body, scripted))
            if body.get("model") == FAIL_MODEL:
                return _openai_error(FAIL_MODEL)
            if body.get("stream") and events is not None:
                return _stream(events(body))
            return JSONResponse(answer(body))

        return endpoint

    def _anthropic(self) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            body = await request.json()
            scripted = self._received(request.url.path, body)
            if scripted is not None and scripted.status != 200:
                return _status_error(scripted, anthropic_shape=True)
            if scripted is not None:
                return JSONResponse(_scripted_message(body, scripted))
            if body.get("model") == FAIL_MODEL:
                return _anthropic_error(FAIL_MODEL)
            if body.get("stream"):
                return _stream(_anthropic_events(body))
            return JSONResponse(_anthropic_message(body, _anthropic_content(body)))

        return endpoint

    def start(self) -> FakeLLM:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake model server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(20)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
