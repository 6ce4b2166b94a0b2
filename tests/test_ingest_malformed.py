"""Malformed and out-of-range OTLP: a 4xx or a partial-success rejection naming the field, a
value that cannot fit its column clamped, never a 500, and the connection stays usable.

Every request of a test goes over one kept-alive connection (tests/keepalive.py), so an answer
that drops the connection fails the next request.
"""

from __future__ import annotations

import json
import os
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import LiveServer
from tests.keepalive import Answer, KeepAlive
from tests.otlp_builders import (
    JSON_HEADERS,
    PB,
    error_of,
    new_span_id,
    new_trace_id,
    protobuf,
    request,
    span,
)

START = 1_700_000_000_000_000_000


def json_span(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": name,
        "startTimeUnixNano": str(START),
        "endTimeUnixNano": str(START + 5_000_000),
        **fields,
    }


def attribute(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def json_body(
    spans: list[dict[str, Any]],
    *,
    service: str = "odd",
    resource: Any = None,
    scope: Any = None,
) -> bytes:
    if resource is None:
        resource = {"attributes": [attribute("service.name", {"stringValue": service})]}
    scope_spans: dict[str, Any] = {"spans": spans}
    if scope is not None:
        scope_spans["scope"] = scope
    # The standard library's encoder: orjson refuses the deep values some cases need.
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": [scope_spans]}]}
    ).encode()


def nested_any_value(levels: int) -> str:
    """An AnyValue of arrays ``levels`` deep, three JSON levels each, as text."""
    value = '{"stringValue": "x"}'
    for _ in range(levels):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    return value


def deep_body(levels: int) -> bytes:
    marker = '"DEEP"'
    body = json_body([json_span("deep", attributes=[attribute("a", "DEEP")])])
    return body.replace(marker.encode(), nested_any_value(levels).encode())


def pb_body(**change: Any) -> bytes:
    """One protobuf span with fields changed: start, end, kind, status, event_time."""
    req: ExportTraceServiceRequest = request(
        [span(new_trace_id(), new_span_id(), "pb")], service=change.pop("service", "odd")
    )
    pb_span = req.resource_spans[0].scope_spans[0].spans[0]
    if "event_time" in change:
        pb_span.events.add(name="e", time_unix_nano=change.pop("event_time"))
    if "status" in change:
        pb_span.status.code = change.pop("status")
    for name, value in change.items():
        setattr(pb_span, name, value)
    return bytes(req.SerializeToString())


# Each body is refused whole (every span of it rejected, or its envelope malformed): 400 with a
# message naming the field.
REFUSED: dict[str, tuple[bytes, str]] = {
    "status not an object": (json_body([json_span("s", status="ok")]), "status must be"),
    "status a list": (json_body([json_span("s", status=[2])]), "status must be"),
    "resource not an object": (json_body([json_span("s")], resource="r"), "resource must be"),
    "scope not an object": (json_body([json_span("s")], scope=["x"]), "scope must be"),
    "arrayValue not an object": (
        json_body([json_span("s", attributes=[attribute("a", {"arrayValue": "x"})])]),
        "arrayValue must be",
    ),
    "kvlistValue not an object": (
        json_body([json_span("s", attributes=[attribute("a", {"kvlistValue": [1]})])]),
        "kvlistValue must be",
    ),
    "start time past 64 bits": (
        json_body([json_span("s", startTimeUnixNano=str(2**70))]),
        "startTimeUnixNano",
    ),
    "end time past 64 bits as a number": (
        json_body([json_span("s", endTimeUnixNano=2**70)]),
        "endTimeUnixNano",
    ),
    "intValue past 64 bits": (
        json_body([json_span("s", attributes=[attribute("n", {"intValue": str(2**64)})])]),
        "intValue",
    ),
    "intValue inf": (
        json_body([json_span("s", attributes=[attribute("n", {"intValue": "inf"})])]),
        "intValue",
    ),
    "event time past 64 bits": (
        json_body([json_span("s", events=[{"name": "e", "timeUnixNano": str(2**70)}])]),
        "event timeUnixNano",
    ),
    "AnyValue nested 254 JSON levels": (deep_body(85), "nested deeper"),
    "AnyValue nested 330 JSON levels": (deep_body(110), "nested deeper"),
    "plain JSON nested 300 levels": (
        json_body([json_span("s", attributes=[attribute("a", "DEEP")])]).replace(
            b'"DEEP"', b"[" * 300 + b"]" * 300
        ),
        "nested deeper",
    ),
    "NUL in service.name": (json_body([json_span("s")], service="a\x00b"), "NUL"),
    "32 characters of non-hex trace id": (
        json_body([json_span("s", traceId="g" * 32)]),
        "invalid trace id",
    ),
}
PB_REFUSED: dict[str, tuple[bytes, str]] = {
    "protobuf end time 2^64-1": (pb_body(end_time_unix_nano=2**64 - 1), "endTimeUnixNano"),
    "protobuf start time 2^64-1": (pb_body(start_time_unix_nano=2**64 - 1), "startTimeUnixNano"),
    "protobuf event time 2^64-1": (pb_body(event_time=2**64 - 1), "event timeUnixNano"),
    "protobuf NUL in service.name": (pb_body(service="a\x00b"), "NUL"),
}


