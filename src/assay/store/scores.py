"""Scores: judgements attached to a trace or a span (human labels included)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from assay.store.engine import now_ns
from assay.store.tables import scores


def insert(conn: Connection, project_id: int, items: list[dict[str, Any]]) -> list[int]:
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
