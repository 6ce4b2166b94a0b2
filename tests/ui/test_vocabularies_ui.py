"""Other tools' vocabularies, read in the browser: what their spans look like in the span pane."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, request, span
from tests.ui.conftest import expect, screenshot

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
    assert page.errors == []  # type: ignore[attr-defined]
