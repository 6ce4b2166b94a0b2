"""Small builders for OTLP requests in tests (protobuf and JSON)."""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    return AnyValue(string_value=str(value))


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    return os.urandom(8)


def span(
    trace_id: bytes,
    span_id: bytes,
    name: str,
    *,
    parent: bytes = b"",
    start: int = 1_700_000_000_000_000_000,
    duration_ms: float = 10,
    attributes: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + int(duration_ms * 1_000_000),
        "attributes": attributes or {},
        "error": error,
    }


def request(
    spans: list[dict[str, Any]], *, service: str = "svc", resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for key, value in {"service.name": service, **(resource or {})}.items():
        rs.resource.attributes.append(KeyValue(key=key, value=any_value(value)))
    scope_spans = rs.scope_spans.add()
    scope_spans.scope.name = "tests"
    for item in spans:
        s = scope_spans.spans.add(
            trace_id=item["trace_id"],
            span_id=item["span_id"],
            parent_span_id=item["parent_span_id"],
            name=item["name"],
            start_time_unix_nano=item["start_time_unix_nano"],
            end_time_unix_nano=item["end_time_unix_nano"],
        )
        for key, value in item["attributes"].items():
            s.attributes.append(KeyValue(key=key, value=any_value(value)))
        if item["error"]:
            s.status.code = 2
            s.status.message = item["error"]
    return req


def protobuf(spans: list[dict[str, Any]], **kwargs: Any) -> bytes:
    return bytes(request(spans, **kwargs).SerializeToString())


PB = {"content-type": "application/x-protobuf"}
JSON_HEADERS = {"content-type": "application/json"}


def error_of(content_type: str, body: bytes) -> dict[str, Any]:
    """An error answer as {"code", "message"}: OTLP errors are a protobuf google.rpc.Status
    for protobuf requests (Assay's code in its ErrorInfo), else Assay's JSON error."""
    import orjson
    from google.rpc.error_details_pb2 import ErrorInfo
    from google.rpc.status_pb2 import Status

    if content_type.split(";")[0].strip() == "application/x-protobuf":
        status = Status.FromString(body)
        code = ""
        for detail in status.details:
            info = ErrorInfo()
            if detail.Unpack(info):
                code = info.reason
        return {"code": code, "message": status.message, "grpc_code": status.code}
    error: dict[str, Any] = orjson.loads(body)["error"]
    return error


def error_message(response: Any) -> str:
    """The message of an httpx error response, in either encoding."""
    return str(error_of(response.headers.get("content-type", ""), response.content)["message"])
