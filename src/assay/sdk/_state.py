"""The SDK's process-wide state: set by `assay.init`, read by everything else."""

from __future__ import annotations

import collections
import threading
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
    mask: Mask | None = None
    max_value_chars: int = 100_000
    owns_provider: bool = False
    #: span id -> trace id of recently finished spans, so feedback can name just a span.
    recent_spans: collections.OrderedDict[str, str] = field(default_factory=collections.OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, span_id: str, trace_id: str) -> None:
        with self.lock:
            self.recent_spans[span_id] = trace_id
            if len(self.recent_spans) > 10_000:
                self.recent_spans.popitem(last=False)


STATE = State()
