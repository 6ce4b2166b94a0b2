"""Other tools' vocabularies, read in the browser: what their spans look like in the span pane."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, request, span
from tests.recorded_clients import replay, stored_spans
from tests.ui.conftest import expect, page_errors, screenshot

CLAUDE_ANSWER = "Paris is the capital of France."


def test_a_claude_answer_sent_through_openinference_reads_as_text(
    ui_live: LiveServer, page: Page
) -> None:
    """OpenInference's Anthropic instrumentor sends the answer as
    ``llm.output_messages.0.message.contents.0.message_content.text``."""
    trace, llm = new_trace_id(), new_span_id()
    attributes = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "claude-sonnet-4-5",
        "llm.provider": "anthropic",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "What is the capital of France?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.contents.0.message_content.type": "text",
        "llm.output_messages.0.message.contents.0.message_content.text": CLAUDE_ANSWER,
        "llm.token_count.prompt": 20,
        "llm.token_count.completion": 8,
    }
    body = request([span(trace, llm, "Messages", attributes=attributes)]).SerializeToString()
    with ui_live.client() as client:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    page.goto(f"{ui_live.url}/p/svc/traces/{trace.hex()}?span={llm.hex()}")
    answer = page.locator(".span-detail section.io").nth(1).locator(".msg.role-assistant")
    expect(answer.locator("pre.text")).to_have_text(CLAUDE_ANSWER)
    expect(answer).not_to_contain_text("(empty)")
    screenshot(page, "claude-answer")
    assert page_errors(page) == []


def _span_url(server: LiveServer, project: str, name: str, n: int = 0) -> str:
    with server.client() as client:
        spans = [s for s in stored_spans(client, project) if s["name"] == name]
    found = spans[n]
    return f"{server.url}/p/{project}/traces/{found['trace_id']}?span={found['span_id']}"


def test_recorded_claude_calls_and_a_langgraph_run_read_in_the_span_pane(
    ui_live: LiveServer, page: Page
) -> None:
    """The real clients' recorded OTLP: OpenInference's Anthropic instrumentor (plain, streamed,
    tool call) and a LangGraph agent under OpenInference's LangChain instrumentor."""
    with ui_live.client() as client:
        replay(client, "openinference_anthropic", "protobuf", "claude")
        replay(client, "langgraph", "json", "graph")
    for name, n in (("messages.create", 0), ("messages.stream", 0)):
        page.goto(_span_url(ui_live, "claude", name, n))
        answer = page.locator(".span-detail section.io").nth(1).locator(".msg.role-assistant")
        expect(answer.locator("pre.text")).to_have_text(CLAUDE_ANSWER)
    page.goto(_span_url(ui_live, "claude", "messages.create", 1))
    answer = page.locator(".span-detail section.io").nth(1).locator(".msg.role-assistant")
    expect(answer.locator("pre.text")).to_have_text("Let me look that up.")
    expect(answer.locator(".tool-call")).to_have_count(1)
    expect(answer.locator(".tool-call")).to_contain_text("get_weather")
    page.goto(_span_url(ui_live, "graph", "LangGraph"))
    output = page.locator(".span-detail section.io").nth(1)
    expect(output.locator(".msg")).to_have_count(4)
    expect(output.locator(".msg.role-tool")).to_contain_text("sunny in Paris")
    expect(output.locator(".msg.role-assistant").last).to_contain_text("It is sunny in Paris.")
    screenshot(page, "langgraph-conversation")
    assert page_errors(page) == []
