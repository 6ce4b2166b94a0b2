"""JSON responses and the one error shape: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from google.rpc.error_details_pb2 import ErrorInfo
from google.rpc.status_pb2 import Status
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.errors import AccessError, Conflict, IngestError, NotFound, UserError


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, invalid_request")
    message: str = Field(description="what went wrong and what to do, for a person")


class ErrorBody(BaseModel):
    """Every error answer's body."""

    error: ErrorDetail


_ERROR_MEANINGS = {
    400: "The request cannot be used; the message names the field",
    401: "No API key, or one that is not valid",
    403: "The caller's role does not allow this",
    404: "Not found, or not visible to the caller",
    408: "The request body did not arrive in time",
    409: "Ambiguous: the message says how to name the item precisely",
    413: "The request body is too large",
    415: "Unsupported Content-Type",
    421: "The open mode answers only to loopback host names",
    422: "A parameter or body field is invalid; the message names it",
    500: "The server failed; its log has the cause",
    503: "Overloaded or the database does not answer; retry later",
}

#: The error answers any API route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning}
    for status, meaning in _ERROR_MEANINGS.items()
}


class JSON(JSONResponse):
    """orjson-encoded JSON: fast, and bytes/sets/dataclasses never break an answer."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # PostgreSQL's jsonb keeps a number sent as 1e20 as the numeral 100000000000000000000,
            # which reads back as an integer wider than orjson's 64 bits: answer it as the float
            # it was (bodies refuse wider integers, so only such floats are this wide).
            return orjson.dumps(
                _wide_integers_as_floats(content), default=str, option=orjson.OPT_NON_STR_KEYS
            )


def _wide_integers_as_floats(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else float(value)
    if isinstance(value, Mapping):
        return {key: _wide_integers_as_floats(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_wide_integers_as_floats(item) for item in value]
    return value


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSON:
    return JSON({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


#: The gRPC status code that stands for an HTTP error status (OTLP answers errors as a
#: google.rpc.Status, and the gRPC receiver answers with these codes).
GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    409: 6,  # ALREADY_EXISTS
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    422: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    503: 14,  # UNAVAILABLE
}
GRPC_INTERNAL = 13
#: OTLP/HTTP export paths (the Langfuse and Braintrust aliases end the same way).
OTLP_SUFFIXES = ("/v1/traces", "/v1/logs", "/v1/metrics")
PROTOBUF = "application/x-protobuf"


def _wants_protobuf(request: Request | None) -> bool:
    """An OTLP export sent as protobuf: its errors are a protobuf google.rpc.Status."""
    if request is None or not request.url.path.endswith(OTLP_SUFFIXES):
        return False
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF


def error_for(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The error in the request's encoding: the OTLP specification has an exporter that sent
    protobuf read a protobuf Status; everyone else reads {"error": {"code", "message"}}."""
    if not _wants_protobuf(request):
        return error_response(status, code, message, headers)
    body = Status(code=GRPC_CODES.get(status, GRPC_INTERNAL), message=message)
    # Assay's own error code travels as the reason of an ErrorInfo, as Google's APIs do.
    body.details.add().Pack(ErrorInfo(reason=code, domain="assay"))
    return Response(
        body.SerializeToString(), status_code=status, media_type=PROTOBUF, headers=headers
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_for(request, exc.status, exc.code, exc.message)


def access_error_response(exc: AccessError, request: Request | None = None) -> Response:
    """A service's refusal as the API says it: 404 for what is missing or hidden, 409 for what
    is not named precisely enough, else 403."""
    if isinstance(exc, Conflict):
        return error_for(request, 409, exc.code, exc.message)
    if isinstance(exc, NotFound):
        return error_for(request, 404, "not_found", exc.message)
    return error_for(request, 403, "forbidden", exc.message)


async def ingest_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IngestError)
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return error_for(request, exc.status, exc.code, str(exc), headers)


async def user_error_handler(request: Request, exc: Exception) -> Response:
    return error_for(request, 400, "bad_request", str(exc))


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body"))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        # A whole-body check names the field in its message already.
        parts.append(f"{where}: {message}" if where else message)
    return error_for(request, 422, "invalid_request", "; ".join(parts) or "invalid request")


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        exc.status_code, "error"
    )
    return error_for(request, exc.status_code, code, str(exc.detail), exc.headers)


HANDLERS: dict[type[Exception], Any] = {
    ApiError: api_error_handler,
    IngestError: ingest_error_handler,
    UserError: user_error_handler,
    RequestValidationError: validation_error_handler,
    StarletteHTTPException: http_error_handler,
}
