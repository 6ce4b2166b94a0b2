"""Shared fixtures: every storage test runs on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine

from assay.server.app import create_app
from assay.server.serving import uvicorn_config
from assay.services.runtime import Runtime
from assay.settings import Settings
from assay.store import migrate
from assay.store.engine import make_engine

pytest_plugins = ["pytester"]

PG_ADMIN_DSN = os.environ.get("ASSAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", "postgresql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def db_url(dialect: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the given dialect for one test."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path}/assay.db"
        return
    name = f"assay_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated store in a fresh database, with the engine the API's small writes use."""
    made = make_engine(db_url, role="updates")
    migrate.upgrade(made)
    yield made
    made.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    runtime: Runtime
    server: uvicorn.Server
    thread: threading.Thread
    #: The OTLP/gRPC receiver's port (0: not started; see ``start_server(grpc=True)``).
    grpc_port: int = 0

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


def start_server(settings: Settings, port: int | None = None, *, grpc: bool = False) -> LiveServer:
    """A real uvicorn server on a loopback port, in a thread of this process; with ``grpc``,
    the OTLP/gRPC receiver too, on a free port of its own."""
    if grpc:
        settings = replace(settings, grpc_port=free_port())
    runtime = Runtime.open(settings)
    port = port or free_port()
    served = replace(settings, host="127.0.0.1", port=port)
    # The same uvicorn options as `assay server`: what is tested is what runs.
    config = uvicorn_config(
        create_app(served, runtime=runtime, grpc=grpc), served, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "server thread died"
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return LiveServer(
        f"http://127.0.0.1:{port}", runtime, server, thread, settings.grpc_port if grpc else 0
    )


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, home=tmp_path)


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as c:
        yield c
