"""Join spans across processes with W3C trace context (`traceparent`, `tracestate`).

A supervisor calling a sub-agent over HTTP::

    headers = {}
    assay.propagation.inject(headers)
    httpx.post(sub_agent_url, json=task, headers=headers)

and in the sub-agent's request handler::

    with assay.propagation.continue_trace(request.headers):
        run_agent(task)          # its spans are children of the supervisor's span
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager, suppress
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.propagate import extract as _extract
from opentelemetry.propagate import inject as _inject


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current trace context to ``headers`` (and return them)."""
    with suppress(Exception):
        _inject(headers)
    return headers


def extract(headers: Mapping[str, Any]) -> Context:
    """The OpenTelemetry Context carried by incoming ``headers`` (case-insensitive)."""
    try:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        return _extract(lowered)
    except Exception:
        return Context()


@contextmanager
def continue_trace(headers: Mapping[str, Any]) -> Iterator[Context]:
    """Within the block, new spans are children of the caller named by ``headers``."""
    context = extract(headers)
    token = otel_context.attach(context)
    try:
        yield context
    finally:
        otel_context.detach(token)


__all__ = ["continue_trace", "extract", "inject"]
