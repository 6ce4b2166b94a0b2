"""Human review through the real server on both engines: rubrics, queues, leases, blind
reviews, labels, gold labels, exports, agreement and the 404 wall between projects."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
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


def _next(client: httpx.Client, queue_id: int) -> dict[str, Any] | None:
    got = client.get(f"/api/v1/queues/{queue_id}/next")
    assert got.status_code in (200, 204), got.text
    return None if got.status_code == 204 else dict(got.json())


def _submit(
    client: httpx.Client, queue_id: int, item_id: int, rubric_id: int, choice: str
) -> httpx.Response:
    return client.post(
        f"/api/v1/queues/{queue_id}/items/{item_id}/labels",
        json={**_label(rubric_id, choice, f"{choice} it is"), "next": False},
    )


def test_blind_reviews_two_per_item_a_third_gets_none_and_leases_expire(
    live: LiveServer, people: dict[str, httpx.Client]
) -> None:
    ed, ann, bob, cy = people["ed"], people["ann"], people["bob"], people["cy"]
    trace_ids = _traces(people["admin"], "a", 2)
    rubric = _rubric(ed)
    queue = _queue(ed, [rubric["id"]], reviews_per_item=2, lease_seconds=2)
    qid = queue["id"]
    ed.post(f"/api/v1/queues/{qid}/items", json={"trace_ids": trace_ids})

    a_item, b_item = _next(ann, qid), _next(bob, qid)
    assert a_item and b_item and a_item["item_id"] == b_item["item_id"]  # two reviews each
    first = a_item["item_id"]
    assert _submit(ann, qid, first, rubric["id"], "yes").status_code == 201
    # bob has not submitted: ann's label is nowhere in what bob can read
    offered = _next(bob, qid)
    assert offered is not None and offered["labels"] is None
    seen = bob.get(f"/api/v1/queues/{qid}/items/{first}").json()
    assert seen["labels"] is None and seen["my_labels"] == []
    assert bob.get(f"/api/v1/queues/{qid}/labels").json()["items"] == []
    # cy may not take the first item (one review given, one leased to bob): the second it is
    c_item = _next(cy, qid)
    assert c_item and c_item["item_id"] != first
    assert _submit(bob, qid, first, rubric["id"], "no").status_code == 201
    after = bob.get(f"/api/v1/queues/{qid}/items/{first}").json()
    assert [label["reviewer"] for label in after["labels"]] == ["ann"]
    assert [label["label"] for label in after["my_labels"]] == ["no"]
    # the first item has its two reviews: cy can never label it
    refused = _submit(cy, qid, first, rubric["id"], "yes")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "item_taken"

    # cy's lease on the second item expires: ann takes it, and then bob (two reviews)
    time.sleep(2.1)
    ann_second = _next(ann, qid)
    assert ann_second and ann_second["item_id"] == c_item["item_id"]
    bob_second = _next(bob, qid)
    assert bob_second and bob_second["item_id"] == c_item["item_id"]
    assert _next(cy, qid) is None  # both reviews leased to others
    assert _submit(ann, qid, c_item["item_id"], rubric["id"], "yes").status_code == 201
    # undo: ann's last submission comes back to her as a draft, the item is hers again
    undone = ann.post(f"/api/v1/queues/{qid}/undo").json()["item"]
    assert undone["item_id"] == c_item["item_id"]
    assert [label["label"] for label in undone["my_labels"]] == ["yes"]
    assert _submit(ann, qid, c_item["item_id"], rubric["id"], "no").status_code == 201
    assert _submit(bob, qid, c_item["item_id"], rubric["id"], "no").status_code == 201
    assert _next(ann, qid) is None and _next(cy, qid) is None
    progress = ed.get(f"/api/v1/queues/{qid}/progress").json()
    assert (progress["items"], progress["done"]) == (2, 2)
    assert {r["reviewer"]: r["submitted"] for r in progress["reviewers"]} == {"ann": 2, "bob": 2}

    # agreement: item 1 yes/no, item 2 no/no -> 50% agreement, kappa 0 (p_e = 0.5 * ...)
    agreement = ed.get(f"/api/v1/queues/{qid}/agreement").json()["rubrics"][0]
    assert agreement["n"] == 2
    assert agreement["percent_agreement"]["value"] == pytest.approx(0.5)
    assert {"low", "high", "n"} <= set(agreement["kappa"])
    assert [(p["a"], p["b"], p["n"]) for p in agreement["pairs"]] == [("ann", "bob", 2)]
    # Agreement is kept until a label changes (the quality page asks on every load): ann takes
    # her last label back and gives "yes" (item 2 yes/no, 0%), then "no" again (50%). Each
    # label replaced is a new row, which on SQLite may take the id of the one it replaced.
    for choice, expected in (("yes", 0.0), ("no", 0.5)):
        assert ann.post(f"/api/v1/queues/{qid}/undo").json()["item"]["item_id"] == c_item["item_id"]
        assert _submit(ann, qid, c_item["item_id"], rubric["id"], choice).status_code == 201
        now = ed.get(f"/api/v1/queues/{qid}/agreement").json()["rubrics"][0]
        assert now["percent_agreement"]["value"] == pytest.approx(expected)
    assert ed.get(f"/api/v1/queues/{qid}/agreement").json()["rubrics"][0] == agreement

    # adjudication: the disputed item, labels side by side; the editor sets the gold label
    disputes = ed.get(f"/api/v1/queues/{qid}/adjudication").json()["items"]
    assert [d["item_id"] for d in disputes] == [first]
    assert sorted(r["label"] for r in disputes[0]["labels"][str(rubric["id"])]) == ["no", "yes"]
    assert ann.get(f"/api/v1/queues/{qid}/adjudication").status_code == 403
    gold = ed.put(
        f"/api/v1/queues/{qid}/items/{first}/gold",
        json={"labels": [{"rubric_id": rubric["id"], "choice": "yes", "rationale": "policy"}]},
    )
    assert gold.status_code == 200, gold.text
    assert gold.json()["items"][0]["label"] == "yes"

    # exports: every label exactly once, with the gold label beside it
    lines = ed.get(f"/api/v1/queues/{qid}/export?format=jsonl").text.splitlines()
    rows = [orjson.loads(line) for line in lines]
    assert len(rows) == 4 and len({row["label_id"] for row in rows}) == 4
    assert {row["gold_label"] for row in rows if row["item_id"] == first} == {"yes"}
    table = list(
        csv.DictReader(
            io.StringIO(ed.get(f"/api/v1/rubrics/{rubric['id']}/export?format=csv").text)
        )
    )
    assert sorted(int(r["label_id"]) for r in table) == sorted(row["label_id"] for row in rows)
    assert all(r["rationale"] and r["reviewer"] and r["trace_id"] for r in table)


def test_an_annotator_of_another_project_gets_404_for_everything(
    live: LiveServer, people: dict[str, httpx.Client]
) -> None:
    ed, zed = people["ed"], people["zed"]
    trace_ids = _traces(people["admin"], "a", 1)
    rubric = _rubric(ed)
    queue = _queue(ed, [rubric["id"]])
    qid = queue["id"]
    ed.post(f"/api/v1/queues/{qid}/items", json={"trace_ids": trace_ids})
    item = _next(people["ann"], qid)
    assert item is not None
    _submit(people["ann"], qid, item["item_id"], rubric["id"], "yes")
    for method, path in [
        ("GET", f"/api/v1/rubrics/{rubric['id']}"),
        ("PUT", f"/api/v1/rubrics/{rubric['id']}"),
        ("GET", f"/api/v1/rubrics/{rubric['id']}/labels"),
        ("GET", f"/api/v1/rubrics/{rubric['id']}/export"),
        ("GET", "/api/v1/projects/a/rubrics"),
        ("GET", "/api/v1/projects/a/queues"),
        ("GET", f"/api/v1/queues/{qid}"),
        ("GET", f"/api/v1/queues/{qid}/next"),
        ("GET", f"/api/v1/queues/{qid}/items"),
        ("GET", f"/api/v1/queues/{qid}/items/{item['item_id']}"),
        ("POST", f"/api/v1/queues/{qid}/items/{item['item_id']}/labels"),
        ("GET", f"/api/v1/queues/{qid}/labels"),
        ("GET", f"/api/v1/queues/{qid}/export"),
        ("GET", f"/api/v1/queues/{qid}/agreement"),
        ("GET", f"/api/v1/queues/{qid}/progress"),
        ("POST", f"/api/v1/queues/{qid}/items"),
        ("POST", f"/api/v1/queues/{qid}/undo"),
    ]:
        body = None
        if path.endswith("/labels") and method == "POST":
            body = _label(rubric["id"], "yes")
        elif method == "PUT":
            body = {"name": "x", "kind": "text"}
        elif path.endswith("/items") and method == "POST":
            body = {"trace_ids": trace_ids}
        answer = zed.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
    # a queue of project b may not take a trace or a rubric of project a
    rubric_b = _rubric(people["admin"], "b")
    made = people["admin"].post(
        "/api/v1/projects/b/queues", json={"name": "b", "rubrics": [rubric["id"]]}
    )
    assert made.status_code == 400
    queue_b = (
        people["admin"]
        .post("/api/v1/projects/b/queues", json={"name": "b", "rubrics": [rubric_b["id"]]})
        .json()
    )
    stolen = people["admin"].post(
        f"/api/v1/queues/{queue_b['id']}/items", json={"trace_ids": trace_ids}
    )
    assert stolen.status_code == 404


def test_add_by_filter_all_or_a_sample(live: LiveServer, people: dict[str, httpx.Client]) -> None:
    ed = people["ed"]
    _traces(people["admin"], "a", 12, prefix="pick")
    _traces(people["admin"], "a", 3, prefix="other")
    queue = _queue(ed, [_rubric(ed)["id"]])
    qid = queue["id"]
    sampled = ed.post(
        f"/api/v1/queues/{qid}/items", json={"filter": {"name": "pick-1"}, "sample": 1}
    )
    assert sampled.status_code == 201 and sampled.json()["added"] == 1
    everything = ed.post(f"/api/v1/queues/{qid}/items", json={"filter": {}, "sample": 5})
    assert everything.json() == {
        "matched": 15,
        "added": 5 - everything.json()["already"],
        "already": everything.json()["already"],
    }
    rest = ed.post(f"/api/v1/queues/{qid}/items", json={"filter": {}})
    assert rest.json()["matched"] == 15
    assert ed.get(f"/api/v1/queues/{qid}").json()["progress"]["items"] == 15
    bad = ed.post(f"/api/v1/queues/{qid}/items", json={"filter": {"status": "weird"}})
    assert bad.status_code in (400, 422)
    unknown = ed.post(f"/api/v1/queues/{qid}/items", json={"filter": {"colour": "red"}})
    assert unknown.status_code == 400 and "colour" in unknown.text


def test_a_personal_key_acts_as_its_user(live: LiveServer, people: dict[str, httpx.Client]) -> None:
    from assay.services import accounts
    from assay.services.principal import Principal

    rt = live.runtime
    operator = Principal.operator()
    accounts.create_user(
        rt, operator, "maria", "a long enough password", project="a", role="annotator"
    )
    secret, record = accounts.create_personal_key(rt, operator, user="maria", project="a")
    rt._key_count = None
    ed = people["ed"]
    rubric = _rubric(ed)
    queue = _queue(ed, [rubric["id"]])
    ed.post(
        f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": _traces(people["admin"], "a", 1)}
    )
    with live.client(headers={"Authorization": f"Bearer {secret}"}) as maria:
        item = _next(maria, queue["id"])
        assert item is not None
        assert _submit(maria, queue["id"], item["item_id"], rubric["id"], "yes").status_code == 201
        assert (
            maria.post(
                "/api/v1/projects/a/queues", json={"name": "n", "rubrics": [rubric["id"]]}
            ).status_code
            == 403
        )
        assert maria.get("/api/v1/projects/b/queues").status_code == 404
    labels = ed.get(f"/api/v1/queues/{queue['id']}/labels").json()["items"]
    assert [label["reviewer"] for label in labels] == ["maria"]
    assert record["user_id"] is not None


def test_review_labels_stay_blind_on_the_trace_pages(
    live: LiveServer, people: dict[str, httpx.Client]
) -> None:
    """Another reviewer's label must not show through the trace API or the lists either:
    annotators see only their own review labels there; viewers and editors see them all."""
    ed, ann, bob = people["ed"], people["ann"], people["bob"]
    [trace_id] = _traces(people["admin"], "a", 1)
    rubric = _rubric(ed)
    queue = _queue(ed, [rubric["id"]], reviews_per_item=2)
    ed.post(f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": [trace_id]})
    item = ann.get(f"/api/v1/queues/{queue['id']}/next").json()
    sent = ann.post(
        f"/api/v1/queues/{queue['id']}/items/{item['item_id']}/labels",
        json=_label(rubric["id"], "no"),
    )
    assert sent.status_code in (200, 201), sent.text

    def labels(client: httpx.Client) -> dict[str, list[str | None]]:
        tree = client.get(f"/api/v1/traces/{trace_id}").json()
        listed = client.get("/api/v1/projects/a/traces").json()["items"]
        return {
            "trace": [s["author"] for s in tree["scores"]],
            "list": [s["author"] for t in listed for s in t["scores"]],
        }

    assert labels(bob) == {"trace": [], "list": []}
    assert labels(ann) == {"trace": ["ann"], "list": ["ann"]}
    assert labels(people["vic"]) == {"trace": ["ann"], "list": ["ann"]}
    assert labels(ed) == {"trace": ["ann"], "list": ["ann"]}
