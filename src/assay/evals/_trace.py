"""The case's trace for scorers that ask for it: spans collected in-process as they end.

A scorer that names ``trace`` receives the spans its case produced so far (the task's spans;
the case's own root span is still open while scorers run) as plain dicts, oldest first. When
`assay.init()` was not called, an Eval still traces its cases, into this collector only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import StatusCode

from assay.sdk import _state as sdk_state
from assay.sdk._exporter import AssayExporter, ExporterConfig


class TraceCollector(SpanProcessor):
    """Keeps the finished spans of the traces it is told to watch."""

    def __init__(self) -> None:
        self._spans: dict[int, list[ReadableSpan]] = {}
        self._lock = threading.Lock()

    def watch(self, trace_id: int) -> None:
        with self._lock:
            self._spans.setdefault(trace_id, [])

    def take(self, trace_id: int) -> list[dict[str, Any]]:
        with self._lock:
            spans = list(self._spans.get(trace_id, []))
        return [_as_dict(span) for span in sorted(spans, key=lambda s: s.start_time or 0)]

    def forget(self, trace_id: int) -> None:
        with self._lock:
            self._spans.pop(trace_id, None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        with self._lock:
            bucket = self._spans.get(context.trace_id)
            if bucket is not None:
                bucket.append(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _loads(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _error_of(span: ReadableSpan) -> str | None:
    """An errored span's message; "error" when its status gave none, so it still reads as one."""
    if span.status.status_code is not StatusCode.ERROR:
        return None
    return span.status.description or "error"


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    attributes = dict(span.attributes or {})
    context = span.context
    parent = span.parent
    kind = attributes.get("assay.span.type")
    if kind is None and attributes.get("gen_ai.operation.name") == "execute_tool":
        kind = "tool"
    elif kind is None and "gen_ai.request.model" in attributes:
        kind = "llm"
    return {
        "name": span.name,
        "type": kind or "span",
        "span_id": format(context.span_id, "016x") if context else None,
        "parent_span_id": format(parent.span_id, "016x") if parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "error": _error_of(span),
        "input": _loads(attributes.get("assay.input", attributes.get("input.value"))),
        "output": _loads(attributes.get("assay.output", attributes.get("output.value"))),
        "attributes": attributes,
    }


_COLLECTORS: dict[int, TraceCollector] = {}


@contextmanager
def collecting(export: ExporterConfig | None = None) -> Iterator[TraceCollector]:
    """A collector on the SDK's provider, or on a private one when tracing is off; ``export``
    then sends the private provider's spans too (a run stored on a server keeps its traces
    there, so every row links to one)."""
    state = sdk_state.STATE
    if state.provider is not None and state.tracer is not None:
        collector = _COLLECTORS.get(id(state.provider))
        if collector is None:
            collector = TraceCollector()
            state.provider.add_span_processor(collector)
            _COLLECTORS[id(state.provider)] = collector
        yield collector
        return
    provider = TracerProvider(resource=Resource.create({"service.name": "assay-eval"}))
    collector = TraceCollector()
    provider.add_span_processor(collector)
    if export is not None:
        provider.add_span_processor(AssayExporter(export))
    state.tracer = provider.get_tracer("assay.evals")
    try:
        yield collector
    finally:
        state.tracer = None
        provider.shutdown()  # the exporter sends what is left, within its own time limit
