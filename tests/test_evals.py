"""assay.Eval run locally: scoring, errors per row, summaries checked by hand, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

import assay
from assay.errors import UserError
from assay.evals._scorer import as_scorer

HERE = Path(__file__).parent


def test_summary_matches_hand_computed_interval() -> None:
    # exact on [T, F, T, T]: pass/fail, so Wilson: p = 0.75, z^2/n = 0.960365,
    # centre = (0.75 + 0.480182) / 1.960365 = 0.627527,
    # half = 1.959964 * sqrt(0.046875 + 0.060023) / 1.960365 = 0.326886 -> [0.300642, 0.954413]
    # (a t interval would say [-0.045612, 1.545612], past both ends of a pass rate).
    # The graded score [1, 0.5, 1, 1]: mean 0.875, se 0.125, t(0.975, 3) = 3.182446,
    # -> [0.477194, 1.272806], cut to [0.477194, 1.0] since the score cannot pass 1.
    data = [{"input": i, "expected": e} for i, e in [(1, 1), (2, 0), (3, 3), (4, 4)]]
    result = assay.Eval(
        "hand",
        data,
        task=lambda x: x,
        scores=[
            as_scorer(lambda output, expected: output == expected, name="exact"),
            as_scorer(lambda output, expected: 1.0 if output == expected else 0.5, name="graded"),
        ],
    ).run()
    estimate = result.summary["exact"].estimate
    assert estimate is not None and estimate.mean == pytest.approx(0.75)
    assert estimate.low == pytest.approx(0.300642, abs=1e-5)
    assert estimate.high == pytest.approx(0.954413, abs=1e-5)
    graded = result.summary["graded"].estimate
    assert graded is not None and graded.mean == pytest.approx(0.875)
    assert graded.low == pytest.approx(0.477194, abs=1e-5)
    assert graded.high == 1.0


def test_task_and_scorer_errors_are_recorded_per_row_and_the_run_completes() -> None:
    def task(x: int) -> int:
        if x == 2:
            raise ValueError("bad case")
        return x

    @assay.scorer
    def fragile(output: int) -> float:
        if output == 3:
            raise RuntimeError("scorer broke")
        return 1.0

    @assay.scorer
    def many(output: int) -> dict[str, float]:
        return {"is_odd": float(output % 2), "small": output < 3}

    result = assay.Eval("errors", [{"input": x} for x in (1, 2, 3)], task, [fragile, many]).run()
    rows = {row.input: row for row in result.rows}
    assert rows[1].error is None and rows[1].output == 1
    assert [(s.name, s.value, s.error) for s in rows[1].scores] == [
        ("fragile", 1.0, None),
        ("is_odd", 1.0, None),
        ("small", 1.0, None),
    ]
    assert rows[2].error == "ValueError: bad case" and rows[2].scores == []
    assert rows[3].scores[0].error == "RuntimeError: scorer broke"
    assert result.summary["fragile"].errors == 1 and result.summary["fragile"].scored == 1
    assert result.summary["is_odd"].estimate is not None
    assert result.summary["is_odd"].estimate.mean == pytest.approx(1.0)
    assert result.errored_rows == 1


def test_trials_are_clustered_by_case_and_thresholds_checked() -> None:
    calls: dict[int, int] = {}

    def flaky(x: int) -> int:
        calls[x] = calls.get(x, 0) + 1
        return x if (x + calls[x]) % 2 else -1  # half the trials of each case are right

    evaluation = assay.Eval(
        "trials",
        [{"input": x, "expected": x} for x in range(4)],
        flaky,
        [as_scorer(lambda output, expected: output == expected, name="exact")],
        trials=2,
        thresholds={"exact": 0.9, "missing": 0.5},
    )
    result = evaluation.run()
    estimate = result.summary["exact"].estimate
    assert estimate is not None and estimate.n == 8 and estimate.clusters == 4
    assert estimate.mean == pytest.approx(0.5)
    # each case: one pass in 2 trials -> variance 0.5; pass@2 = 1 - C(1,2)/C(2,2) = 1;
    # pass^2 = C(1,2)/C(2,2) = 0
    exact = result.summary["exact"]
    assert exact.k == 2 and exact.case_variance == pytest.approx(0.5)
    assert exact.pass_at_k is not None and exact.pass_at_k.mean == pytest.approx(1.0)
    assert exact.pass_hat_k is not None and exact.pass_hat_k.mean == pytest.approx(0.0)
    assert result.failed_thresholds == ["exact: mean 0.500 < 0.9", "missing: mean no scores < 0.5"]
    assert not result.passed


def test_async_tasks_hooks_concurrency_and_timeouts() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    async def task(x: int, hooks: assay.evals.Hooks) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        await asyncio.sleep(0.3 if x == 0 else 0.02)
        with lock:
            running -= 1
        return f"{x}:{hooks.metadata['tag']}"

    data = [assay.Case(input=x, metadata={"tag": "t"}) for x in range(10)]
    result = assay.Eval("async", data, task, max_concurrency=3, timeout=0.2).run()
    outputs = {row.input: row.output for row in result.rows}
    assert outputs[5] == "5:t"
    assert result.rows[0].error is not None and "TimeoutError" in result.rows[0].error
    assert peak <= 3

    def slow_sync(x: int) -> int:
        time.sleep(0.05)
        return x

    started = time.perf_counter()
    assay.Eval("threads", [{"input": x} for x in range(8)], slow_sync, max_concurrency=8).run()
    assert time.perf_counter() - started < 0.35  # ran side by side on worker threads


def test_scorer_signatures_and_returns_are_checked() -> None:
    with pytest.raises(UserError, match="asks for 'answer'"):
        assay.scorer(lambda answer: 1.0)
    bad_range = as_scorer(lambda output: 2.5, name="too_big")
    result = assay.Eval("range", [{"input": 1}], lambda x: x, [bad_range]).run()
    assert "need a value in [0, 1]" in (result.rows[0].scores[0].error or "")
    generated = assay.Eval("gen", ({"input": x} for x in range(3)), lambda x: x)
    assert len(generated.run().rows) == 3 and len(generated.run().rows) == 3
    with pytest.raises(UserError, match="dict with 'input'"):
        assay.Eval("bad data", [{"question": 1}], lambda x: x).run()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", "eval", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "COLUMNS": "300"},
    )


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_cli_lists_filters_and_fails_on_thresholds(tmp_path: Path) -> None:
    listed = _cli(str(HERE / "eval_files"), "--list", "--no-send")
    assert listed.returncode == 0 and listed.stdout.split() == ["math-ok", "math-bad"]
    ok = _cli(str(HERE / "eval_files"), "--filter", "math-ok", "--json", "--no-send")
    assert ok.returncode == 0, ok.stderr
    [summary] = json.loads(ok.stdout)
    assert summary["passed"] and summary["scores"]["exact"]["mean"] == 1.0
    junit = tmp_path / "junit.xml"
    failed = _cli(str(HERE / "eval_files" / "eval_math.py"), "--junit", str(junit), "--no-send")
    assert failed.returncode == 1
    assert "threshold failed" in failed.stdout and "exact: mean 0.500 < 0.9" in failed.stdout
    suites = ElementTree.parse(junit).getroot()
    bad = [s for s in suites if s.get("name") == "math-bad"][0]
    assert bad.get("failures") == "1"
    missing = _cli(str(tmp_path / "nope.py"))
    assert missing.returncode == 1 and "no such file" in missing.stderr


def test_each_case_is_one_trace_with_task_and_scorer_spans(live: object) -> None:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

    from tests.conftest import LiveServer

    assert isinstance(live, LiveServer)
    provider = TracerProvider()
    assay.init("evals", url=live.url, tracer_provider=provider)
    try:

        @assay.traced(type="tool")
        def lookup(x: int) -> int:
            with assay.span("chat", type="llm") as llm:
                llm.log(model="gpt-4o-mini", metrics={"input_tokens": 1000, "output_tokens": 10})
            return x * 10

        def task(x: int) -> int:
            return lookup(x)

        result = assay.Eval(
            "traced",
            [{"input": x, "expected": x * 10} for x in range(3)],
            task,
            [as_scorer(lambda output, expected: output == expected, name="exact")],
        ).run()
        assert assay.flush(10)
    finally:
        assay.shutdown()
        provider.shutdown()
    trace_ids = {row.trace_id for row in result.rows}
    assert len(trace_ids) == 3 and None not in trace_ids
    with httpx.Client(base_url=live.url) as client:
        tree = client.get(f"/api/v1/traces/{result.rows[0].trace_id}").json()
    [root] = tree["spans"]
    assert root["name"] == "eval traced"
    assert sorted(c["type"] for c in root["children"]) == ["scorer", "tool"]
    # The stored rows carry the tokens and cost of each case's trace.
    with httpx.Client(base_url=live.url) as client:
        stored = client.get(f"/api/v1/experiments/{result.experiment_id}/rows").json()["items"]
    assert [r["input_tokens"] for r in stored] == [1000, 1000, 1000]
    assert all(r["cost"] and r["cost"] > 0 for r in stored)


def test_runs_are_stored_compared_and_resumed(live: object) -> None:
    import httpx

    from assay.client import Client
    from tests.conftest import LiveServer

    assert isinstance(live, LiveServer)
    api = Client(live.url)
    ds = assay.dataset("arith", "exp", client=api)
    ds.insert_many([{"record_id": f"r{i}", "input": i, "expected": i * 2} for i in range(12)])
    exact = as_scorer(lambda output, expected: output == expected, name="exact")
    import os

    os.environ["ASSAY_URL"] = live.url
    try:
        # Baseline: right on every case. Candidate: wrong on cases 0..7 -> a real regression.
        first = assay.Eval(
            "arith",
            assay.dataset("arith", "exp", client=api),
            lambda x: x * 2,
            [exact],
            project="exp",
        ).run()
        second = assay.Eval(
            "arith",
            assay.dataset("arith", "exp", client=api),
            lambda x: x * 2 if x >= 8 else -1,
            [exact],
            project="exp",
        ).run()
        assert first.experiment_id and second.experiment_id
        with httpx.Client(base_url=live.url) as client:
            stored = client.get(f"/api/v1/experiments/{first.experiment_id}").json()
        assert stored["status"] == "complete" and stored["dataset_version"] == 1
        assert stored["metadata"]["scorers"][0]["name"] == "exact"
        assert stored["summary"]["exact"]["mean"] == 1.0
        # No assay.init(): the run still stores each case's trace with the experiment's
        # server and project, so every row's trace link leads somewhere.
        with httpx.Client(base_url=live.url) as client:
            listed = client.get("/api/v1/projects/exp/traces", params={"limit": 100}).json()
        in_project = {t["trace_id"]: t for t in listed["items"]}
        for row in first.rows:
            assert row.trace_id in in_project
            assert in_project[row.trace_id]["name"] == "eval arith"
        comparison = second.comparison
        assert comparison is not None and comparison["baseline"] == first.experiment_id
        score = comparison["scores"]["exact"]
        assert (score["improved"], score["regressed"], score["unchanged"]) == (0, 8, 4)
        assert score["delta"] == pytest.approx(-8 / 12) and score["test"] == "mcnemar"
        # McNemar exact: b=8, c=0 -> p = 2 * 0.5**8 = 0.0078125
        assert score["p_value"] == pytest.approx(0.0078125) and comparison["significant_regression"]
        assert comparison["cases"][0]["delta"] == -1.0

        # A run that stops half-way is resumed: only the missing rows run again.
        calls: list[int] = []

        def interrupted(x: int) -> int:
            calls.append(x)
            if x == 5:
                raise KeyboardInterrupt
            return x * 2

        with pytest.raises(KeyboardInterrupt):
            assay.Eval(
                "resumable",
                [{"input": x, "expected": x * 2} for x in range(10)],
                interrupted,
                [exact],
                project="exp",
                max_concurrency=1,
            ).run()
        with httpx.Client(base_url=live.url) as client:
            stored = client.get(
                "/api/v1/projects/exp/experiments", params={"eval_name": "resumable"}
            ).json()["items"]
        assert stored[0]["status"] == "incomplete"
        ran_before = set(calls)
        calls.clear()

        def double(x: int) -> int:
            calls.append(x)
            return x * 2

        resumed = assay.Eval(
            "resumable",
            [{"input": x, "expected": x * 2} for x in range(10)],
            double,
            [exact],
            project="exp",
        ).run(resume=True)
        assert set(calls) == set(range(10)) - (ran_before - {5})
        assert resumed.experiment_id == stored[0]["id"] and len(resumed.rows) == 10
        assert resumed.summary["exact"].estimate is not None
        assert resumed.summary["exact"].estimate.mean == 1.0
    finally:
        del os.environ["ASSAY_URL"]


def test_pytest_plugin_fails_a_test_below_threshold(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import assay

        def good(output, expected):
            return output == expected

        def test_passes(assay_eval):
            result = assay_eval(assay.Eval("ok", [{"input": 1, "expected": 1}], lambda x: x,
                                           [good], thresholds={"good": 1.0}))
            assert result.summary["good"].scored == 1

        def test_fails(assay_eval):
            assay_eval(assay.Eval("bad", [{"input": 1, "expected": 2}], lambda x: x,
                                  [good], thresholds={"good": 0.9}))
        """
    )
    # The plugin is registered through the package's pytest11 entry point.
    outcome = pytester.runpytest_subprocess()
    outcome.assert_outcomes(passed=1, failed=1)
    outcome.stdout.fnmatch_lines(
        ["*eval 'bad' failed its thresholds:*", "*good: mean 0.000 < 0.9*"]
    )


