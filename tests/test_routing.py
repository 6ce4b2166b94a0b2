"""Routing to people, on both engines, with a judge answering from the local fake model server:
a rule's actions add to a review queue what the judge could not decide, what contradicts the
end-user feedback, and a deterministic share of what it scored; each item once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from assay.services import routing
from assay.services.online import OnlineWorker
from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

PROMPT = "Question: {{input}}\nAnswer: {{output}}\nIs the answer good?"
SAMPLE_RATE = 0.3


class SayingJudge(FakeLLM):
    """Answers what the trace's text says the judge says; "error" is an HTTP 400."""

    def _received(self, path: str, body: dict[str, Any]) -> Answer | None:
        super()._received(path, body)
        found = re.search(r"judge says (\w+)", json.dumps(body.get("messages")))
        said = found.group(1) if found else "bad"
        if said == "error":
            return Answer(status=400)
        return Answer(arguments={"reasoning": f"read {said}", "choice": said})


class Clock:
    def __init__(self) -> None:
        self.now = time.time_ns() + 10**9

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def quiet(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(replace(settings, server_worker=False, egress_allow="127.0.0.1"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def judge() -> Iterator[SayingJudge]:
    server = SayingJudge().start()
    assert isinstance(server, SayingJudge)
    try:
        yield server
    finally:
        server.stop()


def drain(worker: OnlineWorker, clock: Clock) -> None:
    clock.now = max(clock.now, time.time_ns() + 10**9)
    worker.schedule_once()
    while worker.work_once():
        pass


def send(client: httpx.Client, project: str, says: list[str]) -> list[str]:
    ids, spans_ = [], []
    for i, said in enumerate(says):
        trace_id = new_trace_id()
        ids.append(trace_id.hex())
        spans_.append(
            span(
                trace_id,
                new_span_id(),
                f"case-{i}",
                start=time.time_ns(),
                attributes={"input.value": f"case {i}: judge says {said}", "output.value": "ok"},
            )
        )
    sent = client.post("/v1/traces", content=protobuf(spans_, service=project), headers=PB)
    assert sent.status_code == 200, sent.text
    return ids


def feedback(client: httpx.Client, project: str, trace_id: str, **score: Any) -> None:
    body = {"trace_id": trace_id, "name": "thumbs", "source": "human", **score}
    done = client.post(f"/api/v1/projects/{project}/scores", json=body)
    assert done.status_code == 201, done.text


def queue(client: httpx.Client, project: str, name: str) -> int:
    rubric = client.post(
        f"/api/v1/projects/{project}/rubrics", json={"name": f"ok-{name}", "kind": "pass_fail"}
    )
    assert rubric.status_code == 201, rubric.text
    made = client.post(
        f"/api/v1/projects/{project}/queues", json={"name": name, "rubrics": [rubric.json()["id"]]}
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def queued(client: httpx.Client, queue_id: int) -> list[str]:
    found = client.get(f"/api/v1/queues/{queue_id}/items", params={"limit": 1000})
    assert found.status_code == 200, found.text
    return [str(item["trace_id"]) for item in found.json()["items"]]


def make_judge(client: httpx.Client, fake: FakeLLM, project: str) -> int:
    made = client.post(
        f"/api/v1/projects/{project}/connections",
        json={
            "name": "fake",
            "provider": "openai-compatible",
            "base_url": fake.openai_url,
            "api_key": "sk-test-routing-0000",
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
            "choices": {"good": 1.0, "bad": 0.0, "tie": 0.5},
            "connection": "fake",
        },
    )
    assert evaluator.status_code == 201, evaluator.text
    return int(evaluator.json()["id"])


def test_each_trigger_routes_exactly_its_items_once(quiet: LiveServer, judge: SayingJudge) -> None:
    clock = Clock()
    worker = OnlineWorker(quiet.runtime, clock=clock, threads=1)
    with quiet.client() as client:
        evaluator_id = make_judge(client, judge, "shop")
        people = queue(client, "shop", "look at these")
        share = queue(client, "shop", "ongoing sample")
        elsewhere = queue(client, "other", "not ours")
        rule = {
            "name": "all",
            "evaluators": [evaluator_id],
            "sample_rate": 1.0,
            "delay_seconds": 0,
        }
        # A queue of another project, a trigger that does not exist, a rate above 1: refused.
        refusals: list[tuple[list[dict[str, Any]], int]] = [
            ([{"when": "undecided", "queue": elsewhere}], 400),
            ([{"when": "undecided", "queue": "no such queue"}], 400),
            ([{"when": "sometimes", "queue": people}], 422),
            ([{"when": "sample", "queue": share, "rate": 1.5}], 422),
        ]
        for actions, status in refusals:
            refused = client.post("/api/v1/projects/shop/rules", json={**rule, "actions": actions})
            assert refused.status_code == status, refused.text
        assert (
            "not a review queue of this project"
            in client.post(
                "/api/v1/projects/shop/rules",
                json={**rule, "actions": [{"when": "undecided", "queue": elsewhere}]},
            ).text
        )
        actions = [
            {"when": "undecided", "queue": people},
            {"when": "disagrees_with_feedback", "queue": "look at these"},
            {"when": "sample", "queue": share, "rate": SAMPLE_RATE},
        ]
        made = client.post("/api/v1/projects/shop/rules", json={**rule, "actions": actions})
        assert made.status_code == 201, made.text
        rule_id = made.json()["id"]
        assert made.json()["actions"][1] == {"when": "disagrees_with_feedback", "queue": people}
        assert made.json()["actions"][2]["rate"] == SAMPLE_RATE

        says = ["tie"] * 4 + ["error"] * 2 + ["good", "bad"] * 27
        ids = send(client, "shop", says)
        # Feedback before the judge scores: a thumbs-down on a "good" (disagrees), one on a
        # "bad" (agrees).
        feedback(client, "shop", ids[6], value=0.0)
        feedback(client, "shop", ids[7], value=0.0)
        drain(worker, clock)

        undecided = set(ids[:6])
        scored = [t for t, said in zip(ids, says, strict=True) if said != "error"]
        in_sample = {t for t in scored if routing.in_review_sample(t, "", SAMPLE_RATE)}
        assert 0 < len(in_sample) < len(scored)
        assert set(queued(client, share)) == in_sample
        assert set(queued(client, people)) == undecided  # no sweep yet

        # Feedback after the judge scored: a thumbs-up on a "good" agrees, a label "down"
        # on a "good" disagrees, a thumbs-up on a "bad" disagrees.
        feedback(client, "shop", ids[8], value=1.0)
        feedback(client, "shop", ids[10], label="down")
        feedback(client, "shop", ids[9], value=1.0)
        assert routing.route_feedback(quiet.runtime) == 3  # 6, 10 and 9
        disagreeing = {ids[6], ids[9], ids[10]}
        assert set(queued(client, people)) == undecided | disagreeing
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
        assert status["routed"] == {
            "undecided": 6,
            "disagrees_with_feedback": 3,
            "sample": len(in_sample),
        }

        # Never twice: the sweep again, more contradicting feedback, and a new judge version
        # scoring the same traces (a backfill) route nothing new.
        assert routing.route_feedback(quiet.runtime) == 0
        feedback(client, "shop", ids[6], value=0.0, author="someone else")
        assert routing.route_feedback(quiet.runtime) == 0
        edited = client.patch(
            f"/api/v1/evaluators/{evaluator_id}", json={"prompt": PROMPT + " Be brief."}
        )
        assert edited.status_code == 200 and edited.json()["version"] == 2
        started = client.post(f"/api/v1/rules/{rule_id}/backfill", json={})
        assert started.status_code == 202, started.text
        drain(worker, clock)
        assert routing.route_feedback(quiet.runtime) == 0
        assert sorted(queued(client, people)) == sorted(undecided | disagreeing)
        assert sorted(queued(client, share)) == sorted(in_sample)
        again = client.get(f"/api/v1/rules/{rule_id}").json()["status"]["routed"]
        assert again == status["routed"]

        # The actions are changed like any field; [] removes them.
        cleared = client.patch(f"/api/v1/rules/{rule_id}", json={"actions": []})
        assert cleared.status_code == 200 and cleared.json()["actions"] == []


def test_the_review_share_is_close_to_its_rate_and_apart_from_the_rules_sample() -> None:
    ids = [f"{i:032x}" for i in range(20_000)]
    for rate in (0.05, 0.3):
        share = sum(routing.in_review_sample(t, "", rate) for t in ids) / len(ids)
        assert abs(share - rate) < 0.01
    # Among the traces a rule sampled at 30%, the review share is still about 30%.
    from assay.services.rules import sampled

    scored = [t for t in ids if sampled(t, 0.3)]
    share = sum(routing.in_review_sample(t, "", 0.3) for t in scored) / len(scored)
    assert abs(share - 0.3) < 0.02


@pytest.mark.parametrize(
    ("value", "label", "expected"),
    [
        (1.0, None, True),
        (0.0, None, False),
        (0.5, "tie", None),
        (None, "Thumbs_Down", False),
        (None, "up", True),
        (None, "meh", None),
        (None, None, None),
    ],
)
def test_a_verdict_reads_as_pass_or_fail(
    value: float | None, label: str | None, expected: bool | None
) -> None:
    assert routing.polarity(value, label, 0.5) is expected
