"""OTLP/HTTP export: /v1/traces, /v1/logs and /v1/metrics (protobuf or JSON, optionally gzip).

The routes only read the body and the headers; services/ingest.py decodes, stores and answers,
for the gRPC receiver too. /api/public/otel/v1/traces (Langfuse's path) and /otel/v1/traces
(Braintrust's) are the same route, so their users switch by changing only the host.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from assay.errors import IngestError
from assay.ingest import otlp
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import ingest
from assay.services.principal import Principal

router = APIRouter()

#: Other tools' paths for OTLP/HTTP, so their exporters need only a new host.
ALIASES = ("/api/public/otel", "/otel")

_COMMON = (
    "Accepts an OTLP {request} as `application/x-protobuf` or `application/json`, optionally "
    "gzip-compressed. Errors are a protobuf `google.rpc.Status` for protobuf requests, else "
    '`{{"error": {{"code", "message"}}}}`. '
)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise IngestError(
            f"the request body is larger than {limit} bytes; send smaller batches",
            status=413,
            code="body_too_large",
        )
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise IngestError(
                f"the request body is larger than {limit} bytes; send smaller batches",
                status=413,
                code="body_too_large",
            )
    return bytes(body)


async def _export(request: Request, who: Principal, signal: ingest.Signal) -> Response:
    runtime = runtime_of(request)
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in (otlp.PROTOBUF, otlp.JSON):
        raise IngestError(
            f"Content-Type {content_type or '(none)'!r} is not supported; "
            f"send {otlp.PROTOBUF} or {otlp.JSON} (OTLP/HTTP).",
            status=415,
            code="unsupported_media_type",
        )
    body = await _body(request, runtime.settings.max_body_bytes)
    answer = await ingest.export(
        runtime,
        who,
        ingest.Export(
            signal,
            body,
            media,
            content_encoding=request.headers.get("content-encoding"),
            project=request.headers.get("x-assay-project") or None,
        ),
    )
    return Response(answer, media_type=media)


async def export_traces(request: Request, who: Principal = Depends(api_principal)) -> Response:
    return await _export(request, who, ingest.Signal.TRACES)


router.add_api_route(
    "/v1/traces",
    export_traces,
    methods=["POST"],
    tags=["ingest"],
    summary="OTLP/HTTP trace export",
    description=_COMMON.format(request="ExportTraceServiceRequest")
    + (
        "Answers 200 only once every accepted span is committed. Spans that cannot be stored "
        "(invalid ids, a field of the wrong type or out of range) are reported as partial "
        "success naming the field; when every span is rejected the answer is 400."
    ),
)
for _prefix in ALIASES:
    router.add_api_route(
        f"{_prefix}/v1/traces",
        export_traces,
        methods=["POST"],
        tags=["ingest"],
        summary=f"OTLP/HTTP trace export (the same as /v1/traces, at {_prefix})",
        include_in_schema=False,
    )


@router.post(
    "/v1/logs",
    tags=["ingest"],
    summary="OTLP/HTTP log export",
    description=_COMMON.format(request="ExportLogsServiceRequest")
    + (
        "A record with a trace and span id is shown among that span's events; the others are "
        "the project's logs (`GET /api/v1/projects/{project}/logs`). Answers once committed."
    ),
)
async def export_logs(request: Request, who: Principal = Depends(api_principal)) -> Response:
    return await _export(request, who, ingest.Signal.LOGS)


@router.post(
    "/v1/metrics",
    tags=["ingest"],
    summary="OTLP/HTTP metric export (accepted, not stored)",
    description=_COMMON.format(request="ExportMetricsServiceRequest")
    + "Assay does not store metrics: a well-formed request is answered with success.",
)
async def export_metrics(request: Request, who: Principal = Depends(api_principal)) -> Response:
    return await _export(request, who, ingest.Signal.METRICS)
