"""JSON responses and the one error shape: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
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
        return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS)


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


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message)


def access_error_response(exc: AccessError) -> JSON:
    """A service's refusal as the API says it: 404 for what is missing or hidden, 409 for what
    is not named precisely enough, else 403."""
    if isinstance(exc, Conflict):
        return error_response(409, exc.code, exc.message)
    if isinstance(exc, NotFound):
        return error_response(404, "not_found", exc.message)
    return error_response(403, "forbidden", exc.message)


async def ingest_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, IngestError)
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return error_response(exc.status, exc.code, str(exc), headers)


async def user_error_handler(_request: Request, exc: Exception) -> Response:
    return error_response(400, "bad_request", str(exc))


async def validation_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body"))
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        # A whole-body check names the field in its message already.
        parts.append(f"{where}: {message}" if where else message)
    return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
        exc.status_code, "error"
    )
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


HANDLERS: dict[type[Exception], Any] = {
    ApiError: api_error_handler,
    IngestError: ingest_error_handler,
    UserError: user_error_handler,
    RequestValidationError: validation_error_handler,
    StarletteHTTPException: http_error_handler,
}
