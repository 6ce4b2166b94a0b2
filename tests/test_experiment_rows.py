"""One row shape from the eval runner to the store, stored in bulk on both engines; one summary
and one comparison for the runner, the API and the UI."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event

from assay.evals import (
    ExperimentRow,
    Row,
    RowScore,
    Score,
    compare,
    summarise,
    summary_dict,
)
from assay.store import experiments as experiment_store
from assay.store import projects as project_store


def _row(key: str, trial: int, exact: float | None, error: str | None = None) -> Row:
    return Row(
        case_id=key,
        trial=trial,
        input={"q": key},
        expected="yes",
        metadata={"source": "test"},
        output="yes" if exact else "no",
        scores=[Score("exact", exact, error=error)],
        latency_s=0.25,
        trace_id="ab" * 16,
    )


def test_a_row_survives_the_trip_to_the_store_and_back() -> None:
    row = _row("c1", 0, 1.0)
    record = row.to_record()
    assert record.latency_ms == 250.0 and record.scores == [RowScore(name="exact", value=1.0)]
    wire = record.model_dump(mode="json")
    assert Row.from_record(ExperimentRow.model_validate(wire)) == row
    assert Row.from_record(wire) == row
    # Values that are not JSON are stored as the SDK logs them, never lost to an exception.
    odd = Row("c2", 0, {1, 2}, None, {}, output=object()).to_record()
    assert isinstance(odd.output, str) and odd.input == [1, 2]


def test_bad_rows_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="case_key"):
        ExperimentRow.model_validate({"case_key": "", "scores": []})
    with pytest.raises(ValidationError, match="trial"):
        ExperimentRow.model_validate({"case_key": "a", "trial": -1})
    with pytest.raises(ValidationError, match="name"):
        ExperimentRow.model_validate({"case_key": "a", "scores": [{"value": 1}]})
    # A score's extra keys are kept, not dropped.
    kept = ExperimentRow.model_validate({"case_key": "a", "scores": [{"name": "x", "by": "me"}]})
    assert kept.model_dump()["scores"][0]["by"] == "me"


def test_rows_are_upserted_in_one_statement(engine: Engine) -> None:
    with engine.begin() as conn:
        project_id = project_store.ensure(conn, "rows")
        experiment = experiment_store.create(conn, project_id, {"eval_name": "bulk"})
    experiment_id = int(experiment["id"])
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    first = [_row(f"c{i}", t, float(i % 2)).to_record() for i in range(50) for t in range(2)]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.begin() as conn:
            stored = experiment_store.upsert_rows(conn, experiment_id, first)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert stored == 100
    writes = [s for s in statements if "experiment_rows" in s]
    assert len(writes) == 1 and "DELETE" not in writes[0].upper()
    # A resumed run replaces the rows it re-ran (and of two copies in one call, the later
    # one wins); the other rows stay as they were.
    again: list[ExperimentRow | dict[str, Any]] = [
        _row("c0", 0, None, error="first try").to_record(),
        _row("c0", 0, 1.0).to_record().model_dump(mode="json"),
        _row("c1", 1, 0.0).to_record(),
    ]
    with engine.begin() as conn:
        assert experiment_store.upsert_rows(conn, experiment_id, again) == 2
        assert experiment_store.upsert_rows(conn, experiment_id, []) == 0
    with engine.connect() as conn:
        rows = experiment_store.rows(conn, experiment_id)
    assert len(rows) == 100
    by_key = {(r["case_key"], r["trial"]): r for r in rows}
    assert by_key[("c0", 0)]["scores"][0]["value"] == 1.0
    assert by_key[("c0", 0)]["scores"][0]["error"] is None
    assert by_key[("c1", 1)]["scores"][0]["value"] == 0.0
    assert by_key[("c1", 0)]["scores"][0]["value"] == 1.0
    assert by_key[("c3", 1)]["input"] == {"q": "c3"} and by_key[("c3", 1)]["latency_ms"] == 250
    # The summary and the comparison read stored rows the same as the runner's.
    runner_rows = [Row.from_record(r) for r in rows]
    assert summary_dict(summarise(rows)) == summary_dict(summarise(runner_rows))
    assert compare(rows, rows) == compare(runner_rows, [r.to_record() for r in runner_rows])


def test_summaries_count_scorer_errors_by_message() -> None:
    missing = "ConfigError: this model needs the 'openai' package: pip install 'assay[openai]'"
    rows = [
        _row("a", 0, None, error=missing),
        _row("b", 0, None, error=missing),
        _row("c", 0, None, error="ValueError: no JSON in the reply"),
        _row("d", 0, 1.0),
    ]
    summary = summarise(rows)["exact"]
    assert summary.errors == 3 and summary.scored == 1
    assert summary.top_error is not None and summary.top_error.count == 2
    assert summary.top_error.message == missing
    assert summary.top_error.hint == "pip install 'assay[openai]'"
    assert [e.count for e in summary.error_messages] == [2, 1]
    assert summary.error_messages[1].hint is None
    stored = summary_dict({"exact": summary})["exact"]
    assert stored["error_messages"][0] == {
        "message": missing,
        "count": 2,
        "hint": "pip install 'assay[openai]'",
    }
    # Only errors, no values: still a summary, with the reason.
    only = summarise(rows[:2])["exact"]
    assert only.estimate is None and only.errors == 2 and only.top_error is not None


def test_the_experiment_page_says_why_a_scorer_errored(live: object) -> None:
    from tests.conftest import LiveServer

    assert isinstance(live, LiveServer)
    missing = "ConfigError: needs <openai> package: pip install 'assay[openai]'"
    rows = [
        _row("a", 0, None, error=missing).to_record().model_dump(mode="json"),
        _row("b", 0, None, error=missing).to_record().model_dump(mode="json"),
        _row("c", 0, 1.0).to_record().model_dump(mode="json"),
    ]
    with live.client() as client:
        created = client.post("/api/v1/projects/shop/experiments", json={"eval_name": "judged"})
        experiment_id = created.json()["id"]
        posted = client.post(f"/api/v1/experiments/{experiment_id}/rows", json=rows)
        assert posted.status_code == 201, posted.text
        page = client.get(f"/p/shop/experiments/{experiment_id}")
    assert page.status_code == 200
    assert "2×</span> ConfigError: needs &lt;openai&gt; package: pip install" in page.text
