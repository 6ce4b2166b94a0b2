"""Online scoring benchmark: what a rule costs ingest, and how fast a backfill scores.

    PYTHONPATH=src .venv/bin/python bench/online.py [--engine sqlite|postgres] [--traces N]
                                                   [--backfill N] [--rounds R]

1. Ingest throughput, same run: the server takes N traces (5 spans each) with no rule, and
   again with a rule that samples 10% of traces into an LLM judge on a mock model (the local
   OpenAI-compatible test server, in a process of its own as a provider would be); rounds
   alternate so both see the same machine. Each
   server first takes (and the rule scores) a warm-up batch, so one-time costs (importing
   the model client on the first judge call) are not counted as throughput.
2. Backfill: a store of B traces, a rule at sample rate 1.0, ``POST /rules/{id}/backfill``;
   timed from the request to the last score, with the server's own worker.

The server runs in this process (uvicorn in a thread), as the tests run it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from assay.settings import Settings  # noqa: E402
from tests.conftest import PG_ADMIN_DSN, LiveServer, _pg_url, start_server  # noqa: E402
from tests.fake_llm import Answer, FakeLLM  # noqa: E402
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span  # noqa: E402

VERDICT = Answer(arguments={"reasoning": "fine", "choice": "good"})
SPANS_PER_TRACE = 5
TRACES_PER_REQUEST = 100
WARM_UP_TRACES = 300


def _database(engine: str, workdir: Path) -> str:
    if engine == "sqlite":
        return f"sqlite:///{workdir}/assay-{uuid.uuid4().hex[:6]}.db"
    name = f"assay_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _pg_url(name)


def _requests(traces: int) -> list[bytes]:
    bodies = []
    for _ in range(0, traces, TRACES_PER_REQUEST):
        batch = []
        for _ in range(TRACES_PER_REQUEST):
            trace_id, root = new_trace_id(), new_span_id()
            now = time.time_ns()
            batch.append(span(trace_id, root, "agent", start=now, attributes={"input.value": "q"}))
            for i in range(SPANS_PER_TRACE - 1):
                batch.append(
                    span(
                        trace_id,
                        new_span_id(),
                        f"step {i}",
                        parent=root,
                        start=now + i,
                        attributes={"output.value": "a" * 200},
                    )
                )
        bodies.append(protobuf(batch))
    return bodies


def _server(engine: str, workdir: Path) -> LiveServer:
    settings = Settings(
        database_url=_database(engine, workdir),
        home=workdir,
        egress_allow="127.0.0.1",
        worker_poll_ms=200,
        worker_threads=8,
    )
    return start_server(settings)


class MockModel:
    """The mock model in a process of its own, as a provider is: its CPU is not the server's."""

    def __enter__(self) -> MockModel:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve-mock"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert self._process.stdout is not None
        self.openai_url = self._process.stdout.readline().decode().strip()
        if not self.openai_url:
            raise RuntimeError("the mock model process did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()  # the process ends when its stdin does
        self._process.wait(20)


def _serve_mock() -> None:
    with FakeLLM() as fake:
        fake.always(VERDICT)
        print(fake.openai_url, flush=True)
        sys.stdin.read()


def _rule(client: httpx.Client, fake: MockModel, project: str, rate: float) -> int:
    client.post(
        f"/api/v1/projects/{project}/connections",
        json={
            "name": "mock",
            "provider": "openai-compatible",
            "base_url": fake.openai_url,
            "api_key": "sk-bench",
            "max_concurrency": 8,
        },
    ).raise_for_status()
    evaluator = client.post(
        f"/api/v1/projects/{project}/evaluators",
        json={
            "name": "quality",
            "prompt": "Q: {{input}} A: {{output}}",
            "choices": {"good": 1, "bad": 0},
            "model": "gpt-4o-mini",
            "connection": "mock",
        },
    )
    evaluator.raise_for_status()
    made = client.post(
        f"/api/v1/projects/{project}/rules",
        json={
            "name": "sample",
            "evaluators": [evaluator.json()["id"]],
            "sample_rate": rate,
            "delay_seconds": 0,
        },
    )
    made.raise_for_status()
    return int(made.json()["id"])


def _ingest(client: httpx.Client, project: str, bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for body in bodies:
        sent = client.post("/v1/traces", content=body, headers={**PB, "x-assay-project": project})
        sent.raise_for_status()
    return time.perf_counter() - start


def _wait_done(client: httpx.Client, rule_id: int, wanted: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        if status["done"] + status["failed"] >= wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _warm_up(client: httpx.Client, rule_id: int | None) -> None:
    """Steady state, not start-up: both servers first take a few hundred traces, and the one
    with a rule scores them (its first judge call imports the model client) before timing."""
    _ingest(client, "bench", _requests(WARM_UP_TRACES))
    if rule_id is None:
        time.sleep(1.0)
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        if status["done"] and not status["pending"] and not status["running"]:
            return
        time.sleep(0.1)


def ingest_with_and_without_a_rule(engine: str, traces: int, rounds: int) -> None:
    spans = traces * SPANS_PER_TRACE
    results: dict[str, list[float]] = {"no rule": [], "rule at 10%": []}
    with MockModel() as fake, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for label in (
                ("no rule", "rule at 10%") if round_ % 2 == 0 else ("rule at 10%", "no rule")
            ):
                workdir = Path(tmp) / f"{label.replace(' ', '-').replace('%', '')}-{round_}"
                workdir.mkdir()
                bodies = _requests(traces)
                server = _server(engine, workdir)
                try:
                    with server.client() as client:
                        rule_id = None
                        if label != "no rule":
                            rule_id = _rule(client, fake, "bench", 0.1)
                        _warm_up(client, rule_id)
                        seconds = _ingest(client, "bench", bodies)
                finally:
                    server.stop()
                results[label].append(spans / seconds)
                print(f"  round {round_ + 1} {label:12s} {spans / seconds:9,.0f} spans/s")
    best = {label: max(values) for label, values in results.items()}
    drop = 1 - best["rule at 10%"] / best["no rule"]
    print(
        f"ingest ({engine}, {traces:,} traces x {SPANS_PER_TRACE} spans, best of {rounds}): "
        f"no rule {best['no rule']:,.0f} spans/s, rule at 10% {best['rule at 10%']:,.0f} "
        f"spans/s ({drop:+.1%} lower)"
    )


def backfill(engine: str, traces: int) -> None:
    with MockModel() as fake, tempfile.TemporaryDirectory() as tmp:
        server = _server(engine, Path(tmp))
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                _ingest(client, "bench", _requests(traces))
                rule_id = _rule(client, fake, "bench", 1.0)
                preview_start = time.perf_counter()
                preview = client.post(f"/api/v1/rules/{rule_id}/backfill", json={"preview": True})
                preview_s = time.perf_counter() - preview_start
                start = time.perf_counter()
                started = client.post(f"/api/v1/rules/{rule_id}/backfill", json={})
                queued_s = time.perf_counter() - start
                status = _wait_done(client, rule_id, traces, timeout=1800)
                total_s = time.perf_counter() - start
        finally:
            server.stop()
    print(
        f"backfill ({engine}, {traces:,} traces, mock model, 8 worker threads): preview "
        f"{preview.json()['sampled']:,} traces in {preview_s:.2f}s; queued "
        f"{started.json()['calls']:,} jobs in {queued_s:.2f}s; {status['done']:,} scored, "
        f"{status['failed']} failed in {total_s:.1f}s ({status['done'] / total_s:,.0f} "
        "scores/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--traces", type=int, default=4_000)
    parser.add_argument("--backfill", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-mock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mock:
        _serve_mock()
        return
    os.environ.setdefault("ASSAY_MODEL_CACHE", "off")
    if args.rounds:
        ingest_with_and_without_a_rule(args.engine, args.traces, args.rounds)
    if args.backfill:
        backfill(args.engine, args.backfill)


if __name__ == "__main__":
    main()
