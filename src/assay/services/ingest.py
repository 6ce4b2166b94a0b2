"""OTLP export: one path from a request's bytes to committed rows, for HTTP and gRPC alike.

Each export takes the body as received (compressed or not), the caller, and the project the
caller asked for; it checks the caller may write, decodes, normalises, hands the rows to the
writer and answers, in the request's encoding, only once they are committed. The HTTP routes
(server/otlp.py) and the gRPC services (server/otlp_grpc.py) only carry bytes in and out, so
both transports keep the same limits, partial success and durability.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import Enum

from anyio import to_thread

from assay.errors import IngestError
from assay.ingest import otlp, otlp_logs
from assay.ingest.normalize import normalize
from assay.services.principal import Principal
from assay.services.projects import name_problem
from assay.services.runtime import Runtime

log = logging.getLogger("assay.ingest")


class Signal(Enum):
    """What an OTLP export carries: the last part of its path, /v1/<signal>."""

    TRACES = "traces"
    LOGS = "logs"
    METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class Export:
    """One export request as a transport received it."""

    signal: Signal
    body: bytes
    #: The media type of ``body``: otlp.PROTOBUF (always, over gRPC) or otlp.JSON.
    content_type: str
    #: gzip or deflate when the body is still compressed (HTTP); None when it is not.
    content_encoding: str | None = None
    #: The project the caller named (X-Assay-Project header or metadata), if any.
    project: str | None = None


def _target_project(who: Principal, asked: str | None) -> str | None:
    """The project every record goes to, when the caller or its key fixes one."""
    only = who.only_project
    if only is not None:
        if asked and asked != only:
            raise IngestError(
                f"this API key belongs to project {only!r} and cannot write to {asked!r}",
                status=403,
                code="forbidden",
            )
        asked = only
    if asked and (problem := name_problem(asked)):
        raise IngestError(f"X-Assay-Project header: {problem}", code="invalid_project")
    return asked


async def export(runtime: Runtime, who: Principal, request: Export) -> bytes:
    """Store what ``request`` carries and return the OTLP response body (same encoding).

    Raises IngestError (with the HTTP status it stands for) when the request is refused whole;
    a record refused on its own is reported in the response as partial success.
    """
    who.require_somewhere("editor")
    project = _target_project(who, request.project)
    if request.signal is Signal.TRACES:
        return await _export_traces(runtime, request, project)
    if request.signal is Signal.LOGS:
        return await _export_logs(runtime, request, project)
    await to_thread.run_sync(_check_metrics, runtime, request)
    return otlp_logs.encode_metrics_response(request.content_type)


def _data(runtime: Runtime, request: Export) -> bytes:
    settings = runtime.settings
    limits = otlp.Limits(settings.max_body_bytes, settings.max_value_chars)
    return otlp.read_body(request.body, request.content_encoding, limits)


async def _write(
    runtime: Runtime, rows: list[dict[str, object]], projects: list[str], kind: str
) -> None:
    try:
        await runtime.writer.write(rows, projects, kind=kind)
    except IngestError:
        raise
    except Exception:
        # The writer has logged the cause.
        raise IngestError(
            f"the {kind} could not be stored and nothing of this request was kept; "
            "the server log has the cause",
            status=500,
            code="storage_failed",
        ) from None


# --- traces -----------------------------------------------------------------------------------


def _decode_and_normalise(
    runtime: Runtime, request: Export, project: str | None
) -> tuple[otlp.DecodedRequest, list[dict[str, object]], list[str]]:
    settings = runtime.settings
    limits = otlp.Limits(settings.max_body_bytes, settings.max_value_chars)
    data = _data(runtime, request)
    decoded = otlp.decode(data, request.content_type, project, settings.default_project, limits)
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


async def _export_traces(runtime: Runtime, request: Export, project: str | None) -> bytes:
    decoded, rows, projects = await to_thread.run_sync(
        _decode_and_normalise, runtime, request, project
    )
    await _write(runtime, rows, projects, "spans")
    return otlp.encode_response(request.content_type, decoded.rejected, decoded.errors)


# --- logs and metrics -------------------------------------------------------------------------


def _decode_logs(runtime: Runtime, request: Export, project: str | None) -> otlp_logs.DecodedLogs:
    settings = runtime.settings
    decoded = otlp_logs.decode_logs(
        _data(runtime, request),
        request.content_type,
        project,
        settings.default_project,
        settings.max_value_chars,
    )
    problems = {
        name: problem
        for name in set(decoded.projects)
        if (problem := name_problem(name)) is not None
    }
    if problems:
        kept = [(row, name) for row, name in zip(decoded.rows, decoded.projects, strict=True)]
        decoded.rows, decoded.projects = [], []
        for row, name in kept:
            if name in problems:
                decoded.reject(
                    f"log record: project name {name[:80]!r} is not valid: {problems[name]}"
                )
                continue
            decoded.rows.append(row)
            decoded.projects.append(name)
        decoded.require_some()
    return decoded


async def _export_logs(runtime: Runtime, request: Export, project: str | None) -> bytes:
    decoded = await to_thread.run_sync(_decode_logs, runtime, request, project)
    await _write(runtime, decoded.rows, decoded.projects, "logs")
    return otlp_logs.encode_logs_response(request.content_type, decoded.rejected, decoded.errors)


def _check_metrics(runtime: Runtime, request: Export) -> None:
    count = otlp_logs.check_metrics(_data(runtime, request), request.content_type)
    log.debug("dropped %d metrics: Assay does not store metrics", count)
