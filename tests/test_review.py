"""Human review through the real server on both engines: rubrics, queues, leases, blind
reviews, labels, gold labels, exports, agreement and the 404 wall between projects."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assay.store import keys as key_store
from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span


def _key(live: LiveServer, name: str, role: str, project: str | None) -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name=name, role=role, project=project)
    live.runtime._key_count = None  # no waiting for the cached "no keys yet"
    return secret


@pytest.fixture
def people(live: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    """Clients for an admin, an editor, three annotators and a viewer of project "a", and an
    annotator of project "b"."""
    roles = {
        "admin": ("admin", None),
        "ed": ("editor", "a"),
        "ann": ("annotator", "a"),
        "bob": ("annotator", "a"),
        "cy": ("annotator", "a"),
        "vic": ("viewer", "a"),
        "zed": ("annotator", "b"),
    }
    clients = {
        name: live.client(headers={"Authorization": f"Bearer {_key(live, name, role, project)}"})
        for name, (role, project) in roles.items()
    }
    try:
        yield clients
    finally:
        for client in clients.values():
            client.close()


def _traces(client: httpx.Client, project: str, count: int, *, prefix: str = "q") -> list[str]:
    ids = []
    spans_ = []
    for i in range(count):
        trace_id = new_trace_id()
        ids.append(trace_id.hex())
        spans_.append(
            span(
                trace_id,
                new_span_id(),
                f"{prefix}-{i}",
                start=1_700_000_000_000_000_000 + i * 1000,
                attributes={"input.value": f"question {i}", "output.value": f"answer {i}"},
            )
        )
    sent = client.post("/v1/traces", content=protobuf(spans_, service=project), headers=PB)
    assert sent.status_code == 200, sent.text
    return ids


def _rubric(client: httpx.Client, project: str = "a", **changes: Any) -> dict[str, Any]:
    body = {
        "name": "helpful",
        "kind": "categorical",
        "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
        "rationale": "required",
        "instructions": "Is the answer **helpful**?",
        **changes,
    }
    made = client.post(f"/api/v1/projects/{project}/rubrics", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def _queue(client: httpx.Client, rubric_ids: list[int], **changes: Any) -> dict[str, Any]:
    body = {"name": "first look", "rubrics": rubric_ids, "reviews_per_item": 1, **changes}
    made = client.post("/api/v1/projects/a/queues", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def _label(rubric_id: int, choice: str, why: str = "because") -> dict[str, Any]:
    return {"labels": [{"rubric_id": rubric_id, "choice": choice, "rationale": why}]}


def test_thin_slice_rubric_queue_traces_next_label(
    live: LiveServer, people: dict[str, httpx.Client]
) -> None:
    ed, ann = people["ed"], people["ann"]
    trace_ids = _traces(people["admin"], "a", 3)
    rubric = _rubric(ed)
    assert rubric["version"] == 1 and rubric["rationale"] == "required"
    assert ed.get(f"/api/v1/rubrics/{rubric['id']}").json()["name"] == "helpful"
    assert [r["name"] for r in ann.get("/api/v1/projects/a/rubrics").json()["items"]] == ["helpful"]
    queue = _queue(ed, [rubric["id"]])
    added = ed.post(f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": trace_ids})
    assert added.status_code == 201 and added.json() == {"added": 3, "already": 0}
    again = ed.post(f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": trace_ids[:1]})
    assert again.json() == {"added": 0, "already": 1}

    first = ann.get(f"/api/v1/queues/{queue['id']}/next")
    assert first.status_code == 200, first.text
    item = first.json()
    assert item["trace_id"] == trace_ids[0] and item["kind"] == "trace"
    assert item["content"]["input"] == "question 0" and item["content"]["output"] == "answer 0"
    assert item["rubrics"][0]["id"] == rubric["id"]
    assert item["trace_url"] == f"/p/a/traces/{trace_ids[0]}"
    # The same item again while the lease holds.
    assert ann.get(f"/api/v1/queues/{queue['id']}/next").json()["item_id"] == item["item_id"]

    missing_why = ann.post(
        f"/api/v1/queues/{queue['id']}/items/{item['item_id']}/labels",
        json={"labels": [{"rubric_id": rubric["id"], "choice": "yes"}]},
    )
    assert missing_why.status_code == 400 and "rationale" in missing_why.text
    wrong = ann.post(
        f"/api/v1/queues/{queue['id']}/items/{item['item_id']}/labels",
        json=_label(rubric["id"], "maybe"),
    )
    assert wrong.status_code == 400 and "'yes', 'no'" in wrong.text
    done = ann.post(
        f"/api/v1/queues/{queue['id']}/items/{item['item_id']}/labels",
        json=_label(rubric["id"], "yes", "it answers the question"),
    )
    assert done.status_code == 201, done.text
    assert done.json()["next"]["trace_id"] == trace_ids[1]
    # The label is a human score on the trace, authored by the reviewer, with rubric version.
    trace = ann.get(f"/api/v1/projects/a/traces/{trace_ids[0]}").json()
    labels = ann.get(f"/api/v1/queues/{queue['id']}/labels").json()["items"]
    assert len(labels) == 1
    label = labels[0]
    assert (label["reviewer"], label["rubric_id"], label["rubric_version"]) == (
        "ann",
        rubric["id"],
        1,
    )
    assert (label["label"], label["value"], label["rationale"]) == (
        "yes",
        1.0,
        "it answers the question",
    )
    assert trace["trace_id"] == trace_ids[0]

    # Viewers read but do not label.
    vic = people["vic"]
    assert vic.get(f"/api/v1/queues/{queue['id']}").json()["progress"]["done"] == 1
    assert vic.get(f"/api/v1/queues/{queue['id']}/next").status_code == 403
    refused = ann.post("/api/v1/projects/a/queues", json={"name": "x", "rubrics": [1]})
    assert refused.status_code == 403
