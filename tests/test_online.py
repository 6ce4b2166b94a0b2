"""Online scoring: connections, evaluators, rules and the job queue, through the real server
and judges answering from the local fake model server."""

from __future__ import annotations

import logging
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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from assay.services import rules
from assay.services.egress import EgressPolicy, EgressRefused
from assay.services.online import OnlineWorker
from assay.services.principal import Principal
from assay.services.rules import sampled
from assay.settings import Settings
from assay.store import online as online_store
from tests.conftest import LiveServer, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

OPERATOR = Principal.operator()
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
        # Long enough that a live worker's batch ends inside its lease on a loaded machine (a
        # lapsed lease lets a second worker call the model again: at-least-once, by design).
        "ASSAY_WORKER_LEASE_SECONDS": "6",
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


# --- budgets, retries, versions: the worker in this process, on an injected clock ---------------

DAY_NS = 86_400 * 10**9
#: What one call of the fake model costs at gpt-4o-mini's prices (1200 in, 1024 cached, 40 out).
CALL_COST = 0.0001272


class Clock:
    def __init__(self) -> None:
        self.now = time.time_ns() + 10**9

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def quiet(settings: Settings) -> Iterator[LiveServer]:
    """A live server without its own worker: the test drives one on its clock."""
    server = start_server(replace(settings, server_worker=False, egress_allow="127.0.0.1"))
    try:
        yield server
    finally:
        server.stop()


def drain(worker: OnlineWorker) -> int:
    if isinstance(worker.clock, Clock):
        # Past the traces just sent, however slowly a loaded machine stored them.
        worker.clock.now = max(worker.clock.now, time.time_ns() + 10**9)
    worker.schedule_once()
    count = 0
    while worker.work_once():
        count += 1
    return count


def test_the_budget_stops_a_rule_at_the_cap_and_it_resumes_the_next_day(
    quiet: LiveServer, fake: FakeLLM
) -> None:
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    with quiet.client() as client:
        rule_id = make_judge_rule(client, fake, "shop", daily_budget_usd=0.0005)
        for _ in range(10):
            send_trace(client, "shop")
        drain(worker)
        status = rules.get_rule(quiet.runtime, OPERATOR, rule_id, at_ns=clock.now)["status"]
        # Stopped at the cap, past it by less than one call.
        assert 0.0005 <= status["spend_today_usd"] < 0.0005 + CALL_COST
        assert status["done"] == 4 and status["pending"] == 6
        assert status["paused"] is True and status["paused_reason"] == "paused: daily budget"
        assert client.get(f"/api/v1/rules/{rule_id}").json()["status"]["paused_reason"] == (
            "paused: daily budget"
        )
        clock.now += DAY_NS
        status = rules.get_rule(quiet.runtime, OPERATOR, rule_id, at_ns=clock.now)["status"]
        assert status["paused"] is False and status["spend_today_usd"] == 0.0
        drain(worker)
        status = rules.get_rule(quiet.runtime, OPERATOR, rule_id, at_ns=clock.now)["status"]
        assert status["done"] == 8 and status["paused_reason"] == "paused: daily budget"


def test_a_rule_filter_with_an_unknown_key_is_refused_not_matching_everything(
    quiet: LiveServer, fake: FakeLLM
) -> None:
    """``tags`` (the traces list says ``tag``) used to be ignored: the rule then judged every
    trace of the project, its own judges' traces included."""
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    with quiet.client() as client:
        rule_id = make_judge_rule(
            client, fake, "shop", name="support only", filter={"tag": ["support"]}
        )
        evaluators = client.get(f"/api/v1/rules/{rule_id}").json()["evaluators"]
        refused = client.post(
            "/api/v1/projects/shop/rules",
            json={"name": "typo", "evaluators": evaluators, "filter": {"tags": ["support"]}},
        )
        assert refused.status_code == 400 and "did you mean 'tag'" in refused.text
        names = [r["name"] for r in client.get("/api/v1/projects/shop/rules").json()["items"]]
        assert names == ["support only"]
        automation = client.post(
            "/api/v1/projects/shop/automations",
            json={
                "name": "a",
                "filter": {"tags": "x"},
                "schedule": "daily",
                "target": {"dataset": "d"},
            },
        )
        assert automation.status_code == 400 and "'tags'" in automation.text
        tagged = new_trace_id()
        root = span(
            tagged,
            new_span_id(),
            "agent",
            start=time.time_ns(),
            attributes={"input.value": "2+2?", "output.value": "4", "tag.tags": ["support"]},
        )
        sent = client.post(
            "/v1/traces", content=protobuf([root]), headers={**PB, "x-assay-project": "shop"}
        )
        assert sent.status_code == 200, sent.text
        send_trace(client, "shop", "untagged")
        assert drain(worker) == 1
        judged = client.get(f"/api/v1/projects/shop/traces/{tagged.hex()}").json()
        assert [s["name"] for s in judged["scores"]] == ["quality"], judged
        status = rules.get_rule(quiet.runtime, OPERATOR, rule_id, at_ns=clock.now)["status"]
        assert (status["done"], status["pending"]) == (1, 0)


