"""Automations on both engines: traces matching a filter added to a review queue or a dataset on
a cadence or as they arrive, deduplicated, capped, with a run history that shows failures.

The server's own workers are off (the tests run the due automations themselves, with a clock
of their choosing); traces go in through OTLP and scores through the REST API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from assay.services import automations
from assay.services.principal import Principal
from assay.settings import Settings
from assay.store import keys as key_store
from assay.store.tables import automations as automation_table
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

OPERATOR = Principal.operator()
HOUR = automations.HOUR_NS
DAY = automations.DAY_NS
#: 2023-11-13 00:00 UTC, a Monday.
DAY0 = 1_699_833_600 * 10**9
PROJECT = "shop"
CSRF_TOKEN = "t" * 43  # the open mode's double-submit token: the cookie and the header


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """A live server without its background workers: the tests run automations themselves."""
    started = start_server(replace(settings, server_worker=False))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as made:
        yield made


def send(
    client: httpx.Client, starts: list[int], *, tag: str = "t", metadata: str = "x"
) -> list[str]:
    """One single-span trace per start time (ns); their ids, in order."""
    ids, spans = [], []
    for i, start in enumerate(starts):
        trace_id = new_trace_id()
        ids.append(trace_id.hex())
        attributes = {
            "input.value": f"question {tag} {i}",
            "output.value": f"answer {tag} {i}",
            "assay.metadata.team": metadata,
        }
        spans.append(
            span(trace_id, new_span_id(), f"agent-{tag}", start=start, attributes=attributes)
        )
    sent = client.post(
        "/v1/traces",
        content=protobuf(spans, service=PROJECT),
        headers={**PB, "x-assay-project": PROJECT},
    )
    assert sent.status_code == 200, sent.text
    return ids


def make_queue(client: httpx.Client, name: str = "daily review") -> int:
    rubric = client.post(
        f"/api/v1/projects/{PROJECT}/rubrics",
        json={
            "name": f"helpful {name}",
            "kind": "categorical",
            "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
        },
    )
    assert rubric.status_code == 201, rubric.text
    queue = client.post(
        f"/api/v1/projects/{PROJECT}/queues",
        json={"name": name, "rubrics": [rubric.json()["id"]]},
    )
    assert queue.status_code == 201, queue.text
    return int(queue.json()["id"])


def queue_traces(client: httpx.Client, queue_id: int) -> list[str]:
    items = client.get(f"/api/v1/queues/{queue_id}/items", params={"limit": 1000}).json()["items"]
    return [str(item["trace_id"]) for item in items]


def create(server: LiveServer, now: int, **fields: Any) -> dict[str, Any]:
    return automations.create_automation(server.runtime, OPERATOR, PROJECT, fields, now_ns=now)


def spread_over_days(client: httpx.Client, days: range, per_day: int) -> dict[int, list[str]]:
    """``per_day`` traces on each day, spread over its hours; their ids by day."""
    return {
        day: send(
            client,
            [DAY0 + day * DAY + (i * 23 * HOUR) // per_day + i for i in range(per_day)],
            tag=f"d{day}",
        )
        for day in days
    }


def test_every_day_twenty_random_traces_of_the_last_day_into_the_daily_review_queue(
    server: LiveServer, client: httpx.Client
) -> None:
    by_day = spread_over_days(client, range(4), 30)
    queue_id = make_queue(client)
    made = create(
        server,
        DAY0 + 2 * DAY + 10 * HOUR,
        name="daily sample",
        filter={},
        sample=20,
        schedule="daily",
        target={"queue": queue_id},
    )
    # It first runs a few minutes after the day it was made ends.
    assert made["next_run_ns"] == DAY0 + 3 * DAY + automations.SETTLE_NS
    assert automations.run_due(server.runtime, now_ns=DAY0 + 3 * DAY) == []

    [first] = automations.run_due(server.runtime, now_ns=DAY0 + 3 * DAY + 6 * 60 * 10**9)
    queued = queue_traces(client, queue_id)
    assert first["status"] == "ok" and first["trigger"] == "schedule"
    assert (first["matched"], first["sampled"], first["added"], first["skipped"]) == (30, 20, 20, 0)
    assert first["window_start_ns"] == DAY0 + 2 * DAY and first["window_end_ns"] == DAY0 + 3 * DAY
    assert first["window"]["since"] == "2023-11-15T00:00:00Z"
    assert len(queued) == 20 and set(queued) <= set(by_day[2])

    # Not due again that day; run by hand, the same window picks the same sample: nothing new.
    assert automations.run_due(server.runtime, now_ns=DAY0 + 3 * DAY + 7 * 60 * 10**9) == []
    again = automations.run_now(
        server.runtime, OPERATOR, made["id"], now_ns=DAY0 + 3 * DAY + 8 * HOUR
    )
    assert (again["trigger"], again["added"], again["skipped"]) == ("manual", 0, 20)
    assert sorted(queue_traces(client, queue_id)) == sorted(queued)

    # The next day: 20 of that day, none of the day before again.
    [second] = automations.run_due(server.runtime, now_ns=DAY0 + 4 * DAY + 6 * 60 * 10**9)
    assert (second["matched"], second["added"], second["skipped"]) == (30, 20, 0)
    after = queue_traces(client, queue_id)
    assert len(after) == len(set(after)) == 40
    assert set(after) - set(queued) <= set(by_day[3])

    # Another automation into the same queue: what the first added is not added twice.
    every = create(
        server,
        DAY0 + 4 * DAY + HOUR,
        name="everything",
        filter={"tag": []},
        schedule="daily",
        target={"queue": queue_id},
    )
    rest = automations.run_now(server.runtime, OPERATOR, every["id"], now_ns=DAY0 + 4 * DAY + HOUR)
    assert (rest["matched"], rest["added"], rest["skipped"]) == (30, 10, 20)
    final = queue_traces(client, queue_id)
    assert len(final) == len(set(final)) == 50

    history = client.get(f"/api/v1/automations/{made['id']}/runs").json()["items"]
    assert [r["added"] for r in history] == [20, 0, 20]  # newest first
    shown = client.get(f"/api/v1/automations/{made['id']}").json()
    assert shown["last_run"]["id"] == second["id"] and shown["failed_runs"] == 0


def test_a_server_that_was_down_catches_up_day_by_day_and_two_workers_never_run_a_day_twice(
    server: LiveServer, client: httpx.Client
) -> None:
    by_day = spread_over_days(client, range(3), 4)
    queue_id = make_queue(client)
    create(
        server,
        DAY0 + HOUR,
        name="all daily",
        schedule="daily",
        target={"queue": queue_id},
    )
    now = DAY0 + 3 * DAY + HOUR
    found: list[list[dict[str, Any]]] = []
    threads = [
        threading.Thread(
            target=lambda: found.append(automations.run_due(server.runtime, now_ns=now))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = [run for batch in found for run in batch]
    # Days 0, 1 and 2, each once, between the two workers.
    assert sorted(run["window_start_ns"] for run in runs) == [DAY0, DAY0 + DAY, DAY0 + 2 * DAY]
    assert sum(run["added"] for run in runs) == 12
    assert sorted(queue_traces(client, queue_id)) == sorted(sum(by_day.values(), []))


def _score(client: httpx.Client, trace_id: str, name: str, **fields: Any) -> None:
    sent = client.post(
        f"/api/v1/projects/{PROJECT}/scores", json={"trace_id": trace_id, "name": name, **fields}
    )
    assert sent.status_code == 201, sent.text


def test_score_conditions_add_only_the_matching_traces_to_a_dataset_with_lineage(
    server: LiveServer, client: httpx.Client
) -> None:
    ids = send(client, [DAY0 + i * HOUR for i in range(12)], tag="s")
    thumbs_down = {ids[i] for i in (1, 4, 7)}
    for trace_id in ids[:9]:
        _score(client, trace_id, "thumbs_up", value=0.0 if trace_id in thumbs_down else 1.0)
    # A judge's labels; people disagree with it on 2 and 5, agree on 3.
    for i in (2, 3, 5, 8):
        _score(client, ids[i], "correctness", label="incorrect", value=0.0, source="llm")
    for i in (6, 10):
        _score(client, ids[i], "correctness", label="correct", value=1.0, source="llm")
    _score(client, ids[2], "correctness", label="correct", value=1.0, source="human")
    _score(client, ids[3], "correctness", label="incorrect", value=0.0, source="human")
    _score(client, ids[5], "correctness", label="correct", value=1.0, source="human")

    def run(name: str, filter_: dict[str, Any]) -> set[str]:
        # A dataset each: a trace goes into a dataset once, whichever automation adds it.
        made = client.post(f"/api/v1/projects/{PROJECT}/datasets", json={"name": name})
        assert made.status_code == 201, made.text
        automation = create(
            server,
            DAY0 + DAY + HOUR,
            name=name,
            filter=filter_,
            schedule="daily",
            target={"dataset": name},
        )
        result = automations.run_now(
            server.runtime, OPERATOR, automation["id"], now_ns=DAY0 + DAY + HOUR
        )
        assert result["status"] == "ok", result
        records = client.get(
            f"/api/v1/projects/{PROJECT}/datasets/{name}/records", params={"limit": 1000}
        ).json()["items"]
        assert result["added"] == len(records) and records[0]["metadata"]["automation"] == name
        return {r["source_trace_id"] for r in records}

    assert run("thumbs down", {"score": "thumbs_up", "max_score": 0}) == thumbs_down
    judged_incorrect = {"score": "correctness", "score_label": "incorrect", "score_source": "llm"}
    assert run("judge says incorrect", judged_incorrect) == {ids[i] for i in (2, 3, 5, 8)}
    assert run("people disagree", {"disagreement": "correctness"}) == {ids[2], ids[5]}

    records = client.get(
        f"/api/v1/projects/{PROJECT}/datasets/thumbs down/records", params={"limit": 1000}
    ).json()["items"]
    by_trace = {r["source_trace_id"]: r for r in records}
    record = by_trace[ids[4]]
    assert record["input"] == "question s 4" and record["expected"] == "answer s 4"
    assert record["source_span_id"] and record["metadata"]["expected_is_proposed"] is True
    assert record["metadata"]["trace_metadata"]["team"] == "x"
    # The traces list reads the same filters.
    listed = client.get(
        f"/api/v1/projects/{PROJECT}/traces", params={"disagreement": "correctness"}
    ).json()["items"]
    assert {t["trace_id"] for t in listed} == {ids[2], ids[5]}


def test_a_run_adds_at_most_its_cap_and_the_rest_in_later_runs(
    server: LiveServer, client: httpx.Client
) -> None:
    ids = send(client, [DAY0 + i * HOUR for i in range(12)], tag="c")
    queue_id = make_queue(client)
    made = create(
        server,
        DAY0 + DAY,
        name="capped",
        schedule="daily",
        target={"queue": queue_id},
        max_per_run=5,
    )
    counts = []
    for _ in range(4):
        run = automations.run_now(server.runtime, OPERATOR, made["id"], now_ns=DAY0 + DAY + HOUR)
        counts.append((run["added"], run["skipped"], run["over_cap"]))
    assert counts == [(5, 0, 7), (5, 5, 2), (2, 10, 0), (0, 12, 0)]
    assert sorted(queue_traces(client, queue_id)) == sorted(ids)


def test_an_on_arrival_automation_takes_new_traces_and_new_feedback(
    server: LiveServer, client: httpx.Client
) -> None:
    old = send(client, [time.time_ns()], tag="before")
    queue_id = make_queue(client)
    made = create(
        server,
        time.time_ns(),
        name="thumbs down as it comes",
        filter={"score": "thumbs_up", "max_score": 0},
        schedule="on_arrival",
        target={"queue": queue_id},
    )
    fresh = send(client, [time.time_ns() + i for i in range(3)], tag="after")
    later = time.time_ns() + 2 * automations.ARRIVAL_DELAY_NS
    # Nothing scored yet: the run claims the arrivals and leaves no row.
    assert automations.run_due(server.runtime, now_ns=later) == []
    _score(client, fresh[1], "thumbs_up", value=0.0)
    _score(client, fresh[2], "thumbs_up", value=1.0)
    _score(client, old[0], "thumbs_up", value=0.0)  # feedback on a trace stored before
    [run] = automations.run_due(server.runtime, now_ns=later + 2 * automations.ARRIVAL_POLL_NS)
    assert run["trigger"] == "arrival" and run["window"]["kind"] == "on_arrival"
    assert (run["matched"], run["added"]) == (2, 2)
    assert sorted(queue_traces(client, queue_id)) == sorted([fresh[1], old[0]])
    # Nothing new: no run; a run by hand shows the empty batch.
    assert automations.run_due(server.runtime, now_ns=later + 4 * automations.ARRIVAL_POLL_NS) == []
    manual = automations.run_now(server.runtime, OPERATOR, made["id"], now_ns=later + 5 * HOUR)
    assert (manual["matched"], manual["added"]) == (0, 0)


def test_a_failed_run_records_and_shows_its_reason(
    server: LiveServer, client: httpx.Client
) -> None:
    send(client, [DAY0 + HOUR], tag="f")
    queue_id = make_queue(client)
    made = create(
        server, DAY0 + HOUR, name="to a lost queue", schedule="daily", target={"queue": queue_id}
    )
    with server.runtime.write() as conn:  # the queue goes away (as a deleted one would)
        conn.execute(
            update(automation_table)
            .where(automation_table.c.id == made["id"])
            .values(target_id=987_654)
        )
    [failed] = automations.run_due(server.runtime, now_ns=DAY0 + DAY + HOUR)
    assert failed["status"] == "failed" and "no longer exists" in failed["error"]
    shown = client.get(f"/api/v1/automations/{made['id']}").json()
    assert shown["failed_runs"] == 1 and "no longer exists" in shown["last_run"]["error"]
    # The schedule moved on (no retry storm); the next day fails again, visibly.
    assert shown["next_run_ns"] == DAY0 + 2 * DAY + automations.SETTLE_NS
    by_hand = client.post(f"/api/v1/automations/{made['id']}/run")
    assert by_hand.status_code == 200 and by_hand.json()["status"] == "failed"
    page = client.get(f"/p/{PROJECT}/automations/{made['id']}")
    assert page.status_code == 200 and "no longer exists" in page.text
    listing = client.get(f"/p/{PROJECT}/automations")
    assert "failed" in listing.text and "no longer exists" in listing.text


def _key(server: LiveServer, role: str) -> httpx.Client:
    with server.runtime.updates.begin() as conn:
        secret, _record = key_store.create(conn, name=f"{role}-key", role=role, project=PROJECT)
    server.runtime._key_count = None  # the open mode ends now, not when the cache expires
    return server.client(headers={"Authorization": f"Bearer {secret}"})


def test_editors_create_and_run_viewers_read_and_bad_input_names_its_field(
    server: LiveServer, client: httpx.Client
) -> None:
    send(client, [time.time_ns() - DAY], tag="r")
    queue_id = make_queue(client)
    client.post(f"/api/v1/projects/{PROJECT}/datasets", json={"name": "golden"})
    editor, viewer = _key(server, "editor"), _key(server, "viewer")
    base = f"/api/v1/projects/{PROJECT}/automations"
    body = {
        "name": "daily",
        "filter": {},
        "sample": 20,
        "schedule": "daily",
        "target": {"queue": queue_id},
    }
    assert viewer.post(base, json=body).status_code == 403
    made = editor.post(base, json=body)
    assert made.status_code == 201, made.text
    automation_id = made.json()["id"]
    assert made.json()["target"] == {"queue": queue_id, "name": "daily review"}
    assert editor.post(base, json=body).status_code == 409
    assert viewer.get(base).json()["items"][0]["name"] == "daily"
    assert viewer.get(f"/api/v1/automations/{automation_id}").status_code == 200
    assert viewer.get(f"/api/v1/automations/{automation_id}/runs").status_code == 200
    assert viewer.post(f"/api/v1/automations/{automation_id}/run").status_code == 403
    assert (
        viewer.patch(f"/api/v1/automations/{automation_id}", json={"enabled": False}).status_code
        == 403
    )
    assert viewer.delete(f"/api/v1/automations/{automation_id}").status_code == 403
    ran = editor.post(f"/api/v1/automations/{automation_id}/run")
    assert ran.status_code == 200 and ran.json()["added"] == 1, ran.text
    # By hand over a chosen window: the trace is in it, and in the queue already.
    chosen = editor.post(
        f"/api/v1/automations/{automation_id}/run",
        json={"since": "2000-01-01T00:00:00Z"},
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["window"]["kind"] == "chosen"
    assert (chosen.json()["matched"], chosen.json()["skipped"]) == (1, 1)
    bad_time = editor.post(f"/api/v1/automations/{automation_id}/run", json={"until": "soon"})
    assert bad_time.status_code == 400 and "until" in bad_time.text
    paused = editor.patch(f"/api/v1/automations/{automation_id}", json={"enabled": False})
    assert paused.json()["enabled"] is False and paused.json()["next_run_at"] is None
    resumed = editor.patch(
        f"/api/v1/automations/{automation_id}", json={"enabled": True, "schedule": "weekly"}
    )
    assert resumed.json()["schedule"] == "weekly" and resumed.json()["next_run_at"]

    bad = {
        "schedule": ({**body, "name": "b1", "schedule": "monthly"}, 422),
        "sample": ({**body, "name": "b2", "sample": 0}, 422),
        "target": ({**body, "name": "b3", "target": {"dataset": "nope"}}, 400),
        "filter": ({**body, "name": "b5", "filter": {"status": "bogus"}}, 400),
        "score_source": ({**body, "name": "b6", "filter": {"score_source": "robot"}}, 400),
    }
    for field, (sent, status) in bad.items():
        answer = editor.post(base, json=sent)
        assert answer.status_code == status and field in answer.text, (field, answer.text)
    queue_missing = editor.post(base, json={**body, "name": "b4", "target": {"queue": 999_999}})
    assert queue_missing.status_code == 400 and "target" in queue_missing.text
    to_dataset = editor.post(
        base, json={**body, "name": "to golden", "target": {"dataset": "golden"}}
    )
    assert to_dataset.status_code == 201 and to_dataset.json()["target"] == {"dataset": "golden"}
    assert editor.delete(f"/api/v1/automations/{automation_id}").status_code == 204
    assert viewer.get(f"/api/v1/automations/{automation_id}").status_code == 404
    for made_client in (editor, viewer):
        made_client.close()


def test_the_automations_pages_list_create_and_run(
    server: LiveServer, client: httpx.Client
) -> None:
    send(client, [time.time_ns() - DAY], tag="ui")
    queue_id = make_queue(client)
    # The open mode's forms carry the token of the browser's CSRF cookie.
    client.cookies.set("assay_csrf", CSRF_TOKEN)
    client.headers["x-csrf-token"] = CSRF_TOKEN
    page = client.get(f"/p/{PROJECT}/automations")
    assert page.status_code == 200 and "New automation" in page.text
    form = {
        "name": "from the page",
        "schedule": "daily",
        "sample": "5",
        "target": f"queue:{queue_id}",
        "filter": "tag=",
        "max_per_run": "",
    }
    made = client.post(f"/p/{PROJECT}/automations", data=form, follow_redirects=False)
    assert made.status_code == 303, made.text
    location = made.headers["location"]
    ran = client.post(f"{location}/run", follow_redirects=True)
    assert ran.status_code == 200 and "from the page" in ran.text
    assert "Added 1" in ran.text or "added 1" in ran.text
    bad = client.post(
        f"/p/{PROJECT}/automations", data={**form, "name": "x", "filter": "status=bogus"}
    )
    assert bad.status_code == 400 and "status" in bad.text
