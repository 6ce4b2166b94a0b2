"""OTLP transports: gRPC with the real OpenTelemetry exporters and zero-code instrumentation,
/v1/logs and /v1/metrics, errors in the request's encoding, the open mode's handling of an
Authorization header, Basic keys, and the Langfuse/Braintrust path aliases."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from assay.settings import Settings
from assay.store import keys as key_store
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import (
    JSON_HEADERS,
    PB,
    any_value,
    error_of,
    new_span_id,
    new_trace_id,
    protobuf,
    span,
)

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


@pytest.fixture
def live_grpc(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(settings, grpc=True)
    try:
        yield server
    finally:
        server.stop()


def _create_key(live: LiveServer, project: str | None, role: str = "editor") -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name="t", role=role, project=project)
    live.runtime._key_count = None  # the test should not wait for the cache to expire
    return secret


def _call(
    live: LiveServer, method: str, body: bytes, metadata: list[tuple[str, str]] | None = None
) -> bytes:
    """One raw gRPC call (bytes in, bytes out) to the server's receiver."""
    with grpc.insecure_channel(f"127.0.0.1:{live.grpc_port}") as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        answer = call(body, metadata=tuple(metadata or ()), timeout=30)
        return answer


def _spans(client: httpx.Client, project: str) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/projects/{project}/spans", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("trace_id", "span_id", "parent_span_id", "name", "type", "model", "input_tokens")
    return {key: row.get(key) for key in keep}


# --- gRPC ---------------------------------------------------------------------------------


def test_the_real_grpc_exporter_delivers_spans(live_grpc: LiveServer) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{live_grpc.grpc_port}", insecure=True)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-app"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with (
        tracer.start_as_current_span("agent run") as root,
        tracer.start_as_current_span("chat gpt-4o") as child,
    ):
        child.set_attribute("gen_ai.operation.name", "chat")
        child.set_attribute("gen_ai.request.model", "gpt-4o")
        child.set_attribute("gen_ai.usage.input_tokens", 12)
    provider.shutdown()
    # SimpleSpanProcessor exports each span as it ends and the answer comes after the commit:
    # the spans are readable at once.
    with live_grpc.client() as client:
        rows = {row["name"]: row for row in _spans(client, "grpc-app")}
    assert set(rows) == {"agent run", "chat gpt-4o"}
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert rows["chat gpt-4o"]["trace_id"] == trace_id
    assert rows["chat gpt-4o"]["type"] == "llm" and rows["chat gpt-4o"]["input_tokens"] == 12
    assert rows["chat gpt-4o"]["parent_span_id"] == rows["agent run"]["span_id"]


def test_grpc_http_protobuf_and_http_json_store_the_same_spans(live_grpc: LiveServer) -> None:
    """One request, sent three ways to three projects, gives the same rows: one code path."""
    trace_id, root_id, llm_id = new_trace_id(), new_span_id(), new_span_id()
    spans = [
        span(trace_id, root_id, "agent"),
        span(
            trace_id,
            llm_id,
            "chat",
            parent=root_id,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 7,
            },
        ),
    ]
    from google.protobuf.json_format import MessageToJson

    from tests.otlp_builders import request

    with live_grpc.client() as client:
        answer = _call(live_grpc, TRACE_EXPORT, protobuf(spans, service="via-grpc"))
        assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
        sent = client.post("/v1/traces", content=protobuf(spans, service="via-pb"), headers=PB)
        assert sent.status_code == 200, sent.text
        as_json = MessageToJson(request(spans, service="via-json"))
        sent = client.post("/v1/traces", content=as_json, headers=JSON_HEADERS)
        assert sent.status_code == 200, sent.text
        stored = {
            project: sorted(map(_comparable, _spans(client, project)), key=lambda r: r["name"])
            for project in ("via-grpc", "via-pb", "via-json")
        }
    assert len(stored["via-grpc"]) == 2
    assert stored["via-grpc"] == stored["via-pb"] == stored["via-json"]


