"""`assay.init()`: connect the SDK to an Assay server, alongside any OpenTelemetry set-up."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from assay._version import __version__
from assay.sdk._exporter import AssayExporter, ExporterConfig
from assay.sdk._state import STATE, Mask
from assay.settings import setting

log = logging.getLogger("assay.sdk")

EXIT_FLUSH_SECONDS = 5.0


def init(
    project: str | None = None,
    *,
    url: str | None = None,
    api_key: str | None = None,
    mask: Mask | None = None,
    sample_rate: float = 1.0,
    max_buffer_spans: int = 20_000,
    max_value_chars: int = 100_000,
    tracer_provider: TracerProvider | None = None,
) -> None:
    """Send this process's spans to Assay.

    ``project``, ``url`` and ``api_key`` default to ``ASSAY_PROJECT``, ``ASSAY_URL``
    (http://127.0.0.1:8600) and ``ASSAY_API_KEY``.

    If the application already set an OpenTelemetry SDK ``TracerProvider`` (or passes one as
    ``tracer_provider``), Assay adds its exporter to it: the application's other exporters and
    its sampler stay as they are, and every span from any instrumentation also reaches Assay.
    Otherwise Assay creates a provider and makes it the global one; ``sample_rate`` (0..1) then
    keeps that fraction of traces, decided at the root so traces stay whole.

    ``mask`` is called on every input, output and metadata value before it leaves the process.
    Never raises: a bad configuration is logged and tracing stays off.
    """
    try:
        _init(
            project,
            url,
            api_key,
            mask,
            sample_rate,
            max_buffer_spans,
            max_value_chars,
            tracer_provider,
        )
    except Exception:
        log.warning("Assay: init failed; tracing is off", exc_info=True)


def _init(
    project: str | None,
    url: str | None,
    api_key: str | None,
    mask: Mask | None,
    sample_rate: float,
    max_buffer_spans: int,
    max_value_chars: int,
    tracer_provider: TracerProvider | None,
) -> None:
    if STATE.exporter is not None:
        shutdown()
    project = str(setting("project", project))
    url = str(setting("url", url)).rstrip("/")
    api_key = setting("api_key", api_key) or None
    exporter = AssayExporter(
        ExporterConfig(url=url, project=project, api_key=api_key, max_buffer_spans=max_buffer_spans)
    )
    provider = tracer_provider
    owns = False
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            rate = min(1.0, max(0.0, sample_rate))
            provider = TracerProvider(
                resource=Resource.create({"service.name": project, "assay.project": project}),
                sampler=ParentBased(TraceIdRatioBased(rate)),
            )
            trace.set_tracer_provider(provider)
            owns = True
    elif sample_rate < 1.0:
        log.info("Assay: sample_rate is ignored when the application owns the tracer provider")
    provider.add_span_processor(exporter)
    STATE.provider = provider
    STATE.exporter = exporter
    STATE.tracer = provider.get_tracer("assay", __version__)
    STATE.project = project
    STATE.url = url
    STATE.api_key = api_key
    STATE.mask = mask
    STATE.max_value_chars = max_value_chars
    STATE.owns_provider = owns


def flush(timeout: float = 10.0) -> bool:
    """Send everything buffered; True if it all went out within ``timeout`` seconds."""
    exporter = STATE.exporter
    if exporter is None:
        return True
    try:
        if STATE.provider is not None:
            # Let other processors on the provider hand over what they hold, too.
            STATE.provider.force_flush(int(timeout * 1000))
        return exporter.force_flush(int(timeout * 1000))
    except Exception:
        log.debug("Assay: flush failed", exc_info=True)
        return False


def stats() -> dict[str, Any]:
    """Counts of spans sent, waiting, dropped (buffer full) and rejected by the server."""
    exporter = STATE.exporter
    if exporter is None:
        return {"enabled": False}
    with exporter._lock:
        values = exporter.stats.as_dict()
        values["spans_buffered"] = len(exporter._spans)
    return {"enabled": True, **values}


def shutdown(timeout: float = EXIT_FLUSH_SECONDS) -> None:
    """Flush (within ``timeout``) and stop sending. Tracing is off afterwards."""
    exporter = STATE.exporter
    if exporter is None:
        return
    flush(timeout)
    STATE.tracer = None
    STATE.exporter = None
    try:
        exporter.shutdown()
    except Exception:
        log.debug("Assay: shutdown failed", exc_info=True)
    dropped = exporter.stats.spans_dropped
    if dropped:
        log.warning("Assay: %d spans were dropped because the buffer was full", dropped)


@atexit.register
def _flush_at_exit() -> None:
    shutdown(EXIT_FLUSH_SECONDS)
