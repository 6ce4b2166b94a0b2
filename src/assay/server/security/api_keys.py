"""API callers: an API key (``Authorization: Bearer <key>``), or nobody in the open mode."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assay.server.responses import ApiError
from assay.server.state import runtime_of
from assay.services import accounts
from assay.services.principal import Principal

#: The API's open-mode caller: every role, and no author for what it changes.
OPEN = Principal.local(name=None)


#: Declares the scheme in the OpenAPI document; the header is read below, with our own errors.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An Assay API key: `Authorization: Bearer <key>` (none in the open mode)",
)


def api_principal(
    request: Request, _declared: HTTPAuthorizationCredentials | None = Depends(BEARER)
) -> Principal:
    """FastAPI dependency: the caller, or 401 when keys exist and none (or a bad one) is given."""
    runtime = runtime_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        found = accounts.principal_for_key(runtime, token)
        if found is None:
            raise ApiError(401, "unauthorized", "the API key is not valid or was revoked")
        return found
    if header and scheme.lower() != "bearer":
        raise ApiError(401, "unauthorized", "use 'Authorization: Bearer <api key>'")
    if not runtime.open_mode():
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: send 'Authorization: Bearer <key>' "
            "(create one with `assay keys create --project NAME`, or on the settings page)",
        )
    return OPEN
