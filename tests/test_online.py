"""Online scoring: connections, evaluators, rules and the job queue, through the real server
and judges answering from the local fake model server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

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
