"""An experiment row: one case run once (one trial), with its output and scores.

`ExperimentRow` is the one shape of a row from the eval runner to the store: the runner sends it
(`Row.to_record`), the REST API validates it, the store writes it. `Row` is the runner's live
view of the same row, handed to ``on_row`` callbacks and kept in `EvalResult.rows`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assay.evals._scorer import Score
from assay.sdk._serialize import to_json

#: Longest value, as JSON text, a row keeps of an input, output, expected answer or metadata.
MAX_VALUE_CHARS = 1_000_000


class RowScore(BaseModel):
    """One score of a row. Keys beyond these are kept as they are."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=200)
    value: float | None = None
    label: str | None = None
    rationale: str | None = None
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ExperimentRow(BaseModel):
    """A row as sent to ``POST /api/v1/experiments/{id}/rows`` and stored."""

    case_key: str = Field(min_length=1, max_length=64)
    trial: int = Field(default=0, ge=0)
    input: Any = None
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = Field(default=None, max_length=100_000)
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    trace_id: str | None = Field(default=None, max_length=32)
    scores: list[RowScore] = Field(default_factory=list, max_length=1000)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (objects the way the SDK logs them), cut when huge."""
    text = to_json(value, MAX_VALUE_CHARS)
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Row:
    """One case run once, as the eval runner holds it."""

    case_id: str
    trial: int
    input: Any
    expected: Any
    metadata: Mapping[str, Any]
    output: Any = None
    error: str | None = None
    scores: list[Score] = field(default_factory=list)
    latency_s: float = 0.0
    trace_id: str | None = None

    def to_record(self) -> ExperimentRow:
        return ExperimentRow(
            case_key=self.case_id,
            trial=self.trial,
            input=jsonable(self.input),
            expected=jsonable(self.expected),
            metadata=jsonable(dict(self.metadata)),
            output=jsonable(self.output),
            error=self.error,
            latency_ms=self.latency_s * 1000,
            trace_id=self.trace_id,
            scores=[
                RowScore(
                    name=s.name,
                    value=s.value,
                    label=s.label,
                    rationale=s.rationale,
                    error=s.error,
                    metadata=jsonable(dict(s.metadata)),
                )
                for s in self.scores
            ],
        )

    @classmethod
    def from_record(cls, record: ExperimentRow | Mapping[str, Any]) -> Row:
        """A stored row (an `ExperimentRow`, or a row dict as the API and the store return it)."""
        item = record.model_dump() if isinstance(record, ExperimentRow) else record
        return cls(
            case_id=str(item["case_key"]),
            trial=int(item.get("trial") or 0),
            input=item.get("input"),
            expected=item.get("expected"),
            metadata=item.get("metadata") or {},
            output=item.get("output"),
            error=item.get("error"),
            scores=[
                Score(
                    s["name"],
                    s.get("value"),
                    s.get("label"),
                    s.get("rationale"),
                    s.get("metadata") or {},
                    s.get("error"),
                )
                for s in item.get("scores") or []
            ],
            latency_s=(item.get("latency_ms") or 0) / 1000,
            trace_id=item.get("trace_id"),
        )


@dataclass(frozen=True)
class ScoreOutcome:
    """What summaries and comparisons read of one score of one row."""

    case_key: str
    name: str
    value: float | None
    error: str | None


AnyRow = Row | ExperimentRow | Mapping[str, Any]


def score_outcomes(row: AnyRow) -> list[ScoreOutcome]:
    """The scores of a row of any of its three forms: the runner's `Row`, an `ExperimentRow`, or
    a row dict from the API or the store."""
    if isinstance(row, Row):
        return [ScoreOutcome(row.case_id, s.name, s.value, s.error) for s in row.scores]
    if isinstance(row, ExperimentRow):
        return [ScoreOutcome(row.case_key, s.name, s.value, s.error) for s in row.scores]
    key = str(row["case_key"])
    outcomes = []
    for score in row.get("scores") or []:
        value = score.get("value")
        outcomes.append(
            ScoreOutcome(
                key,
                str(score.get("name")),
                None if value is None else float(value),
                score.get("error") or None,
            )
        )
    return outcomes
