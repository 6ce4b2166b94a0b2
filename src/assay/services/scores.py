"""Scores attached to traces and spans by people and code."""

from __future__ import annotations

from typing import Any

from assay.errors import UserError
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.store import scores as score_store
from assay.store.database import Database


def add_scores(
    db: Database, who: Principal, project: str, items: list[dict[str, Any]]
) -> list[int]:
    """Store scores (annotators and up) on traces or spans of ``project``; each needs a value,
    a label, or both. A trace or span the project does not hold is :class:`NotFound`."""
    who.require(project, "annotator")
    if any(item.get("value") is None and item.get("label") is None for item in items):
        raise UserError("a score needs a value, a label, or both")
    with db.write() as conn:
        return score_store.insert(conn, project_id(conn, who, project, "annotator"), items)
