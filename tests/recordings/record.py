"""Record the multi-agent traces the trajectory scorer tests read: real runs through the SDK or
the OpenTelemetry SDK, exported over OTLP to a real Assay server (SQLite, in a temporary
directory), and fetched back as ``GET /api/v1/traces/{id}`` answers them.

* ``agents_pair.json``: tests/agents, a supervisor process handing work over HTTP (W3C trace
  context) to a sub-agent process, both instrumented with the Assay SDK.
* ``demo_supervisor.json``, ``demo_support_ok.json``, ``demo_support_failed.json``: the demo's
  trace builders (assay.demo.traces): a research supervisor and a web-researcher service with
  GenAI and OpenInference attributes; a support agent whose order lookup succeeds, and one
  whose lookup times out.
* ``eval_run.json``: one case of an `assay.Eval` sent to the server: the case's root span, the
  task's LLM call and tool, and a scorer that calls a model itself, as an LLM judge does.

Run from the repository root: ``.venv/bin/python -m tests.recordings.record``.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider

import assay
from assay.demo.traces import Clock, _provider, supervisor_run, support_run
from assay.settings import Settings
from tests.conftest import LiveServer, free_port, start_server

HERE = Path(__file__).parent
# Seeds of random.Random for the demo's support agent: its order lookup succeeds with the
# first and times out with the second (the demo fails 15% of runs at random).
SUPPORT_OK_SEED = 1
SUPPORT_FAILED_SEED = 0


def record_agents_pair(url: str) -> str:
    """Run the supervisor and sub-agent processes; the trace id the supervisor printed."""
    port = free_port()
    sub = subprocess.Popen(
        [sys.executable, "-m", "tests.agents.sub_agent", url, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sub.stdout is not None and sub.stdout.readline().strip() == "ready"
        done = subprocess.run(
            [sys.executable, "-m", "tests.agents.supervisor", url, f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        sub.terminate()
        sub.wait(10)
    return done.stdout.strip().splitlines()[-1]


def record_demo(url: str) -> None:
    support = _provider(url, "support-agent", {})
    supervisor = _provider(url, "research-supervisor", {})
    researcher = _provider(url, "web-researcher", {})
    clock = Clock(time.time_ns())
    supervisor_run(
        supervisor.get_tracer("demo"), researcher.get_tracer("demo"), clock, random.Random(3)
    )
    for seed in (SUPPORT_OK_SEED, SUPPORT_FAILED_SEED):
        clock.advance(1000)
        support_run(support.get_tracer("demo"), clock, random.Random(seed), "session-1", "user-1")
    for provider in (support, supervisor, researcher):
        provider.force_flush(30_000)
        provider.shutdown()


def record_eval(url: str) -> str:
    provider = TracerProvider()
    assay.init("evals", url=url, tracer_provider=provider)
    try:

        @assay.traced(type="tool")
        def lookup_order(order: str) -> str:
            return "shipped"

        def task(order: str) -> str:
            with assay.span("chat gpt-4o-mini", type="llm") as llm:
                llm.log(model="gpt-4o-mini", metrics={"input_tokens": 900, "output_tokens": 30})
            return f"Order {order} is {lookup_order(order)}."

        def judge(output: str) -> float:
            with assay.span("judge chat", type="llm") as llm:
                llm.log(model="gpt-4.1", metrics={"input_tokens": 400, "output_tokens": 5})
            return 1.0 if "shipped" in output else 0.0

        result = assay.Eval(
            "orders", [{"input": "A-1", "expected": "Order A-1 is shipped."}], task, [judge]
        ).run()
        assert assay.flush(10)
    finally:
        assay.shutdown()
        provider.shutdown()
    trace_id = result.rows[0].trace_id
    assert trace_id is not None
    return trace_id


def fetch(client: httpx.Client, trace_id: str, spans: int) -> dict[str, Any]:
    """The trace once all ``spans`` have arrived (sub-agents flush on their own schedule)."""
    deadline = time.monotonic() + 30
    while True:
        answer = client.get(f"/api/v1/traces/{trace_id}")
        if answer.status_code == 200 and answer.json()["span_count"] >= spans:
            return dict(answer.json())
        assert time.monotonic() < deadline, f"trace {trace_id} did not arrive whole"
        time.sleep(0.1)


def record_all(live: LiveServer, into: Path) -> dict[str, dict[str, Any]]:
    recorded: dict[str, dict[str, Any]] = {}
    with live.client() as client:
        recorded["agents_pair"] = fetch(client, record_agents_pair(live.url), 4)
        record_demo(live.url)
        items = client.get("/api/v1/projects/demo/traces", params={"limit": 10}).json()["items"]
        by_start = sorted(items, key=lambda item: item["start_ns"])
        names = ["demo_supervisor", "demo_support_ok", "demo_support_failed"]
        assert len(by_start) == len(names), by_start
        for name, item in zip(names, by_start, strict=True):
            recorded[name] = fetch(client, item["trace_id"], item["span_count"])
        recorded["eval_run"] = fetch(client, record_eval(live.url), 5)
    for name, trace in recorded.items():
        (into / f"{name}.json").write_text(json.dumps(trace, indent=1, sort_keys=True) + "\n")
    return recorded


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(database_url=f"sqlite:///{home}/assay.db", home=Path(home))
        live = start_server(settings)
        try:
            for name in record_all(live, HERE):
                print(f"recorded {HERE / name}.json")
        finally:
            live.stop()


if __name__ == "__main__":
    main()
