"""What an export of traces reads: the traces of a filter that carry a person's label, and the
span of each trace that holds its conversation."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, exists, literal, or_, select

from assay.store.listing import Filters
from assay.store.tables import scores, spans, traces
from assay.store.traces import trace_conditions

#: Attributes holding the tools a model call offered (the SDK wrappers write the first).
TOOL_ATTRIBUTES = ("gen_ai.tool.definitions", "llm.tools")


def labelled_traces(
    conn: Connection,
    project_id: int,
    f: Filters,
    *,
    name: str,
    label: str | None,
    value: float | None,
    only_author: str | None,
    after: str | None,
    limit: int,
) -> list[str]:
    """Ids of the project's traces matching ``f`` that carry a person's (``source = human``)
    score ``name`` with that ``label`` (or ``value``), in trace id order after ``after``.
    With ``only_author``, review labels count only when that person gave them (blind review:
    an annotator sees other reviewers' labels only in the queue)."""
    s = scores.c
    conditions = [
        s.project_id == traces.c.project_id,
        s.trace_id == traces.c.trace_id,
        s.source == "human",
        s.name == name,
    ]
    if label is not None:
        conditions.append(s.label == label)
    if value is not None:
        conditions.append(s.value == value)
    if only_author is not None:
        conditions.append(or_(s.review_id.is_(None), s.author == only_author))
    query = select(traces.c.trace_id).where(
        *trace_conditions(conn, f, project_id, "start"),
        exists(select(literal(1)).where(*conditions)),
    )
    if after is not None:
        query = query.where(traces.c.trace_id > after)
    return list(conn.execute(query.order_by(traces.c.trace_id).limit(limit)).scalars())


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def conversation_span(
    conn: Connection, project_id: int, trace_id: str, which: str
) -> dict[str, Any] | None:
    """The span of a trace whose input and output make its example: ``"llm"`` the model call
    that ended last (the root span when there is none), ``"root"`` the root span. Its
    ``trace_id``, ``span_id``, ``name``, ``input``, ``output`` (JSON text parsed) and
    ``tools`` (the tools the call offered, or None)."""
    columns = (
        spans.c.trace_id,
        spans.c.span_id,
        spans.c.name,
        spans.c.input,
        spans.c.output,
        spans.c.attributes,
    )
    base = select(*columns).where(spans.c.project_id == project_id, spans.c.trace_id == trace_id)
    row = None
    if which == "llm":
        row = conn.execute(
            base.where(spans.c.type == "llm")
            .order_by(spans.c.end_ns.desc(), spans.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        row = conn.execute(
            base.order_by(spans.c.is_root.desc(), spans.c.start_ns, spans.c.id).limit(1)
        ).first()
    if row is None:
        return None
    attributes = row.attributes or {}
    tools = next(
        (
            _parsed(v) if isinstance(v, str) else v
            for key in TOOL_ATTRIBUTES
            if (v := attributes.get(key))
        ),
        None,
    )
    return {
        "trace_id": row.trace_id,
        "span_id": row.span_id,
        "name": row.name,
        "input": _parsed(row.input),
        "output": _parsed(row.output),
        "tools": tools if isinstance(tools, list) else None,
    }


__all__ = ["conversation_span", "labelled_traces"]