def _refused(answer: Answer, word: str) -> None:
    assert 400 <= answer.status < 500, answer.body
    message = error_of(answer.headers.get("content-type", ""), answer.body)["message"]
    assert word in message, message


def _items(conn: KeepAlive, project: str) -> dict[str, dict[str, Any]]:
    answer = conn.get(f"/api/v1/projects/{project}/spans?limit=200")
    assert answer.status == 200, answer.body
    return {item["name"]: item for item in answer.json()["items"]}


def test_malformed_bodies_are_refused_naming_the_field(live: LiveServer) -> None:
    with KeepAlive(live.url) as conn:
        for case, (body, word) in REFUSED.items():
            answer = conn.post("/v1/traces", body, JSON_HEADERS)
            assert answer.status == 400, (case, answer.body)
            _refused(answer, word)
        for case, (body, word) in PB_REFUSED.items():
            answer = conn.post("/v1/traces", body, PB)
            assert answer.status == 400, (case, answer.body)
            _refused(answer, word)
        header = conn.post("/v1/traces", pb_body(), {**PB, "X-Assay-Project": "p" * 201})
        _refused(header, "X-Assay-Project")
        # The same connection still serves, and nothing of the refused requests was stored.
        good = conn.post("/v1/traces", protobuf([span(new_trace_id(), new_span_id(), "ok")]), PB)
        assert good.status == 200
        assert set(_items(conn, "svc")) == {"ok"}
        assert conn.get("/api/v1/projects/odd/spans").status == 404


def test_a_bad_span_is_rejected_and_its_neighbours_kept(live: LiveServer) -> None:
    with KeepAlive(live.url) as conn:
        body = json_body(
            [
                json_span("late", startTimeUnixNano=str(2**64 - 1)),
                json_span("odd-status", status={"code": 2, "message": {"nested": True}}),
                json_span("fine"),
            ]
        )
        answer = conn.post("/v1/traces", body, JSON_HEADERS)
        assert answer.status == 200, answer.body
        partial = answer.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "2"
        assert "span 'late': startTimeUnixNano" in partial["errorMessage"]
        assert "span 'odd-status': status message must be a string" in partial["errorMessage"]

        req = request([span(new_trace_id(), new_span_id(), "pb-fine")], service="odd")
        late = (
            req.resource_spans[0]
            .scope_spans[0]
            .spans.add(trace_id=new_trace_id(), span_id=new_span_id(), name="pb-late")
        )
        late.end_time_unix_nano = 2**64 - 1
        answer = conn.post("/v1/traces", req.SerializeToString(), PB)
        assert answer.status == 200, answer.body
        pb_partial = ExportTraceServiceResponse.FromString(answer.body).partial_success
        assert pb_partial.rejected_spans == 1
        assert "span 'pb-late': endTimeUnixNano 18446744073709551615" in pb_partial.error_message
        assert set(_items(conn, "odd")) == {"fine", "pb-fine"}


