"""OTLP/gRPC: the standard TraceService, LogsService and MetricsService ``Export`` methods.

OpenTelemetry's SDKs export over gRPC to port 4317 unless told otherwise (it is what
``opentelemetry-instrument`` does with only OTEL_EXPORTER_OTLP_ENDPOINT set). The receiver runs
in the HTTP server's event loop and hands the request's bytes, undecoded, to the same export
service as /v1/traces (services/ingest.py): same decoding, limits, partial success, and an answer
only once the rows are committed. Authentication is the ``authorization`` metadata, read like the
HTTP header; ``x-assay-project`` names the project as the HTTP header does.
"""

from __future__ import annotations

import logging

import grpc
from grpc import aio

from assay.errors import AccessError, Ambiguous, ConfigError, IngestError, NotFound
from assay.ingest.otlp import PROTOBUF
from assay.server.responses import GRPC_CODES, GRPC_INTERNAL, ApiError
from assay.server.security.api_keys import principal_for_authorization
from assay.services import ingest
from assay.services.runtime import Runtime

log = logging.getLogger("assay.grpc")

SERVICES = {
    ingest.Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    ingest.Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
    ingest.Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
}
_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def status_code(http_status: int) -> grpc.StatusCode:
    """The gRPC code for an HTTP error status (503 is UNAVAILABLE, which exporters retry)."""
    return _BY_NUMBER[GRPC_CODES.get(http_status, GRPC_INTERNAL)]


def _refusal(exc: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, ApiError):
        return status_code(exc.status), exc.message
    if isinstance(exc, IngestError):
        return status_code(exc.status), str(exc)
    if isinstance(exc, Ambiguous):
        return status_code(409), exc.message
    if isinstance(exc, NotFound):
        return status_code(404), exc.message
    assert isinstance(exc, AccessError)
    return status_code(403), exc.message


def _method(runtime: Runtime, signal: ingest.Signal) -> grpc.RpcMethodHandler[bytes, bytes]:
    async def export(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
        metadata = {key: value for key, value in (context.invocation_metadata() or ())}
        authorization = metadata.get("authorization", "")
        project = metadata.get("x-assay-project")
        try:
            who = principal_for_authorization(
                runtime, authorization if isinstance(authorization, str) else ""
            )
            return await ingest.export(
                runtime,
                who,
                ingest.Export(
                    signal,
                    request,
                    PROTOBUF,
                    project=project if isinstance(project, str) and project else None,
                ),
            )
        except (ApiError, IngestError, AccessError) as exc:
            code, message = _refusal(exc)
        await context.abort(code, message)
        raise AssertionError("abort returned")  # pragma: no cover - abort always raises

    # No (de)serializers: the handler gets the request's bytes and returns the response's.
    return grpc.unary_unary_rpc_method_handler(export)


class OtlpGrpcServer:
    """The gRPC receiver of one server process."""

    def __init__(self, runtime: Runtime, host: str, port: int, *, reuse_port: bool = False):
        self.runtime = runtime
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.port = port
        limit = runtime.settings.max_body_bytes
        self._server = aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                # Several worker processes share the port, as they share the HTTP one; a single
                # process must own it, so that a port already taken is an error, not a split.
                ("grpc.so_reuseport", 1 if reuse_port else 0),
            ]
        )
        self._server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(name, {"Export": _method(runtime, signal)})
                for signal, name in SERVICES.items()
            ]
        )

    async def start(self) -> None:
        try:
            bound = self._server.add_insecure_port(self.address)
        except RuntimeError:
            bound = 0
        if not bound:
            raise ConfigError(
                f"cannot listen for OTLP/gRPC on {self.address}: the port is in use (an "
                "OpenTelemetry Collector, or another Assay?). Pass --grpc-port N (or set "
                "ASSAY_GRPC_PORT), or 0 to turn the gRPC receiver off."
            )
        self.port = bound
        await self._server.start()
        log.info("OTLP/gRPC on %s", self.address)

    async def stop(self, grace: float = 5.0) -> None:
        await self._server.stop(grace)
