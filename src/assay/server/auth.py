"""Who is calling: an API key (Bearer), or nobody in the open loopback mode."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fastapi import Request

from assay.server.responses import ApiError
from assay.server.runtime import Runtime
from assay.store.keys import ROLES


@dataclass(frozen=True)
class Principal:
    role: str
    #: The only project this caller may touch, or None for every project.
    project: str | None
    key_name: str | None

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise ApiError(
                403, "forbidden", f"this API key has role {self.role!r}; {role!r} is needed"
            )

    def may_see(self, project: str) -> bool:
        return self.project is None or self.project == project


OPEN = Principal(role="admin", project=None, key_name=None)


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401 when keys exist and none (or a bad one) is given."""
    runtime = runtime_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        key = runtime.find_key(token)
        if key is None:
            raise ApiError(401, "unauthorized", "the API key is not valid or was revoked")
        return Principal(role=key.role, project=key.project, key_name=key.name)
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