def test_values_too_large_for_their_columns_are_clamped_and_kept_in_attributes(
    live: LiveServer,
) -> None:
    tokens = "gen_ai.usage.input_tokens"
    with KeepAlive(live.url) as conn:
        body = json_body(
            [
                json_span("kind", kind=70000, status={"code": 70000}),
                json_span("huge-tokens", attributes=[attribute(tokens, {"intValue": str(2**40)})]),
                json_span("inf-tokens", attributes=[attribute(tokens, {"stringValue": "inf"})]),
                json_span("nan-tokens", attributes=[attribute(tokens, {"stringValue": "nan"})]),
                json_span("nan-cost", attributes=[attribute("assay.cost", {"stringValue": "nan"})]),
                json_span("inf-double", attributes=[attribute("x", {"doubleValue": "-inf"})]),
                json_span("nul", status={"code": 2, "message": "a\x00b"}),
                json_span("deep-enough", attributes=[attribute("a", {"stringValue": "DEEP"})]),
            ]
        ).replace(b'{"stringValue": "DEEP"}', nested_any_value(20).encode())
        answer = conn.post("/v1/traces", body, JSON_HEADERS)
        assert answer.status == 200, answer.body
        assert answer.json() == {}
        pb = request(
            [
                span(new_trace_id(), new_span_id(), "pb-tokens", attributes={tokens: 2**62}),
                span(new_trace_id(), new_span_id(), "pb-inf", attributes={tokens: float("inf")}),
            ],
            service="odd",
        )
        pb.resource_spans[0].scope_spans[0].spans[0].kind = 70000
        pb.resource_spans[0].scope_spans[0].spans[0].status.code = 70000
        assert conn.post("/v1/traces", pb.SerializeToString(), PB).status == 200

        items = _items(conn, "odd")
        assert items["kind"]["kind"] == 0 and items["kind"]["status"] == "unset"
        assert items["pb-tokens"]["kind"] == 0 and items["pb-tokens"]["status"] == "unset"
        for name in ("huge-tokens", "inf-tokens", "nan-tokens", "pb-tokens", "pb-inf"):
            assert items[name]["input_tokens"] is None, name
        assert items["huge-tokens"]["attributes"][tokens] == 2**40
        assert items["pb-tokens"]["attributes"][tokens] == 2**62
        assert items["pb-inf"]["attributes"][tokens] == "Infinity"
        assert items["nan-cost"]["cost"] is None
        assert items["inf-double"]["attributes"]["x"] == "-Infinity"
        assert items["nul"]["error"] in ("a\x00b", "a\ufffdb")
        depth, value = 0, items["deep-enough"]["attributes"]["a"]
        while isinstance(value, list):
            depth, value = depth + 1, value[0]
        assert (depth, value) == (20, "x")


def test_token_sums_past_32_bits_fit_the_trace_row(live: LiveServer) -> None:
    trace_id = new_trace_id()
    with KeepAlive(live.url) as conn:
        for _ in range(2):
            body = protobuf(
                [
                    span(
                        trace_id,
                        new_span_id(),
                        "big",
                        attributes={"gen_ai.usage.input_tokens": 2**31 - 1},
                    )
                ],
            )
            assert conn.post("/v1/traces", body, PB).status == 200
    with live.client() as client:
        traces = client.get("/api/v1/projects/svc/traces").json()["items"]
    assert [(t["span_count"], t["input_tokens"]) for t in traces] == [(2, 2 * (2**31 - 1))]
