"""What a request reaches through ``app.state``: the running server's runtime."""

from __future__ import annotations

from fastapi import Request

from assay.services.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