def test_grpc_reports_partial_success_and_refuses_what_http_refuses(
    live_grpc: LiveServer,
) -> None:
    good, bad = span(new_trace_id(), new_span_id(), "kept"), span(b"\x01" * 3, new_span_id(), "x")
    answer = ExportTraceServiceResponse.FromString(
        _call(live_grpc, TRACE_EXPORT, protobuf([good, bad], service="partial"))
    )
    assert answer.partial_success.rejected_spans == 1
    assert "trace id" in answer.partial_success.error_message
    with pytest.raises(grpc.RpcError) as refused:
        _call(live_grpc, TRACE_EXPORT, b"\xff\xff not protobuf")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ExportTraceServiceRequest" in (refused.value.details() or "")
    with live_grpc.client() as client:
        assert [row["name"] for row in _spans(client, "partial")] == ["kept"]


def test_grpc_takes_the_key_from_metadata(live_grpc: LiveServer) -> None:
    secret = _create_key(live_grpc, "keyed")
    body = protobuf([span(new_trace_id(), new_span_id(), "s")], service="keyed")
    with pytest.raises(grpc.RpcError) as refused:
        _call(live_grpc, TRACE_EXPORT, body)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "API key is required" in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as refused:
        _call(live_grpc, TRACE_EXPORT, body, [("authorization", "Bearer assay_wrong")])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    viewer = _create_key(live_grpc, "keyed", role="viewer")
    with pytest.raises(grpc.RpcError) as refused:
        _call(live_grpc, TRACE_EXPORT, body, [("authorization", f"Bearer {viewer}")])
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    _call(live_grpc, TRACE_EXPORT, body, [("authorization", f"Bearer {secret}")])
    with live_grpc.client(headers={"Authorization": f"Bearer {secret}"}) as client:
        assert [row["name"] for row in _spans(client, "keyed")] == ["s"]


