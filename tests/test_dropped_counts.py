"""What a client's SDK dropped past its limits (OTLP's dropped_*_count) is kept and shown."""

from __future__ import annotations

import httpx

from tests.otlp_builders import JSON_HEADERS, PB, new_span_id, new_trace_id, request, span


def test_dropped_counts_are_kept_from_protobuf_and_json_and_shown(client: httpx.Client) -> None:
    by_protobuf, by_json = new_trace_id(), new_trace_id()
    span_id = new_span_id()
    req = request([span(by_protobuf, span_id, "cut", attributes={"kept": "yes"})])
    sent = req.resource_spans[0].scope_spans[0].spans[0]
    sent.dropped_attributes_count = 1872
    sent.dropped_events_count = 3
    assert client.post("/v1/traces", content=req.SerializeToString(), headers=PB).is_success
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": by_json.hex(),
                                "spanId": new_span_id().hex(),
                                "name": "cut",
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000000001000",
                                "droppedAttributesCount": 1872,
                                "droppedEventsCount": "3",
                                "droppedLinksCount": 0,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    assert client.post("/v1/traces", json=body, headers=JSON_HEADERS).is_success
    for trace_id in (by_protobuf, by_json):
        [stored] = client.get(f"/api/v1/traces/{trace_id.hex()}").json()["spans"]
        dropped = {k: v for k, v in stored["attributes"].items() if k.startswith("assay.dropped")}
        assert dropped == {"assay.dropped.attributes": 1872, "assay.dropped.events": 3}
    page = client.get(f"/p/svc/traces/{by_protobuf.hex()}?span={span_id.hex()}")
    assert page.status_code == 200
    assert "1,872 attributes dropped by the client" in page.text
    assert "3 events dropped by the client" in page.text
    assert "links dropped" not in page.text


def test_a_negative_dropped_count_in_json_is_ignored(client: httpx.Client) -> None:
    trace_id = new_trace_id()
    item = {
        "traceId": trace_id.hex(),
        "spanId": new_span_id().hex(),
        "name": "odd",
        "droppedAttributesCount": -5,
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [item]}]}]}
    assert client.post("/v1/traces", json=body, headers=JSON_HEADERS).is_success
    [stored] = client.get(f"/api/v1/traces/{trace_id.hex()}").json()["spans"]
    assert "assay.dropped.attributes" not in stored["attributes"]
