"""Decode OTLP/HTTP trace requests (protobuf or JSON) into plain span dicts.

Both encodings produce the same shape, so normalisation and storage never care which one a
client used. A span that cannot be stored (bad ids, a field of the wrong type, a value that does
not fit its column) is rejected on its own and reported through OTLP partial success, naming the
field; the rest of the request is kept. A request whose every span is rejected, or whose envelope
(resource, scope, the lists around the spans) is malformed, is refused whole with a 400.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from assay.errors import IngestError
from assay.semconv.attributes import DROPPED_PREFIX

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
#: Project names are stored in a 200-character column.
MAX_PROJECT_CHARS = 200
#: Times are stored as signed 64-bit nanoseconds (store/tables.py), which reach the year 2262.
MAX_TIME_NS = 2**63 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Attribute values nested deeper than this are refused: the stored JSON must stay readable by
#: every JSON encoder on the way out (orjson stops at 254 levels). OTLP protobuf cannot nest
#: deeper than about 50 levels, so this only ever applies to JSON bodies.
MAX_VALUE_DEPTH = 64
_HEX_ID = re.compile(r"[0-9a-f]+")


def _with_dropped(attributes: dict[str, Any], counts: tuple[int, int, int]) -> dict[str, Any]:
    for what, count in zip(("attributes", "events", "links"), counts, strict=True):
        if count > 0:
            attributes[DROPPED_PREFIX + what] = count
    return attributes


class Malformed(ValueError):
    """One field of a span is of the wrong type or out of range; the message names it."""


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

    def require_some(self) -> DecodedRequest:
        """Refuse the request (400) when it had spans and none of them could be kept: exporters
        log a 400, while a 200 with partial success usually goes unnoticed."""
        if self.rejected and not self.spans:
            more = self.rejected - len(self.errors)
            shown = "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")
            raise IngestError(
                f"every span of the request was rejected ({self.rejected}): {shown}",
                code="invalid_spans",
            )
        return self


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
    media = media_type(content_type)
    if header_project is not None:
        problem = _project_problem(header_project)
        if problem is not None:
            raise IngestError(f"the X-Assay-Project header {problem}")
    if media == PROTOBUF:
        return _decode_protobuf(data, header_project, default_project, limits).require_some()
    if media == JSON:
        return _decode_json(data, header_project, default_project, limits).require_some()
    raise IngestError(
        f"Content-Type {content_type!r} is not supported; send {PROTOBUF} or {JSON} (OTLP/HTTP).",
        status=415,
        code="unsupported_media_type",
    )


def media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def encode_partial_success(
    content_type: str, rejected: int, errors: list[str], response: Any, rejected_field: str
) -> bytes:
    """An OTLP export answer in the request's encoding: ``response`` is the service's empty
    Export*ServiceResponse, ``rejected_field`` its count (``rejected_spans``, ...)."""
    message = "; ".join(errors)
    if media_type(content_type) == JSON:
        if not rejected:
            return b"{}"
        # OTLP/JSON names fields in lowerCamelCase and writes 64-bit counts as strings.
        head, *rest = rejected_field.split("_")
        json_field = head + "".join(part.title() for part in rest)
        return orjson.dumps(
            {"partialSuccess": {json_field: str(rejected), "errorMessage": message}}
        )
    if rejected:
        setattr(response.partial_success, rejected_field, rejected)
        response.partial_success.error_message = message
    return bytes(response.SerializeToString())


def encode_response(content_type: str, rejected: int, errors: list[str]) -> bytes:
    return encode_partial_success(
        content_type, rejected, errors, ExportTraceServiceResponse(), "rejected_spans"
    )


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated {len(text) - limit} chars]"


def _project_problem(name: str) -> str | None:
    if len(name) > MAX_PROJECT_CHARS:
        return f"is {len(name)} characters long; a project name has at most {MAX_PROJECT_CHARS}"
    if "\x00" in name:
        return f"{name[:80]!r} holds a NUL character, which a project name cannot"
    return None


def _project(resource: dict[str, Any], header_project: str | None, default: str) -> str:
    """The project of a resource's spans; Malformed when its name cannot be stored."""
    if header_project:
        return header_project
    for key in ("assay.project", "service.name"):
        value = resource.get(key)
        if isinstance(value, str) and value:
            name = value[:MAX_PROJECT_CHARS]
            problem = _project_problem(name)
            if problem is not None:
                raise Malformed(f"resource attribute {key} {problem}")
            return name
    return default


