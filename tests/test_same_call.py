"""anthropic 2.x traces its own calls: when its span is a root apart from the instrumentor's span
of the same call, the call is linked and counted once (assay.store.same_call). Replays the real
clients' recordings (tests/recordings/clients/) on both engines, in both arrival orders."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.recorded_clients import bodies, stored_spans

CALL = (2350, 80)  # input and output tokens of one fake Claude call


def _send(client: httpx.Client, name: str, project: str, reverse: bool = False) -> None:
    sent = bodies(name)
    for body in reversed(sent) if reverse else sent:
        headers = {"content-type": "application/x-protobuf", "x-assay-project": project}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200


def _totals(client: httpx.Client, project: str) -> tuple[int, int, float]:
    items: list[dict[str, Any]] = client.get(
        f"/api/v1/projects/{project}/traces", params={"limit": 100}
    ).json()["items"]
    return (
        sum(t["input_tokens"] for t in items),
        sum(t["output_tokens"] for t in items),
        sum(t["cost"] for t in items),
    )


@pytest.mark.parametrize("reverse", [False, True], ids=["sdk-span-first", "sdk-span-last"])
def test_a_streamed_openinference_call_and_anthropics_own_root_count_once(
    client: httpx.Client, reverse: bool
) -> None:
    _send(client, "openinference_anthropic", "oi", reverse)
    spans = stored_spans(client, "oi")
    [sdk_root] = [
        s for s in spans if s["scope"]["name"] == "com.anthropic.sdk.python" and s["is_root"]
    ]
    [streamed] = [s for s in spans if s["name"] == "messages.stream"]
    assert sdk_root["trace_id"] != streamed["trace_id"]
    assert sdk_root["attributes"]["assay.same_call_as"] == (
        f"{streamed['trace_id']}/{streamed['span_id']}"
    )
    assert sdk_root["links"][-1]["span_id"] == streamed["span_id"]
    assert (sdk_root["input_tokens"], sdk_root["cost"]) == (None, None)
    assert sdk_root["attributes"]["gen_ai.usage.input_tokens"] == 2350  # what it sent stays
    # Three calls answered (plain, streamed, tool call), one failed: three counted.
    input_tokens, output_tokens, cost = _totals(client, "oi")
    assert (input_tokens, output_tokens) == (3 * CALL[0], 3 * CALL[1])
    assert cost == pytest.approx(3 * streamed["cost"])
    page = client.get(f"/p/oi/traces/{sdk_root['trace_id']}?span={sdk_root['span_id']}")
    assert "Same call as" in page.text
    assert f"/p/oi/traces/{streamed['trace_id']}?span={streamed['span_id']}" in page.text
    # The SDK spans nested in the instrumentor's spans are left as they were.
    nested = [s for s in spans if not s["is_root"] and "assay.same_call_as" in s["attributes"]]
    assert nested == []


def test_openllmetry_anthropic_calls_count_once(client: httpx.Client) -> None:
    _send(client, "traceloop_anthropic", "ol")
    spans = stored_spans(client, "ol")
    theirs = [s for s in spans if s["scope"]["name"] == "opentelemetry.instrumentation.anthropic"]
    sdk = [s for s in spans if s["scope"]["name"] == "com.anthropic.sdk.python"]
    assert len(theirs) == len(sdk) == 2
    assert sorted(s["attributes"]["assay.same_call_as"] for s in sdk) == sorted(
        f"{s['trace_id']}/{s['span_id']}" for s in theirs
    )
    input_tokens, _, _ = _totals(client, "ol")
    assert input_tokens == 2 * CALL[0]


def test_calls_that_only_look_alike_are_not_linked(client: httpx.Client) -> None:
    """anthropic's own spans alone (no instrumentor), and two projects: nothing is linked."""
    for body in bodies("traceloop_anthropic"):
        request = ExportTraceServiceRequest.FromString(body)
        scope = request.resource_spans[0].scope_spans[0].scope.name
        project = "sdk-only" if scope == "com.anthropic.sdk.python" else "instrumented"
        headers = {"content-type": "application/x-protobuf", "x-assay-project": project}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    for span in stored_spans(client, "sdk-only"):
        assert "assay.same_call_as" not in span["attributes"]
        assert span["input_tokens"] == CALL[0]
    assert _totals(client, "sdk-only")[0] == 2 * CALL[0]
