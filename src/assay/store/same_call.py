"""One provider call reported as two traces is linked and counted once.

``anthropic`` 2.x emits a span of its own for every API call when a global tracer provider is
set (instrumentation scope ``com.anthropic.sdk.python``). When an instrumentor's span of the
call is the current span, the SDK's span is its child, and an LLM span inside an LLM span is
already counted once (`writer._trace_aggregates`). When it is not (streamed calls under
OpenInference, every call under OpenLLMetry's Anthropic instrumentor), the SDK's span is the
root of a trace of its own: one call became two traces, and project totals counted its tokens
and cost twice.

Such an SDK span is matched here, as it is stored, to the instrumentor's span of the same call:
an LLM span of the same project in another trace, from another scope, overlapping in time, with
the same model and input tokens (and the same response id when both carry one); either may
arrive first. The SDK's span keeps everything it sent, gains the attribute
``assay.same_call_as`` ("trace id/span id") and a link to the other span, and its token and cost
columns are emptied: the call counts once, on the instrumentor's span, which also has the
messages. Its trace stays, as a trace of one call that costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select, update

from assay.semconv.attributes import SAME_CALL_AS
from assay.store.tables import spans

#: Instrumentation scopes of provider SDKs that trace their own API calls.
PROVIDER_SDK_SCOPES = frozenset({"com.anthropic.sdk.python"})
#: How long before an SDK span a matching span may have started (a long streamed call).
WINDOW_NS = 15 * 60 * 10**9
_COUNTED_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_tokens",
    "cost",
)
_RESPONSE_ID = "gen_ai.response.id"


def _scope_name(row: Any) -> str | None:
    scope = row["scope"]
    name = scope.get("name") if isinstance(scope, dict) else None
    return name if isinstance(name, str) else None


def _is_sdk_root(row: Any) -> bool:
    return (
        row["type"] == "llm"
        and row["parent_span_id"] is None
        and _scope_name(row) in PROVIDER_SDK_SCOPES
    )


def _may_match(row: dict[str, Any]) -> bool:
    return (
        row["type"] == "llm"
        and row["model"] is not None
        and row["input_tokens"] is not None
        and (row["provider"] == "anthropic" or _is_sdk_root(row))
    )


def _response_ids_agree(a: Any, b: Any) -> bool:
    first, second = (row["attributes"].get(_RESPONSE_ID) for row in (a, b))
    return first is None or second is None or first == second


_CANDIDATE_COLUMNS = (
    spans.c.id,
    spans.c.trace_id,
    spans.c.span_id,
    spans.c.parent_span_id,
    spans.c.type,
    spans.c.scope,
    spans.c.attributes,
    spans.c.links,
)


class SdkRootProjects:
    """Which projects have ever stored a provider SDK's root span, remembered by the writer.

    Most projects never do, and for them an instrumentor's LLM span needs no search at all:
    without this, every Anthropic span searched a quarter of an hour of the project's LLM spans
    (ingest ran at half its speed). A "no" is asked of the store again after ``RECHECK_S``, in
    case another server process stored one meanwhile; a "yes" is kept."""

    RECHECK_S = 60.0

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._none_until: dict[int, float] = {}

    def saw(self, project_id: int) -> None:
        self._seen.add(project_id)

    def has(self, conn: Connection, project_id: int) -> bool:
        if project_id in self._seen:
            return True
        if self._none_until.get(project_id, 0.0) > time.monotonic():
            return False
        found = conn.execute(
            select(spans.c.id)
            .where(
                spans.c.project_id == project_id,
                spans.c.type == "llm",
                spans.c.parent_span_id.is_(None),
                spans.c.scope["name"].as_string().in_(sorted(PROVIDER_SDK_SCOPES)),
            )
            .limit(1)
        ).first()
        if found is not None:
            self._seen.add(project_id)
            return True
        self._none_until[project_id] = time.monotonic() + self.RECHECK_S
        return False


def link_same_calls(
    conn: Connection, rows: Iterable[dict[str, Any]], sdk_roots: SdkRootProjects | None = None
) -> set[tuple[int, str]]:
    """Find the SDK spans that repeat a call among ``rows`` (just inserted, with their
    ``project_id``) and stored spans; mark each (stored row and, when in ``rows``, the row
    itself). The (project id, trace id) of every trace whose sums changed."""
    sdk_roots = sdk_roots or SdkRootProjects()
    in_batch = {(row["project_id"], row["trace_id"], row["span_id"]): row for row in rows}
    for row in in_batch.values():
        if _is_sdk_root(row):
            sdk_roots.saw(row["project_id"])
    changed: set[tuple[int, str]] = set()
    for row in list(in_batch.values()):
        if not _may_match(row):
            continue
        row_is_sdk = _is_sdk_root(row)
        if row_is_sdk and SAME_CALL_AS in row["attributes"]:
            continue
        if not row_is_sdk and not sdk_roots.has(conn, row["project_id"]):
            continue  # no SDK span in this project to repeat the call
        conditions = [
            spans.c.project_id == row["project_id"],
            spans.c.type == "llm",
            spans.c.start_ns >= row["start_ns"] - WINDOW_NS,
            spans.c.start_ns <= row["end_ns"],
            spans.c.end_ns >= row["start_ns"],
            spans.c.model == row["model"],
            spans.c.input_tokens == row["input_tokens"],
            spans.c.trace_id != row["trace_id"],
        ]
        if not row_is_sdk:
            conditions.append(spans.c.parent_span_id.is_(None))  # only an SDK root can repeat it
        candidates = conn.execute(select(*_CANDIDATE_COLUMNS).where(*conditions)).all()
        for other in candidates:
            other_map = other._mapping
            other_is_sdk = _is_sdk_root(other_map)
            if other_is_sdk == row_is_sdk or not _response_ids_agree(row, other_map):
                continue
            sdk_key: tuple[str, str, Any]
            if row_is_sdk:
                sdk_key = (row["trace_id"], row["span_id"], None)
                counted = (other.trace_id, other.span_id)
            elif SAME_CALL_AS in other_map["attributes"]:
                continue
            else:
                sdk_key = (other.trace_id, other.span_id, other_map)
                counted = (row["trace_id"], row["span_id"])
            _mark(conn, row["project_id"], sdk_key, counted, in_batch)
            changed.add((row["project_id"], sdk_key[0]))
            break
    return changed


def _mark(
    conn: Connection,
    project_id: int,
    sdk: tuple[str, str, Any],
    counted: tuple[str, str],
    in_batch: dict[tuple[int, str, str], dict[str, Any]],
) -> None:
    trace_id, span_id, stored = sdk
    if stored is None:
        stored = (
            conn.execute(
                select(*_CANDIDATE_COLUMNS).where(
                    spans.c.project_id == project_id,
                    spans.c.trace_id == trace_id,
                    spans.c.span_id == span_id,
                )
            )
            .one()
            ._mapping
        )
    attributes = {**stored["attributes"], SAME_CALL_AS: f"{counted[0]}/{counted[1]}"}
    link = {
        "trace_id": counted[0],
        "span_id": counted[1],
        "attributes": {"assay.link": "same call"},
    }
    links = [*(stored["links"] or []), link]
    emptied = dict.fromkeys(_COUNTED_COLUMNS)
    conn.execute(
        update(spans)
        .where(spans.c.id == stored["id"])
        .values(attributes=attributes, links=links, **emptied)
    )
    row = in_batch.get((project_id, trace_id, span_id))
    if row is not None:  # the trace's sums are taken from the batch's rows when it is new
        row.update(emptied, attributes=attributes, links=links)