def _id_problem(trace_id: str, span_id: str, parent: str) -> str | None:
    if len(trace_id) != 32 or trace_id == "0" * 32:
        return f"invalid trace id {trace_id[:64]!r} (need 16 bytes)"
    if len(span_id) != 16 or span_id == "0" * 16:
        return f"invalid span id {span_id[:64]!r} (need 8 bytes)"
    if parent and len(parent) != 16:
        return f"invalid parent span id {parent[:64]!r}"
    return None


def _digits(value: int) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} digits)"


def _time(value: int, field: str) -> int:
    if 0 <= value <= MAX_TIME_NS:
        return value
    raise Malformed(
        f"{field} {_digits(value)} is out of range: send nanoseconds since 1970, "
        f"at most {MAX_TIME_NS}"
    )


def _known(value: int, count: int) -> int:
    """An enum value Assay does not know reads as 0 (UNSPECIFIED, UNSET), as OpenTelemetry
    reads unknown enum values; it also keeps absurd numbers out of the small-integer column."""
    return value if 0 <= value < count else 0


def _double(value: float) -> float | str:
    """Finite doubles as numbers; NaN and the infinities as the strings OTLP/JSON spells them
    with, since JSON has no numbers for them."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# --- protobuf -------------------------------------------------------------------------------


def _pb_value(value: Any, limit: int) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        text: str = value.string_value
        return text if len(text) <= limit else _truncate(text, limit)
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return _double(value.double_value)
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
        try:
            project = _project(resource, header_project, default_project)
        except Malformed as problem:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    out.reject(f"span {span.name[:80]!r}: {problem}")
            continue
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
                try:
                    bad_id = _id_problem(trace_id, span_id, parent)
                    if bad_id is not None:
                        raise Malformed(bad_id)
                    start_ns = _time(span.start_time_unix_nano, "startTimeUnixNano")
                    end_ns = _time(span.end_time_unix_nano, "endTimeUnixNano")
                    events = [
                        {
                            "name": event.name,
                            "time_ns": _time(event.time_unix_nano, "event timeUnixNano"),
                            "attributes": _pb_attributes(event.attributes, limit),
                        }
                        for event in span.events
                    ]
                except Malformed as problem:
                    out.reject(f"span {name[:80]!r}: {problem}")
                    continue
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
                        kind=_known(span.kind, len(_KIND_NAMES)),
                        start_ns=start_ns,
                        end_ns=end_ns,
                        status_code=_known(span.status.code, len(_STATUS_NAMES)),
                        status_message=span.status.message or None,
                        attributes=_with_dropped(
                            _pb_attributes(span.attributes, limit),
                            (
                                span.dropped_attributes_count,
                                span.dropped_events_count,
                                span.dropped_links_count,
                            ),
                        ),
                        events=events,
                        links=links,
                        resource=resource,
                        scope=scope,
                    )
                )
    return out


# --- JSON -----------------------------------------------------------------------------------
# A JSON body can hold any type anywhere. Each reader below takes what OTLP/JSON allows (and
# the protobuf JSON mapping's variants: snake_case names, base64 ids, numbers as strings) and
# raises Malformed, naming the field, for anything else.


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _shown(raw: Any) -> str:
    if isinstance(raw, str):
        return repr(raw[:40])
    if isinstance(raw, bool | int | float):
        return str(raw)
    if raw is None:
        return "null"
    return "an object" if isinstance(raw, dict) else "a list"


def _object(raw: Any, field: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Malformed(f"{field} must be an object, not {_shown(raw)}")
    return raw


def _list(raw: Any, field: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Malformed(f"{field} must be a list, not {_shown(raw)}")
    return raw


def _string(raw: Any, field: str, limit: int) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise Malformed(f"{field} must be a string, not {_shown(raw)}")
    return raw if len(raw) <= limit else _truncate(raw, limit)


def _json_id(raw: Any, size: int, what: str) -> str:
    """OTLP/JSON ids are hex; some clients send base64 (protobuf's JSON mapping), so accept it."""
    if raw is None or raw == "":
        return ""
    if isinstance(raw, str):
        if len(raw) == size * 2 and _HEX_ID.fullmatch(raw.lower()):
            return raw.lower()
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) == size:
            return decoded.hex()
    shown = raw[:64] if isinstance(raw, str) else _shown(raw)
    raise Malformed(f"invalid {what} {shown!r} (need {size} bytes, as hex)")


def _link_id(raw: Any, size: int) -> str:
    """Links are kept as sent: an id that does not read stays as its text."""
    try:
        return _json_id(raw, size, "id")
    except Malformed:
        return raw if isinstance(raw, str) else ""


