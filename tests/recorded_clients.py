"""Replay the OTLP that other tools' real clients exported (tests/recordings/clients/) into a
live Assay server: over HTTP as protobuf (byte for byte as recorded) or as OTLP/JSON, or over
gRPC to the server's receiver (the same bytes)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

RECORDINGS = Path(__file__).parent / "recordings" / "clients"
ENCODINGS = ("protobuf", "json", "grpc")
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def recording(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return loaded


def bodies(name: str) -> list[bytes]:
    """The protobuf bodies of the export requests the client sent, in order."""
    return [base64.b64decode(item["body"]) for item in recording(name)["requests"]]


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def as_otlp_json(body: bytes) -> dict[str, Any]:
    """An export request as OTLP/JSON says it: camelCase, ids in hex, enums as numbers."""
    request = ExportTraceServiceRequest.FromString(body)
    data: dict[str, Any] = MessageToDict(request, use_integers_for_enums=True)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = _hex(span[key])
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = _hex(link[key])
    return data


def replay(
    client: httpx.Client, name: str, encoding: str, project: str, *, grpc_port: int = 0
) -> None:
    """Send a recording's requests to ``/v1/traces`` in ``project`` (with "grpc", to the
    TraceService of the receiver at ``grpc_port``)."""
    for body in bodies(name):
        headers = {"x-assay-project": project}
        if encoding == "grpc":
            assert grpc_port, "start the server with start_server(..., grpc=True)"
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                export = channel.unary_unary(
                    TRACE_EXPORT, request_serializer=bytes, response_deserializer=bytes
                )
                answer = export(body, metadata=tuple(headers.items()), timeout=30)
            rejected = ExportTraceServiceResponse.FromString(answer).partial_success
            assert not rejected.rejected_spans, rejected.error_message
            continue
        if encoding == "protobuf":
            headers["content-type"] = "application/x-protobuf"
            sent = client.post("/v1/traces", content=body, headers=headers)
        else:
            headers["content-type"] = "application/json"
            sent = client.post("/v1/traces", json=as_otlp_json(body), headers=headers)
        assert sent.status_code == 200, sent.text


def stored_spans(client: httpx.Client, project: str) -> list[dict[str, Any]]:
    """Every span of a project, oldest first, each as the trace API answers it (in full)."""
    items = client.get(f"/api/v1/projects/{project}/traces", params={"limit": 200}).json()
    spans: list[dict[str, Any]] = []
    for item in items["items"]:
        trace = client.get(
            f"/api/v1/projects/{project}/traces/{item['trace_id']}", params={"full": "true"}
        ).json()
        stack = list(trace["spans"])
        while stack:
            span = stack.pop()
            stack.extend(span.pop("children"))
            spans.append(span)
    return sorted(spans, key=lambda s: (s["start_ns"], s["span_id"]))
