"""(b) A hand-written OpenTelemetry SDK span with the attributes ``@assay.traced`` records.

Exported by the standard ``BatchSpanProcessor`` + ``OTLPSpanExporter`` (protobuf over HTTP) to
the benchmark's loopback sink. The processor's queue holds as many spans as Assay's buffer
(20,000; OpenTelemetry's default, 2,048, drops spans when a tight loop outruns the exporter,
which would make it look cheaper than it is). Values are JSON-encoded with the standard
library's ``json`` (``--variant=orjson``: with orjson, the encoder Assay itself uses).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _harness import (
    Answer,
    Flush,
    NetworkGuard,
    Options,
    Stats,
    make_answer,
    no_stats,
    parse_options,
    serve,
)

QUEUE_SIZE = 20_000  # = assay.init(max_buffer_spans=...)'s default


def _encoder(variant: str) -> Callable[[Any], str]:
    if variant == "orjson":
        import orjson

        return lambda value: orjson.dumps(value).decode()
    if variant:
        raise SystemExit(f"unknown variant {variant!r}")
    return json.dumps


def setup(options: Options) -> tuple[Answer, Flush, Stats]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{options.sink_url}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=QUEUE_SIZE))
    tracer = provider.get_tracer("sdk-bench")
    inner = make_answer()
    dumps = _encoder(options.variant)

    def answer(question: str, k: int) -> dict[str, Any]:
        with tracer.start_as_current_span("answer") as span:
            span.set_attribute("assay.span.type", "task")
            span.set_attribute("assay.input", dumps({"question": question, "k": k}))
            result = inner(question, k)
            span.set_attribute("assay.output", dumps(result))
            return result

    return answer, lambda: provider.force_flush(60_000), no_stats


if __name__ == "__main__":
    guard = NetworkGuard()
    guard.install()
    serve("opentelemetry-sdk", parse_options(), guard, setup)