def test_transient_task_errors_are_retried_others_are_not() -> None:
    attempts: dict[int, int] = {}

    class RateLimitError(Exception):
        pass

    def task(x: int) -> int:
        attempts[x] = attempts.get(x, 0) + 1
        if x == 0 and attempts[x] < 3:
            raise RateLimitError("slow down")
        if x == 1:
            raise RateLimitError("always")
        if x == 2:
            raise KeyError("not transient")
        return x

    result = assay.Eval("retry", [{"input": x} for x in range(3)], task, retries=2).run()
    rows = {row.input: row for row in result.rows}
    assert rows[0].error is None and attempts[0] == 3
    assert rows[1].error == "RateLimitError: always" and attempts[1] == 3
    assert rows[2].error == "KeyError: 'not transient'" and attempts[2] == 1


def test_an_eval_killed_mid_run_resumes_only_missing_rows(live: object) -> None:
    import os
    import signal

    import httpx

    from tests.conftest import LiveServer

    assert isinstance(live, LiveServer)
    env = {**os.environ, "ASSAY_URL": live.url}
    proc = subprocess.Popen([sys.executable, str(HERE / "eval_files" / "killable.py")], env=env)
    stored: list[dict[str, object]] = []
    with httpx.Client(base_url=live.url) as client:
        deadline = time.monotonic() + 60
        while len(stored) < 30:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
            found = (
                client.get("/api/v1/projects/kill/experiments").json()["items"]
                if (client.get("/api/v1/projects").json()["items"])
                else []
            )
            if found:
                stored = client.get(f"/api/v1/experiments/{found[0]['id']}/rows").json()["items"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored = client.get(f"/api/v1/experiments/{found[0]['id']}/rows").json()["items"]
    already = {row["input"] for row in stored}
    assert 30 <= len(already) < 200
    ran: list[int] = []
    os.environ["ASSAY_URL"] = live.url

    def same(x: int) -> int:
        ran.append(x)
        return x

    try:
        result = assay.Eval(
            "killable",
            [{"input": x, "expected": x} for x in range(200)],
            same,
            [lambda output, expected: output == expected],
            project="kill",
        ).run(resume=True)
    finally:
        del os.environ["ASSAY_URL"]
    assert sorted(ran) == sorted(set(range(200)) - already)
    assert result.experiment_id == found[0]["id"] and len(result.rows) == 200


def test_scorers_can_read_the_cases_trace_even_without_a_server() -> None:
    from assay.sdk._state import STATE

    assert STATE.tracer is None

    @assay.traced(type="tool")
    def search(query: str) -> list[str]:
        return [query.upper()]

    def agent(question: str) -> str:
        if "search" in question:
            return search(question)[0]
        return "no tool"

    @assay.scorer
    def used_search(trace: list[dict[str, object]]) -> bool:
        return any(
            span["type"] == "tool" and str(span["name"]).endswith("search") for span in trace
        )

    @assay.scorer
    def steps(trace: list[dict[str, object]]) -> float:
        return min(1.0, len(trace) / 2)

    result = assay.Eval(
        "trajectory",
        [{"input": "please search this"}, {"input": "just answer"}],
        agent,
        [used_search, steps],
    ).run(send=False)
    by_input = {row.input: {s.name: s.value for s in row.scores} for row in result.rows}
    assert by_input["please search this"] == {"used_search": 1.0, "steps": 0.5}
    assert by_input["just answer"] == {"used_search": 0.0, "steps": 0.0}
    assert STATE.tracer is None  # the private tracer is gone after the run


def test_run_works_inside_a_running_event_loop() -> None:
    # As in a Jupyter cell: the caller's thread already runs a loop, and asyncio.run would
    # refuse to nest. The run goes on a thread of its own and its result comes back.
    import asyncio

    def identity(x: int) -> int:
        return x

    evaluation = assay.Eval(
        "in-a-loop",
        [{"input": i, "expected": i} for i in range(3)],
        identity,
        [as_scorer(lambda output, expected: output == expected, name="exact")],
    )

    async def notebook_cell() -> float | None:
        result = evaluation.run(send=False)
        estimate = result.summary["exact"].estimate
        return estimate.mean if estimate else None

    assert asyncio.run(notebook_cell()) == 1.0


POLITE_EVAL = """
import assay
from assay.errors import ConfigError


@assay.scorer
def polite(output: str) -> float:
    raise ConfigError("this model needs the 'openai' package: pip install 'assay[openai]'")


@assay.scorer
def short(output: str) -> float:
    if output == "b":
        raise ValueError("[bold]too[/] long")
    return 1.0


assay.Eval(
    "polite",
    data=[{"input": "a"}, {"input": "b"}],
    task=lambda text: text,
    scores=[polite, short],
    thresholds={"polite": 0.5},
)
"""


def test_cli_says_why_a_scorer_errored(tmp_path: Path) -> None:
    (tmp_path / "eval_polite.py").write_text(POLITE_EVAL)
    table = _cli(str(tmp_path), "--no-send")
    assert table.returncode == 1, table.stderr
    out = " ".join(table.stdout.split())  # the table wraps long cells over lines
    assert "2: ConfigError: this model needs the 'openai' package: pip install 'assay[openai]'" in (
        out
    )
    # A message is shown as written, never read as rich markup.
    assert "1: ValueError: [bold]too[/] long" in out
    assert "threshold failed polite: mean no scores" in out
    as_json = _cli(str(tmp_path), "--no-send", "--json")
    [result] = json.loads(as_json.stdout)
    polite = result["scores"]["polite"]
    assert polite["errors"] == 2 and polite["n"] == 0 and polite["mean"] is None
    assert polite["error_messages"] == [
        {
            "message": "ConfigError: this model needs the 'openai' package: "
            "pip install 'assay[openai]'",
            "count": 2,
            "hint": "pip install 'assay[openai]'",
        }
    ]
    assert result["scores"]["short"]["error_messages"][0]["count"] == 1
