"""POST /v1/traces: OTLP/HTTP trace ingest (protobuf or JSON, optionally gzip)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from assay.errors import IngestError
from assay.ingest import otlp
from assay.ingest.normalize import normalize
from assay.server.responses import error_response
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services.principal import Principal
from assay.services.projects import name_problem
from assay.services.runtime import Runtime

router = APIRouter()


def _decode_and_normalise(
    runtime: Runtime, body: bytes, content_type: str, encoding: str | None, project: str | None
) -> tuple[otlp.DecodedRequest, list[dict[str, object]], list[str]]:
    settings = runtime.settings
    limits = otlp.Limits(settings.max_body_bytes, settings.max_value_chars)
    data = otlp.read_body(body, encoding, limits)
    decoded = otlp.decode(data, content_type, project, settings.default_project, limits)
    now = time.time_ns()
    rows: list[dict[str, object]] = []
    names: list[str] = []
    problems = {
        name: problem
        for name in {span.project for span in decoded.spans}
        if (problem := name_problem(name)) is not None
    }
    for span in decoded.spans:
        if span.project in problems:
            decoded.reject(
                f"span {span.name[:80]!r}: project name {span.project[:80]!r} is not valid: "
                f"{problems[span.project]}"
            )
            continue
        rows.append(normalize(span, runtime.prices_for(span.project).cost, now))
        names.append(span.project)
    return decoded, rows, names


@router.post(
    "/v1/traces",
    tags=["ingest"],
    summary="OTLP/HTTP trace export",
    description=(
        "Accepts an OTLP ExportTraceServiceRequest as `application/x-protobuf` or "
        "`application/json`, optionally gzip-compressed. Answers 200 only once every accepted "
        "span is committed. Spans that cannot be stored (invalid ids, a field of the wrong type "
        "or out of range) are reported as partial success naming the field; when every span "
        "is rejected the answer is 400."
    ),
)
async def export_traces(request: Request, who: Principal = Depends(api_principal)) -> Response:
    who.require_somewhere("editor")
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
    declared = request.headers.get("content-length")
    limit = runtime.settings.max_body_bytes
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
    header_project = request.headers.get("x-assay-project") or None
    only = who.only_project
    if only is not None:
        if header_project and header_project != only:
            raise IngestError(
                f"this API key belongs to project {only!r} and cannot write to {header_project!r}",
                status=403,
                code="forbidden",
            )
        header_project = only
    if header_project and (problem := name_problem(header_project)):
        raise IngestError(f"X-Assay-Project header: {problem}", code="invalid_project")
    decoded, rows, projects = await run_in_threadpool(
        _decode_and_normalise,
        runtime,
        bytes(body),
        content_type,
        request.headers.get("content-encoding"),
        header_project,
    )
    try:
        await runtime.writer.write(rows, projects)
    except IngestError:
        raise
    except Exception:
        # The writer has logged the cause. Answering here, rather than letting the exception
        # reach the server, keeps the client's keep-alive connection usable.
        return error_response(
            500,
            "storage_failed",
            "the spans could not be stored and nothing of this request was kept; "
            "the server log has the cause",
        )
    return Response(
        otlp.encode_response(content_type, decoded.rejected, decoded.errors),
        media_type=media,
    )
