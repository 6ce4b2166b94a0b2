"""The open mode answers only to loopback host names (and ASSAY_ALLOWED_HOSTS): a page whose
own name was rebound to 127.0.0.1 (DNS rebinding) cannot read a developer's traces."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from assay.services import accounts
from assay.services.principal import Principal
from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.keepalive import KeepAlive


@pytest.fixture
def open_live(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(replace(settings, allowed_hosts=("assay.lan", "Box.Example:9000")))
    try:
        yield server
    finally:
        server.stop()


def _get(live: LiveServer, path: str, host: str, **headers: str) -> tuple[int, str]:
    with live.client() as client:
        answer = client.get(path, headers={"host": host, **headers})
        return answer.status_code, answer.text


def test_only_loopback_and_listed_names_are_served_in_the_open_mode(open_live: LiveServer) -> None:
    port = open_live.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        for path in ("/api/v1/projects", "/"):
            status, _ = _get(open_live, path, host)
            assert status in (200, 303), (host, path, status)
    for host in ("assay.lan", f"ASSAY.LAN:{port}", "box.example"):
        assert _get(open_live, "/api/v1/projects", host)[0] == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.x"):
        for path in ("/api/v1/projects", "/p/default/traces", "/healthz", "/static/assay.css"):
            status, text = _get(open_live, path, host)
            assert status == 421, (host, path, status)
            assert "ASSAY_ALLOWED_HOSTS" in text and "rebinding" in text
    # The refusal answers on the connection, which stays usable (this client sends its own
    # Host first: a second one is refused too, whatever the first says).
    with KeepAlive(open_live.url) as conn:
        refused = conn.request("GET", "/api/v1/projects", b"", {"Host": "evil.example"})
        assert refused.status == 421
        assert conn.get("/api/v1/projects").status == 200


def test_with_sign_in_configured_any_host_may_ask(open_live: LiveServer) -> None:
    operator = Principal.operator()
    accounts.create_user(open_live.runtime, operator, "ada", "a long password", is_admin=True)
    secret, _ = accounts.create_key(
        open_live.runtime, operator, name="k", role="viewer", project=None
    )
    status, _ = _get(
        open_live, "/api/v1/projects", "assay.example.com", authorization=f"Bearer {secret}"
    )
    assert status == 200