def test_opentelemetry_instrument_with_only_the_endpoint_delivers_spans(
    live_grpc: LiveServer, tmp_path: Path
) -> None:
    """Zero-code instrumentation defaults to OTLP over gRPC for traces, metrics and logs."""
    script = tmp_path / "app.py"
    script.write_text(
        "from opentelemetry import metrics, trace\n"
        "tracer = trace.get_tracer('app')\n"
        "counter = metrics.get_meter('app').create_counter('runs')\n"
        "with tracer.start_as_current_span('zero-code root'):\n"
        "    with tracer.start_as_current_span('zero-code child'):\n"
        "        counter.add(1)\n"
    )
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "ASSAY_", "PYTHONPATH"))
    }
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{live_grpc.grpc_port}"
    done = subprocess.run(
        [str(instrument), sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # An exporter that failed (a refused metrics export, say) logs it on stderr.
    assert "Failed to export" not in done.stderr, done.stderr
    assert "StatusCode." not in done.stderr, done.stderr
    with live_grpc.client() as client:
        # The SDK names an unnamed service after the process: unknown_service:python.
        names = {row["name"] for row in _spans(client, "unknown_service:python")}
    assert names == {"zero-code root", "zero-code child"}


def test_grpc_logs_and_metrics_from_the_real_exporters(live_grpc: LiveServer) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    trace_id, span_id = new_trace_id(), new_span_id()
    with live_grpc.client() as client:
        sent = client.post(
            "/v1/traces",
            content=protobuf([span(trace_id, span_id, "op")], service="lg"),
            headers=PB,
        )
        assert sent.status_code == 200
    answer = _call(live_grpc, LOGS_EXPORT, _logs_request("lg", trace_id, span_id))
    assert not ExportLogsServiceResponse.FromString(answer).HasField("partial_success")
    # Metrics: accepted and dropped; the exporter sees success.
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("tests").create_histogram("gen_ai.client.token.usage").record(12)
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{live_grpc.grpc_port}", insecure=True)
    from opentelemetry.sdk.metrics.export import MetricExportResult

    assert exporter.export(data) == MetricExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()
    with live_grpc.client() as client:
        trace = client.get(f"/api/v1/projects/lg/traces/{trace_id.hex()}").json()
    events = trace["spans"][0]["events"]
    assert [event["name"] for event in events] == ["INFO: before", "WARN: after"]


# --- logs over HTTP -----------------------------------------------------------------------

START = 1_700_000_000_000_000_000


def _logs_request(
    service: str, trace_id: bytes = b"", span_id: bytes = b"", *, loose: list[str] | None = None
) -> bytes:
    """Two records in the span (out of order: WARN after INFO by time), and loose records."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.append(KeyValue(key="service.name", value=any_value(service)))
    scope = rl.scope_logs.add()
    scope.scope.name = "tests"
    if trace_id:
        for text, severity, offset in (("after", "WARN", 5), ("before", "INFO", 1)):
            record = scope.log_records.add(
                time_unix_nano=START + offset * 1_000_000,
                severity_text=severity,
                severity_number=13 if severity == "WARN" else 9,
                trace_id=trace_id,
                span_id=span_id,
            )
            record.body.string_value = text
            record.attributes.append(KeyValue(key="logger", value=any_value("app")))
    for index, text in enumerate(loose or []):
        record = scope.log_records.add(time_unix_nano=START + index, severity_text="INFO")
        record.body.string_value = text
    return bytes(req.SerializeToString())


def test_a_log_record_with_a_span_shows_among_its_events_in_time_order(
    live: LiveServer, client: httpx.Client
) -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    body = protobuf([span(trace_id, span_id, "step", start=START)], service="logs")
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    sent = client.post("/v1/logs", content=_logs_request("logs", trace_id, span_id), headers=PB)
    assert sent.status_code == 200, sent.text
    assert sent.headers["content-type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(sent.content).HasField("partial_success")
    trace = client.get(f"/api/v1/projects/logs/traces/{trace_id.hex()}").json()
    events = trace["spans"][0]["events"]
    assert [(e["name"], e["time_ns"]) for e in events] == [
        ("INFO: before", START + 1_000_000),
        ("WARN: after", START + 5_000_000),
    ]
    assert events[0]["attributes"]["logger"] == "app"
    # The span pane draws the same events.
    page = client.get(f"/p/logs/traces/{trace_id.hex()}", params={"span": span_id.hex()})
    assert page.status_code == 200
    assert page.text.index("INFO: before") < page.text.index("WARN: after")
    # Each at its offset from the span's start.
    assert "+1.0 ms" in page.text and "+5.0 ms" in page.text


def test_logs_without_a_span_are_project_logs_searchable_by_text_and_time(
    client: httpx.Client,
) -> None:
    loose = [f"job {i} finished" for i in range(5)] + ["Disk FULL on /var"]
    sent = client.post("/v1/logs", content=_logs_request("plogs", loose=loose), headers=PB)
    assert sent.status_code == 200, sent.text
    # JSON too, with a structured body.
    as_json = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "plogs"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(START + 100),
                                "severityText": "ERROR",
                                "body": {
                                    "kvlistValue": {
                                        "values": [
                                            {"key": "msg", "value": {"stringValue": "disk gone"}}
                                        ]
                                    }
                                },
                            }
                        ]
                    }
                ],
            }
        ]
    }
    sent = client.post("/v1/logs", content=orjson.dumps(as_json), headers=JSON_HEADERS)
    assert sent.status_code == 200 and sent.json() == {}
    found = client.get("/api/v1/projects/plogs/logs", params={"q": "disk"}).json()
    assert [item["body"] for item in found["items"]] == [
        '{"msg":"disk gone"}',
        "Disk FULL on /var",
    ]
    window = client.get(
        "/api/v1/projects/plogs/logs", params={"since": str(START + 1), "until": str(START + 3)}
    ).json()
    assert [item["body"] for item in window["items"]] == ["job 2 finished", "job 1 finished"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/projects/plogs/logs", params=params).json()
        seen += [item["body"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 and len(set(seen)) == 7
    bad_time = client.get("/api/v1/projects/plogs/logs", params={"since": "yesterday"})
    assert bad_time.status_code == 400 and "since" in bad_time.json()["error"]["message"]


def test_a_bad_log_record_is_partial_success_and_a_bad_body_a_protobuf_status(
    client: httpx.Client,
) -> None:
    req = ExportLogsServiceRequest.FromString(_logs_request("pl", loose=["fine"]))
    broken = req.resource_logs[0].scope_logs[0].log_records.add(trace_id=b"\x01\x02")
    broken.body.string_value = "bad ids"
    sent = client.post("/v1/logs", content=req.SerializeToString(), headers=PB)
    answer = ExportLogsServiceResponse.FromString(sent.content)
    assert sent.status_code == 200
    assert answer.partial_success.rejected_log_records == 1
    assert "trace id" in answer.partial_success.error_message
    refused = client.post("/v1/logs", content=b"\xff\xff", headers=PB)
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/x-protobuf"
    error = error_of(refused.headers["content-type"], refused.content)
    assert error["grpc_code"] == 3 and "ExportLogsServiceRequest" in error["message"]
    refused = client.post("/v1/traces", content=b"{", headers=JSON_HEADERS)
    assert refused.status_code == 400 and "JSON" in refused.json()["error"]["message"]


def test_metrics_are_accepted_from_the_real_http_exporter(client: httpx.Client) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("tests")
    meter.create_histogram("gen_ai.client.operation.duration").record(0.4)
    meter.create_counter("requests").add(3)
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(endpoint=f"{str(client.base_url).rstrip('/')}/v1/metrics")
    assert exporter.export(data) == MetricExportResult.SUCCESS
    exporter.shutdown()
    provider.shutdown()
    assert client.post("/v1/metrics", content=b"{}", headers=JSON_HEADERS).json() == {}
    refused = client.post("/v1/metrics", content=b"\xff\xff", headers=PB)
    assert refused.status_code == 400


# --- auth and aliases ---------------------------------------------------------------------


def _basic(name: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def test_open_mode_ignores_an_authorization_header_and_serves_the_aliases(
    client: httpx.Client,
) -> None:
    paths = ["/v1/traces", "/api/public/otel/v1/traces", "/otel/v1/traces"]
    headers = [_basic("pk-lf-1", "sk-lf-2"), "Bearer braintrust-key", "Weird x"]
    for path, header in zip(paths, headers, strict=True):
        body = protobuf([span(new_trace_id(), new_span_id(), path)], service="aliases")
        sent = client.post(path, content=body, headers={**PB, "Authorization": header})
        assert sent.status_code == 200, (path, sent.text)
    assert {row["name"] for row in _spans(client, "aliases")} == set(paths)


def test_a_basic_header_whose_password_is_a_key_is_accepted(live: LiveServer) -> None:
    secret = _create_key(live, "lf")
    body = protobuf([span(new_trace_id(), new_span_id(), "langfuse")], service="lf")
    path = "/api/public/otel/v1/traces"
    with live.client() as client:
        for header in (_basic("pk-lf-anything", "sk-wrong"), "Basic !!!", "Bearer nope"):
            refused = client.post(path, content=body, headers={**PB, "Authorization": header})
            assert refused.status_code == 401, header
            assert refused.headers["content-type"] == "application/x-protobuf"
            assert error_of(refused.headers["content-type"], refused.content)["grpc_code"] == 16
        missing = client.post(path, content=b"{}", headers=JSON_HEADERS)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        sent = client.post(
            path, content=body, headers={**PB, "Authorization": _basic("pk-lf-anything", secret)}
        )
        assert sent.status_code == 200, sent.text
    with live.client(headers={"Authorization": f"Bearer {secret}"}) as client:
        assert [row["name"] for row in _spans(client, "lf")] == ["langfuse"]


def test_assay_server_serves_grpc_by_default_and_says_so(tmp_path: Path) -> None:
    """`assay server` starts the gRPC receiver unless --grpc-port 0."""
    from tests.conftest import free_port

    port, grpc_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
        "ASSAY_HOME": str(tmp_path),
    }
    assay = Path(sys.executable).with_name("assay")
    process = subprocess.Popen(
        [str(assay), "server", "--port", str(port), "--grpc-port", str(grpc_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        body = protobuf([span(new_trace_id(), new_span_id(), "cli")], service="cli")
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            export: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(TRACE_EXPORT)
            export(body, timeout=30)
        names = [
            row["name"]
            for row in httpx.get(f"http://127.0.0.1:{port}/api/v1/projects/cli/spans").json()[
                "items"
            ]
        ]
        assert names == ["cli"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"OTLP/gRPC on 127.0.0.1:{grpc_port}" in output
