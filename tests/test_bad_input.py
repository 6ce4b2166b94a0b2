"""Bad input gets a 4xx naming the problem; the server keeps serving; nothing accepted is lost."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import (
    JSON_HEADERS,
    PB,
    error_message,
    new_span_id,
    new_trace_id,
    protobuf,
    span,
)


@pytest.fixture
def small_live(settings: Settings) -> Iterator[LiveServer]:
    from dataclasses import replace

    server = start_server(replace(settings, max_body_bytes=2_000_000, max_value_chars=100_000))
    yield server
    server.stop()


def _accepted(client: httpx.Client) -> bytes:
    body = protobuf([span(new_trace_id(), new_span_id(), "kept")], service="bad")
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    return body


def _still_intact(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    names = [i["name"] for i in client.get("/api/v1/projects/bad/spans").json()["items"]]
    assert names == ["kept"]


def _error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    message = error_message(response)
    for word in words:
        assert word in message, message


def test_each_kind_of_bad_body_is_refused_clearly(small_live: LiveServer) -> None:
    with small_live.client() as client:
        good = _accepted(client)
        _error(client.post("/v1/traces", content=good[:-7], headers=PB), 400, "protobuf")
        _error(client.post("/v1/traces", content=b"{not json", headers=JSON_HEADERS), 400, "JSON")
        _error(
            client.post("/v1/traces", content=b"[1, 2]", headers=JSON_HEADERS), 400, "resourceSpans"
        )
        _error(
            client.post("/v1/traces", content=good, headers={"content-type": "text/plain"}),
            415,
            "text/plain",
        )
        _error(client.post("/v1/traces", content=good), 415, "Content-Type")
        _error(client.post("/v1/traces", content=b"x" * 2_500_000, headers=PB), 413, "larger")
        # A gzip bomb: small on the wire, far past the limit once inflated.
        bomb = gzip.compress(b"\0" * 10_000_000)
        _error(
            client.post("/v1/traces", content=bomb, headers={**PB, "content-encoding": "gzip"}),
            413,
            "larger",
        )
        _error(
            client.post(
                "/v1/traces", content=b"not gzip", headers={**PB, "content-encoding": "gzip"}
            ),
            400,
            "gzip",
        )
        _error(
            client.post("/v1/traces", content=good, headers={**PB, "content-encoding": "br"}),
            415,
            "br",
        )
        _still_intact(client)


def test_invalid_utf8_is_refused(small_live: LiveServer) -> None:
    with small_live.client() as client:
        _accepted(client)
        body = protobuf([span(new_trace_id(), new_span_id(), "MARKER")], service="bad")
        broken = body.replace(b"MARKER", b"MA\xff\xfeER")
        _error(client.post("/v1/traces", content=broken, headers=PB), 400, "protobuf")
        json_body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff"}]}]}]}'
        _error(client.post("/v1/traces", content=json_body, headers=JSON_HEADERS), 400, "JSON")
        _still_intact(client)


def test_invalid_ids_are_rejected_per_span_with_partial_success(small_live: LiveServer) -> None:
    with small_live.client() as client:
        _accepted(client)
        good_trace = new_trace_id()
        body = protobuf(
            [
                span(b"\0" * 16, new_span_id(), "zero-trace"),
                span(b"short", new_span_id(), "short-trace"),
                span(good_trace, b"\1\2", "short-span"),
                span(good_trace, new_span_id(), "kept"),
            ],
            service="bad",
        )
        response = client.post("/v1/traces", content=body, headers=PB)
        assert response.status_code == 200
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        assert partial.rejected_spans == 3
        assert "invalid trace id" in partial.error_message
        assert "invalid span id" in partial.error_message
        names = sorted(i["name"] for i in client.get("/api/v1/projects/bad/spans").json()["items"])
        assert names == ["kept", "kept"]

        json_body = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "bad"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "xyz",
                                    "spanId": "0102030405060708",
                                    "name": "bad-json-id",
                                },
                                {
                                    # 32 characters, but not hex: it could never be read back.
                                    "traceId": "z" * 32,
                                    "spanId": "0102030405060708",
                                    "name": "non-hex-id",
                                },
                                {
                                    "traceId": good_trace.hex().upper(),
                                    "spanId": "0102030405060708",
                                    "name": "kept-json",
                                },
                            ]
                        }
                    ],
                }
            ]
        }
        answer = client.post("/v1/traces", content=orjson.dumps(json_body), headers=JSON_HEADERS)
        assert answer.status_code == 200
        partial_json = answer.json()["partialSuccess"]
        assert partial_json["rejectedSpans"] == "2"
        assert "'xyz'" in partial_json["errorMessage"]
        assert "'zzzz" in partial_json["errorMessage"]
        names = sorted(i["name"] for i in client.get("/api/v1/projects/bad/spans").json()["items"])
        assert names == ["kept", "kept", "kept-json"]


def test_a_request_whose_every_span_is_rejected_is_refused(small_live: LiveServer) -> None:
    """Exporters log a 400; a 200 with partial success usually goes unnoticed."""
    with small_live.client() as client:
        _accepted(client)
        body = protobuf(
            [span(b"\0" * 16, new_span_id(), "zero-trace"), span(b"short", new_span_id(), "s")],
            service="bad",
        )
        _error(
            client.post("/v1/traces", content=body, headers=PB),
            400,
            "every span",
            "(2)",
            "invalid trace id",
        )
        # An empty request is not an error: there was nothing to reject.
        empty = client.post("/v1/traces", content=b'{"resourceSpans": []}', headers=JSON_HEADERS)
        assert empty.status_code == 200 and empty.json() == {}
        _still_intact(client)


def test_a_huge_attribute_is_kept_truncated_with_a_marker(small_live: LiveServer) -> None:
    with small_live.client() as client:
        huge = "a" * 1_500_000
        body = protobuf(
            [span(new_trace_id(), new_span_id(), "big", attributes={"input.value": huge})],
            service="big",
        )
        response = client.post("/v1/traces", content=body, headers=PB)
        assert response.status_code == 200, response.text
        [listed] = client.get("/api/v1/projects/big/spans").json()["items"]
        # Lists show a preview of the input; the attribute only points at it (sent once).
        assert listed["truncated"] == ["input"]
        assert listed["attributes"]["input.value"] == {"$assay.stored_as": "input"}
        trace = client.get(f"/api/v1/projects/big/traces/{listed['trace_id']}").json()
        [item] = trace["spans"]
        assert item["input"].startswith("a" * 100_000)
        assert item["input"].endswith("…[truncated 1400000 chars]")
        # The value comes once: the attribute points at the column, unless asked for in full.
        assert item["attributes"]["input.value"] == {"$assay.stored_as": "input"}
        trace = client.get(f"/api/v1/traces/{item['trace_id']}").json()
        assert trace["spans"][0]["attributes"]["input.value"] == {"$assay.stored_as": "input"}
        full = client.get(f"/api/v1/traces/{item['trace_id']}", params={"full": "true"}).json()
        assert full["spans"][0]["attributes"]["input.value"] == item["input"]
        assert len(client.get(f"/api/v1/traces/{item['trace_id']}").content) < 1_200_000


def test_bad_query_parameters_get_clear_errors(client: httpx.Client) -> None:
    _accepted(client)
    _error(client.get("/api/v1/projects/bad/traces", params={"since": "yesterday"}), 400, "since")
    _error(client.get("/api/v1/projects/bad/traces", params={"cursor": "!!!"}), 400, "cursor")
    _error(client.get("/api/v1/projects/bad/traces", params={"limit": 0}), 422, "limit")
    _error(client.get("/api/v1/projects/bad/traces", params={"status": "meh"}), 422, "status")
    _error(
        client.get("/api/v1/projects/bad/traces", params={"metadata": "nokey"}), 400, "key=value"
    )
    _error(client.get("/api/v1/projects/bad/spans", params={"sort": "size"}), 422, "sort")
    _error(client.get("/api/v1/projects/missing/traces"), 404, "missing")
    _error(client.get(f"/api/v1/traces/{'0' * 32}"), 404, "does not exist")
    # Filter values are data, never SQL.
    injected = client.get(
        "/api/v1/projects/bad/traces",
        params={"name": "x' OR '1'='1", "metadata": "a'--=1", "q": '" OR *'},
    )
    assert injected.status_code == 200 and injected.json()["items"] == []
    _still_intact(client)


def test_nul_characters_are_kept_as_data(client: httpx.Client) -> None:
    trace_id = new_trace_id()
    body = protobuf(
        [
            span(
                trace_id,
                new_span_id(),
                "nul\x00name",
                attributes={"input.value": "a\x00b", "k\x00": "v"},
            )
        ],
        service="nul",
    )
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    [item] = client.get("/api/v1/projects/nul/spans").json()["items"]
    assert item["input"] in ("a\x00b", "a\ufffdb")
    assert item["name"] in ("nul\x00name", "nul\ufffdname")


def test_a_float_too_wide_for_an_integer_comes_back_as_sent(client: httpx.Client) -> None:
    # PostgreSQL's jsonb stores 1e20 as the numeral 100000000000000000000, which reads back as
    # an integer wider than 64 bits; the answer must still be JSON, not a 500.
    created = client.post(
        "/api/v1/projects/wide/experiments",
        content=b'{"eval_name": "e", "metadata": {"x": 1e20, "y": -1e300, "n": [2.5e19]}}',
        headers={"content-type": "application/json"},
    )
    assert created.status_code == 201, created.text
    metadata = created.json()["metadata"]
    assert metadata == {"x": 1e20, "y": -1e300, "n": [2.5e19]}
    stored = client.get(f"/api/v1/experiments/{created.json()['id']}").json()
    assert stored["metadata"] == metadata
