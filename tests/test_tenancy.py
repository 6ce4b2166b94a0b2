"""Tenancy: a trace, its spans and its scores belong to one project, whatever arrives when."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from threading import Event
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select

from assay.settings import Settings
from assay.store import keys as key_store
from assay.store import migrate
from assay.store import users as user_store
from assay.store.engine import make_engine
from assay.store.tables import projects, spans
from assay.store.writer import SpanWriter, _Job
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import (
    JSON_HEADERS,
    PB,
    error_message,
    new_span_id,
    new_trace_id,
    protobuf,
    span,
)


def span_row(trace_id: str, span_id: str, name: str, **changes: Any) -> dict[str, Any]:
    """A normalised span as the writer takes it."""
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": None,
        "name": name,
        "kind": 1,
        "start_ns": 1_000,
        "end_ns": 2_000,
        "status_code": 0,
        "status_message": None,
        "attributes": {},
        "events": [],
        "links": [],
        "resource": {},
        "scope": {},
        "is_root": True,
        "type": "span",
        "is_error": False,
        "error": None,
        "duration_ns": 1_000,
        "input": f"input of {name}",
        "output": None,
        "model": None,
        "provider": None,
        "operation": None,
        "input_tokens": None,
        "output_tokens": None,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "total_tokens": None,
        "cost": None,
        "session_id": None,
        "user_id": None,
        "tags": [],
        "metadata": {},
        "ingested_ns": time.time_ns(),
    }
    row.update(changes)
    return row


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(db_url: str, engine: Engine) -> Iterator[SpanWriter]:
    writer = SpanWriter(make_engine(db_url, role="writer"))
    writer.start()
    yield writer
    writer.stop()
    writer.engine.dispose()


def _project_of_spans(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(spans.c.name, projects.c.name).join(
                projects, projects.c.id == spans.c.project_id
            )
        ).all()
    return {span_name: project for span_name, project in rows}


# A start time beyond 64 bits gets past the writer and fails at the database on both engines,
# after the writer has created the request's project in the same transaction.
UNSTORABLE = {"start_ns": 2**70}


def test_a_failed_write_never_misroutes_a_later_one(engine: Engine, writer: SpanWriter) -> None:
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        writer.write_sync([span_row("a" * 32, "1" * 16, "bad", **UNSTORABLE)], ["victim"])
    writer.write_sync([span_row("b" * 32, "2" * 16, "innocent-span")], ["innocent"])
    writer.write_sync([span_row("c" * 32, "3" * 16, "victim-span")], ["victim"])
    assert _project_of_spans(engine) == {
        "innocent-span": "innocent",
        "victim-span": "victim",
    }


def test_a_failed_group_never_poisons_its_neighbours(db_url: str, engine: Engine) -> None:
    """Requests committed together: the bad one fails alone, the others land where they say."""
    writer = SpanWriter(make_engine(db_url, role="writer"))
    bad = _Job([span_row("a" * 32, "1" * 16, "bad", **UNSTORABLE)], ["victim"], None, None, Event())
    good = _Job([span_row("b" * 32, "2" * 16, "good")], ["neighbour"], None, None, Event())
    writer._commit_jobs([bad, good])  # what the writer thread does with requests that queued up
    assert bad.error is not None and good.error is None
    writer.start()
    writer.write_sync([span_row("c" * 32, "3" * 16, "later")], ["third"])
    writer.write_sync([span_row("d" * 32, "4" * 16, "victim-span")], ["victim"])
    writer.stop()
    writer.engine.dispose()
    assert _project_of_spans(engine) == {
        "good": "neighbour",
        "later": "third",
        "victim-span": "victim",
    }


# --- one trace id in two projects ----------------------------------------------------------


def _key(live: LiveServer, project: str | None, role: str = "editor") -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name=f"{project}-{role}", role=role, project=project)
    live.runtime._key_count = None  # no waiting for the cached "no keys yet"
    return secret


def _send(live: LiveServer, key: str, spans_: list[dict[str, Any]]) -> None:
    with live.client(headers={"Authorization": f"Bearer {key}"}) as c:
        sent = c.post("/v1/traces", content=protobuf(spans_, service="whatever"), headers=PB)
        assert sent.status_code == 200, sent.text
        assert "rejected" not in sent.text


def _get(live: LiveServer, key: str, path: str) -> httpx.Response:
    with live.client(headers={"Authorization": f"Bearer {key}"}) as c:
        return c.get(path)


def _names_in(trace: dict[str, Any]) -> list[str]:
    out: list[str] = []
    stack = list(trace["spans"])
    while stack:
        node = stack.pop()
        out.append(node["name"])
        stack.extend(node["children"])
    return sorted(out)


def test_a_trace_id_shared_by_two_projects_is_two_traces(live: LiveServer) -> None:
    """A supervisor in project a calls a sub-agent in project b, passing its traceparent."""
    key_a, key_b = _key(live, "a"), _key(live, "b")
    admin = _key(live, None, role="admin")
    shared, root_b, root_a = new_trace_id(), new_span_id(), new_span_id()
    # b speaks first; then a sends its root (with b's root span id reused, as a clash would).
    _send(
        live,
        key_b,
        [span(shared, root_b, "b-root"), span(shared, new_span_id(), "b-child", parent=root_b)],
    )
    _send(
        live,
        key_a,
        [span(shared, root_b, "a-root"), span(shared, root_a, "a-child", parent=root_b)],
    )
    t = shared.hex()

    trace_a = _get(live, key_a, f"/api/v1/projects/a/traces/{t}")
    trace_b = _get(live, key_b, f"/api/v1/projects/b/traces/{t}")
    assert trace_a.status_code == 200 and trace_b.status_code == 200
    assert _names_in(trace_a.json()) == ["a-child", "a-root"]
    assert _names_in(trace_b.json()) == ["b-child", "b-root"]
    assert trace_b.json()["name"] == "b-root" and trace_b.json()["span_count"] == 2
    # Each project's key sees only its own side, and no hint that the other exists.
    assert _get(live, key_a, f"/api/v1/projects/b/traces/{t}").status_code == 404
    assert trace_a.json()["linked_projects"] == []
    # The fixed path answers with the one trace the caller may read.
    assert _names_in(_get(live, key_b, f"/api/v1/traces/{t}").json()) == ["b-child", "b-root"]
    assert _names_in(_get(live, key_a, f"/api/v1/traces/{t}").json()) == ["a-child", "a-root"]
    # Both lists show the trace, each with its own root.
    for key, project, name in ((key_a, "a", "a-root"), (key_b, "b", "b-root")):
        items = _get(live, key, f"/api/v1/projects/{project}/traces").json()["items"]
        assert [(i["trace_id"], i["name"]) for i in items] == [(t, name)]
        spans_ = _get(live, key, f"/api/v1/projects/{project}/spans").json()["items"]
        assert len(spans_) == 2

    # Someone who reads both projects is told which ones hold the id, and can follow the link.
    both = _get(live, admin, f"/api/v1/traces/{t}")
    assert both.status_code == 409
    message = both.json()["error"]["message"]
    assert "'a'" in message and "'b'" in message and f"/api/v1/projects/a/traces/{t}" in message
    chosen = _get(live, admin, f"/api/v1/traces/{t}?project=b")
    assert chosen.status_code == 200 and _names_in(chosen.json()) == ["b-child", "b-root"]
    linked = _get(live, admin, f"/api/v1/projects/a/traces/{t}").json()["linked_projects"]
    assert linked == ["b"]
    assert _get(live, admin, f"/api/v1/traces/{new_trace_id().hex()}").status_code == 404
    assert _get(live, key_a, f"/api/v1/traces/{t}?project=b").status_code == 404


def _ui_session(live: LiveServer, name: str, roles: dict[str, str]) -> httpx.Client:
    with live.runtime.updates.begin() as conn:
        user_id = user_store.create_user(conn, name, "a long enough password")
        for project, role in roles.items():
            user_store.grant(conn, user_id, project, role)
        token, _ = user_store.start_session(conn, user_id, max_age_ns=3600 * 10**9)
    live.runtime.forget_users()
    return live.client(cookies={"assay_session": token})


def test_the_trace_page_links_the_other_project_only_for_those_who_may_read_it(
    live: LiveServer,
) -> None:
    key_a, key_b = _key(live, "a"), _key(live, "b")
    shared = new_trace_id()
    _send(live, key_a, [span(shared, new_span_id(), "supervisor")])
    _send(live, key_b, [span(shared, new_span_id(), "sub-agent")])
    t = shared.hex()
    with _ui_session(live, "both", {"a": "viewer", "b": "viewer"}) as both:
        page = both.get(f"/p/a/traces/{t}")
        assert page.status_code == 200 and "supervisor" in page.text
        assert "sub-agent" not in page.text
        assert f'href="/p/b/traces/{t}"' in page.text
        other = both.get(f"/p/b/traces/{t}")
        assert "sub-agent" in other.text and f'href="/p/a/traces/{t}"' in other.text
    with _ui_session(live, "only-a", {"a": "viewer"}) as only_a:
        page = only_a.get(f"/p/a/traces/{t}")
        assert page.status_code == 200 and "supervisor" in page.text
        assert "/p/b/" not in page.text
        assert "sub-agent" not in only_a.get(f"/p/b/traces/{t}").text


# --- scores ---------------------------------------------------------------------------------


def test_a_score_names_a_trace_of_the_project_in_its_url(live: LiveServer) -> None:
    key_a, key_b = _key(live, "a", role="annotator"), _key(live, "b")
    admin = _key(live, None, role="admin")
    trace_b, span_b = new_trace_id(), new_span_id()
    _send(live, key_b, [span(trace_b, span_b, "b-root")])
    _send(live, admin, [span(new_trace_id(), new_span_id(), "a-root")])  # project "whatever"
    with live.client(headers={"Authorization": f"Bearer {admin}"}) as c:
        for body in (
            {"trace_id": trace_b.hex(), "name": "x", "value": 1},
            {"trace_id": trace_b.hex(), "span_id": span_b.hex(), "name": "x", "value": 1},
        ):
            wrong = c.post("/api/v1/projects/whatever/scores", json=body)
            assert wrong.status_code == 404, wrong.text
            assert trace_b.hex() in wrong.json()["error"]["message"]
        # The same trace id scored in its own project works.
        right = c.post(
            "/api/v1/projects/b/scores", json={"trace_id": trace_b.hex(), "name": "ok", "value": 1}
        )
        assert right.status_code == 201
        missing_span = c.post(
            "/api/v1/projects/b/scores",
            json={"trace_id": trace_b.hex(), "span_id": "1" * 16, "name": "x", "value": 1},
        )
        assert missing_span.status_code == 404
    with live.client(headers={"Authorization": f"Bearer {key_a}"}) as c:
        refused = c.post(
            "/api/v1/projects/a/scores", json={"trace_id": trace_b.hex(), "name": "x", "value": 1}
        )
        assert refused.status_code == 404
    trace = _get(live, key_b, f"/api/v1/traces/{trace_b.hex()}").json()
    assert [s["name"] for s in trace["scores"]] == ["ok"]


def test_scores_are_read_by_project(live: LiveServer) -> None:
    """The same trace id in two projects: a score given in one never shows in the other."""
    admin = _key(live, None, role="admin")
    key_a, key_b = _key(live, "a"), _key(live, "b")
    shared = new_trace_id()
    _send(live, key_a, [span(shared, new_span_id(), "a-root")])
    _send(live, key_b, [span(shared, new_span_id(), "b-root")])
    with live.client(headers={"Authorization": f"Bearer {admin}"}) as c:
        assert (
            c.post(
                "/api/v1/projects/a/scores",
                json={"trace_id": shared.hex(), "name": "good", "value": 1},
            ).status_code
            == 201
        )
    t = shared.hex()
    assert [s["name"] for s in _get(live, key_a, f"/api/v1/traces/{t}").json()["scores"]] == [
        "good"
    ]
    assert _get(live, key_b, f"/api/v1/traces/{t}").json()["scores"] == []
    listed = _get(live, key_b, "/api/v1/projects/b/traces").json()["items"]
    assert listed[0]["scores"] == []
    filtered = _get(live, key_b, "/api/v1/projects/b/traces?score=good").json()["items"]
    assert filtered == []


# --- ids and project names at ingest -------------------------------------------------------


def _json_span(trace_id: str, span_id: str, name: str) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000001000000",
    }


def _json_request(by_service: dict[str, list[dict[str, Any]]]) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeSpans": [{"spans": spans_}],
                }
                for service, spans_ in by_service.items()
            ]
        }
    )


def test_ids_that_are_not_hex_are_refused_with_the_reason(client: httpx.Client) -> None:
    good = new_trace_id().hex()
    body = _json_request(
        {
            "ids": [
                _json_span(good, new_span_id().hex(), "good"),
                # 32 and 16 characters, as the fields want, but not hex (nor base64 of 16/8 bytes)
                _json_span("z" * 32, new_span_id().hex(), "bad-trace"),
                _json_span(new_trace_id().hex(), "q" * 16, "bad-span"),
            ]
        }
    )
    answer = client.post("/v1/traces", content=body, headers=JSON_HEADERS)
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "invalid trace id 'zzz" in partial["errorMessage"]
    assert "invalid span id 'qqq" in partial["errorMessage"]
    names = [i["name"] for i in client.get("/api/v1/projects/ids/spans").json()["items"]]
    assert names == ["good"]
    assert client.get(f"/api/v1/traces/{good}").status_code == 200
    assert client.get(f"/api/v1/traces/{'z' * 32}").status_code == 404


def test_project_names_are_checked_at_ingest_and_in_the_api(client: httpx.Client) -> None:
    body = _json_request(
        {
            "fine": [_json_span(new_trace_id().hex(), new_span_id().hex(), "kept")],
            "bell\x07": [_json_span(new_trace_id().hex(), new_span_id().hex(), "ctl")],
            "nul\x00": [_json_span(new_trace_id().hex(), new_span_id().hex(), "nul")],
        }
    )
    answer = client.post("/v1/traces", content=body, headers=JSON_HEADERS)
    assert answer.status_code == 200, answer.text
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "project name" in partial["errorMessage"]
    assert "control character" in partial["errorMessage"]
    listed = {p["name"] for p in client.get("/api/v1/projects").json()["items"]}
    assert listed == {"fine"}

    too_long = "p" * 201
    header = client.post(
        "/v1/traces",
        content=protobuf([span(new_trace_id(), new_span_id(), "x")]),
        headers={**PB, "x-assay-project": too_long},
    )
    assert header.status_code == 400
    assert "200 characters" in error_message(header)  # a protobuf Status: the request was
    dataset = client.post(f"/api/v1/projects/{too_long}/datasets", json={"name": "d"})
    assert dataset.status_code == 400 and "200 characters" in dataset.json()["error"]["message"]


@pytest.fixture
def capped(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(
        database_url=db_url, home=tmp_path, max_projects=4, max_new_projects_per_request=2
    )
    server = start_server(settings)
    yield server
    server.stop()


def test_ingest_creates_projects_only_up_to_the_caps(capped: LiveServer) -> None:
    def services(*names: str) -> bytes:
        return _json_request(
            {name: [_json_span(new_trace_id().hex(), new_span_id().hex(), name)] for name in names}
        )

    with capped.client() as c:
        many = c.post("/v1/traces", content=services("a", "b", "c"), headers=JSON_HEADERS)
        assert many.status_code == 400
        assert "3 new projects" in many.json()["error"]["message"]
        assert "ASSAY_MAX_NEW_PROJECTS_PER_REQUEST" in many.json()["error"]["message"]
        assert c.get("/api/v1/projects").json()["items"] == []  # nothing of it was kept
        for pair in (("a", "b"), ("c", "d")):
            ok = c.post("/v1/traces", content=services(*pair), headers=JSON_HEADERS)
            assert ok.status_code == 200, ok.text
        full = c.post("/v1/traces", content=services("a", "e"), headers=JSON_HEADERS)
        assert full.status_code == 400
        assert "ASSAY_MAX_PROJECTS" in full.json()["error"]["message"]
        # Projects that exist still take spans, alone or together.
        again = c.post("/v1/traces", content=services("a", "d"), headers=JSON_HEADERS)
        assert again.status_code == 200, again.text
        listed = {p["name"]: p["span_count"] for p in c.get("/api/v1/projects").json()["items"]}
        assert listed == {"a": 2, "b": 1, "c": 1, "d": 2}
