"""Out-of-range and malformed input to the API and the UI: a 4xx naming the field, on one
keep-alive connection that stays usable; any stored JSON shape renders; an unexpected failure
is a JSON 500 (or the error page) that keeps the connection, with the traceback logged."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from assay.server.app import create_app
from assay.server.serving import uvicorn_config
from assay.services.runtime import Runtime
from assay.settings import Settings
from tests.conftest import LiveServer, free_port
from tests.keepalive import Answer, KeepAlive
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

BIG = 2**64
JSON_HEADERS = {"content-type": "application/json"}


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _send(conn: KeepAlive, method: str, path: str, body: object = None) -> Answer:
    payload = b"" if body is None else orjson.dumps(body)
    return conn.request(method, path, payload, JSON_HEADERS if body is not None else {})


def _big_json(body: str) -> bytes:
    return body.replace("BIG", str(BIG)).encode()


def _refused(answer: Answer, *words: str) -> None:
    assert 400 <= answer.status < 500, (answer.status, answer.body[:300])
    text = answer.body.decode("utf-8", "replace")
    for word in words:
        assert word in text, (word, text[:400])


@pytest.fixture
def seeded(live: LiveServer) -> Iterator[tuple[LiveServer, int]]:
    with live.client() as client:
        body = protobuf([span(new_trace_id(), new_span_id(), "kept")], service="p")
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        experiment = client.post(
            "/api/v1/projects/p/experiments",
            json={
                "eval_name": "e",
                # Shapes no client of ours writes, but any client may: the page must render.
                "metadata": {"git": {"commit": 12345, "branch": ["x"]}, "scorers": "exact"},
            },
        ).json()
        assert client.post("/api/v1/projects/p/datasets", json={"name": "d"}).status_code == 201
    yield live, int(experiment["id"])


def test_integers_beyond_64_bits_in_any_json_field_are_refused_naming_it(
    seeded: tuple[LiveServer, int],
) -> None:
    live, experiment = seeded
    cases = [
        ("POST", "/api/v1/projects/p/experiments", '{"eval_name": "e", "dataset_version": BIG}'),
        ("POST", "/api/v1/projects/p/experiments", '{"eval_name": "e", "metadata": {"a": BIG}}'),
        ("POST", f"/api/v1/experiments/{experiment}/rows", '[{"case_key": "a", "trial": BIG}]'),
        ("POST", f"/api/v1/experiments/{experiment}/rows", '[{"case_key": "a", "output": BIG}]'),
        (
            "POST",
            f"/api/v1/experiments/{experiment}/rows",
            '[{"case_key": "a", "input_tokens": 3000000000}]',
        ),
        ("PATCH", f"/api/v1/experiments/{experiment}", '{"status": "complete", "summary": BIG}'),
        ("POST", "/api/v1/projects/p/scores", '{"trace_id": "' + "a" * 32 + '", "value": BIG}'),
        ("PATCH", "/api/v1/projects/p", '{"settings": {"x": [1, BIG]}}'),
        ("POST", "/api/v1/projects/p/datasets", '{"name": "d", "description": BIG}'),
        ("POST", "/api/v1/projects/p/datasets/d/changes", '{"insert": [{"input": {"n": BIG}}]}'),
    ]
    fields = [
        "dataset_version",
        "metadata.a",
        "trial",
        "output",
        "input_tokens",
        "summary",
        "value",
        "settings.x[1]",
        "description",
        "insert[0].input.n",
    ]
    with KeepAlive(live.url) as conn:
        for (method, path, body), field in zip(cases, fields, strict=True):
            answer = conn.request(method, path, _big_json(body), JSON_HEADERS)
            _refused(answer, field)
        assert conn.get("/healthz").status == 200
        rows = conn.get(f"/api/v1/experiments/{experiment}/rows").json()
        assert rows == {"items": [], "next_cursor": None}  # nothing half-stored


def test_out_of_range_paths_queries_and_cursors_are_refused_naming_them(
    seeded: tuple[LiveServer, int],
) -> None:
    live, _ = seeded
    spans = "/api/v1/projects/p/spans"
    cases = [
        ("/api/v1/experiments/100000000000000000000", "experiment_id"),
        ("/api/v1/experiments/1/compare/100000000000000000000", "candidate_id"),
        (f"{spans}?since=100000000000000000000000", "since"),
        (f"{spans}?since=9999-12-31T23:59:59Z", "since"),
        (f"{spans}?until=-100000000000000000000000", "until"),
        (f"{spans}?min_duration_ms=1e308", "min_duration_ms"),
        (f"{spans}?max_duration_ms=1e300", "max_duration_ms"),
        (f"{spans}?cursor={_cursor([[1], [2]])}", "cursor"),
        (f"{spans}?cursor={_cursor([{'a': 1}, {'b': 2}])}", "cursor"),
        (f"{spans}?cursor={_cursor({'a': 1})}", "cursor"),
        (f"{spans}?cursor={_cursor([10**25, 1])}", "cursor"),
        (f"{spans}?cursor={_cursor(['x', 'y'])}", "cursor"),
        (f"/api/v1/projects/p/traces?sort=cost&cursor={_cursor(['x', 'y'])}", "cursor"),
        ("/api/v1/projects/p/datasets/d/records?cursor=100000000000000000000", "cursor"),
        ("/api/v1/projects/p/datasets/d/records?version=100000000000000000000", "version"),
        (f"{spans}?name=a%00b", "NUL"),
        ("/api/v1/projects/p/datasets/a%00b", "NUL"),
    ]
    with KeepAlive(live.url) as conn:
        for path, field in cases:
            _refused(conn.get(path), field)
        assert conn.get(spans).status == 200


def test_the_ui_names_bad_values_and_renders_any_stored_shape(
    seeded: tuple[LiveServer, int],
) -> None:
    live, experiment = seeded
    with KeepAlive(live.url) as conn:
        page = conn.get(f"/p/p/experiments/{experiment}")
        assert page.status == 200, page.body[:500]
        assert b"12345" in page.body and b"exact" in page.body
        for path, field in [
            ("/p/p/traces?since=100000000000000000000000", "since"),
            ("/p/p/traces?until=9999-01-01", "until"),
            (f"/p/p/traces?cursor={_cursor([{'a': 1}, 2])}", "cursor"),
            (f"/p/p/sessions?cursor={_cursor(['x', [1]])}", "cursor"),
            ("/p/p/datasets/d?after=100000000000000000000", "after"),
            ("/p/p/experiments/100000000000000000000", "experiment_id"),
        ]:
            _refused(conn.get(path), field)
        assert conn.get("/p/p/traces").status == 200


def test_nosniff_on_json_static_and_error_answers_and_allow_on_405(live: LiveServer) -> None:
    with KeepAlive(live.url) as conn:
        for path in ("/healthz", "/api/v1/projects", "/api/v1/nowhere", "/static/app.css"):
            answer = conn.get(path)
            assert answer.headers.get("x-content-type-options") == "nosniff", path
        refused = conn.request("PUT", "/api/v1/projects", b"", {})
        assert refused.status == 405 and refused.headers.get("allow") == "GET"


@pytest.fixture
def failing(settings: Settings) -> Iterator[str]:
    """A real server whose app has two routes that fail unexpectedly (one API, one page)."""
    runtime = Runtime.open(settings)
    port = free_port()
    served = Settings(**{**settings.__dict__, "port": port})
    app: FastAPI = create_app(served, runtime=runtime)

    def boom() -> None:
        raise RuntimeError("deliberate failure for the test")

    app.add_api_route("/api/v1/boom", boom)
    app.add_api_route("/boom", boom)
    server = uvicorn.Server(uvicorn_config(app, served, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_an_unexpected_error_is_a_500_that_keeps_the_connection(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="assay.server"), KeepAlive(failing) as conn:
        api = conn.get("/api/v1/boom")
        assert api.status == 500
        assert api.json() == {
            "error": {
                "code": "internal_error",
                "message": "the server failed to answer this request; the server log has the cause",
            }
        }
        assert api.headers["x-content-type-options"] == "nosniff"
        page = conn.get("/boom")
        assert page.status == 500 and b"<html" in page.body
        assert conn.get("/healthz").status == 200  # the same connection
    raised = [record.exc_info[1] for record in caplog.records if record.exc_info]
    assert any("deliberate failure" in str(error) for error in raised)
