"""Online scoring: connections, evaluators, rules and the job queue, through the real server
and judges answering from the local fake model server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.services.rules import sampled
from assay.settings import Settings
from assay.store import online as online_store
from tests.conftest import LiveServer, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

SOURCE = Path(__file__).parent.parent / "src"
SECRET = "sk-test-0123456789abcdefWXYZ"
VERDICT = Answer(arguments={"reasoning": "It answers the question.", "choice": "good"})
PROMPT = "Question: {{input}}\nAnswer: {{output}}\nIs the answer good?"


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        server.always(VERDICT)
        yield server


@pytest.fixture
def online(settings: Settings) -> Iterator[LiveServer]:
    """A live server whose worker polls quickly and may call the fake model on loopback."""
    server = start_server(replace(settings, egress_allow="127.0.0.1", worker_poll_ms=50))
    try:
        yield server
    finally:
        server.stop()


def send_trace(client: httpx.Client, project: str, question: str = "2+2?") -> str:
    trace_id = new_trace_id()
    root = span(
        trace_id,
        new_span_id(),
        "agent",
        start=time.time_ns(),
        attributes={"input.value": question, "output.value": "4"},
    )
    sent = client.post(
        "/v1/traces", content=protobuf([root]), headers={**PB, "x-assay-project": project}
    )
    assert sent.status_code == 200, sent.text
    return trace_id.hex()


def make_judge_rule(client: httpx.Client, fake: FakeLLM, project: str, **rule: Any) -> int:
    made = client.post(
        f"/api/v1/projects/{project}/connections",
        json={
            "name": "fake",
            "provider": "openai-compatible",
            "base_url": fake.openai_url,
            "api_key": SECRET,
            "default_model": "gpt-4o-mini",
        },
    )
    assert made.status_code == 201, made.text
    evaluator = client.post(
        f"/api/v1/projects/{project}/evaluators",
        json={
            "name": "quality",
            "kind": "judge",
            "prompt": PROMPT,
            "choices": {"good": 1.0, "bad": 0.0},
            "model": "gpt-4o-mini",
            "connection": "fake",
        },
    )
    assert evaluator.status_code == 201, evaluator.text
    body = {
        "name": "all",
        "evaluators": [evaluator.json()["id"]],
        "filter": {},
        "sample_rate": 1.0,
        "delay_seconds": 0,
        **rule,
    }
    created = client.post(f"/api/v1/projects/{project}/rules", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_rule_scores_a_new_trace_through_the_real_server(
    online: LiveServer, fake: FakeLLM
) -> None:
    with online.client() as client:
        rule_id = make_judge_rule(client, fake, "shop")
        trace_id = send_trace(client, "shop")

        def scored() -> list[dict[str, Any]]:
            trace = client.get(f"/api/v1/projects/shop/traces/{trace_id}").json()
            return [s for s in trace.get("scores", []) if s["name"] == "quality"]

        [score] = wait_for(scored)
        assert score["value"] == 1.0 and score["label"] == "good"
        assert score["source"] == "llm" and score["rationale"] == "It answers the question."
        assert score["metadata"]["evaluator_version"] == 1
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        assert status["done"] == 1 and status["matched"] == 1 and status["sampled"] == 1
        assert status["pending"] == 0 and status["failed"] == 0 and status["paused"] is False
        # The prompt went to the fake model, rendered from the trace.
        [(path, body)] = fake.requests
        assert path == "/v1/chat/completions" and "2+2?" in str(body["messages"])
        # The judge's call is traced in the project's judges project, with tokens.
        judged = wait_for(
            lambda: client.get("/api/v1/projects/shop.judges/traces").json().get("items")
        )
        assert judged[0]["total_tokens"] > 0


# --- the queue: sampling, racing workers, kill -9 -----------------------------------------------


class SlowFakeLLM(FakeLLM):
    """Answers one request at a time, 10 ms each: a run long enough to kill a worker in."""

    def _received(self, path: str, body: dict[str, Any]) -> Answer | None:
        time.sleep(0.01)
        return super()._received(path, body)


def _worker(settings: Settings, home: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SOURCE),
        "ASSAY_DATABASE_URL": settings.resolved_database_url(),
        "ASSAY_HOME": str(home),
        "ASSAY_EGRESS_ALLOW": "127.0.0.1",
        "ASSAY_WORKER_LEASE_SECONDS": "3",
        "ASSAY_WORKER_POLL_MS": "100",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "assay.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _scores_by_trace(live: LiveServer) -> Counter[str]:
    with live.runtime.read() as conn:
        return online_store.score_counts(conn)


def _send_many(client: httpx.Client, project: str, count: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 100):
        batch = []
        for _ in range(min(100, count - start)):
            trace_id = new_trace_id()
            ids.append(trace_id.hex())
            batch.append(
                span(
                    trace_id,
                    new_span_id(),
                    "agent",
                    start=time.time_ns(),
                    attributes={"input.value": "q", "output.value": "a"},
                )
            )
        sent = client.post(
            "/v1/traces", content=protobuf(batch), headers={**PB, "x-assay-project": project}
        )
        assert sent.status_code == 200
    return ids


@pytest.mark.slow
def test_half_sampled_traces_are_each_scored_once_by_racing_workers_one_killed(
    settings: Settings, tmp_path: Path, dialect: str
) -> None:
    server = start_server(replace(settings, server_worker=False, egress_allow="127.0.0.1"))
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with SlowFakeLLM() as fake, server.client() as client:
            fake.always(VERDICT)
            rule_id = make_judge_rule(client, fake, "shop", sample_rate=0.5)
            traces = _send_many(client, "shop", 400)
            wanted = {t for t in traces if sampled(t, 0.5)}
            assert 150 < len(wanted) < 250
            # Two workers race on PostgreSQL; SQLite has one writer, so one worker.
            racing = 2 if dialect == "postgresql" else 1
            workers = [_worker(settings, tmp_path) for _ in range(racing)]

            def done() -> int:
                return int(client.get(f"/api/v1/rules/{rule_id}").json()["status"]["done"])

            wait_for(lambda: done() >= 30, timeout=60)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            workers.append(_worker(settings, tmp_path))
            wait_for(lambda: done() == len(wanted), timeout=120)
            time.sleep(0.5)  # a duplicate would show up now
            counts = _scores_by_trace(server)
            assert set(counts) == wanted
            assert set(counts.values()) == {1}
            status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
            assert status["matched"] == 400 and status["sampled"] == len(wanted)
            assert status["failed"] == 0 and status["pending"] == 0
            assert status["running"] == 0
            # Extra calls are only those of the killed worker's four threads (answered after
            # it died, then made again by the worker that took the jobs over).
            assert len(wanted) <= len(fake.requests) <= len(wanted) + 8
    finally:
        for process in workers:
            if process.poll() is None:
                process.terminate()
                process.wait(20)
        server.stop()
