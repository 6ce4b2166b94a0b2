"""Other tools' real clients, replayed: their recorded OTLP (tests/recordings/clients/, made by
record.py there with the real packages against the local fake model server) sent to a live
server as protobuf and as OTLP/JSON, read back through the API. One test per mapped field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.semconv.prices import DEFAULT_PRICES
from assay.settings import Settings
from tests.conftest import start_server
from tests.recorded_clients import ENCODINGS, RECORDINGS, replay, stored_spans

CLIENTS = sorted(path.stem for path in RECORDINGS.glob("*.json"))
SESSION, USER = "session-42", "user-7"  # what record.py sets


class Replayed:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self._spans: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def spans(self, name: str, encoding: str = "protobuf") -> list[dict[str, Any]]:
        key = (name, encoding)
        if key not in self._spans:
            self._spans[key] = stored_spans(self.client, project(name, encoding))
        return self._spans[key]

    def span(self, name: str, span_name: str, encoding: str = "protobuf", n: int = 0) -> Any:
        return [s for s in self.spans(name, encoding) if s["name"] == span_name][n]

    def traces(self, name: str, encoding: str = "protobuf") -> list[dict[str, Any]]:
        answer = self.client.get(f"/api/v1/projects/{project(name, encoding)}/traces")
        items: list[dict[str, Any]] = answer.json()["items"]
        return items


def project(name: str, encoding: str) -> str:
    return f"{name}-{encoding}"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    home: Path = tmp_path_factory.mktemp("recorded-clients")
    server = start_server(Settings(database_url=f"sqlite:///{home}/assay.db", home=home))
    try:
        with server.client() as client:
            for name in CLIENTS:
                for encoding in ENCODINGS:
                    replay(client, name, encoding, project(name, encoding))
            yield Replayed(client)
    finally:
        server.stop()


def _comparable(span: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in span.items() if k not in ("id", "ingested_ns", "scores")}


@pytest.mark.parametrize("name", CLIENTS)
def test_protobuf_and_json_give_the_same_stored_spans(replayed: Replayed, name: str) -> None:
    by_protobuf = [_comparable(s) for s in replayed.spans(name, "protobuf")]
    by_json = [_comparable(s) for s in replayed.spans(name, "json")]
    assert by_protobuf and by_protobuf == by_json


def messages(text: str | None) -> Any:
    assert text is not None
    return json.loads(text)


# --- OpenInference: Claude (Anthropic instrumentor) ---------------------------------------------


def test_openinference_claude_answer_is_a_list_of_text_contents(replayed: Replayed) -> None:
    llm = replayed.span("openinference_anthropic", "messages.create")
    assert llm["type"] == "llm" and llm["model"] == "claude-sonnet-4-5-20250929"
    answer = [{"type": "text", "text": "Paris is the capital of France."}]
    assert messages(llm["output"]) == [{"role": "assistant", "contents": answer}]
    assert messages(llm["input"]) == [{"role": "user", "content": "What is the capital of France?"}]
    assert (llm["input_tokens"], llm["output_tokens"], llm["cached_tokens"]) == (2350, 80, 2000)
    expected = DEFAULT_PRICES.cost(llm["model"], "anthropic", 2350, 80, 2000)
    assert expected and llm["cost"] == pytest.approx(expected)


def test_openinference_claude_stream_reads_as_text(replayed: Replayed) -> None:
    llm = replayed.span("openinference_anthropic", "messages.stream")
    assert messages(llm["output"])[0]["contents"] == [
        {"type": "text", "text": "Paris is the capital of France."}
    ]


def test_openinference_claude_tool_call_is_listed_once(replayed: Replayed) -> None:
    llm = replayed.span("openinference_anthropic", "messages.create", n=1)
    [said] = messages(llm["output"])
    assert said["contents"] == [{"type": "text", "text": "Let me look that up."}]
    assert said["tool_calls"] == [
        {
            "id": "toolu_fake_1",
            "function": {
                "name": "get_weather",
                "arguments": '{"city": "Paris", "unit": "celsius"}',
            },
        }
    ]


def test_openinference_failed_call_keeps_its_model_and_error(replayed: Replayed) -> None:
    failed = replayed.span("openinference_anthropic", "messages.create", n=2)
    assert failed["model"] == "fail" and failed["is_error"]
    assert failed["error"].startswith("anthropic.BadRequestError: Error code: 400")


def test_openai_responses_output_through_openinference(replayed: Replayed) -> None:
    llm = replayed.span("openinference_openai_responses", "Response")
    reasoning, answer = messages(llm["output"])
    assert reasoning["contents"] == [{"type": "reasoning", "text": "The user asks for a capital."}]
    assert answer["contents"] == [{"type": "text", "text": "The capital of France is Paris."}]
    assert messages(llm["input"]) == [{"role": "user", "content": "What is the capital of France?"}]
    assert (llm["input_tokens"], llm["output_tokens"], llm["reasoning_tokens"]) == (900, 300, 256)


# --- OpenLLMetry (traceloop-sdk) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_name", "kind"),
    [
        ("weather_workflow.workflow", "chain"),
        ("weather_agent.agent", "agent"),
        ("get_weather.tool", "tool"),
        ("summarise.task", "chain"),
        ("openai.chat", "llm"),
    ],
)
def test_traceloop_span_kinds(replayed: Replayed, span_name: str, kind: str) -> None:
    assert replayed.span("traceloop", span_name)["type"] == kind


def test_traceloop_entity_input_and_output_read_as_text(replayed: Replayed) -> None:
    workflow = replayed.span("traceloop", "weather_workflow.workflow")
    assert workflow["input"] == "What is the capital of France?"
    assert workflow["output"] == "THE CAPITAL OF FRANCE IS PARIS. SUNNY"
    tool = replayed.span("traceloop", "get_weather.tool")
    assert tool["input"] == "Paris"
    assert json.loads(tool["output"]) == {"city": "Paris", "sky": "sunny"}
    [trace] = [t for t in replayed.traces("traceloop") if t["name"] == "weather_workflow.workflow"]
    assert trace["input_preview"] == "What is the capital of France?"


def test_traceloop_association_properties_give_session_and_user(replayed: Replayed) -> None:
    for span in replayed.spans("traceloop"):
        assert (span["session_id"], span["user_id"]) == (SESSION, USER)
    for trace in replayed.traces("traceloop"):
        assert (trace["session_id"], trace["user_id"]) == (SESSION, USER)


def test_traceloop_llm_call_model_tokens_cost_and_messages(replayed: Replayed) -> None:
    llm = replayed.span("traceloop", "openai.chat")
    assert llm["model"] == "gpt-4o-mini-2024-07-18"
    assert (llm["input_tokens"], llm["output_tokens"], llm["cached_tokens"]) == (1200, 40, 1024)
    assert llm["cost"] and llm["cost"] > 0
    assert messages(llm["output"])[0]["parts"][0]["content"] == "The capital of France is Paris."


def test_traceloop_failed_call_is_an_error_with_its_model(replayed: Replayed) -> None:
    failed = replayed.span("traceloop", "openai.chat", n=1)
    assert failed["is_error"] and failed["model"] == "fail"
    assert "does not exist" in failed["error"]


# --- Langfuse (v3+, OpenTelemetry based) -------------------------------------------------------


def test_langfuse_observation_types(replayed: Replayed) -> None:
    kinds = {s["name"]: s["type"] for s in replayed.spans("langfuse")}
    assert kinds == {
        "weather-agent": "span",
        "chat gpt-4o-mini": "llm",
        "lookup_weather": "tool",
        "chat fail": "llm",
    }


def test_langfuse_generation_model_usage_and_cost(replayed: Replayed) -> None:
    llm = replayed.span("langfuse", "chat gpt-4o-mini")
    assert llm["model"] == "gpt-4o-mini"
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (1200, 40, 1240)
    assert llm["cost"] == pytest.approx(0.0003)  # the client's cost_details, not Assay's prices
    [trace] = replayed.traces("langfuse")
    assert trace["cost"] == pytest.approx(0.0003) and trace["total_tokens"] == 1240


def test_langfuse_input_and_output(replayed: Replayed) -> None:
    llm = replayed.span("langfuse", "chat gpt-4o-mini")
    assert messages(llm["input"]) == [{"role": "user", "content": "What is the capital of France?"}]
    assert messages(llm["output"]) == {
        "role": "assistant",
        "content": "The capital of France is Paris.",
    }
    root = replayed.span("langfuse", "weather-agent")
    assert root["input"] == "What is the capital of France?"
    assert root["output"] == "The capital of France is Paris."
    tool = replayed.span("langfuse", "lookup_weather")
    assert tool["input"] == "Paris"
    assert json.loads(tool["output"]) == {"city": "Paris", "sky": "sunny"}


def test_langfuse_trace_session_user_tags_and_metadata(replayed: Replayed) -> None:
    [trace] = replayed.traces("langfuse")
    assert (trace["session_id"], trace["user_id"]) == (SESSION, USER)
    assert trace["tags"] == ["recorded"] and trace["metadata"] == {"team": "search"}
    for span in replayed.spans("langfuse"):
        assert (span["session_id"], span["user_id"]) == (SESSION, USER)


def test_langfuse_failed_generation(replayed: Replayed) -> None:
    failed = replayed.span("langfuse", "chat fail")
    assert failed["is_error"] and failed["model"] == "fail"
    assert failed["error"] == "Error code: 400 - The model `fail` does not exist"
    [trace] = replayed.traces("langfuse")
    assert trace["error_count"] == 1


# --- pydantic-ai with Logfire --------------------------------------------------------------------


def test_pydantic_ai_run_input_is_the_conversation_and_output_the_final_result(
    replayed: Replayed,
) -> None:
    run = replayed.span("pydantic_ai", "invoke_agent weather_agent")
    assert run["type"] == "agent"
    assert run["output"] == "It is sunny in Paris."
    conversation = messages(run["input"])
    assert conversation[0] == {
        "role": "system",
        "content": [{"type": "text", "content": "Answer about the weather."}],
    }
    assert [m["role"] for m in conversation[1:]] == ["user", "assistant", "user", "assistant"]
    [trace] = [t for t in replayed.traces("pydantic_ai") if t["trace_id"] == run["trace_id"]]
    assert trace["output_preview"] == "It is sunny in Paris."
    assert trace["input_preview"]


def test_pydantic_ai_tokens_are_counted_once(replayed: Replayed) -> None:
    """The run span's aggregated usage repeats its model calls': the trace counts the calls."""
    run = replayed.span("pydantic_ai", "invoke_agent weather_agent")
    assert run["input_tokens"] is None
    [trace] = [t for t in replayed.traces("pydantic_ai") if t["trace_id"] == run["trace_id"]]
    assert (trace["input_tokens"], trace["output_tokens"]) == (2400, 80)


def test_pydantic_ai_model_calls_and_tool(replayed: Replayed) -> None:
    first = replayed.span("pydantic_ai", "chat gpt-4o-mini")
    assert first["type"] == "llm" and first["model"] == "gpt-4o-mini-2024-07-18"
    assert first["cost"] == pytest.approx(0.0001272)  # pydantic-ai's operation.cost
    tool = replayed.span("pydantic_ai", "execute_tool get_weather")
    assert tool["type"] == "tool"
    assert json.loads(tool["input"]) == {"city": "Paris"}
    assert tool["output"] == "sunny in Paris"


def test_pydantic_ai_conversation_id_makes_the_turns_one_session(replayed: Replayed) -> None:
    first, second = [
        s for s in replayed.spans("pydantic_ai") if s["name"] == "invoke_agent weather_agent"
    ]
    assert first["trace_id"] != second["trace_id"]
    assert first["session_id"] == second["session_id"]
    assert first["session_id"] == first["attributes"]["gen_ai.conversation.id"]
    assert second["output"] == "Welcome."
    answer = replayed.client.get(
        "/api/v1/projects/pydantic_ai-protobuf/traces", params={"session_id": first["session_id"]}
    )
    assert {t["trace_id"] for t in answer.json()["items"]} == {
        first["trace_id"],
        second["trace_id"],
    }


def test_logfire_log_line_is_named_by_its_message(replayed: Replayed) -> None:
    [log] = [s for s in replayed.spans("pydantic_ai") if s["type"] == "log"]
    assert log["name"] == "answered Paris with It is sunny in Paris."
    assert log["attributes"]["logfire.msg_template"] == "answered {city} with {answer}"


# --- LangGraph through OpenInference's LangChain instrumentor -----------------------------------


def test_langgraph_root_output_reads_as_a_conversation(replayed: Replayed) -> None:
    from assay.server.ui.conversation import show

    root = replayed.span("langgraph", "LangGraph")
    shown = show(root["output"])
    assert shown is not None and shown.messages is not None
    roles = [m.role for m in shown.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert shown.messages[1].parts[0].kind == "tool_call"
    assert shown.messages[1].parts[0].name == "get_weather"
    assert shown.messages[-1].parts[0].text == "It is sunny in Paris."


def test_langgraph_llm_calls_tokens_and_tool(replayed: Replayed) -> None:
    calls = [s for s in replayed.spans("langgraph") if s["type"] == "llm"]
    assert [c["model"] for c in calls] == ["gpt-4o-mini-2024-07-18"] * 2
    assert [c["input_tokens"] for c in calls] == [1200, 1200]
    tool = replayed.span("langgraph", "get_weather")
    assert tool["type"] == "tool" and tool["input"] == "Paris"


@pytest.mark.parametrize(
    ("name", "tree"),
    [
        (
            "traceloop",
            {
                "weather_agent.agent": "weather_workflow.workflow",
                "openai.chat": "weather_agent.agent",
                "get_weather.tool": "weather_agent.agent",
                "summarise.task": "weather_agent.agent",
            },
        ),
        (
            "langfuse",
            {
                "chat gpt-4o-mini": "weather-agent",
                "lookup_weather": "weather-agent",
                "chat fail": "weather-agent",
            },
        ),
        (
            "pydantic_ai",
            {
                "chat gpt-4o-mini": "invoke_agent weather_agent",
                "execute_tool get_weather": "invoke_agent weather_agent",
            },
        ),
        ("langgraph", {"agent": "LangGraph", "tools": "LangGraph", "get_weather": "tools"}),
        ("openinference_anthropic", {"anthropic.messages.create": "messages.create"}),
    ],
)
def test_the_tree_is_kept(replayed: Replayed, name: str, tree: dict[str, str]) -> None:
    spans = replayed.spans(name)
    by_id = {s["span_id"]: s for s in spans}
    for child, parent in tree.items():
        found = next(s for s in spans if s["name"] == child and s["parent_span_id"])
        assert by_id[found["parent_span_id"]]["name"] == parent
