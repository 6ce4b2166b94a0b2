"""Decode OTLP log and metric export requests (protobuf or JSON), as otlp.py does for traces.

Log records keep what a reader needs: time, severity, body, attributes and the trace and span
they were written in. A record whose field cannot be stored is rejected on its own and reported
through partial success, as spans are. Metrics are read only far enough to know the request is
well formed: Assay does not store them (the README says so), but answers success so that
exporters which send metrics by default (Logfire, traceloop-sdk) log no error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from assay.errors import IngestError

# The span decoder's readers: a log record's values, ids and times follow the same rules.
from assay.ingest.otlp import (
    JSON,
    MAX_NAME_CHARS,
    PROTOBUF,
    Malformed,
    _get,
    _json_attributes,
    _json_id,
    _json_int,
    _json_scope,
    _json_value,
    _list,
    _object,
    _pb_attributes,
    _pb_value,
    _project,
    _project_problem,
    _shown,
    _string,
    _time,
    encode_partial_success,
    media_type,
)

#: OpenTelemetry severity numbers run from 1 (TRACE) to 24 (FATAL4); 0 is unspecified.
MAX_SEVERITY = 24
MAX_SEVERITY_TEXT = 100


@dataclass(slots=True)
class DecodedLogs:
    """Log rows ready for the writer (``projects[i]`` is row i's project), and what was not."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(message)

    def require_some(self) -> DecodedLogs:
        if self.rejected and not self.rows:
            more = self.rejected - len(self.errors)
            shown = "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")
            raise IngestError(
                f"every log record of the request was rejected ({self.rejected}): {shown}",
                code="invalid_logs",
            )
        return self


def _body_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _ids(trace_id: str, span_id: str) -> tuple[str | None, str | None]:
    """A record's trace and span ids; both may be absent (a log written outside a span)."""
    if trace_id and (len(trace_id) != 32 or trace_id == "0" * 32):
        raise Malformed(f"invalid trace id {trace_id[:64]!r} (need 16 bytes)")
    if span_id and (len(span_id) != 16 or span_id == "0" * 16):
        raise Malformed(f"invalid span id {span_id[:64]!r} (need 8 bytes)")
    if span_id and not trace_id:
        raise Malformed("a span id without a trace id")
    return trace_id or None, span_id or None


def _row(
    *,
    time_ns: int,
    observed_ns: int,
    severity_number: int,
    severity_text: str,
    event_name: str,
    body: Any,
    trace_id: str | None,
    span_id: str | None,
    attributes: dict[str, Any],
    resource: dict[str, Any],
    scope: dict[str, Any],
    now: int,
) -> dict[str, Any]:
    return {
        # A record without a time is placed at the time it was observed, else received.
        "time_ns": time_ns or observed_ns or now,
        "observed_ns": observed_ns or time_ns or now,
        "trace_id": trace_id,
        "span_id": span_id,
        "severity_number": severity_number if 0 <= severity_number <= MAX_SEVERITY else 0,
        "severity_text": severity_text[:MAX_SEVERITY_TEXT] or None,
        "event_name": event_name[:MAX_NAME_CHARS] or None,
        "ingested_ns": now,
        "body": _body_text(body),
        "attributes": attributes,
        "resource": resource,
        "scope": scope,
    }


def decode_logs(
    data: bytes, content_type: str, header_project: str | None, default_project: str, limit: int
) -> DecodedLogs:
    """Log rows from an ExportLogsServiceRequest; ``limit`` is the longest string value kept."""
    media = media_type(content_type)
    if media == PROTOBUF:
        return _decode_protobuf(data, header_project, default_project, limit).require_some()
    if media == JSON:
        return _decode_json(data, header_project, default_project, limit).require_some()
    raise IngestError(
        f"Content-Type {content_type!r} is not supported; send {PROTOBUF} or {JSON} (OTLP/HTTP).",
        status=415,
        code="unsupported_media_type",
    )


def _decode_protobuf(
    data: bytes, header_project: str | None, default_project: str, limit: int
) -> DecodedLogs:
    try:
        request = ExportLogsServiceRequest.FromString(data)
    except DecodeError as exc:
        raise IngestError(
            f"the body is not a valid OTLP ExportLogsServiceRequest protobuf ({exc}); "
            "it may be truncated, or not protobuf at all"
        ) from None
    out = DecodedLogs()
    now = time.time_ns()
    for resource_logs in request.resource_logs:
        resource = _pb_attributes(resource_logs.resource.attributes, limit)
        try:
            project: str | Malformed = _project(resource, header_project, default_project)
        except Malformed as problem:
            project = problem
        for scope_logs in resource_logs.scope_logs:
            scope_pb = scope_logs.scope
            scope: dict[str, Any] = {"name": scope_pb.name, "version": scope_pb.version}
            if scope_pb.attributes:
                scope["attributes"] = _pb_attributes(scope_pb.attributes, limit)
            for record in scope_logs.log_records:
                try:
                    if isinstance(project, Malformed):
                        raise project
                    trace_id, span_id = _ids(record.trace_id.hex(), record.span_id.hex())
                    row = _row(
                        time_ns=_time(record.time_unix_nano, "timeUnixNano"),
                        observed_ns=_time(record.observed_time_unix_nano, "observedTimeUnixNano"),
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        event_name=record.event_name,
                        body=_pb_value(record.body, limit) if record.HasField("body") else None,
                        trace_id=trace_id,
                        span_id=span_id,
                        attributes=_pb_attributes(record.attributes, limit),
                        resource=resource,
                        scope=scope,
                        now=now,
                    )
                except Malformed as problem:
                    out.reject(f"log record: {problem}")
                    continue
                out.rows.append(row)
                out.projects.append(project)
    return out


