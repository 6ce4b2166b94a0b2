"""Trajectory scorers on recorded multi-agent traces (tests/recordings, made by
``python -m tests.recordings.record`` through a real server), on the eval runner's own trace
argument, and on a fresh recording."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.demo.traces import Clock, supervisor_run, support_run
from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers import (
    contains,
    cost_budget,
    exact_match,
    final_answer,
    latency_budget,
    no_errors,
    read_trace,
    step_budget,
    tool_args,
    tool_called,
    tool_not_called,
    tool_order,
)
from assay.sdk._state import STATE
from tests.recordings.record import SUPPORT_FAILED_SEED, SUPPORT_OK_SEED

RECORDINGS = Path(__file__).parent / "recordings"


def recorded(name: str) -> dict[str, Any]:
    return dict(json.loads((RECORDINGS / f"{name}.json").read_text()))


def run(scorer: Scorer, **context: Any) -> Any:
    return scorer.fn(**scorer.arguments(context))


def score_of(scorer: Scorer, trace: Any, **context: Any) -> Score:
    result = run(scorer, trace=trace, **context)
    if isinstance(result, list):
        [result] = result
    assert isinstance(result, Score)
    return result


# --- the supervisor and sub-agent processes (tests/agents) ---------------------------------------


def test_tools_called_across_the_process_boundary() -> None:
    # supervisor -> "call sub-agent" (tool span, supervisor process) -> sub-agent -> search
    # (tool span, sub-agent process).
    trace = recorded("agents_pair")
    assert score_of(tool_called("search"), trace).value == 1.0
    assert score_of(tool_called("search", times=1), trace).value == 1.0
    twice = score_of(tool_called("search", times=2), trace)
    assert twice.value == 0.0
    assert twice.rationale == "tool 'search' was called 1 time(s), expected 2"
    missing = score_of(tool_called("web_search"), trace)
    assert missing.value == 0.0
    assert missing.rationale == (
        "tool 'web_search' was not called; tools called: ['call sub-agent', 'search']"
    )
    assert score_of(tool_not_called("delete_account"), trace).value == 1.0
    called = score_of(tool_not_called("search"), trace)
    assert called.value == 0.0 and called.rationale == "tool 'search' was called 1 time(s)"


def test_tool_order_on_the_pair() -> None:
    trace = recorded("agents_pair")
    assert score_of(tool_order(["call sub-agent", "search"]), trace).value == 1.0
    assert score_of(tool_order(["call sub-agent", "search"], mode="exact"), trace).value == 1.0
    assert score_of(tool_order(["search"]), trace).value == 1.0
    exact = score_of(tool_order(["search"], mode="exact"), trace)
    assert exact.value == 0.0
    assert exact.rationale == (
        "call 1 was 'call sub-agent', expected 'search'; called: ['call sub-agent', 'search']"
    )
    wrong = score_of(tool_order(["search", "call sub-agent"]), trace)
    assert wrong.value == 0.0
    assert wrong.rationale == (
        "after ['search'], tool 'call sub-agent' was not called; "
        "called: ['call sub-agent', 'search']"
    )


def test_tool_args_on_the_pair() -> None:
    trace = recorded("agents_pair")
    # The SDK recorded search(query="battery regulation") as the span's input.
    assert score_of(tool_args("search", {"query": "battery regulation"}), trace).value == 1.0
    exact = tool_args("search", {"query": "battery regulation"}, match="exact")
    assert score_of(exact, trace).value == 1.0
    wrong = score_of(tool_args("search", {"query": "heat pumps", "limit": 5}), trace)
    assert wrong.value == 0.0
    assert wrong.rationale == (
        "no call of 'search' had the expected arguments; "
        "call 1: query: 'battery regulation' != 'heat pumps', limit is missing"
    )
    extra = score_of(tool_args("search", {}, match="exact"), trace)
    assert extra.value == 0.0 and extra.metadata["differences"] == [["query is not expected"]]
    absent = score_of(tool_args("lookup_order", {"customer": "x"}), trace)
    assert absent.value == 0.0 and absent.rationale == "tool 'lookup_order' was not called"


def test_final_answer_is_the_root_spans_output() -> None:
    trace = recorded("agents_pair")
    right = score_of(final_answer(exact_match()), trace, expected="result for battery regulation")
    assert right.name == "final_answer" and right.value == 1.0
    assert right.metadata["final_span"] == "supervisor"
    wrong = score_of(final_answer(), trace, expected="no result")
    assert wrong.value == 0.0 and wrong.rationale is not None
    assert wrong.rationale.startswith("output differs from expected at character 0")
    assert run(final_answer(), trace=trace, expected=None) == []  # no reference: skipped


# --- the demo's research supervisor and support agent --------------------------------------------


def test_budgets_on_the_research_supervisor() -> None:
    # supervisor: chat (plan), POST /research -> web-researcher: web_search, chat; chat (brief).
    trace = recorded("demo_supervisor")
    counted = score_of(step_budget(max_steps=4), trace)
    assert counted.value == 1.0
    assert counted.metadata == {"steps": 4, "llm_calls": 3, "tool_calls": 1}
    over = score_of(step_budget(max_steps=10, max_llm_calls=2), trace)
    assert over.value == 0.0 and over.rationale == "3 LLM calls > budget 2"
    # The server priced the same spans at ingest; the trace's total is its sum.
    cost = score_of(cost_budget(max_usd=1.0), trace)
    assert cost.value == 1.0 and cost.metadata["cost_usd"] == pytest.approx(trace["cost"])
    tight = score_of(cost_budget(max_usd=trace["cost"] / 2), trace)
    assert tight.value == 0.0 and tight.rationale is not None
    assert tight.rationale.startswith(f"cost ${trace['cost']:.6f} > budget")
    seconds = trace["duration_ns"] / 1e9
    timed = score_of(latency_budget(max_seconds=seconds), trace)
    assert timed.value == 1.0 and timed.metadata["seconds"] == pytest.approx(seconds)
    slow = score_of(latency_budget(max_seconds=seconds / 2), trace)
    assert slow.value == 0.0 and slow.rationale is not None and "slowest span" in slow.rationale
    assert score_of(final_answer(contains("Brief:")), trace).value == 1.0


def test_web_search_arguments_and_order_in_the_research_service() -> None:
    trace = recorded("demo_supervisor")
    query = {"query": "EU battery regulation"}  # input.value of the OpenInference TOOL span
    assert score_of(tool_args("web_search", query), trace).value == 1.0
    assert score_of(tool_order(["web_search"], mode="exact"), trace).value == 1.0


def test_errors_in_the_failed_support_run() -> None:
    trace = recorded("demo_support_failed")
    failed = score_of(no_errors(), trace)
    assert failed.value == 0.0
    assert failed.rationale == (
        "2 span(s) failed: support-agent: 'tool lookup_order failed'; "
        "lookup_order: 'TimeoutError: orders service did not answer within 5s'"
    )
    assert [e["span"] for e in failed.metadata["errors"]] == ["support-agent", "lookup_order"]
    assert score_of(no_errors(), recorded("demo_support_ok")).value == 1.0
    # The LLM asked for lookup_order and the tool then ran: one execution, not two.
    assert score_of(tool_called("lookup_order", times=1), trace).value == 1.0
    assert score_of(tool_args("lookup_order", {"customer": "user-1"}), trace).value == 1.0


def test_scorer_spans_and_a_judges_llm_calls_are_not_the_agents() -> None:
    # An Eval case sent to the server: eval root, the task's chat and tool, and the scorer's
    # span with the judge's own chat under it.
    trace = recorded("eval_run")
    spans = read_trace(trace)
    assert [s.type for s in spans] == ["task", "llm", "tool"]
    steps = score_of(step_budget(max_llm_calls=1), trace)
    assert steps.value == 1.0 and steps.metadata["llm_calls"] == 1
    # gpt-4o-mini, 900 in and 30 out: (900 * 0.15 + 30 * 0.60) / 1e6 USD; the judge's call
    # (counted in the stored trace's total) is not the agent's cost.
    cost = score_of(cost_budget(max_usd=1.0), trace)
    assert cost.metadata["cost_usd"] == pytest.approx((900 * 0.15 + 30 * 0.60) / 1e6)
    assert trace["cost"] > cost.metadata["cost_usd"]
    answer = score_of(final_answer(), trace, expected="Order A-1 is shipped.")
    assert answer.value == 1.0 and answer.metadata["final_span"] == "eval orders"


# --- the eval runner's own trace argument --------------------------------------------------------


def demo_task(kind: str) -> str:
    """Runs one of the demo's agents on the Eval's tracer, in this process: the scorers get
    these spans as the runner collects them, not as the server stores them."""
    tracer = STATE.tracer
    assert tracer is not None
    clock = Clock(time.time_ns())
    if kind == "research":
        supervisor_run(tracer, tracer, clock, random.Random(3))
    else:
        seed = SUPPORT_OK_SEED if kind == "support ok" else SUPPORT_FAILED_SEED
        support_run(tracer, clock, random.Random(seed), "session-1", "user-1")
    return "done"


def test_an_eval_scores_trajectories_from_the_runners_trace() -> None:
    result = assay.Eval(
        "trajectories",
        [{"input": "research"}, {"input": "support ok"}, {"input": "support failed"}],
        demo_task,
        [
            tool_called("web_search"),
            tool_called("lookup_order", times=1),
            no_errors(),
            step_budget(max_llm_calls=2),
            cost_budget(max_usd=1.0),
            final_answer(contains("Brief:")),
        ],
    ).run(send=False)
    by_input = {row.input: {s.name: s.value for s in row.scores} for row in result.rows}
    assert all(not row.error for row in result.rows)
    assert by_input["research"] == {
        "tool_called:web_search": 1.0,  # an OpenInference TOOL span the runner typed "span"
        "tool_called:lookup_order": 0.0,
        "no_errors": 1.0,
        "step_budget": 0.0,  # three LLM calls
        "cost_budget": 1.0,
        "final_answer": 1.0,
    }
    assert by_input["support ok"] == {
        "tool_called:web_search": 0.0,
        "tool_called:lookup_order": 1.0,
        "no_errors": 1.0,
        "step_budget": 1.0,
        "cost_budget": 1.0,
        "final_answer": 0.0,
    }
    assert by_input["support failed"]["no_errors"] == 0.0
    assert by_input["support failed"]["tool_called:lookup_order"] == 1.0
    research = next(row for row in result.rows if row.input == "research")
    [cost] = [s for s in research.scores if s.name == "cost_budget"]
    assert cost.metadata["cost_usd"] > 0  # priced from model and tokens, as ingest would


# --- configuration and edge cases ----------------------------------------------------------------


def test_bad_configuration_is_a_user_error() -> None:
    with pytest.raises(UserError, match="tool name"):
        tool_called("")
    with pytest.raises(UserError, match="times"):
        tool_called("x", times=-1)
    with pytest.raises(UserError, match="non-empty list"):
        tool_order([])
    with pytest.raises(UserError, match="non-empty list"):
        tool_order("search")
    with pytest.raises(UserError, match="mode"):
        tool_order(["a"], mode="loose")
    with pytest.raises(UserError, match="dict"):
        tool_args("x", ["a"])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="needs max_steps"):
        step_budget()
    with pytest.raises(UserError, match="max_usd"):
        cost_budget(max_usd=-1)


def test_no_trace_is_an_error_and_an_empty_trace_is_scored() -> None:
    with pytest.raises(ValueError, match="needs the case's trace"):
        run(no_errors(), trace=None)
    assert score_of(no_errors(), []).value == 1.0
    assert score_of(tool_called("x"), []).rationale == "tool 'x' was not called; tools called: none"
    assert score_of(latency_budget(max_seconds=1), []).value is None
    empty = score_of(final_answer(), [], expected="x")
    assert empty.value == 0.0 and empty.rationale == "the trace has no spans, so no final answer"


def test_versions_follow_parameters_and_names_name_the_tool() -> None:
    assert tool_called("a").name == "tool_called:a"
    assert tool_called("a").version == tool_called("a").version
    assert tool_called("a").version != tool_called("a", times=2).version
    assert step_budget(max_steps=3).version != step_budget(max_steps=4).version
    assert final_answer(exact_match()).version != final_answer(contains("x")).version
    assert tool_args("a", {"q": 1}, name="args").name == "args"


@pytest.mark.slow
def test_a_fresh_recording_scores_as_the_stored_one(tmp_path: Path) -> None:
    """The stored recordings are what the recorder makes today: record again through a live
    server and every scorer agrees on every trace."""
    from assay.settings import Settings
    from tests.conftest import start_server
    from tests.recordings.record import record_all

    settings = Settings(database_url=f"sqlite:///{tmp_path}/assay.db", home=tmp_path)
    live = start_server(settings)
    try:
        fresh = record_all(live, tmp_path)
    finally:
        live.stop()
    scorers = [
        tool_called("search"),
        tool_called("web_search"),
        tool_order(["call sub-agent", "search"], mode="exact"),
        tool_args("lookup_order", {"customer": "user-1"}),
        no_errors(),
        step_budget(max_steps=3),
        final_answer(contains("Brief:")),
    ]
    assert sorted(fresh) == sorted(path.stem for path in RECORDINGS.glob("*.json"))
    for name, trace in fresh.items():
        for scorer in scorers:
            again, stored = score_of(scorer, trace), score_of(scorer, recorded(name))
            assert (again.value, again.rationale) == (stored.value, stored.rationale), name
