"""API keys: required once one exists, scoped to a project, and a public bind needs one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from assay.settings import Settings
from assay.store import keys as key_store
from assay.store import users as user_store
from tests.conftest import LiveServer, free_port
from tests.otlp_builders import PB, error_message, new_span_id, new_trace_id, protobuf, span


def _create_key(live: LiveServer, project: str | None, role: str = "editor") -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name="t", role=role, project=project)
    live.runtime._key_count = None  # the test should not wait for the cache to expire
    return secret


def test_open_on_loopback_until_a_key_exists(live: LiveServer, client: httpx.Client) -> None:
    assert client.get("/api/v1/projects").status_code == 200
    _create_key(live, "a")
    response = client.get("/api/v1/projects")
    assert response.status_code == 401
    assert "assay keys create" in response.json()["error"]["message"]
    ingest = client.post(
        "/v1/traces", content=protobuf([span(new_trace_id(), new_span_id(), "x")]), headers=PB
    )
    assert ingest.status_code == 401
    assert client.get("/healthz").status_code == 200
    bad = client.get("/api/v1/projects", headers={"Authorization": "Bearer assay_nope"})
    assert bad.status_code == 401 and "not valid" in bad.json()["error"]["message"]


def test_the_first_user_ends_the_open_mode_of_the_api_too(
    live: LiveServer, client: httpx.Client
) -> None:
    assert client.get("/api/v1/projects").status_code == 200
    with live.runtime.engine.begin() as conn:
        user_store.create_user(conn, "ada", "a long enough password", is_admin=True)
    live.runtime.forget_users()  # as `assay users create` in another process, without the wait
    response = client.get("/api/v1/projects")
    assert response.status_code == 401
    assert "settings page" in response.json()["error"]["message"]
    page = client.get("/", follow_redirects=False)
    assert page.status_code in (302, 303) and "/login" in page.headers["location"]


def test_a_key_for_project_a_cannot_touch_project_b(live: LiveServer) -> None:
    key_a = _create_key(live, "a")
    key_b = _create_key(live, "b")
    admin = _create_key(live, None, role="admin")
    viewer_a = _create_key(live, "a", role="viewer")
    trace_b = new_trace_id()
    with live.client(headers={"Authorization": f"Bearer {key_b}"}) as as_b:
        sent = as_b.post(
            "/v1/traces",
            content=protobuf([span(trace_b, new_span_id(), "secret")], service="whatever"),
            headers=PB,
        )
        assert sent.status_code == 200
        # The key's project wins over the resource's service.name.
        assert [i["name"] for i in as_b.get("/api/v1/projects/b/spans").json()["items"]] == [
            "secret"
        ]
    with live.client(headers={"Authorization": f"Bearer {key_a}"}) as as_a:
        assert as_a.get("/api/v1/projects/b/traces").status_code == 404
        assert as_a.get("/api/v1/projects/b/spans").status_code == 404
        assert as_a.get(f"/api/v1/traces/{trace_b.hex()}").status_code == 404
        assert [p["name"] for p in as_a.get("/api/v1/projects").json()["items"]] == ["a"]
        wrong = as_a.post(
            "/v1/traces",
            content=protobuf([span(new_trace_id(), new_span_id(), "x")]),
            headers={**PB, "x-assay-project": "b"},
        )
        assert wrong.status_code == 403
    with live.client(headers={"Authorization": f"Bearer {viewer_a}"}) as viewer:
        ingest = viewer.post(
            "/v1/traces", content=protobuf([span(new_trace_id(), new_span_id(), "x")]), headers=PB
        )
        assert ingest.status_code == 403 and "editor" in error_message(ingest)
    with live.client(headers={"Authorization": f"Bearer {admin}"}) as as_admin:
        assert as_admin.get(f"/api/v1/traces/{trace_b.hex()}").status_code == 200
        assert {p["name"] for p in as_admin.get("/api/v1/projects").json()["items"]} == {"a", "b"}


def test_revoked_key_is_refused(live: LiveServer) -> None:
    secret = _create_key(live, "a")
    _create_key(live, "b")  # still active: the server is not back in the open mode
    with live.runtime.engine.begin() as conn:
        assert key_store.revoke(conn, secret.split("_")[1])
    live.runtime._keys.clear()
    with live.client(headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/api/v1/projects").status_code == 401


def test_an_all_digit_prefix_is_a_prefix_not_an_id(live: LiveServer) -> None:
    # About 2% of random 8-hex-digit prefixes are all digits: "00000001" names the key with
    # that prefix, not the key whose id is 1.
    from sqlalchemy import update

    from assay.store.tables import api_keys

    first, second = _create_key(live, "a"), _create_key(live, "a")
    _create_key(live, "b")  # still active: the server is not back in the open mode
    with live.runtime.engine.begin() as conn:
        ids = [key["id"] for key in key_store.list_keys(conn) if key["project"] == "a"]
        digits = f"{min(ids):08d}"
        conn.execute(update(api_keys).where(api_keys.c.id == max(ids)).values(prefix=digits))
        assert key_store.revoke(conn, digits)
        revoked = {
            k["id"]: k["revoked_ns"] is not None
            for k in key_store.list_keys(conn)
            if k["project"] == "a"
        }
        assert revoked == {min(ids): False, max(ids): True}
        assert key_store.revoke(conn, str(min(ids)))  # a short number is still an id
    live.runtime._keys.clear()
    for secret in (first, second):
        with live.client(headers={"Authorization": f"Bearer {secret}"}) as client:
            assert client.get("/api/v1/projects").status_code == 401


def _assay(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "assay.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_public_bind_without_keys_refuses_to_start(settings: Settings) -> None:
    env = {"ASSAY_DATABASE_URL": settings.resolved_database_url()}
    proc = _assay("server", "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "refusing to listen on 0.0.0.0" in err and "assay keys create" in err
    assert "assay users create" in err

    created = _assay("keys", "create", "--project", "a", env=env)
    out, err = created.communicate(timeout=60)
    assert created.returncode == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("assay_")

    port = free_port()
    server = _assay("server", "--host", "0.0.0.0", "--port", str(port), env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/api/v1/projects"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    finally:
        server.terminate()
        server.communicate(timeout=30)
