"""The SDK's process-wide state: set by `assay.init`, read by everything else."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from assay.sdk._exporter import AssayExporter

Mask = Callable[[Any], Any]


@dataclass
class State:
    tracer: Tracer | None = None
    provider: TracerProvider | None = None
    exporter: AssayExporter | None = None
    project: str = "default"
    url: str = ""
    api_key: str | None = None
    mask: Mask | None = None
    max_value_chars: int = 100_000
    owns_provider: bool = False
    #: span id -> trace id (as ints) of recently finished spans, so feedback can name just a
    #: span. Plain dict operations, which the GIL makes atomic; no lock on the hot path.
    recent_spans: dict[int, int] = field(default_factory=dict)

    def remember(self, span_id: int, trace_id: int) -> None:
        recent = self.recent_spans
        recent[span_id] = trace_id
        if len(recent) > 20_000:
            # Forget the older half (dicts keep insertion order). Other threads may add spans
            # meanwhile; then this trim simply waits for the next span.
            try:
                oldest = list(itertools.islice(recent, 10_000))
            except RuntimeError:
                return
            for key in oldest:
                recent.pop(key, None)

    def trace_of(self, span_id: str) -> str | None:
        trace_id = self.recent_spans.get(int(span_id, 16))
        return None if trace_id is None else format(trace_id, "032x")


STATE = State()
