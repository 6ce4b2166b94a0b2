"""Slow and idle clients cannot hold the server: headers, bodies and idle connections have
deadlines, and connections past the cap are closed at once (real uvicorn, `assay server`'s
options)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import pytest

from assay.settings import Settings
from tests.conftest import LiveServer, start_server


@pytest.fixture
def strict(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(
        replace(
            settings,
            header_timeout_seconds=1,
            body_timeout_seconds=1,
            keep_alive_seconds=1,
            max_connections=20,
        )
    )
    try:
        yield server
    finally:
        server.stop()


def _connect(live: LiveServer) -> socket.socket:
    parts = urlsplit(live.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within ``seconds``, and what it said first."""
    sock.settimeout(seconds)
    received = b""
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            chunk = sock.recv(65536)
            if not chunk:
                return True, received
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        return True, received
    return False, received


def test_a_connection_that_sends_nothing_is_closed(strict: LiveServer) -> None:
    with _connect(strict) as sock:
        closed, _ = _closed_within(sock, 5)
        assert closed


def test_slow_headers_are_cut_off(strict: LiveServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        for _ in range(8):  # one header line every half second never finishes the request
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.5)
        closed, _ = _closed_within(sock, 5)
        assert closed and time.monotonic() - started < 6


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/traces", "application/x-protobuf"),
        ("/api/v1/projects/p/experiments", "application/json"),
    ],
)
def test_a_slow_body_gets_408_and_the_connection_closes(
    strict: LiveServer, path: str, content_type: str
) -> None:
    with _connect(strict) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"{")
        closed, said = _closed_within(sock, 6)
        assert closed
        assert said.startswith(b"HTTP/1.1 408"), said[:200]
        assert b"body_timeout" in said


def test_an_idle_keep_alive_connection_is_closed(strict: LiveServer) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        closed, said = _closed_within(sock, 5)
        assert said.startswith(b"HTTP/1.1 200") and closed


def test_connections_past_the_cap_are_closed_and_service_resumes(strict: LiveServer) -> None:
    held = [_connect(strict) for _ in range(20)]
    try:
        time.sleep(0.2)
        with _connect(strict) as extra:
            closed, said = _closed_within(extra, 0.9)  # before any timeout could have fired
            assert closed and said == b""
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    with strict.client() as client:
        assert client.get("/healthz").status_code == 200
