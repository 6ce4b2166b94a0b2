"""API callers: an API key (``Authorization: Bearer <key>``), or nobody in the open mode."""

from __future__ import annotations

import base64
import binascii

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assay.server.responses import ApiError
from assay.server.state import runtime_of
from assay.services import accounts
from assay.services.principal import Principal
from assay.services.runtime import Runtime

#: The API's open-mode caller: every role, and no author for what it changes.
OPEN = Principal.local(name=None)

_REQUIRED = (
    "an API key is required: send 'Authorization: Bearer <key>' "
    "(create one with `assay keys create --project NAME`, or on the settings page)"
)


def _basic_password(token: str) -> str | None:
    """The password of a Basic credential: Langfuse's SDK sends ``public_key:secret_key``,
    so an Assay key given as the secret (under any name) is accepted."""
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _, colon, password = decoded.partition(":")
    return password.strip() if colon and password.strip() else None


def principal_for_authorization(runtime: Runtime, header: str) -> Principal:
    """The caller an ``Authorization`` value stands for (HTTP header or gRPC metadata).

    In the open mode (a loopback bind with no key and no user yet) any header is ignored:
    Langfuse's and Braintrust's SDKs always send one, and a fresh local server lets them in.
    Raises ApiError(401) when keys exist and the header names none that is valid.
    """
    if runtime.open_mode():
        return OPEN
    scheme, _, token = header.strip().partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme == "bearer" and token:
        secret = token
    elif scheme == "basic" and token:
        password = _basic_password(token)
        if password is None:
            raise ApiError(
                401, "unauthorized", "the Basic credential must be 'name:<api key>' in base64"
            )
        secret = password
    elif header.strip():
        raise ApiError(
            401, "unauthorized", "use 'Authorization: Bearer <api key>' (or Basic name:<key>)"
        )
    else:
        raise ApiError(401, "unauthorized", _REQUIRED)
    found = accounts.principal_for_key(runtime, secret)
    if found is None:
        raise ApiError(401, "unauthorized", "the API key is not valid or was revoked")
    return found


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
    return principal_for_authorization(
        runtime_of(request), request.headers.get("authorization", "")
    )
