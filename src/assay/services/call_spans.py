"""Traces of the model calls the server makes itself: a judge of online scoring, a bare-model
run of the playground. Each call is one ``llm`` span, the root of a trace of its own, in the
vocabulary ingest reads (OpenTelemetry GenAI ``gen_ai.*`` and Assay's ``assay.*``: see
assay.semconv), normalised as ingested spans are and written through the server's span writer,
so the trace pages, filters and costs treat it like any other call. The key is never on it.
"""

from __future__ import annotations

import secrets as random_ids
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from assay.ingest.normalize import normalize
from assay.ingest.otlp import RawSpan
from assay.services.runtime import Runtime

#: OTLP's span kind "client": a call out of the server.
CLIENT_KIND = 3


@dataclass(frozen=True)
class ModelCall:
    """One model call as it went: what was asked, what came back (or the error), when."""

    project: str
    name: str
    provider: str | None
    model: str | None
    response_model: str | None
    messages: Sequence[Mapping[str, Any]]
    answer: Mapping[str, Any] | None
    start_ns: int
    end_ns: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cost: float | None = None
    error: str | None = None
    #: More span attributes (``assay.metadata.*``, the prompt's name and version, parameters).
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: The service and the instrumentation scope the span says it came from.
    service: str = "assay"
    scope: str = "assay"


def call_span(rt: Runtime, call: ModelCall) -> tuple[str, dict[str, Any]]:
    """The call as a storable span row, the root of a new trace: (trace id, row)."""
    attributes: dict[str, Any] = {
        "assay.span.type": "llm",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": call.provider,
        "gen_ai.request.model": call.model,
        "gen_ai.response.model": call.response_model or call.model,
        "gen_ai.usage.input_tokens": call.input_tokens,
        "gen_ai.usage.output_tokens": call.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": call.cached_tokens,
        "assay.cost": call.cost,
        "gen_ai.input.messages": orjson.dumps(list(call.messages)).decode(),
        **dict(call.attributes),
    }
    if call.answer is not None:
        attributes["gen_ai.output.messages"] = orjson.dumps([dict(call.answer)]).decode()
    trace_id = random_ids.token_hex(16)
    raw = RawSpan(
        project=call.project,
        trace_id=trace_id,
        span_id=random_ids.token_hex(8),
        parent_span_id=None,
        name=call.name,
        kind=CLIENT_KIND,
        start_ns=call.start_ns,
        end_ns=max(call.end_ns, call.start_ns),
        status_code=2 if call.error else 0,
        status_message=call.error,
        attributes=attributes,
        events=[],
        links=[],
        resource={"service.name": call.service},
        scope={"name": call.scope},
    )
    return trace_id, normalize(raw, rt.prices_for(call.project).cost, time.time_ns())


def write_calls(rt: Runtime, calls: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Store span rows of `call_span` (project, row) through the span writer, in one write,
    and wait until they are committed (so a link to the trace opens a trace that is there)."""
    if calls:
        rt.writer.write_sync([row for _project, row in calls], [p for p, _row in calls])
