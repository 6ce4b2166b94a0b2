"""Decode OTLP/HTTP trace requests (protobuf or JSON) into plain span dicts.

Both encodings produce the same shape, so normalisation and storage never care which one a
client used. A span that cannot be stored (bad ids) is rejected on its own and reported through
OTLP partial success; the rest of the request is kept.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from assay.errors import IngestError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_KIND_NAMES = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
MAX_NAME_CHARS = 1_000


@dataclass(slots=True)
class RawSpan:
    """One span as OpenTelemetry describes it, ids in lowercase hex."""

    project: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    resource: dict[str, Any]
    scope: dict[str, Any]


@dataclass(slots=True)
class DecodedRequest:
    spans: list[RawSpan] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(message)


@dataclass(slots=True)
class Limits:
    max_body_bytes: int
    max_value_chars: int


def read_body(body: bytes, content_encoding: str | None, limits: Limits) -> bytes:
    """Undo gzip/deflate, refusing bodies that grow past the size limit (zip bombs included)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        data = body
    elif encoding in ("gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        decompressor = zlib.decompressobj(wbits)
        try:
            data = decompressor.decompress(body, limits.max_body_bytes + 1)
        except zlib.error as exc:
            raise IngestError(f"the body is not valid {encoding}: {exc}") from None
        if decompressor.unconsumed_tail:
            data = b"x" * (limits.max_body_bytes + 1)
    else:
        raise IngestError(
            f"Content-Encoding {content_encoding!r} is not supported; send gzip or no encoding.",
            status=415,
            code="unsupported_encoding",
        )
    if len(data) > limits.max_body_bytes:
        raise IngestError(
            f"the request body is larger than {limits.max_body_bytes} bytes; "
            "send smaller batches (or raise ASSAY_MAX_BODY_BYTES).",
            status=413,
            code="body_too_large",
        )
    return data


def decode(
    data: bytes,
    content_type: str,
    header_project: str | None,
    default_project: str,
    limits: Limits,
) -> DecodedRequest:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return _decode_protobuf(data, header_project, default_project, limits)
    if media == JSON:
        return _decode_json(data, header_project, default_project, limits)
    raise IngestError(
        f"Content-Type {content_type!r} is not supported; send {PROTOBUF} or {JSON} (OTLP/HTTP).",
        status=415,
        code="unsupported_media_type",
    )


def encode_response(content_type: str, rejected: int, errors: list[str]) -> bytes:
    media = content_type.split(";", 1)[0].strip().lower()
    message = "; ".join(errors)
    if media == JSON:
        if not rejected:
            return b"{}"
        return orjson.dumps(
            {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}
        )
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return bytes(response.SerializeToString())


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def _project(resource: dict[str, Any], header_project: str | None, default: str) -> str:
    if header_project:
        return header_project
    for key in ("assay.project", "service.name"):
        value = resource.get(key)
        if isinstance(value, str) and value:
            return value[:200]
    return default


_HEX_ID = re.compile(r"[0-9a-f]*")


def _check_ids(out: DecodedRequest, trace_id: str, span_id: str, parent: str, name: str) -> bool:
    # Ids are stored and looked up as lowercase hex: anything else could be stored but never
    # read back (a 32-character JSON traceId that is not hex, say).
    if len(trace_id) != 32 or trace_id == "0" * 32 or not _HEX_ID.fullmatch(trace_id):
        out.reject(f"span {name[:80]!r}: invalid trace id {trace_id[:64]!r} (need 16 bytes)")
        return False
    if len(span_id) != 16 or span_id == "0" * 16 or not _HEX_ID.fullmatch(span_id):
        out.reject(f"span {name[:80]!r}: invalid span id {span_id[:64]!r} (need 8 bytes)")
        return False
    if parent and (len(parent) != 16 or not _HEX_ID.fullmatch(parent)):
        out.reject(f"span {name[:80]!r}: invalid parent span id {parent[:64]!r}")
        return False
    return True


# --- protobuf -------------------------------------------------------------------------------


def _pb_value(value: Any, limit: int) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        text: str = value.string_value
        return text if len(text) <= limit else _truncate(text, limit)
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bool_value":
        return value.bool_value
    if which == "array_value":
        return [_pb_value(item, limit) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, limit) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value[:limit]).decode("ascii")
    return None