def _decode_json(
    data: bytes, header_project: str | None, default_project: str, limit: int
) -> DecodedLogs:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise IngestError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise IngestError("the JSON body must be an object with a 'resourceLogs' list")
    out = DecodedLogs()
    now = time.time_ns()
    where = "the body"
    try:
        resource_list = _list(_get(payload, "resourceLogs", "resource_logs"), where)
        for r_index, resource_logs in enumerate(resource_list):
            where = f"resourceLogs[{r_index}]"
            resource_logs = _object(resource_logs, "a resourceLogs item")
            resource_raw = _object(resource_logs.get("resource"), "resource")
            resource = _json_attributes(resource_raw.get("attributes"), limit)
            try:
                project: str | Malformed = _project(resource, header_project, default_project)
            except Malformed as problem:
                project = problem
            scope_list = _list(_get(resource_logs, "scopeLogs", "scope_logs"), "scopeLogs")
            for s_index, scope_logs in enumerate(scope_list):
                where = f"resourceLogs[{r_index}].scopeLogs[{s_index}]"
                scope_logs = _object(scope_logs, "a scopeLogs item")
                scope = _json_scope(scope_logs.get("scope"), limit)
                records = _list(_get(scope_logs, "logRecords", "log_records"), "logRecords")
                for record in records:
                    try:
                        if isinstance(project, Malformed):
                            raise project
                        row = _json_record(record, resource, scope, limit, now)
                    except Malformed as problem:
                        out.reject(f"log record: {problem}")
                        continue
                    out.rows.append(row)
                    out.projects.append(project)
    except Malformed as problem:
        raise IngestError(f"{where}: {problem}") from None
    return out


def _json_record(
    record: Any, resource: dict[str, Any], scope: dict[str, Any], limit: int, now: int
) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise Malformed(f"a log record must be an object, not {_shown(record)}")
    trace_id, span_id = _ids(
        _json_id(_get(record, "traceId", "trace_id"), 16, "trace id"),
        _json_id(_get(record, "spanId", "span_id"), 8, "span id"),
    )
    severity = _get(record, "severityNumber", "severity_number")
    if isinstance(severity, str) and severity.startswith("SEVERITY_NUMBER_"):
        severity = 0  # a name, not a number: the text says the level
    body = record.get("body")
    return _row(
        time_ns=_time(
            _json_int(_get(record, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
            "timeUnixNano",
        ),
        observed_ns=_time(
            _json_int(
                _get(record, "observedTimeUnixNano", "observed_time_unix_nano"),
                "observedTimeUnixNano",
            ),
            "observedTimeUnixNano",
        ),
        severity_number=_json_int(severity, "severityNumber"),
        severity_text=_string(
            _get(record, "severityText", "severity_text"), "severityText", MAX_SEVERITY_TEXT
        ),
        event_name=_string(_get(record, "eventName", "event_name"), "eventName", MAX_NAME_CHARS),
        body=_json_value(body, limit) if body is not None else None,
        trace_id=trace_id,
        span_id=span_id,
        attributes=_json_attributes(record.get("attributes"), limit),
        resource=resource,
        scope=scope,
        now=now,
    )


def encode_logs_response(content_type: str, rejected: int, errors: list[str]) -> bytes:
    return encode_partial_success(
        content_type, rejected, errors, ExportLogsServiceResponse(), "rejected_log_records"
    )


def check_metrics(data: bytes, content_type: str) -> int:
    """The number of metrics in a well-formed ExportMetricsServiceRequest; IngestError when it
    is not one. Nothing is kept."""
    media = media_type(content_type)
    if media == PROTOBUF:
        try:
            request = ExportMetricsServiceRequest.FromString(data)
        except DecodeError as exc:
            raise IngestError(
                f"the body is not a valid OTLP ExportMetricsServiceRequest protobuf ({exc})"
            ) from None
        return sum(
            len(scope.metrics)
            for resource in request.resource_metrics
            for scope in resource.scope_metrics
        )
    if media == JSON:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise IngestError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise IngestError("the JSON body must be an object with a 'resourceMetrics' list")
        return 0
    raise IngestError(
        f"Content-Type {content_type!r} is not supported; send {PROTOBUF} or {JSON} (OTLP/HTTP).",
        status=415,
        code="unsupported_media_type",
    )


def encode_metrics_response(content_type: str) -> bytes:
    if media_type(content_type) == JSON:
        return b"{}"
    return bytes(ExportMetricsServiceResponse().SerializeToString())


__all__ = [
    "DecodedLogs",
    "check_metrics",
    "decode_logs",
    "encode_logs_response",
    "encode_metrics_response",
    "_project_problem",
]
