"""What a reviewer reads for one queue item: the conversation or input, the output, the
expected answer, end-user feedback, and where it came from.

Five kinds of items: a trace (its root span's input and output, and the steps under it), a
span, a session (its traces in order), an experiment row and a dataset record. Long values are
cut to ``SHOWN_CHARS`` here; the trace page shows them whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from assay.store.tables import (
    dataset_records,
    datasets,
    experiment_rows,
    experiments,
    scores,
    spans,
    traces,
)

SHOWN_CHARS = 50_000
STEP_CHARS = 4_000
MAX_STEPS = 200
MAX_TURNS = 100
#: Span types shown as steps of a conversation.
STEP_TYPES = ("llm", "tool", "retrieval", "agent", "chain", "task", "embedding")


def _cut(value: Any, limit: int = SHOWN_CHARS) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


def experiment_rows_in(
    conn: Connection, project_id: int, row_ids: Sequence[int]
) -> dict[int, str | None]:
    """The given experiment rows that belong to the project, with their trace ids."""
    rows = conn.execute(
        select(experiment_rows.c.id, experiment_rows.c.trace_id)
        .join(experiments, experiments.c.id == experiment_rows.c.experiment_id)
        .where(experiments.c.project_id == project_id, experiment_rows.c.id.in_(list(row_ids)))
    ).all()
    return {int(row_id): trace_id for row_id, trace_id in rows}


def dataset_ids(conn: Connection, project_id: int, names: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        select(datasets.c.name, datasets.c.id).where(
            datasets.c.project_id == project_id, datasets.c.name.in_(list(names))
        )
    ).all()
    return {str(name): int(dataset_id) for name, dataset_id in rows}


def current_records(
    conn: Connection, dataset_id: int, record_ids: Sequence[str]
) -> dict[str, str | None]:
    """The records of the dataset's current version among ``record_ids``, with their source
    trace ids."""
    rows = conn.execute(
        select(dataset_records.c.record_id, dataset_records.c.source_trace_id).where(
            dataset_records.c.dataset_id == dataset_id,
            dataset_records.c.record_id.in_(list(record_ids)),
            dataset_records.c.version_removed.is_(None),
        )
    ).all()
    return {str(record_id): trace_id for record_id, trace_id in rows}


def _feedback(
    conn: Connection, project_id: int, trace_id: str, span_id: str | None = None
) -> list[dict[str, Any]]:
    """End-user feedback: human scores that came from the application, not from a review."""
    query = select(
        scores.c.name,
        scores.c.value,
        scores.c.label,
        scores.c.rationale,
        scores.c.author,
        scores.c.span_id,
        scores.c.created_ns,
    ).where(
        scores.c.project_id == project_id,
        scores.c.trace_id == trace_id,
        scores.c.source == "human",
        scores.c.review_id.is_(None),
    )
    if span_id is not None:
        query = query.where(scores.c.span_id == span_id)
    rows = conn.execute(query.order_by(scores.c.id).limit(50)).all()
    return [dict(row._mapping) for row in rows]


def _expected_for(
    conn: Connection, project_id: int, trace_id: str, span_id: str | None = None
) -> dict[str, Any] | None:
    """The expected answer of a dataset record made from this trace (or span), if any."""
    query = (
        select(
            dataset_records.c.expected,
            dataset_records.c.record_id,
            datasets.c.name.label("dataset"),
        )
        .join(datasets, datasets.c.id == dataset_records.c.dataset_id)
        .where(
            datasets.c.project_id == project_id,
            dataset_records.c.source_trace_id == trace_id,
            dataset_records.c.version_removed.is_(None),
        )
    )
    if span_id is not None:
        query = query.where(dataset_records.c.source_span_id == span_id)
    row = conn.execute(query.order_by(dataset_records.c.id.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


_SPAN_COLUMNS = [
    spans.c.span_id,
    spans.c.parent_span_id,
    spans.c.name,
    spans.c.type,
    spans.c.model,
    spans.c.start_ns,
    spans.c.duration_ns,
    spans.c.is_error,
    spans.c.error,
    spans.c.input,
    spans.c.output,
]


def _span(mapping: Any, limit: int) -> dict[str, Any]:
    row = dict(mapping)
    row["input"] = _cut(row["input"], limit)
    row["output"] = _cut(row["output"], limit)
    return row


def trace_content(conn: Connection, project_id: int, trace_id: str) -> dict[str, Any] | None:
    head = conn.execute(
        select(
            traces.c.name,
            traces.c.root_span_id,
            traces.c.start_ns,
            traces.c.duration_ns,
            traces.c.error_count,
            traces.c.session_id,
            traces.c.user_id,
            traces.c.tags,
            traces.c.metadata,
            traces.c.input_preview,
            traces.c.output_preview,
        ).where(traces.c.project_id == project_id, traces.c.trace_id == trace_id)
    ).first()
    if head is None:
        return None
    trace = dict(head._mapping)
    steps = [
        _span(row._mapping, STEP_CHARS)
        for row in conn.execute(
            select(*_SPAN_COLUMNS)
            .where(
                spans.c.project_id == project_id,
                spans.c.trace_id == trace_id,
                spans.c.type.in_(STEP_TYPES),
            )
            .order_by(spans.c.start_ns, spans.c.id)
            .limit(MAX_STEPS)
        )
    ]
    root = None
    if trace["root_span_id"]:
        found = conn.execute(
            select(*_SPAN_COLUMNS).where(
                spans.c.project_id == project_id,
                spans.c.trace_id == trace_id,
                spans.c.span_id == trace["root_span_id"],
            )
        ).first()
        root = None if found is None else _span(found._mapping, SHOWN_CHARS)
    expected = _expected_for(conn, project_id, trace_id)
    return {
        "trace_id": trace_id,
        "name": trace["name"],
        "start_ns": trace["start_ns"],
        "duration_ns": trace["duration_ns"],
        "status": "error" if trace["error_count"] else "ok",
        "session_id": trace["session_id"],
        "user_id": trace["user_id"],
        "tags": trace["tags"],
        "metadata": trace["metadata"],
        "input": root["input"] if root else trace["input_preview"],
        "output": root["output"] if root else trace["output_preview"],
        "steps": [step for step in steps if not root or step["span_id"] != root["span_id"]],
        "expected": expected["expected"] if expected else None,
        "expected_from": expected,
        "feedback": _feedback(conn, project_id, trace_id),
    }


def span_content(
    conn: Connection, project_id: int, trace_id: str, span_id: str
) -> dict[str, Any] | None:
    found = conn.execute(
        select(*_SPAN_COLUMNS).where(
            spans.c.project_id == project_id,
            spans.c.trace_id == trace_id,
            spans.c.span_id == span_id,
        )
    ).first()
    if found is None:
        return None
    span = _span(found._mapping, SHOWN_CHARS)
    expected = _expected_for(conn, project_id, trace_id, span_id)
    return {
        **span,
        "trace_id": trace_id,
        "steps": [],
        "expected": expected["expected"] if expected else None,
        "expected_from": expected,
        "feedback": _feedback(conn, project_id, trace_id, span_id),
    }


def session_content(conn: Connection, project_id: int, session_id: str) -> dict[str, Any] | None:
    rows = conn.execute(
        select(
            traces.c.trace_id,
            traces.c.name,
            traces.c.start_ns,
            traces.c.input_preview,
            traces.c.output_preview,
            traces.c.error_count,
        )
        .where(traces.c.project_id == project_id, traces.c.session_id == session_id)
        .order_by(traces.c.start_ns)
        .limit(MAX_TURNS)
    ).all()
    if not rows:
        return None
    turns = [
        {
            "trace_id": row.trace_id,
            "name": row.name,
            "start_ns": row.start_ns,
            "input": row.input_preview,
            "output": row.output_preview,
            "status": "error" if row.error_count else "ok",
        }
        for row in rows
    ]
    return {
        "session_id": session_id,
        "trace_id": turns[-1]["trace_id"],
        "input": turns[0]["input"],
        "output": turns[-1]["output"],
        "turns": turns,
        "steps": [],
        "expected": None,
        "expected_from": None,
        "feedback": [],
    }


def experiment_row_content(conn: Connection, project_id: int, row_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        select(
            experiment_rows.c.id,
            experiment_rows.c.experiment_id,
            experiments.c.name,
            experiment_rows.c.case_key,
            experiment_rows.c.trial,
            experiment_rows.c.trace_id,
            experiment_rows.c.input,
            experiment_rows.c.expected,
            experiment_rows.c.output,
            experiment_rows.c.scores,
            experiment_rows.c.error,
        )
        .join(experiments, experiments.c.id == experiment_rows.c.experiment_id)
        .where(experiments.c.project_id == project_id, experiment_rows.c.id == row_id)
    ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    return {
        **found,
        "experiment": found.pop("name"),
        "steps": [],
        "expected_from": None,
        "feedback": [],
    }


def dataset_record_content(
    conn: Connection, project_id: int, dataset_id: int, record_id: str
) -> dict[str, Any] | None:
    row = conn.execute(
        select(
            datasets.c.name.label("dataset"),
            dataset_records.c.record_id,
            dataset_records.c.input,
            dataset_records.c.expected,
            dataset_records.c.metadata,
            dataset_records.c.tags,
            dataset_records.c.source_trace_id,
            dataset_records.c.source_span_id,
        )
        .join(datasets, datasets.c.id == dataset_records.c.dataset_id)
        .where(
            datasets.c.project_id == project_id,
            dataset_records.c.dataset_id == dataset_id,
            dataset_records.c.record_id == record_id,
            dataset_records.c.version_removed.is_(None),
        )
    ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    return {
        **found,
        "trace_id": found["source_trace_id"],
        "output": None,
        "steps": [],
        "expected_from": None,
        "feedback": [],
    }


def content(conn: Connection, project_id: int, item: dict[str, Any]) -> dict[str, Any] | None:
    """What the reviewer reads for ``item`` (a queue_items row); None when its target is gone."""
    kind = item["kind"]
    if kind == "trace":
        return trace_content(conn, project_id, item["trace_id"])
    if kind == "span":
        return span_content(conn, project_id, item["trace_id"], item["span_id"])
    if kind == "session":
        return session_content(conn, project_id, item["session_id"])
    if kind == "experiment_row":
        return experiment_row_content(conn, project_id, int(item["experiment_row_id"]))
    return dataset_record_content(conn, project_id, int(item["dataset_id"]), item["record_id"])
