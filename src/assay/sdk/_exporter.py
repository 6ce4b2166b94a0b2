"""Send finished spans to Assay in the background, never blocking or failing the application.

Spans wait in a bounded buffer. A background thread sends them in batches over OTLP/HTTP;
when the server is away or busy, they stay in the buffer and go out when it answers again,
with back-off that honours Retry-After. Spans that would exceed the bound are dropped and
counted exactly; `assay.stats()` reports the counts.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

log = logging.getLogger("assay.sdk")

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
#: Feedback on a trace or span the server has not stored yet (still open, or still in another
#: process's buffer) is refused with 404; it is tried again after these many seconds.
FEEDBACK_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)


@dataclass
class Stats:
    spans_buffered: int = 0
    spans_sent: int = 0
    spans_dropped: int = 0
    spans_rejected: int = 0
    feedback_sent: int = 0
    feedback_dropped: int = 0
    export_failures: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(eq=False)
class _Feedback:
    path: str
    body: dict[str, Any]
    attempts: int = 0
    #: time.monotonic() before which it is not sent (a retry after a 404)
    not_before: float = 0.0

    def ready(self, now: float) -> bool:
        return self.not_before <= now


@dataclass
class ExporterConfig:
    url: str
    project: str
    api_key: str | None
    max_buffer_spans: int = 20_000
    max_batch_spans: int = 512
    schedule_delay: float = 0.5
    request_timeout: float = 10.0
    max_backoff: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)


class AssayExporter(SpanProcessor):
    """A span processor with its own bounded buffer and sender thread."""

    def __init__(self, config: ExporterConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.stats = Stats()
        self._spans: collections.deque[ReadableSpan] = collections.deque()
        self._feedback: collections.deque[_Feedback] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._stopping = False
        self._warned_drop = False
        headers = {"x-assay-project": config.project, **config.headers}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._client = client or httpx.Client(
            base_url=config.url.rstrip("/"), headers=headers, timeout=config.request_timeout
        )
        self._thread = threading.Thread(target=self._run, name="assay-exporter", daemon=True)
        self._thread.start()

    # --- SpanProcessor -------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context or not span.context.trace_flags.sampled:
            return
        with self._lock:
            if len(self._spans) >= self.config.max_buffer_spans:
                self.stats.spans_dropped += 1
                warn = not self._warned_drop
                self._warned_drop = True
            else:
                self._spans.append(span)
                warn = False
                if len(self._spans) >= self.config.max_batch_spans:
                    self._wake.notify()
        if warn:
            log.warning(
                "Assay: the span buffer is full (%d spans; the server may be unreachable); "
                "new spans are dropped and counted in assay.stats()",
                self.config.max_buffer_spans,
            )

    def shutdown(self) -> None:
        self.force_flush(5_000)
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join(2)
        self._client.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            self._wake.notify()
            while self._spans or self._feedback or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.1))
                self._wake.notify()
        return True

    # --- feedback ------------------------------------------------------------------------

    def send_feedback(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            if len(self._feedback) >= 10_000:
                self.stats.feedback_dropped += 1
                return
            self._feedback.append(_Feedback(path, body))
            self._wake.notify()

    # --- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        # Our own HTTP calls must not be traced by HTTP-client instrumentation in the app:
        # every export would make new spans to export.
        otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        backoff = 0.0
        while True:
            with self._lock:
                if backoff:
                    self._wake.wait(backoff)
                elif len(self._spans) < self.config.max_batch_spans and not self._ready_feedback():
                    self._wake.wait(self.config.schedule_delay)
                if self._stopping and not (self._spans or self._feedback):
                    self._idle.notify_all()
                    return
                batch = [
                    self._spans[i]
                    for i in range(min(len(self._spans), self.config.max_batch_spans))
                ]
                # At shutdown, feedback waiting for a retry gets its last chance now.
                feedback = list(self._feedback) if self._stopping else self._ready_feedback()
                self._in_flight = len(batch) + len(feedback)
                self.stats.spans_buffered = len(self._spans)
            retry_after = self._send(batch, feedback)
            with self._lock:
                self._in_flight = 0
                self.stats.spans_buffered = len(self._spans)
                if not (self._spans or self._feedback):
                    self._idle.notify_all()
            if retry_after is None:
                backoff = 0.0
            else:
                base = retry_after if retry_after > 0 else max(0.5, backoff * 2 or 0.5)
                backoff = min(self.config.max_backoff, base) * random.uniform(0.9, 1.1)
                if self._stopping:
                    return

    def _send(self, batch: list[ReadableSpan], feedback: list[_Feedback]) -> float | None:
        """Send what is pending; None on success, else seconds to wait (0: back off)."""
        try:
            if batch:
                wait = self._send_spans(batch)
                if wait is not None:
                    return wait
            for item in feedback:
                wait = self._send_feedback(item)
                if wait is not None:
                    return wait
        except Exception as exc:  # never let the sender thread die
            self._failed(f"{type(exc).__name__}: {exc}")
            return 0.0
        return None

    def _send_spans(self, batch: list[ReadableSpan]) -> float | None:
        body = encode_spans(batch).SerializeToString()
        response = self._post(
            "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
        )
        if isinstance(response, float):
            return response
        self._pop_spans(len(batch))
        if response.is_success:
            rejected = 0
            try:
                rejected = ExportTraceServiceResponse.FromString(
                    response.content
                ).partial_success.rejected_spans
            except Exception:
                rejected = 0
            with self._lock:
                self.stats.spans_sent += len(batch) - rejected
                self.stats.spans_rejected += rejected
        else:
            # The server refused this batch for good (e.g. 400, 401, 413): retrying cannot help.
            with self._lock:
                self.stats.spans_rejected += len(batch)
            self._failed(
                f"server refused {len(batch)} spans: {response.status_code} {response.text[:200]}"
            )
        return None

    def _ready_feedback(self) -> list[_Feedback]:
        now = time.monotonic()
        return [item for item in self._feedback if item.ready(now)]

    def _send_feedback(self, item: _Feedback) -> float | None:
        response = self._post(item.path, json=item.body)
        if isinstance(response, float):
            return response
        with self._lock:
            if (
                response.status_code == 404
                and item.attempts < len(FEEDBACK_RETRY_DELAYS)
                and not self._stopping
            ):
                # The trace may not be stored yet: its spans are still open or on their way.
                item.not_before = time.monotonic() + FEEDBACK_RETRY_DELAYS[item.attempts]
                item.attempts += 1
                return None
            with contextlib.suppress(ValueError):
                self._feedback.remove(item)
            if response.is_success:
                self.stats.feedback_sent += 1
            else:
                self.stats.feedback_dropped += 1
        if not response.is_success:
            self._failed(f"feedback refused: {response.status_code} {response.text[:200]}")
        return None

    def _post(self, path: str, **kwargs: Any) -> httpx.Response | float:
        """The response, or seconds to wait before retrying (0.0 = use back-off)."""
        try:
            response = self._client.post(path, **kwargs)
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            return 0.0
        if response.status_code in RETRYABLE:
            self._failed(f"server answered {response.status_code}; will retry")
            return _retry_after(response.headers.get("retry-after"))
        return response

    def _pop_spans(self, count: int) -> None:
        with self._lock:
            for _ in range(min(count, len(self._spans))):
                self._spans.popleft()

    def _failed(self, message: str) -> None:
        with self._lock:
            self.stats.export_failures += 1
            self.stats.last_error = message
        log.debug("Assay export: %s", message)


def _retry_after(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0


ExporterFactory = Callable[[ExporterConfig], AssayExporter]
