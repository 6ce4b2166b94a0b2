"""`assay.log_feedback`: a score from the application (an end user's thumbs up, say)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from assay.sdk._spans import Span
from assay.sdk._state import STATE

log = logging.getLogger("assay.sdk")
_HEX = re.compile(r"^[0-9a-f]+$")


def log_feedback(
    target: str | Span,
    name: str,
    *,
    value: float | bool | None = None,
    label: str | None = None,
    comment: str | None = None,
    user: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Attach a human score to a trace (32 hex chars), a span (16 hex chars, one this process
    traced recently) or a `Span` handle. Sent in the background; returns False (and logs why)
    if it cannot be, and never raises."""
    try:
        return _log_feedback(target, name, value, label, comment, user, metadata)
    except Exception:
        log.warning("Assay: log_feedback failed", exc_info=True)
        return False


def _log_feedback(
    target: str | Span,
    name: str,
    value: float | bool | None,
    label: str | None,
    comment: str | None,
    user: str | None,
    metadata: dict[str, Any] | None,
) -> bool:
    exporter = STATE.exporter
    if exporter is None:
        log.warning("Assay: log_feedback called before assay.init(); feedback not sent")
        return False
    span_id: str | None = None
    if isinstance(target, Span):
        trace_id, span_id = target.trace_id, target.span_id
    else:
        ident = str(target).lower().strip()
        if len(ident) == 32 and _HEX.match(ident):
            trace_id = ident
        elif len(ident) == 16 and _HEX.match(ident):
            span_id = ident
            trace_id = STATE.trace_of(ident)
        else:
            trace_id = None
    if not trace_id:
        log.warning(
            "Assay: log_feedback needs a trace id, a recent span id or a Span; got %r", target
        )
        return False
    if value is None and label is None:
        log.warning("Assay: log_feedback needs a value or a label")
        return False
    body = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": name,
        "value": float(value) if value is not None else None,
        "label": label,
        "rationale": comment,
        "source": "human",
        "author": user,
        "metadata": metadata or {},
    }
    exporter.send_feedback(f"/api/v1/projects/{quote(STATE.project, safe='')}/scores", body)
    return True
