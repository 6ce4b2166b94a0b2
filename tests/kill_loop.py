"""Kill the real server with SIGKILL while clients post spans, and count what survived.

The `assay server` command runs as a subprocess (its own process group, so a worker it forks
dies with it). Client threads post OTLP protobuf batches the way an exporter does: a batch is
re-sent until it is answered 200, so after a kill the same spans may arrive twice, and the
store must keep each once. Every span a 200 answered is remembered; after the last restart
the store is read directly and every acknowledged span must be in it.

Used by tests/test_durability.py (a few kills, bounded seconds) and bench/durability.py (a
longer loop).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from assay.store.engine import make_engine
from assay.store.tables import spans
from tests.conftest import free_port
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

SPANS_PER_BATCH = 25


class ServerProcess:
    """`assay server` as a subprocess on a fixed port, started again after each kill."""

    def __init__(self, db_url: str, workdir: Path, workers: int = 1) -> None:
        self.db_url = db_url
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> float:
        """Start and wait until /healthz answers; returns the seconds that took."""
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "assay.cli",
                "server",
                "--port",
                str(self.port),
                "--db",
                self.db_url,
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
            ],
            env={**os.environ, "ASSAY_HOME": str(self.workdir / "home")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        with httpx.Client(timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return time.monotonic() - started
                if self.process.poll() is not None or time.monotonic() - started > timeout:
                    raise AssertionError(f"server did not start:\n{self.log_tail()}")
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted(self.workdir.glob("server-*.log"))
        if not logs:
            return "(no log)"
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ClientTally:
    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    requests: int = 0
    resent: int = 0  # attempts lost to a kill (no answer, refused, 5xx) and sent again
    errors: list[str] = field(default_factory=list)  # answers that are neither 200 nor retryable


def _client(url: str, stop: threading.Event, tally: ClientTally, lock: threading.Lock) -> None:
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=2.0)) as client:
        while not stop.is_set():
            batch = []
            trace_id = new_trace_id()
            root = new_span_id()
            for index in range(SPANS_PER_BATCH):
                span_id = root if index == 0 else new_span_id()
                attributes = {"input.value": f"question {index} about refunds and durability"}
                parent = b"" if index == 0 else root
                batch.append(
                    span(trace_id, span_id, f"step-{index}", parent=parent, attributes=attributes)
                )
            body = protobuf(batch)
            while True:
                with lock:
                    tally.requests += 1
                try:
                    response = client.post(f"{url}/v1/traces", content=body, headers=PB)
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 200:
                    with lock:
                        tally.acknowledged.update(
                            (item["trace_id"].hex(), item["span_id"].hex()) for item in batch
                        )
                    break
                if response is not None and response.status_code not in (502, 503, 504):
                    with lock:
                        tally.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                    break
                with lock:
                    tally.resent += 1
                if stop.is_set():
                    break
                time.sleep(0.05)


@dataclass
class KillLoopResult:
    kills: int
    acknowledged: int
    stored: int
    duplicates: int  # rows stored more than once for one (trace id, span id): must be 0
    lost: int  # acknowledged but not stored: must be 0
    resent: int
    requests: int
    errors: list[str]
    acknowledged_per_round: list[int]  # spans acknowledged between consecutive kills
    restart_seconds: list[float]
    seconds: float


def stored_span_ids(db_url: str) -> list[tuple[str, str]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(spans.c.trace_id, spans.c.span_id)).all()
    finally:
        engine.dispose()
    return [(str(trace_id), str(span_id)) for trace_id, span_id in rows]


def run_kill_loop(
    db_url: str,
    workdir: Path,
    *,
    kills: int,
    clients: int = 4,
    ingest_seconds: float = 2.0,
    workers: int = 1,
) -> KillLoopResult:
    """Start the server, then ``kills`` times: let ``clients`` post for ``ingest_seconds``,
    SIGKILL the server mid-ingest and start it again. Finally stop the clients and the server
    and compare what was acknowledged with what is stored."""
    began = time.monotonic()
    server = ServerProcess(db_url, workdir, workers=workers)
    tally = ClientTally()
    lock = threading.Lock()
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client, args=(server.url, stop, tally, lock), daemon=True)
        for _ in range(clients)
    ]
    per_round: list[int] = []
    restarts: list[float] = []
    try:
        server.start()
        for thread in threads:
            thread.start()
        for _ in range(kills):
            before = len(tally.acknowledged)
            time.sleep(ingest_seconds)
            server.kill()
            with lock:
                per_round.append(len(tally.acknowledged) - before)
            restarts.append(server.start())
        time.sleep(ingest_seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.stop()
    stored_rows = stored_span_ids(db_url)
    stored = set(stored_rows)
    acknowledged = tally.acknowledged
    return KillLoopResult(
        kills=kills,
        acknowledged=len(acknowledged),
        stored=len(stored),
        duplicates=len(stored_rows) - len(stored),
        lost=len(acknowledged - stored),
        resent=tally.resent,
        requests=tally.requests,
        errors=tally.errors[:10],
        acknowledged_per_round=per_round,
        restart_seconds=restarts,
        seconds=time.monotonic() - began,
    )