@pytest.mark.parametrize("failure", [500, 429])
def test_a_failing_provider_shows_retrying_then_failed_with_the_message(
    quiet: LiveServer, fake: FakeLLM, failure: int
) -> None:
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    fake.always(Answer(status=failure))
    with quiet.client() as client:
        rule_id = make_judge_rule(client, fake, "shop")
        send_trace(client, "shop")
        drain(worker)
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        assert status["retrying"] == 1 and status["pending"] == 1 and status["done"] == 0
        [error] = status["last_errors"]
        assert f"HTTP {failure}" in error["last_error"] and "attempt 1 of 5" in error["last_error"]
        for _ in range(5):
            clock.now += 600 * 10**9  # past the longest back-off
            drain(worker)
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        assert status["failed"] == 1 and status["pending"] == 0 and status["retrying"] == 0
        assert "gave up after 5 attempts" in status["last_errors"][0]["last_error"]
        assert len(fake.requests) == 5


def test_an_edited_evaluator_is_a_new_version_and_scores_keep_theirs(
    quiet: LiveServer, fake: FakeLLM
) -> None:
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    with quiet.client() as client:
        rule_id = make_judge_rule(client, fake, "shop")
        [evaluator_id] = client.get(f"/api/v1/rules/{rule_id}").json()["evaluators"]
        first = send_trace(client, "shop")
        drain(worker)
        edited = client.patch(
            f"/api/v1/evaluators/{evaluator_id}", json={"prompt": PROMPT + " Be strict."}
        )
        assert edited.status_code == 200 and edited.json()["version"] == 2
        same = client.patch(
            f"/api/v1/evaluators/{evaluator_id}", json={"prompt": PROMPT + " Be strict."}
        )
        assert same.json()["version"] == 2  # nothing changed, no new version
        second = send_trace(client, "shop")
        drain(worker)
        found = client.get(f"/api/v1/evaluators/{evaluator_id}").json()
        assert [v["version"] for v in found["versions"]] == [2, 1]
        hashes = {v["version"]: v["version_hash"] for v in found["versions"]}
        for trace_id, version in ((first, 1), (second, 2)):
            [score] = client.get(f"/api/v1/projects/shop/traces/{trace_id}").json()["scores"]
            assert score["metadata"]["evaluator_version"] == version
            assert score["metadata"]["version_hash"] == hashes[version]
        # Scores are filtered like any score.
        listed = client.get("/api/v1/projects/shop/traces", params={"score": "quality"}).json()
        assert {t["trace_id"] for t in listed["items"]} == {first, second}


def test_try_on_a_trace_renders_and_judges_without_saving(quiet: LiveServer, fake: FakeLLM) -> None:
    with quiet.client() as client:
        make_judge_rule(client, fake, "shop")
        trace_id = send_trace(client, "shop", question="What is the capital of France?")
        tried = client.post(
            "/api/v1/projects/shop/evaluators/try",
            json={
                "trace_id": trace_id,
                "prompt": "Q: {{input}} A: {{output}}",
                "choices": {"good": 1, "bad": 0},
                "connection": "fake",
            },
        )
        assert tried.status_code == 200, tried.text
        result = tried.json()
        assert "Q: What is the capital of France? A: 4" in result["prompt"][0]["content"]
        assert result["label"] == "good" and result["rationale"] == "It answers the question."
        assert result["cost"] == pytest.approx(CALL_COST)
        trace = client.get(f"/api/v1/projects/shop/traces/{trace_id}").json()
        assert trace["scores"] == []


# --- keys and egress ------------------------------------------------------------------------------


class RedirectingLLM(FakeLLM):
    """A model server that sends every call on to the cloud metadata address."""

    def app(self) -> Starlette:
        async def elsewhere(request: Request) -> Response:
            return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=307)

        return Starlette(routes=[Route("/v1/chat/completions", elsewhere, methods=["POST"])])


