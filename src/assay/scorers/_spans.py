"""One typed view of a trace's spans, from either shape a scorer may be handed.

* The eval runner's ``trace`` argument (`assay.evals._trace`): flat dicts, oldest first, with
  ``type``, ``error``, ``input``/``output`` already read, and the raw OTel ``attributes``.
* The REST API's spans (``GET /api/v1/traces/{id}``, `assay.store.spans.span_dict`): a tree
  (``children``) of stored rows with the derived columns of ingest (``type``, ``model``, token
  counts, ``cost``, ``is_error``/``status``, ``input``/``output`` as text).

So a trajectory scorer written for offline evals scores production traces unchanged. Which
attribute means what is ingest's own table (`assay.semconv.attributes`); this reads only the
few fields trajectory scorers use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.semconv.attributes import (
    INPUT_KEYS,
    OUTPUT_KEYS,
    as_float,
    as_int,
    first,
    maybe_json,
    read_fields,
    span_type,
)
from assay.semconv.prices import DEFAULT_PRICES


@dataclass(frozen=True)
class TraceSpan:
    """A span as trajectory scorers see it."""

    span_id: str | None
    parent_id: str | None
    name: str
    type: str
    start_ns: int | None = None
    end_ns: int | None = None
    error: str | None = None
    input: Any = None
    output: Any = None
    #: On tool spans: the tool's name (gen_ai.tool.name, tool.name, else the span's name) and
    #: the arguments it was called with, parsed from JSON when they are JSON.
    tool: str | None = None
    arguments: Any = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    #: USD, from the span or priced from its model and tokens; None when unknown.
    cost: float | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def duration_s(self) -> float | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return max(0, self.end_ns - self.start_ns) / 1e9


def _loads(value: Any) -> Any:
    """JSON sent as text, parsed: objects, arrays and (unlike ingest's columns) strings."""
    if isinstance(value, str) and value[:1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return maybe_json(value)


def _type(row: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    given = row.get("type")
    if isinstance(given, str) and given and given != "span":
        return given.lower()
    return span_type(values, values.get("model") is not None or bool(row.get("model")))


def _error(row: Mapping[str, Any]) -> str | None:
    error = row.get("error")
    if error:
        return str(error)
    if row.get("is_error") or row.get("status") == "error" or row.get("status_code") == 2:
        return str(row.get("status_message") or "error")
    return None


def read_span(row: Mapping[str, Any]) -> TraceSpan:
    """One span dict, of either shape, as a `TraceSpan`."""
    attributes = row.get("attributes")
    if not isinstance(attributes, Mapping):
        attributes = {}
    values = read_fields(attributes)
    kind = _type(row, values)
    name = str(row.get("name") or "")
    input_value = row.get("input")
    input_value = _loads(input_value if input_value is not None else first(attributes, INPUT_KEYS))
    output_value = row.get("output")
    output_value = _loads(
        output_value if output_value is not None else first(attributes, OUTPUT_KEYS)
    )
    tool = arguments = None
    if kind == "tool":
        tool = str(values.get("tool_name") or name)
        found = values.get("tool_in")
        arguments = _loads(found) if found is not None else input_value
    model = row.get("model") or values.get("model")
    input_tokens = as_int(row.get("input_tokens", values.get("input_tokens")))
    output_tokens = as_int(row.get("output_tokens", values.get("output_tokens")))
    cost = as_float(row["cost"]) if "cost" in row else as_float(values.get("cost"))
    if cost is None and "cost" not in row and (input_tokens or output_tokens):
        # The eval runner's spans are not ingested, so nothing priced them yet.
        cost = DEFAULT_PRICES.cost(
            str(model) if model else None,
            values.get("provider"),
            input_tokens,
            output_tokens,
            as_int(values.get("cached_tokens")),
        )
    return TraceSpan(
        span_id=row.get("span_id"),
        parent_id=row.get("parent_span_id"),
        name=name,
        type=kind,
        start_ns=as_int(row.get("start_ns")),
        end_ns=as_int(row.get("end_ns")),
        error=_error(row),
        input=input_value,
        output=output_value,
        tool=tool,
        arguments=arguments,
        model=str(model) if model else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        attributes=attributes,
    )


def _rows(trace: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(trace, Mapping):
        trace = trace.get("spans") or []
    for row in trace:
        if not isinstance(row, Mapping):
            raise TypeError(f"a trace is a list of span dicts; found {type(row).__name__}")
        yield row
        children = row.get("children")
        if children:
            yield from _rows(children)


def _under(span: TraceSpan, ids: set[str | None], by_id: Mapping[str, TraceSpan]) -> bool:
    """Whether ``span`` or one of its ancestors is one of ``ids`` (a cycle ends the walk)."""
    seen: set[str | None] = set()
    current: TraceSpan | None = span
    while current is not None and current.span_id not in seen:
        if current.span_id in ids:
            return True
        seen.add(current.span_id)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return False


def read_trace(trace: Any) -> list[TraceSpan]:
    """A trace's spans, oldest first, from the eval runner's ``trace`` argument, the REST API's
    span list or tree, or a whole ``GET /api/v1/traces/{id}`` answer. The spans of scorers
    (and everything under them, such as a judge's LLM call) are left out: they judge the agent,
    they are not part of what it did."""
    if trace is None:
        raise ValueError("this scorer needs the case's trace, and got none")
    spans = [read_span(row) for row in _rows(trace)]
    scorers = {span.span_id for span in spans if span.type == "scorer"}
    by_id = {span.span_id: span for span in spans if span.span_id}
    kept = [span for span in spans if not _under(span, scorers, by_id)]
    return sorted(kept, key=lambda span: span.start_ns or 0)


def roots(spans: list[TraceSpan]) -> list[TraceSpan]:
    """Spans whose parent is not in the trace: the root, or in the eval runner's trace (where
    the case's own span is still open) the task's top-level spans."""
    ids = {span.span_id for span in spans}
    return [span for span in spans if span.parent_id is None or span.parent_id not in ids]


def tool_matches(actual: str | None, wanted: str) -> bool:
    """A tool's name as called; `@assay.traced` names a span by the function's qualified name
    (``Agent.search``, ``main.<locals>.search``), which matches ``search`` too."""
    return actual is not None and (actual == wanted or actual.endswith("." + wanted))
