"""Scores: judgements attached to a trace or a span (human labels included)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from assay.errors import NotFound
from assay.store.engine import now_ns
from assay.store.tables import scores, spans, traces

SCORE_COLUMNS = [
    scores.c.id,
    scores.c.trace_id,
    scores.c.span_id,
    scores.c.name,
    scores.c.value,
    scores.c.label,
    scores.c.rationale,
    scores.c.source,
    scores.c.author,
    scores.c.metadata,
    scores.c.created_ns,
    scores.c.rubric_id,
    scores.c.rubric_version,
    scores.c.review_id,
]


class TargetMissing(NotFound):
    """A score names a trace or span that the project does not have."""


def _check_targets(conn: Connection, project_id: int, items: list[dict[str, Any]]) -> None:
    """Every scored trace (and span) exists in the project: a trace id alone names nothing
    across projects, and a score must never land on, or show in, another project's trace."""
    for trace_id, span_id in sorted(
        {(item["trace_id"].lower(), (item.get("span_id") or "").lower()) for item in items}
    ):
        if span_id:
            found = conn.execute(
                select(spans.c.id).where(
                    spans.c.project_id == project_id,
                    spans.c.trace_id == trace_id,
                    spans.c.span_id == span_id,
                )
            ).first()
            what = f"span {span_id!r} of trace {trace_id!r}"
        else:
            found = conn.execute(
                select(traces.c.trace_id).where(
                    traces.c.project_id == project_id, traces.c.trace_id == trace_id
                )
            ).first()
            what = f"trace {trace_id!r}"
        if found is None:
            raise TargetMissing(
                f"{what} is not in this project; score a trace of the project in the URL "
                "(its spans may still be on their way: retry in a moment)"
            )


def insert(conn: Connection, project_id: int, items: list[dict[str, Any]]) -> list[int]:
    """Store scores for traces or spans of the project; TargetMissing if one is not there."""
    _check_targets(conn, project_id, items)
    ids = []
    created = now_ns()
    for item in items:
        values = {
            "project_id": project_id,
            "trace_id": item["trace_id"].lower(),
            "span_id": item["span_id"].lower() if item.get("span_id") else None,
            "name": item["name"],
            "value": item.get("value"),
            "label": item.get("label"),
            "rationale": item.get("rationale"),
            "source": item.get("source") or "code",
            "author": item.get("author"),
            "metadata": item.get("metadata") or {},
            "created_ns": created,
        }
        ids.append(
            int(conn.execute(scores.insert().values(**values).returning(scores.c.id)).scalar_one())
        )
    return ids


def attach_scores(
    conn: Connection, project_id: int, rows: Sequence[dict[str, Any]], *, by: str
) -> None:
    """Give each trace row (of the project) its trace's scores, or each span row its own."""
    for row in rows:
        row["scores"] = []
    if not rows:
        return
    trace_ids = sorted({row["trace_id"] for row in rows})
    found = conn.execute(
        select(*SCORE_COLUMNS).where(
            scores.c.project_id == project_id, scores.c.trace_id.in_(trace_ids)
        )
    ).all()
    if by == "trace":
        index = {row["trace_id"]: row for row in rows}
        for score in found:
            index[score.trace_id]["scores"].append(dict(score._mapping))
    else:
        index = {(row["trace_id"], row["span_id"]): row for row in rows}
        for score in found:
            target = index.get((score.trace_id, score.span_id))
            if target is not None:
                target["scores"].append(dict(score._mapping))