def test_the_key_never_leaves_and_moving_the_url_needs_it(
    quiet: LiveServer, fake: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    seen: list[str] = []
    with quiet.client(event_hooks={"response": [lambda r: seen.append(r.read().decode())]}) as c:
        rule_id = make_judge_rule(c, fake, "shop")
        send_trace(c, "shop")
        drain(worker)
        [listed] = c.get("/api/v1/projects/shop/connections").json()["items"]
        assert listed["key_last4"] == "WXYZ" and listed["has_key"] is True
        moved = c.patch(f"/api/v1/connections/{listed['id']}", json={"base_url": fake.url + "/x"})
        assert moved.status_code == 400 and "API key again" in moved.json()["error"]["message"]
        renamed = c.patch(f"/api/v1/connections/{listed['id']}", json={"default_model": "m2"})
        assert renamed.status_code == 200
        rekeyed = c.patch(
            f"/api/v1/connections/{listed['id']}",
            json={"base_url": fake.openai_url, "api_key": SECRET},
        )
        assert rekeyed.status_code == 200
        c.get(f"/api/v1/rules/{rule_id}")
        judged = c.get("/api/v1/projects/shop.judges/traces").json()["items"]
        assert judged
        for item in judged:
            c.get(f"/api/v1/projects/shop.judges/traces/{item['trace_id']}")
    # The key went to the model server, and nowhere else.
    assert fake.requests
    assert all(SECRET not in text for text in seen)
    assert SECRET not in caplog.text
    with quiet.runtime.read() as conn:
        assert SECRET not in str(online_store.list_connections(conn, 1))
        assert SECRET not in str(online_store.connection_secret(conn, listed["id"]))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1",
        "http://169.254.169.254/v1",
        "http://10.1.2.3/v1",
        "http://192.168.0.10:8000/v1",
        "http://[::1]:8000/v1",
        "http://localhost:11434/v1",
    ],
)
def test_private_addresses_are_refused_unless_allowed(live: LiveServer, url: str) -> None:
    with live.client() as client:
        refused = client.post(
            "/api/v1/projects/shop/connections",
            json={"name": "x", "provider": "openai-compatible", "base_url": url, "api_key": "k"},
        )
        assert refused.status_code == 400
        assert "ASSAY_EGRESS_ALLOW" in refused.json()["error"]["message"]


def test_the_policy_checks_addresses_after_resolution() -> None:
    def to_loopback(_host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    strict = EgressPolicy.from_setting("", resolve=to_loopback)
    with pytest.raises(EgressRefused, match="resolves to 127.0.0.1"):
        strict.addresses("api.openai.com", 443)
    with pytest.raises(EgressRefused, match="not a known provider host"):
        strict.addresses("example.com", 443)
    allowed = EgressPolicy.from_setting("10.0.0.0/8, ollama.internal", resolve=to_loopback)
    assert allowed.addresses("10.2.3.4", 80) == ["10.2.3.4"]
    assert allowed.addresses("ollama.internal", 80) == ["127.0.0.1"]
    with pytest.raises(EgressRefused):
        allowed.addresses("169.254.169.254", 80)


def test_a_redirect_to_the_metadata_address_is_refused(quiet: LiveServer) -> None:
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    with RedirectingLLM() as redirecting, quiet.client() as client:
        rule_id = make_judge_rule(client, redirecting, "shop")
        send_trace(client, "shop")
        drain(worker)
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        assert status["failed"] == 1 and status["retrying"] == 0
        assert "169.254.169.254" in status["last_errors"][0]["last_error"]
        assert "not allowed" in status["last_errors"][0]["last_error"]


# --- pushing judges from code ---------------------------------------------------------------------

JUDGE_FILE = """
import assay

quality = assay.judge(
    "quality",
    "Question: {{input}}\\nAnswer: {{output}}\\nIs the answer good?",
    {"good": 1.0, "bad": 0.0},
    model="openai/gpt-4o-mini",
)
"""


def test_a_judge_pushed_from_code_has_the_same_version_on_the_server(
    live: LiveServer, tmp_path: Path
) -> None:
    import assay

    made = assay.judge("quality", PROMPT, {"good": 1.0, "bad": 0.0}, model="openai/gpt-4o-mini")
    stored = made.push("shop", url=live.url)
    assert stored["version"] == 1 and stored["version_hash"] == made.version
    assert made.push("shop", url=live.url)["version"] == 1  # unchanged: no new version
    edited = assay.judge(
        "quality", PROMPT + "!", {"good": 1.0, "bad": 0.0}, model="openai/gpt-4o-mini"
    )
    again = edited.push("shop", url=live.url)
    assert again["version"] == 2 and again["version_hash"] == edited.version
    # The file form: `assay evaluators push FILE` stores the same definition.
    path = tmp_path / "judges.py"
    path.write_text(JUDGE_FILE)
    done = subprocess.run(
        [sys.executable, "-m", "assay.cli", "evaluators", "push", str(path), "-p", "other"],
        env={**os.environ, "PYTHONPATH": str(SOURCE), "ASSAY_URL": live.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with live.client() as client:
        [pushed] = client.get("/api/v1/projects/other/evaluators").json()["items"]
    assert pushed["version_hash"] == made.version