def _pb_attributes(attributes: Any, limit: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        value = kv.value
        # Most attribute values are strings: read those without another call.
        if value.WhichOneof("value") == "string_value":
            text: str = value.string_value
            out[kv.key] = text if len(text) <= limit else _truncate(text, limit)
        else:
            out[kv.key] = _pb_value(value, limit)
    return out


def _decode_protobuf(
    data: bytes, header_project: str | None, default_project: str, limits: Limits
) -> DecodedRequest:
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        raise IngestError(
            f"the body is not a valid OTLP ExportTraceServiceRequest protobuf ({exc}); "
            "it may be truncated, or not protobuf at all"
        ) from None
    out = DecodedRequest()
    limit = limits.max_value_chars
    for resource_spans in request.resource_spans:
        resource = _pb_attributes(resource_spans.resource.attributes, limit)
        project = _project(resource, header_project, default_project)
        for scope_spans in resource_spans.scope_spans:
            scope_pb = scope_spans.scope
            scope: dict[str, Any] = {"name": scope_pb.name, "version": scope_pb.version}
            if scope_pb.attributes:
                scope["attributes"] = _pb_attributes(scope_pb.attributes, limit)
            for span in scope_spans.spans:
                trace_id = span.trace_id.hex()
                span_id = span.span_id.hex()
                parent = span.parent_span_id.hex()
                name = span.name
                if not _check_ids(out, trace_id, span_id, parent, name):
                    continue
                events = [
                    {
                        "name": event.name,
                        "time_ns": event.time_unix_nano,
                        "attributes": _pb_attributes(event.attributes, limit),
                    }
                    for event in span.events
                ]
                links = [
                    {
                        "trace_id": link.trace_id.hex(),
                        "span_id": link.span_id.hex(),
                        "attributes": _pb_attributes(link.attributes, limit),
                    }
                    for link in span.links
                ]
                out.spans.append(
                    RawSpan(
                        project=project,
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=parent or None,
                        name=name[:MAX_NAME_CHARS],
                        kind=span.kind,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        status_message=span.status.message or None,
                        attributes=_pb_attributes(span.attributes, limit),
                        events=events,
                        links=links,
                        resource=resource,
                        scope=scope,
                    )
                )
    return out


# --- JSON -----------------------------------------------------------------------------------


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_id(raw: Any, size: int) -> str:
    """OTLP/JSON ids are hex; some clients send base64 (protobuf's JSON mapping), so accept it."""
    if not raw:
        return ""
    if not isinstance(raw, str):
        return "!"
    if len(raw) == size * 2:
        try:
            return bytes.fromhex(raw).hex()
        except ValueError:
            pass
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw
    return decoded.hex() if len(decoded) == size else raw


def _json_int(raw: Any) -> int:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    if isinstance(raw, float):
        return int(raw)
    return 0


def _json_value(value: Any, limit: int) -> Any:
    if not isinstance(value, dict):
        return value
    if "stringValue" in value or "string_value" in value:
        text = _get(value, "stringValue", "string_value")
        if isinstance(text, str) and len(text) > limit:
            return _truncate(text, limit)
        return text
    if "intValue" in value or "int_value" in value:
        return _json_int(_get(value, "intValue", "int_value"))
    if "doubleValue" in value or "double_value" in value:
        raw = _get(value, "doubleValue", "double_value")
        try:
            return float(raw)
        except (TypeError, ValueError):
            return raw
    if "boolValue" in value or "bool_value" in value:
        return bool(_get(value, "boolValue", "bool_value"))
    if "arrayValue" in value or "array_value" in value:
        array = _get(value, "arrayValue", "array_value") or {}
        return [_json_value(item, limit) for item in array.get("values") or []]
    if "kvlistValue" in value or "kvlist_value" in value:
        kvlist = _get(value, "kvlistValue", "kvlist_value") or {}
        return _json_attributes(kvlist.get("values"), limit)
    if "bytesValue" in value or "bytes_value" in value:
        return _get(value, "bytesValue", "bytes_value")
    return None


def _json_attributes(raw: Any, limit: int) -> dict[str, Any]:
    if not isinstance(raw, list):
        return {}
    return {
        str(kv.get("key")): _json_value(kv.get("value"), limit)
        for kv in raw
        if isinstance(kv, dict) and "key" in kv
    }


def _iter_json_spans(
    payload: dict[str, Any], header_project: str | None, default_project: str, limit: int
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    for resource_spans in _get(payload, "resourceSpans", "resource_spans") or []:
        if not isinstance(resource_spans, dict):
            continue
        resource = _json_attributes((resource_spans.get("resource") or {}).get("attributes"), limit)
        project = _project(resource, header_project, default_project)
        for scope_spans in _get(resource_spans, "scopeSpans", "scope_spans") or []:
            if not isinstance(scope_spans, dict):
                continue
            scope_raw = scope_spans.get("scope") or {}
            scope: dict[str, Any] = {
                "name": scope_raw.get("name", ""),
                "version": scope_raw.get("version", ""),
            }
            if scope_raw.get("attributes"):
                scope["attributes"] = _json_attributes(scope_raw["attributes"], limit)
            for span in scope_spans.get("spans") or []:
                if isinstance(span, dict):
                    yield project, resource, scope, span


def _decode_json(
    data: bytes, header_project: str | None, default_project: str, limits: Limits
) -> DecodedRequest:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise IngestError("the JSON body must be an object with a 'resourceSpans' list")
    out = DecodedRequest()
    limit = limits.max_value_chars
    for project, resource, scope, span in _iter_json_spans(
        payload, header_project, default_project, limit
    ):
        name = str(span.get("name") or "")
        trace_id = _json_id(_get(span, "traceId", "trace_id"), 16)
        span_id = _json_id(_get(span, "spanId", "span_id"), 8)
        parent = _json_id(_get(span, "parentSpanId", "parent_span_id"), 8)
        if not _check_ids(out, trace_id, span_id, parent, name):
            continue
        kind = span.get("kind", 0)
        status = span.get("status") or {}
        status_code = status.get("code", 0)
        out.spans.append(
            RawSpan(
                project=project,
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent or None,
                name=name[:MAX_NAME_CHARS],
                kind=_KIND_NAMES.get(kind, 0) if isinstance(kind, str) else _json_int(kind),
                start_ns=_json_int(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
                end_ns=_json_int(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
                status_code=(
                    _STATUS_NAMES.get(status_code, 0)
                    if isinstance(status_code, str)
                    else _json_int(status_code)
                ),
                status_message=status.get("message") or None,
                attributes=_json_attributes(span.get("attributes"), limit),
                events=[
                    {
                        "name": event.get("name", ""),
                        "time_ns": _json_int(_get(event, "timeUnixNano", "time_unix_nano")),
                        "attributes": _json_attributes(event.get("attributes"), limit),
                    }
                    for event in span.get("events") or []
                    if isinstance(event, dict)
                ],
                links=[
                    {
                        "trace_id": _json_id(_get(link, "traceId", "trace_id"), 16),
                        "span_id": _json_id(_get(link, "spanId", "span_id"), 8),
                        "attributes": _json_attributes(link.get("attributes"), limit),
                    }
                    for link in span.get("links") or []
                    if isinstance(link, dict)
                ],
                resource=resource,
                scope=scope,
            )
        )
    return out


__all__ = [
    "JSON",
    "PROTOBUF",
    "DecodedRequest",
    "IngestError",
    "Limits",
    "RawSpan",
    "decode",
    "encode_response",
    "read_body",
]
