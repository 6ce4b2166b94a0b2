"""Normalisation of the three vocabularies into Assay's derived columns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assay.ingest.normalize import normalize
from assay.ingest.otlp import RawSpan
from assay.semconv.prices import DEFAULT_PRICES, ModelPrice, PriceTable
from assay.server.ui.conversation import show


def _raw(attributes: dict[str, Any], **kwargs: Any) -> RawSpan:
    values: dict[str, Any] = {
        "project": "p",
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
        "parent_span_id": None,
        "name": "s",
        "kind": 1,
        "start_ns": 1_000,
        "end_ns": 5_000,
        "status_code": 0,
        "status_message": None,
        "attributes": attributes,
        "events": [],
        "links": [],
        "resource": {},
        "scope": {},
    }
    values.update(kwargs)
    return RawSpan(**values)


PRICES = PriceTable({"model-x": ModelPrice(input=2.0, output=8.0, cached_input=0.5)})


def test_gen_ai_chat_span() -> None:
    row = normalize(
        _raw(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "model-x",
                "gen_ai.response.model": "model-x-2025-01-01",
                "gen_ai.usage.input_tokens": 1_000_000,
                "gen_ai.usage.output_tokens": 100_000,
                "gen_ai.usage.cache_read.input_tokens": 400_000,
                "gen_ai.usage.reasoning.output_tokens": 50_000,
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be kind"}]),
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": []}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": []}]),
            }
        ),
        PRICES.cost,
        0,
    )
    assert row["type"] == "llm" and row["operation"] == "chat"
    assert row["model"] == "model-x-2025-01-01" and row["provider"] == "openai"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (
        1_000_000,
        100_000,
        1_100_000,
    )
    assert (row["cached_tokens"], row["reasoning_tokens"]) == (400_000, 50_000)
    # 600k uncached at $2/M + 400k cached at $0.5/M + 100k output at $8/M
    assert row["cost"] == pytest.approx(1.2 + 0.2 + 0.8)
    messages = json.loads(row["input"])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert json.loads(row["output"])[0]["role"] == "assistant"


def test_openinference_llm_span_with_flattened_messages_and_tool_calls() -> None:
    row = normalize(
        _raw(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.provider": "openai",
                "llm.token_count.prompt": 2000,
                "llm.token_count.completion": 500,
                "llm.token_count.total": 2500,
                "llm.token_count.prompt_details.cache_read": 1000,
                "input.value": '{"raw": "request"}',
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "You help.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "Weather?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "weather",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{}",
                "session.id": "s1",
                "user.id": "u1",
                "tag.tags": ["a", "b", "a"],
                "metadata": '{"k": "v"}',
            }
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert row["type"] == "llm" and row["model"] == "gpt-4o-mini"
    assert json.loads(row["input"]) == [
        {"role": "system", "content": "You help."},
        {"role": "user", "content": "Weather?"},
    ]
    assert json.loads(row["output"]) == [
        {"role": "assistant", "tool_calls": [{"function": {"name": "weather", "arguments": "{}"}}]}
    ]
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (2000, 500, 1000)
    expected = DEFAULT_PRICES.cost("gpt-4o-mini", "openai", 2000, 500, 1000)
    assert expected is not None and row["cost"] == pytest.approx(expected)
    assert (row["session_id"], row["user_id"]) == ("s1", "u1")
    assert row["tags"] == ["a", "b"] and row["metadata"] == {"k": "v"}


def test_openinference_lists_are_rebuilt_as_lists_at_any_depth() -> None:
    """OpenInference's Anthropic instrumentor (and OpenAI Responses output) send the answer's
    text as ``contents.0.message_content.text``: it must read as a list of text parts, or the
    span pane shows an empty assistant message."""
    row = normalize(
        _raw(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "claude-sonnet-4-5",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.contents.0.message_content.type": "text",
                "llm.input_messages.0.message.contents.0.message_content.text": "Capital?",
                "llm.input_messages.0.message.contents.1.message_content.type": "image",
                "llm.input_messages.0.message.contents.1.message_content.image.image.url": "u",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.contents.0.message_content.type": "text",
                "llm.output_messages.0.message.contents.0.message_content.text": "Paris.",
                "llm.output_messages.0.message.tool_calls.1.tool_call.function.name": "b",
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "a",
                "llm.output_messages.0.message.tool_calls.10.tool_call.function.name": "c",
            }
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert json.loads(row["input"]) == [
        {
            "role": "user",
            "contents": [
                {"type": "text", "text": "Capital?"},
                {"type": "image", "image": {"image": {"url": "u"}}},
            ],
        }
    ]
    assert json.loads(row["output"]) == [
        {
            "role": "assistant",
            "contents": [{"type": "text", "text": "Paris."}],
            "tool_calls": [
                {"function": {"name": "a"}},
                {"function": {"name": "b"}},
                {"function": {"name": "c"}},
            ],
        }
    ]
    shown = show(row["output"])
    assert shown is not None and shown.messages is not None
    assert [(p.kind, p.text) for p in shown.messages[0].parts][0] == ("text", "Paris.")


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"openinference.span.kind": "RETRIEVER"}, "retrieval"),
        ({"openinference.span.kind": "TOOL"}, "tool"),
        ({"openinference.span.kind": "CHAIN"}, "chain"),
        ({"gen_ai.operation.name": "execute_tool"}, "tool"),
        ({"gen_ai.operation.name": "invoke_agent"}, "agent"),
        ({"gen_ai.operation.name": "embeddings"}, "embedding"),
        ({"assay.span.type": "Scorer", "openinference.span.kind": "LLM"}, "scorer"),
        ({"gen_ai.request.model": "x"}, "llm"),
        ({"http.method": "GET"}, "span"),
    ],
)
def test_span_type(attributes: dict[str, Any], expected: str) -> None:
    assert normalize(_raw(attributes), DEFAULT_PRICES.cost, 0)["type"] == expected


def test_tool_span_io_and_assay_vocabulary() -> None:
    tool = normalize(
        _raw(
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.call.arguments": '{"q": 1}',
                "gen_ai.tool.call.result": "42",
            }
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert (tool["input"], tool["output"]) == ('{"q": 1}', "42")
    own = normalize(
        _raw(
            {
                "assay.span.type": "task",
                "assay.input": '{"x": 1}',
                "assay.output": "y",
                "assay.metadata.team": "search",
                "assay.tags": ["t"],
                "assay.cost": 0.25,
                "assay.session_id": "s",
                "gen_ai.usage.input_tokens": 3,
            }
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert (own["type"], own["input"], own["output"]) == ("task", '{"x": 1}', "y")
    assert own["metadata"] == {"team": "search"} and own["tags"] == ["t"]
    assert own["cost"] == 0.25 and own["session_id"] == "s"


def test_errors_and_odd_values_never_fail_a_span() -> None:
    row = normalize(
        _raw(
            {
                "gen_ai.usage.input_tokens": "not a number",
                "metadata": "{broken",
                "tag.tags": 5,
                "gen_ai.request.model": ["weird"],
            },
            status_code=2,
            status_message="failed",
            events=[
                {
                    "name": "exception",
                    "attributes": {"exception.type": "ValueError", "exception.message": "bad"},
                }
            ],
            end_ns=10,
            start_ns=20,
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert row["is_error"] and row["error"] == "ValueError: bad"
    assert row["input_tokens"] is None and row["cost"] is None
    assert row["metadata"] == {"metadata": "{broken"}
    assert row["duration_ns"] == 0
    assert row["model"] == "['weird']"


def test_older_genai_message_events() -> None:
    row = normalize(
        _raw(
            {"gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5"},
            events=[
                {"name": "gen_ai.user.message", "attributes": {"content": "hello"}},
                {"name": "gen_ai.choice", "attributes": {"message": '{"content": "hi"}'}},
            ],
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert json.loads(row["input"]) == [{"role": "user", "content": "hello"}]
    assert json.loads(row["output"]) == [{"content": "hi"}]
    assert row["provider"] == "anthropic"


VOCABULARIES = [
    {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
    {
        "gen_ai.operation.name": "retrieval",
        "gen_ai.usage.input_tokens": "12",
        "gen_ai.system": "openai",
    },
    {"gen_ai.operation.name": "rerank", "assay.model": "model-x"},
    {"gen_ai.operation.name": "rerank"},
    {
        "openinference.span.kind": "RERANKER",
        "llm.model_name": "claude-sonnet-4-5",
        "llm.token_count.prompt": 1000,
        "llm.token_count.completion": 20,
        "llm.token_count.prompt_details.cache_read": 600,
    },
    {"openinference.span.kind": "tool", "tool.name": "search", "input.value": '{"q": 1}'},
    {"assay.span.type": "Agent", "assay.cost": "0.5", "assay.usage.output_tokens": 7.0},
    {"assay.model": "gpt-4o", "assay.usage.input_tokens": 10, "assay.usage.output_tokens": 3},
    {"http.method": "GET"},
    {"traceloop.span.kind": "tool", "traceloop.entity.input": '{"args": ["Paris"], "kwargs": {}}'},
    {"traceloop.span.kind": "workflow"},
    {
        "langfuse.observation.type": "generation",
        "langfuse.observation.model.name": "gpt-4o-mini",
        "langfuse.observation.usage_details": '{"input": 1200, "output": 40}',
        "langfuse.observation.cost_details": '{"total": 0.25}',
    },
    {"langfuse.observation.type": "tool"},
    {"openinference.span.kind": "LLM", "llm.invocation_parameters": '{"model": "gpt-4o"}'},
    {"gen_ai.operation.name": "chat", "gen_ai.request.model": "x", "operation.cost": 0.5},
    {"logfire.span_type": "log", "logfire.msg": "hello"},
]


@pytest.mark.parametrize("attributes", VOCABULARIES)
def test_a_span_means_the_same_to_ingest_and_to_a_scorer(attributes: dict[str, Any]) -> None:
    from assay.scorers import read_trace

    stored = normalize(_raw(dict(attributes)), DEFAULT_PRICES.cost, 0)
    [read] = read_trace([{"name": "s", "span_id": "cd" * 8, "attributes": dict(attributes)}])
    assert read.type == stored["type"]
    assert read.model == stored["model"]
    assert read.input_tokens == stored["input_tokens"]
    assert read.output_tokens == stored["output_tokens"]
    assert read.cost == stored["cost"]


def test_model_from_invocation_parameters_when_no_model_attribute() -> None:
    """An OpenInference call that failed before a response may name its model only there."""
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.invocation_parameters": '{"model": "claude-sonnet-4-5", "max_tokens": 100}',
    }
    assert normalize(_raw(attributes), DEFAULT_PRICES.cost, 0)["model"] == "claude-sonnet-4-5"
    attributes["llm.model_name"] = "claude-from-response"
    assert normalize(_raw(attributes), DEFAULT_PRICES.cost, 0)["model"] == "claude-from-response"


def test_langfuse_error_level_metadata_and_usage_document() -> None:
    row = normalize(
        _raw(
            {
                "langfuse.observation.type": "generation",
                "langfuse.observation.level": "ERROR",
                "langfuse.observation.status_message": "rate limited",
                "langfuse.observation.usage_details": json.dumps(
                    {"prompt_tokens": 10, "completion_tokens": 2}
                ),
                "langfuse.observation.cost_details": '{"input": 0.5, "output": 0.25}',
                "langfuse.trace.metadata.team": '"search"',  # Langfuse sends values as JSON
                "langfuse.observation.metadata.step": "3",
                "langfuse.observation.metadata.note": "not json",
                "langfuse.trace.tags": ["a", "b"],
            }
        ),
        DEFAULT_PRICES.cost,
        0,
    )
    assert row["type"] == "llm" and row["is_error"] and row["error"] == "rate limited"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (10, 2, 12)
    assert row["cost"] == 0.75
    assert row["metadata"] == {"team": "search", "step": 3, "note": "not json"}
    assert row["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ('{"args": ["Hi"], "kwargs": {}}', "Hi"),
        ('{"args": [], "kwargs": {"city": "Paris"}}', '{"city":"Paris"}'),
        ('{"args": ["a", "b"], "kwargs": {}}', '{"args": ["a", "b"], "kwargs": {}}'),
        ('"quoted"', "quoted"),
        ('"not json', '"not json'),
        ('{"args": 1}', '{"args": 1}'),
    ],
)
def test_decorated_calls_read_as_their_argument(sent: str, stored: str) -> None:
    row = normalize(_raw({"traceloop.entity.input": sent}), DEFAULT_PRICES.cost, 0)
    assert row["input"] == stored
