"""The real OpenTelemetry SDK and OTLP/HTTP exporter send nested spans; every filter of the
API finds them, and the trace comes back as one tree."""

from __future__ import annotations

import json
import time

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.conftest import LiveServer


def _send_agent_trace(live: LiveServer, project: str) -> tuple[str, float]:
    provider = TracerProvider(resource=Resource.create({"service.name": project}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{live.url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    before = time.time_ns()
    with tracer.start_as_current_span(
        "agent",
        attributes={
            "openinference.span.kind": "AGENT",
            "input.value": "What is the refund policy for damaged blenders?",
            "session.id": "sess-1",
            "user.id": "alice",
            "tag.tags": ["support", "vip"],
            "metadata": json.dumps({"channel": "web", "tier": "gold"}),
        },
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.input.messages": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "refund?"}]}]
                ),
                "gen_ai.output.messages": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "Yes."}]}]
                ),
            },
        ):
            time.sleep(0.002)
        with tracer.start_as_current_span(
            "lookup_order", attributes={"gen_ai.operation.name": "execute_tool"}
        ) as tool:
            time.sleep(0.02)
            tool.set_status(Status(StatusCode.ERROR, "orders service timed out"))
        root.set_attribute("output.value", "Damaged blenders are replaced for free.")
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id, before


def test_sdk_spans_come_back_through_every_filter(live: LiveServer, client: httpx.Client) -> None:
    trace_id, before = _send_agent_trace(live, "shop")
    # A second, different trace, so that every filter has something to exclude.
    other = client.post(
        "/v1/traces",
        json={
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "ab" * 16,
                                    "spanId": "cd" * 8,
                                    "name": "other",
                                    "startTimeUnixNano": "1000",
                                    "endTimeUnixNano": "2000",
                                }
                            ]
                        }
                    ],
                }
            ]
        },
    )
    assert other.status_code == 200, other.text

    def traces(**params: str | int | float) -> list[str]:
        response = client.get("/api/v1/projects/shop/traces", params=params)
        assert response.status_code == 200, response.text
        return [item["trace_id"] for item in response.json()["items"]]

    def spans(**params: str | int | float) -> list[str]:
        response = client.get("/api/v1/projects/shop/spans", params=params)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    assert set(traces()) == {trace_id, "ab" * 16}
    matching: dict[str, str | int | float] = {
        "since": str(before),
        "name": "agent",
        "type": "llm",
        "status": "error",
        "model": "gpt-4o",
        "tag": "vip",
        "metadata": "tier=gold",
        "session_id": "sess-1",
        "user_id": "alice",
        "min_duration_ms": 20,
        "min_cost": 0.0001,
        "q": "refund",
    }
    for key, value in matching.items():
        assert traces(**{key: value}) == [trace_id], key
    assert traces(until=str(before)) == ["ab" * 16]
    assert traces(max_duration_ms=1) == ["ab" * 16]
    assert traces(model="gpt-4o-mini") == []
    assert traces(q="blenders refund") == [trace_id]
    assert traces(q="blenders nonexistentword") == []

    assert spans(type="llm") == ["chat gpt-4o"]
    assert spans(status="error") == ["lookup_order"]
    assert spans(model="gpt-4o", min_cost=0.001) == ["chat gpt-4o"]
    assert spans(q="damaged") == ["agent"]
    assert sorted(spans(trace_id=trace_id)) == ["agent", "chat gpt-4o", "lookup_order"]

    tree = client.get(f"/api/v1/traces/{trace_id}").json()
    assert tree["span_count"] == 3
    assert [s["name"] for s in tree["spans"]] == ["agent"]
    root = tree["spans"][0]
    assert [c["name"] for c in root["children"]] == ["chat gpt-4o", "lookup_order"]
    llm = root["children"][0]
    assert llm["model"] == "gpt-4o"
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (1200, 300, 1500)
    assert llm["cost"] > 0
    assert tree["cost"] == llm["cost"]
    assert tree["error_count"] == 1 and tree["status"] == "error"
    assert root["session_id"] == "sess-1" and root["tags"] == ["support", "vip"]
    assert root["metadata"] == {"channel": "web", "tier": "gold"}