def _json_int(raw: Any, field: str) -> int:
    if raw is None:
        return 0
    if isinstance(raw, int):  # bool included, as protobuf's JSON parsers take it
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise Malformed(f"{field} {_shown(raw)} is not an integer") from None
    if isinstance(raw, float) and math.isfinite(raw):
        return int(raw)
    raise Malformed(f"{field} {_shown(raw)} is not an integer")


def _json_int64(raw: Any, field: str) -> int:
    value = _json_int(raw, field)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise Malformed(f"{field} {_digits(value)} does not fit in 64 bits")
    return value


def _json_enum(raw: Any, names: dict[str, int], field: str) -> int:
    if isinstance(raw, str):
        if raw in names:
            return names[raw]
        try:
            raw = int(raw)
        except ValueError:
            return 0
    return _known(_json_int(raw, field), len(names))


def _json_double(raw: Any) -> float | str:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise Malformed(f"doubleValue must be a number, not {_shown(raw)}")
    try:
        return _double(float(raw))
    except (ValueError, OverflowError):
        raise Malformed(f"doubleValue {_shown(raw)} is not a number") from None


def _plain(value: Any, limit: int, depth: int) -> Any:
    """Plain JSON sent where an AnyValue belongs: kept as it is, within the same bounds."""
    if isinstance(value, str):
        return value if len(value) <= limit else _truncate(value, limit)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _json_int64(value, "integer")
    if isinstance(value, float):
        return _double(value)
    if depth >= MAX_VALUE_DEPTH:
        raise Malformed(f"the value is nested deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, list):
        return [_plain(item, limit, depth + 1) for item in value]
    return {str(key): _plain(item, limit, depth + 1) for key, item in value.items()}


def _json_value(value: Any, limit: int, depth: int = 0) -> Any:
    if not isinstance(value, dict):
        return _plain(value, limit, depth)
    if "stringValue" in value or "string_value" in value:
        return _string(_get(value, "stringValue", "string_value"), "stringValue", limit)
    if "intValue" in value or "int_value" in value:
        return _json_int64(_get(value, "intValue", "int_value"), "intValue")
    if "doubleValue" in value or "double_value" in value:
        return _json_double(_get(value, "doubleValue", "double_value"))
    if "boolValue" in value or "bool_value" in value:
        flag = _get(value, "boolValue", "bool_value")
        if not isinstance(flag, bool):
            raise Malformed(f"boolValue must be true or false, not {_shown(flag)}")
        return flag
    if depth >= MAX_VALUE_DEPTH and any(
        key in value for key in ("arrayValue", "array_value", "kvlistValue", "kvlist_value")
    ):
        raise Malformed(f"the value is nested deeper than {MAX_VALUE_DEPTH} levels")
    if "arrayValue" in value or "array_value" in value:
        array = _object(_get(value, "arrayValue", "array_value"), "arrayValue")
        items = _list(array.get("values"), "arrayValue.values")
        return [_json_value(item, limit, depth + 1) for item in items]
    if "kvlistValue" in value or "kvlist_value" in value:
        kvlist = _object(_get(value, "kvlistValue", "kvlist_value"), "kvlistValue")
        return _json_attributes(kvlist.get("values"), limit, depth + 1)
    if "bytesValue" in value or "bytes_value" in value:
        return _string(_get(value, "bytesValue", "bytes_value"), "bytesValue", limit)
    return None


def _json_attributes(raw: Any, limit: int, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in _list(raw, "attributes"):
        if not isinstance(kv, dict):
            raise Malformed(f"an attribute must be an object, not {_shown(kv)}")
        key = kv.get("key")
        if not isinstance(key, str):
            raise Malformed(f"an attribute key must be a string, not {_shown(key)}")
        try:
            out[key] = _json_value(kv.get("value"), limit, depth)
        except Malformed as problem:
            raise Malformed(f"attribute {key[:80]!r}: {problem}") from None
    return out


def _json_scope(raw: Any, limit: int) -> dict[str, Any]:
    scope_raw = _object(raw, "scope")
    scope: dict[str, Any] = {
        "name": _string(scope_raw.get("name"), "scope name", limit),
        "version": _string(scope_raw.get("version"), "scope version", limit),
    }
    if scope_raw.get("attributes"):
        scope["attributes"] = _json_attributes(scope_raw["attributes"], limit)
    return scope


def _json_span(
    span: dict[str, Any],
    name: str,
    project: str,
    resource: dict[str, Any],
    scope: dict[str, Any],
    limit: int,
) -> RawSpan:
    trace_id = _json_id(_get(span, "traceId", "trace_id"), 16, "trace id")
    span_id = _json_id(_get(span, "spanId", "span_id"), 8, "span id")
    parent = _json_id(_get(span, "parentSpanId", "parent_span_id"), 8, "parent span id")
    bad_id = _id_problem(trace_id, span_id, parent)
    if bad_id is not None:
        raise Malformed(bad_id)
    status = _object(span.get("status"), "status")
    message = status.get("message")
    if message is not None and not isinstance(message, str):
        raise Malformed(f"status message must be a string, not {_shown(message)}")
    events = []
    for event in _list(span.get("events"), "events"):
        event = _object(event, "an event")
        events.append(
            {
                "name": _string(event.get("name"), "event name", MAX_NAME_CHARS),
                "time_ns": _time(
                    _json_int(_get(event, "timeUnixNano", "time_unix_nano"), "event time"),
                    "event timeUnixNano",
                ),
                "attributes": _json_attributes(event.get("attributes"), limit),
            }
        )
    links = []
    for link in _list(span.get("links"), "links"):
        link = _object(link, "a link")
        links.append(
            {
                "trace_id": _link_id(_get(link, "traceId", "trace_id"), 16),
                "span_id": _link_id(_get(link, "spanId", "span_id"), 8),
                "attributes": _json_attributes(link.get("attributes"), limit),
            }
        )
    start = _json_int(_get(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _json_int(_get(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    return RawSpan(
        project=project,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent or None,
        name=name[:MAX_NAME_CHARS],
        kind=_json_enum(span.get("kind"), _KIND_NAMES, "kind"),
        start_ns=_time(start, "startTimeUnixNano"),
        end_ns=_time(end, "endTimeUnixNano"),
        status_code=_json_enum(status.get("code"), _STATUS_NAMES, "status code"),
        status_message=message or None,
        attributes=_with_dropped(
            _json_attributes(span.get("attributes"), limit),
            (
                _json_int64(
                    _get(span, "droppedAttributesCount", "dropped_attributes_count"),
                    "droppedAttributesCount",
                ),
                _json_int64(
                    _get(span, "droppedEventsCount", "dropped_events_count"), "droppedEventsCount"
                ),
                _json_int64(
                    _get(span, "droppedLinksCount", "dropped_links_count"), "droppedLinksCount"
                ),
            ),
        ),
        events=events,
        links=links,
        resource=resource,
        scope=scope,
    )


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
    where = "the body"
    try:
        resource_list = _list(_get(payload, "resourceSpans", "resource_spans"), where)
        for r_index, resource_spans in enumerate(resource_list):
            where = f"resourceSpans[{r_index}]"
            resource_spans = _object(resource_spans, "a resourceSpans item")
            resource_raw = _object(resource_spans.get("resource"), "resource")
            resource = _json_attributes(resource_raw.get("attributes"), limit)
            try:
                project: str | Malformed = _project(resource, header_project, default_project)
            except Malformed as problem:
                project = problem
            scope_list = _list(_get(resource_spans, "scopeSpans", "scope_spans"), "scopeSpans")
            for s_index, scope_spans in enumerate(scope_list):
                where = f"resourceSpans[{r_index}].scopeSpans[{s_index}]"
                scope_spans = _object(scope_spans, "a scopeSpans item")
                scope = _json_scope(scope_spans.get("scope"), limit)
                for span in _list(scope_spans.get("spans"), "spans"):
                    _add_json_span(out, span, project, resource, scope, limit)
    except Malformed as problem:
        raise IngestError(f"{where}: {problem}") from None
    return out


def _add_json_span(
    out: DecodedRequest,
    span: Any,
    project: str | Malformed,
    resource: dict[str, Any],
    scope: dict[str, Any],
    limit: int,
) -> None:
    if not isinstance(span, dict):
        out.reject(f"a span must be an object, not {_shown(span)}")
        return
    name = span.get("name")
    shown = name[:80] if isinstance(name, str) else ""
    try:
        if isinstance(project, Malformed):
            raise project
        if name is not None and not isinstance(name, str):
            raise Malformed(f"name must be a string, not {_shown(name)}")
        out.spans.append(_json_span(span, name or "", project, resource, scope, limit))
    except Malformed as problem:
        out.reject(f"span {shown!r}: {problem}")


__all__ = [
    "JSON",
    "PROTOBUF",
    "DecodedRequest",
    "IngestError",
    "Limits",
    "Malformed",
    "RawSpan",
    "decode",
    "encode_partial_success",
    "encode_response",
    "media_type",
    "read_body",
]
