"""`assay.wrap_openai` / `assay.wrap_anthropic` against the real client libraries, a local fake
model server and a live Assay server: what each call's span says once it has been ingested."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, cast

import anthropic
import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

import assay
from assay.sdk._state import STATE
from assay.sdk.wrappers import _openai as openai_wrapper
from tests.conftest import LiveServer
from tests.fake_llm import (
    ANTHROPIC_MODEL_SUFFIX,
    ANTHROPIC_TEXT,
    ANTHROPIC_USAGE,
    CHAT_TEXT,
    CHAT_USAGE,
    EMBEDDING_DIMENSIONS,
    EMBEDDING_TOKENS_PER_INPUT,
    FAIL_MID_STREAM_MODEL,
    FAIL_MODEL,
    FIRST_TOKEN_DELAY_S,
    OPENAI_MODEL_SUFFIX,
    REASONING_SUMMARY,
    RESPONSES_USAGE,
    TOOL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_PREAMBLE,
    FakeLLM,
)

PROJECT = "wrappers"
GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-5"
# USD per 1M tokens in the built-in price table: (input, output, cache read).
GPT_PRICE = (0.15, 0.60, 0.075)
CLAUDE_PRICE = (3.00, 15.00, 0.30)
WEATHER_CHAT_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
RESPONSES_WEATHER_TOOL: Any = {"type": "function", **WEATHER_CHAT_TOOL["function"]}
WEATHER_DEFINITION = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def traced(live: LiveServer) -> Iterator[LiveServer]:
    provider = TracerProvider()
    assay.init(PROJECT, url=live.url, tracer_provider=provider)
    try:
        yield live
    finally:
        assay.shutdown()
        provider.shutdown()


def _openai(fake: FakeLLM) -> openai.OpenAI:
    return assay.wrap_openai(openai.OpenAI(base_url=fake.openai_url, api_key="t", max_retries=0))


def _async_openai(fake: FakeLLM) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(base_url=fake.openai_url, api_key="t", max_retries=0)
    return assay.wrap_openai(client)


def _anthropic(fake: FakeLLM) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="t", max_retries=0)
    return assay.wrap_anthropic(client)


def _async_anthropic(fake: FakeLLM) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(base_url=fake.anthropic_url, api_key="t", max_retries=0)
    return assay.wrap_anthropic(client)


def _spans(client: httpx.Client, project: str = PROJECT) -> list[dict[str, Any]]:
    assert assay.flush(10)
    response = client.get(f"/api/v1/projects/{project}/spans", params={"limit": 200})
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda s: s["start_ns"])


def _llm_spans(client: httpx.Client, project: str = PROJECT) -> list[dict[str, Any]]:
    """The wrappers' spans: other libraries' own spans (if any) are left out."""
    return [s for s in _spans(client, project) if "gen_ai.operation.name" in s["attributes"]]


def _only(client: httpx.Client) -> dict[str, Any]:
    [span] = _llm_spans(client)
    return span


def _text(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}], **extra}


def _first_text(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert isinstance(block, anthropic.types.TextBlock)
    return block.text


def _cost(price: tuple[float, float, float], inputs: int, cached: int, outputs: int) -> float:
    return ((inputs - cached) * price[0] + cached * price[2] + outputs * price[1]) / 1e6


def _assert_chat_usage(span: dict[str, Any]) -> None:
    u = CHAT_USAGE
    assert (span["input_tokens"], span["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert (span["cached_tokens"], span["reasoning_tokens"]) == (
        u.cached_tokens,
        u.reasoning_tokens,
    )
    expected = _cost(GPT_PRICE, u.input_tokens, u.cached_tokens, u.output_tokens)
    assert span["cost"] == pytest.approx(expected) and span["cost"] > 0


def _assert_anthropic_usage(span: dict[str, Any]) -> None:
    u = ANTHROPIC_USAGE
    # Anthropic counts cache reads and writes apart; the span's input includes both.
    assert span["input_tokens"] == u.total_input_tokens == 2350
    assert span["output_tokens"] == u.output_tokens
    assert span["cached_tokens"] == u.cache_read_input_tokens
    attributes = span["attributes"]
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == u.cache_creation_input_tokens
    expected = _cost(CLAUDE_PRICE, u.total_input_tokens, u.cache_read_input_tokens, 80)
    assert span["cost"] == pytest.approx(expected) and span["cost"] > 0


def _assert_first_token_time(span: dict[str, Any]) -> None:
    first_token_ms = span["attributes"]["assay.time_to_first_token_ms"]
    assert FIRST_TOKEN_DELAY_S * 1000 <= first_token_ms <= span["duration_ns"] / 1e6


# --- OpenAI: Chat Completions ----------------------------------------------------------------


def test_openai_chat_sync(traced: LiveServer, client: httpx.Client, fake: FakeLLM) -> None:
    llm = _openai(fake)
    completion = llm.chat.completions.create(
        model=GPT,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
        ],
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        seed=7,
        stop=["\n\n"],
    )
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.choices[0].message.content == CHAT_TEXT
    span = _only(client)
    assert span["name"] == f"chat {GPT}" and span["type"] == "llm"
    assert span["model"] == f"{GPT}{OPENAI_MODEL_SUFFIX}" and span["provider"] == "openai"
    assert span["operation"] == "chat" and span["status"] != "error"
    assert json.loads(span["input"]) == [
        _text("system", "You are terse."),
        _text("user", "Capital of France?"),
    ]
    assert json.loads(span["output"]) == [_text("assistant", CHAT_TEXT, finish_reason="stop")]
    _assert_chat_usage(span)
    attributes = span["attributes"]
    assert attributes["gen_ai.request.model"] == GPT
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.seed"] == 7
    assert attributes["gen_ai.request.stop_sequences"] == ["\n\n"]
    assert attributes["gen_ai.response.id"] == "chatcmpl-fake-1"
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert "assay.time_to_first_token_ms" not in attributes
    # The span is remembered, so feedback can name it by its id alone.
    assert assay.log_feedback(span["span_id"], "helpful", value=1)


def test_openai_chat_async_nests_under_traced_function(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    @assay.traced(type="agent")
    async def agent(question: str) -> str:
        llm = _async_openai(fake)
        try:
            completion = await llm.chat.completions.create(
                model=GPT, messages=[{"role": "user", "content": question}]
            )
        finally:
            await llm.close()
        return str(completion.choices[0].message.content)

    assert asyncio.run(agent("Capital of France?")) == CHAT_TEXT
    spans = _spans(client)
    root = next(s for s in spans if s["type"] == "agent")
    llm_span = _only(client)
    assert llm_span["parent_span_id"] == root["span_id"]
    assert llm_span["trace_id"] == root["trace_id"]
    assert json.loads(llm_span["input"]) == [_text("user", "Capital of France?")]
    assert json.loads(llm_span["output"])[0]["parts"] == [{"type": "text", "content": CHAT_TEXT}]
    _assert_chat_usage(llm_span)


def test_openai_chat_stream_sync(traced: LiveServer, client: httpx.Client, fake: FakeLLM) -> None:
    arguments: dict[str, Any] = {
        "model": GPT,
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    plain = openai.OpenAI(base_url=fake.openai_url, api_key="t", max_retries=0)
    list(plain.chat.completions.create(**arguments))
    stream = _openai(fake).chat.completions.create(**arguments)
    # The proxy passes for the SDK's stream and answers like it.
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    with stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == CHAT_TEXT
    # The wrapped client sent exactly what the plain one did.
    assert fake.requests[-1] == fake.requests[-2]
    span = _only(client)
    assert json.loads(span["output"]) == [_text("assistant", CHAT_TEXT, finish_reason="stop")]
    assert span["attributes"]["gen_ai.response.model"] == f"{GPT}{OPENAI_MODEL_SUFFIX}"
    _assert_chat_usage(span)
    _assert_first_token_time(span)


def test_openai_chat_stream_async_with_tool_calls(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    async def run() -> list[Any]:
        llm = _async_openai(fake)
        stream = await llm.chat.completions.create(
            model=GPT,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_CHAT_TOOL],
            stream=True,
        )
        assert isinstance(stream, openai.AsyncStream)
        async with stream:
            chunks = [chunk async for chunk in stream]
        await llm.close()
        return chunks

    chunks = asyncio.run(run())
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    span = _only(client)
    [output] = json.loads(span["output"])
    assert output == {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": TOOL_CALL_ID,
                "name": "get_weather",
                "arguments": TOOL_ARGUMENTS,
            }
        ],
        "finish_reason": "tool_calls",
    }
    assert json.loads(span["attributes"]["gen_ai.tool.definitions"]) == [WEATHER_DEFINITION]
    # Without stream_options.include_usage the API reports no usage, so the span has none.
    assert span["input_tokens"] is None and span["cost"] is None
    _assert_first_token_time(span)


def test_openai_tool_call_round_trip(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    llm = _openai(fake)
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    first = llm.chat.completions.create(model=GPT, messages=[question], tools=[WEATHER_CHAT_TOOL])
    [call] = first.choices[0].message.tool_calls or []
    assert isinstance(call, openai.types.chat.ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    history: Any = [
        question,
        first.choices[0].message,
        {"role": "tool", "tool_call_id": call.id, "content": "18C"},
    ]
    llm.chat.completions.create(model=GPT, messages=history)
    asked, answered = _llm_spans(client)
    assert json.loads(asked["output"])[0]["parts"] == [
        {
            "type": "tool_call",
            "id": TOOL_CALL_ID,
            "name": "get_weather",
            "arguments": TOOL_ARGUMENTS,
        }
    ]
    assert asked["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert json.loads(answered["input"]) == [
        _text("user", "Weather in Paris?"),
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": TOOL_CALL_ID,
                    "name": "get_weather",
                    "arguments": TOOL_ARGUMENTS,
                }
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": TOOL_CALL_ID, "response": "18C"}],
        },
    ]
    _assert_chat_usage(answered)


# --- OpenAI: Responses and Embeddings --------------------------------------------------------


def _assert_responses_usage(span: dict[str, Any]) -> None:
    u = RESPONSES_USAGE
    assert (span["input_tokens"], span["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert (span["cached_tokens"], span["reasoning_tokens"]) == (
        u.cached_tokens,
        u.reasoning_tokens,
    )
    expected = _cost(GPT_PRICE, u.input_tokens, u.cached_tokens, u.output_tokens)
    assert span["cost"] == pytest.approx(expected) and span["cost"] > 0


def test_openai_responses_sync_and_async_stream(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    response = _openai(fake).responses.create(
        model=GPT, instructions="Answer briefly.", input="Capital of France?", temperature=0.5
    )
    assert response.output_text == CHAT_TEXT

    async def stream() -> list[str]:
        llm = _async_openai(fake)
        events = await llm.responses.create(
            model=GPT,
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]}],
            tools=[RESPONSES_WEATHER_TOOL],
            stream=True,
        )
        assert isinstance(events, openai.AsyncStream)
        kinds: list[str] = [event.type async for event in events]
        await llm.close()
        return kinds

    assert asyncio.run(stream())[-1] == "response.completed"
    plain_span, streamed_span = _llm_spans(client)
    for span in (plain_span, streamed_span):
        assert span["name"] == f"responses {GPT}" and span["type"] == "llm"
        assert span["operation"] == "responses" and span["provider"] == "openai"
        assert span["model"] == f"{GPT}{OPENAI_MODEL_SUFFIX}"
        _assert_responses_usage(span)
    assert json.loads(plain_span["input"]) == [
        _text("system", "Answer briefly."),
        _text("user", "Capital of France?"),
    ]
    assert plain_span["attributes"]["gen_ai.request.temperature"] == 0.5
    assert json.loads(plain_span["output"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": REASONING_SUMMARY},
                {"type": "text", "content": CHAT_TEXT},
            ],
            "finish_reason": "stop",
        }
    ]
    assert json.loads(streamed_span["input"]) == [_text("user", "Weather?")]
    [streamed_output] = json.loads(streamed_span["output"])
    assert streamed_output["parts"][1] == {
        "type": "tool_call",
        "id": TOOL_CALL_ID,
        "name": "get_weather",
        "arguments": TOOL_ARGUMENTS,
    }
    assert streamed_output["finish_reason"] == "tool_calls"
    assert json.loads(streamed_span["attributes"]["gen_ai.tool.definitions"]) == [
        WEATHER_DEFINITION
    ]


def test_openai_embeddings(traced: LiveServer, client: httpx.Client, fake: FakeLLM) -> None:
    result = _openai(fake).embeddings.create(
        model="text-embedding-3-small", input=["first text", "second text"]
    )
    assert len(result.data) == 2 and len(result.data[0].embedding) == EMBEDDING_DIMENSIONS
    span = _only(client)
    assert span["name"] == "embeddings text-embedding-3-small"
    assert span["type"] == "embedding" and span["operation"] == "embeddings"
    assert span["model"] == "text-embedding-3-small" and span["provider"] == "openai"
    assert json.loads(span["input"]) == ["first text", "second text"]
    assert json.loads(span["output"]) == {"embeddings": 2, "dimensions": EMBEDDING_DIMENSIONS}
    assert span["input_tokens"] == 2 * EMBEDDING_TOKENS_PER_INPUT
    assert span["attributes"]["gen_ai.embeddings.dimension.count"] == EMBEDDING_DIMENSIONS


# --- Anthropic -------------------------------------------------------------------------------


WEATHER_ANTHROPIC_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
ANTHROPIC_TOOL_OUTPUT = {
    "role": "assistant",
    "parts": [
        {"type": "text", "content": TOOL_PREAMBLE},
        {
            "type": "tool_call",
            "id": "toolu_fake_1",
            "name": "get_weather",
            "arguments": TOOL_ARGUMENTS,
        },
    ],
    "finish_reason": "tool_use",
}


def test_anthropic_messages_sync(traced: LiveServer, client: httpx.Client, fake: FakeLLM) -> None:
    message = _anthropic(fake).messages.create(
        model=CLAUDE,
        max_tokens=256,
        stop_sequences=["END"],
        system="You are terse.",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_0",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "18C"}],
            },
        ],
    )
    assert _first_text(message) == ANTHROPIC_TEXT
    span = _only(client)
    assert span["name"] == f"chat {CLAUDE}" and span["type"] == "llm"
    assert span["model"] == f"{CLAUDE}{ANTHROPIC_MODEL_SUFFIX}" and span["provider"] == "anthropic"
    assert json.loads(span["input"]) == [
        _text("system", "You are terse."),
        _text("user", "Weather in Paris?"),
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "toolu_0",
                    "name": "get_weather",
                    "arguments": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"type": "tool_call_response", "id": "toolu_0", "response": "18C"}],
        },
    ]
    assert json.loads(span["output"]) == [
        _text("assistant", ANTHROPIC_TEXT, finish_reason="end_turn")
    ]
    attributes = span["attributes"]
    assert attributes["gen_ai.request.max_tokens"] == 256
    assert attributes["gen_ai.request.stop_sequences"] == ["END"]
    assert attributes["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attributes["gen_ai.response.id"] == "msg_fake_1"
    _assert_anthropic_usage(span)


def test_anthropic_async_stream_with_tool_use(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    async def run() -> list[str]:
        llm = _async_anthropic(fake)
        stream = await llm.messages.create(
            model=CLAUDE,
            max_tokens=256,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_ANTHROPIC_TOOL],
            stream=True,
        )
        assert isinstance(stream, anthropic.AsyncStream)
        kinds: list[str] = [event.type async for event in stream]
        await llm.close()
        return kinds

    kinds = asyncio.run(run())
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    span = _only(client)
    assert json.loads(span["output"]) == [ANTHROPIC_TOOL_OUTPUT]
    assert json.loads(span["attributes"]["gen_ai.tool.definitions"]) == [WEATHER_DEFINITION]
    assert span["model"] == f"{CLAUDE}{ANTHROPIC_MODEL_SUFFIX}"
    _assert_anthropic_usage(span)
    _assert_first_token_time(span)


def test_anthropic_stream_sync_and_stream_helpers(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    llm = _anthropic(fake)
    question: Any = [{"role": "user", "content": "Capital of France?"}]
    events = llm.messages.create(model=CLAUDE, max_tokens=64, messages=question, stream=True)
    assert isinstance(events, anthropic.Stream)
    for _ in events:
        pass
    with llm.messages.stream(model=CLAUDE, max_tokens=64, messages=question) as stream:
        assert "".join(stream.text_stream) == ANTHROPIC_TEXT
        assert stream.get_final_message().usage.cache_read_input_tokens == 2000

    async def run() -> str:
        async_llm = _async_anthropic(fake)
        async with async_llm.messages.stream(
            model=CLAUDE,
            max_tokens=64,
            messages=question,
            tools=[WEATHER_ANTHROPIC_TOOL],
        ) as stream:
            final = await stream.get_final_message()
        await async_llm.close()
        return final.stop_reason or ""

    assert asyncio.run(run()) == "tool_use"
    spans = _llm_spans(client)
    assert len(spans) == 3
    for span in spans:
        assert span["name"] == f"chat {CLAUDE}" and span["status"] != "error"
        assert json.loads(span["input"]) == [_text("user", "Capital of France?")]
        _assert_anthropic_usage(span)
        _assert_first_token_time(span)
    text_output = [_text("assistant", ANTHROPIC_TEXT, finish_reason="end_turn")]
    assert [json.loads(s["output"]) for s in spans] == [
        text_output,
        text_output,
        [ANTHROPIC_TOOL_OUTPUT],
    ]


# --- errors, early exits, masking, robustness ------------------------------------------------


def test_errors_are_recorded_and_reraised_untouched(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    with pytest.raises(openai.BadRequestError) as openai_error:
        _openai(fake).chat.completions.create(
            model=FAIL_MODEL, messages=[{"role": "user", "content": "x"}]
        )
    assert openai_error.value.status_code == 400
    with pytest.raises(anthropic.BadRequestError):
        _anthropic(fake).messages.create(
            model=FAIL_MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    stream = _openai(fake).chat.completions.create(
        model=FAIL_MID_STREAM_MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="overloaded"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    failed_openai, failed_anthropic, failed_stream = _llm_spans(client)
    for span in (failed_openai, failed_anthropic, failed_stream):
        assert span["status"] == "error" and span["is_error"]
    assert "BadRequestError" in failed_openai["error"]
    assert failed_openai["attributes"]["error.type"] == "BadRequestError"
    assert "does not exist" in failed_openai["error"]
    assert "BadRequestError" in failed_anthropic["error"]
    assert "is not available" in failed_anthropic["error"]
    assert failed_openai["model"] == failed_anthropic["model"] == FAIL_MODEL
    assert "overloaded" in failed_stream["error"]
    # What had streamed before the failure is kept.
    [partial] = json.loads(failed_stream["output"])
    assert partial["parts"] == [{"type": "text", "content": "".join(received)}]
    assert "".join(received) == "The capital "


def test_stream_closed_early_still_ends_its_span(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    stream = _openai(fake).chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "x"}], stream=True
    )
    next(stream)
    first_words = next(stream).choices[0].delta.content
    stream.close()
    span = _only(client)
    assert span["status"] != "error"
    assert json.loads(span["output"])[0]["parts"] == [{"type": "text", "content": first_words}]
    assert "finish_reason" not in json.loads(span["output"])[0]


def test_mask_sees_messages_before_they_leave(
    live: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    provider = TracerProvider()

    def mask(value: Any) -> Any:
        return json.loads(json.dumps(value).replace("4111-1111", "****"))

    assay.init(PROJECT, url=live.url, tracer_provider=provider, mask=mask)
    try:
        _openai(fake).chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": "my card is 4111-1111"}]
        )
        span = _only(client)
    finally:
        assay.shutdown()
        provider.shutdown()
    assert "4111" not in json.dumps(span["attributes"]) and "4111" not in span["input"]
    assert json.loads(span["input"]) == [_text("user", "my card is ****")]


def test_broken_instrumentation_never_reaches_the_application(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(openai_wrapper, "field", broken)
    monkeypatch.setattr(openai_wrapper, "as_list", broken)
    llm = _openai(fake)
    completion = llm.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "x"}])
    assert completion.choices[0].message.content == CHAT_TEXT
    stream = llm.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == CHAT_TEXT
    spans = _llm_spans(client)
    # The spans are still there, with what could be read.
    assert [s["name"] for s in spans] == [f"chat {GPT}", f"chat {GPT}"]
    assert all(s["status"] != "error" and s["provider"] == "openai" for s in spans)


def test_without_init_wrapping_only_calls_through(fake: FakeLLM) -> None:
    assert STATE.tracer is None
    raw = openai.OpenAI(base_url=fake.openai_url, api_key="t", max_retries=0)
    original = raw.chat.completions.create
    llm = assay.wrap_openai(raw)
    assert llm is raw
    wrapped = llm.chat.completions.create
    assert wrapped is not original and cast(Any, wrapped).__wrapped__ == original
    assert assay.wrap_openai(llm).chat.completions.create is wrapped  # idempotent
    stream = llm.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert type(stream) is openai.Stream  # no proxy when tracing is off
    assert "".join(c.choices[0].delta.content or "" for c in stream) == CHAT_TEXT
    # A client derived with with_options() is wrapped too.
    derived = llm.with_options(timeout=5)
    assert getattr(derived.chat.completions.create, "__assay_wrapped__", False)
    claude = anthropic.Anthropic(base_url=fake.anthropic_url, api_key="t", max_retries=0)
    assert assay.wrap_anthropic(assay.wrap_anthropic(claude)) is claude
    message = claude.messages.create(
        model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    assert _first_text(message) == ANTHROPIC_TEXT
    assert getattr(claude.messages.create, "__assay_wrapped__", False)
    assert getattr(claude.messages.stream, "__assay_wrapped__", False)
    other = object()
    assert assay.wrap_openai(other) is other  # anything else is left alone


# --- with OpenInference ----------------------------------------------------------------------


def test_openinference_spans_share_the_trace(
    traced: LiveServer, client: httpx.Client, fake: FakeLLM
) -> None:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    assert STATE.provider is not None
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=STATE.provider)
    try:
        wrapped = _openai(fake)
        unwrapped = openai.OpenAI(base_url=fake.openai_url, api_key="t", max_retries=0)

        @assay.traced(type="agent")
        def agent() -> None:
            question: Any = [{"role": "user", "content": "Capital of France?"}]
            wrapped.chat.completions.create(model=GPT, messages=question)
            unwrapped.chat.completions.create(model=GPT, messages=question)

        agent()
    finally:
        instrumentor.uninstrument()
    spans = _spans(client)
    assert len({s["trace_id"] for s in spans}) == 1
    root = next(s for s in spans if s["type"] == "agent")
    ours = _only(client)
    theirs = [s for s in spans if "openinference.span.kind" in s["attributes"]]
    assert len(theirs) == 2 and len(spans) == 4
    # OpenInference's span of the wrapped call nests under Assay's; the other under the agent.
    assert ours["parent_span_id"] == root["span_id"]
    assert sorted(s["parent_span_id"] for s in theirs) == sorted([ours["span_id"], root["span_id"]])
    for span in (ours, *theirs):
        assert span["type"] == "llm" and span["input_tokens"] == CHAT_USAGE.input_tokens
        assert span["output_tokens"] == CHAT_USAGE.output_tokens
