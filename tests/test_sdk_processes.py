"""Across processes, and with the server away: the SDK's promises under real conditions."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import tracemalloc

import httpx
from opentelemetry.sdk.trace import TracerProvider

import assay
from assay.sdk._state import STATE
from assay.settings import Settings
from tests.conftest import LiveServer, free_port, start_server


def test_supervisor_and_sub_agent_processes_make_one_trace(
    live: LiveServer, client: httpx.Client
) -> None:
    port = free_port()
    sub = subprocess.Popen(
        [sys.executable, "-m", "tests.agents.sub_agent", live.url, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sub.stdout is not None and sub.stdout.readline().strip() == "ready"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.agents.supervisor",
                live.url,
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        trace_id = done.stdout.strip().splitlines()[-1]
    finally:
        sub.terminate()
        sub.wait(10)
    tree = client.get(f"/api/v1/traces/{trace_id}").json()

    def shape(node: dict[str, object]) -> object:
        children = node["children"]
        assert isinstance(children, list)
        return {str(node["name"]).rsplit(".", 1)[-1]: [shape(c) for c in children]}

    assert [shape(root) for root in tree["spans"]] == [
        {"supervisor": [{"call sub-agent": [{"sub-agent": [{"search": []}]}]}]}
    ]


def test_server_away_buffers_within_bound_and_delivers_later(settings: Settings) -> None:
    port = free_port()
    provider = TracerProvider()
    assay.init(
        "offline", url=f"http://127.0.0.1:{port}", tracer_provider=provider, max_buffer_spans=500
    )
    assert STATE.exporter is not None
    STATE.exporter.config.max_backoff = 0.5

    @assay.traced
    def step(i: int) -> int:
        return i + 1

    def work(n: int) -> float:
        """Median seconds per call."""
        times = []
        for i in range(n):
            start = time.perf_counter()
            step(i)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    try:
        away = work(800)  # nothing listens on the port
        stats = assay.stats()
        assert stats["spans_dropped"] == 300
        assert stats["spans_buffered"] == 500
        deadline = time.monotonic() + 5
        while assay.stats()["export_failures"] < 1:
            assert time.monotonic() < deadline, "the exporter never tried to send"
            time.sleep(0.05)

        # Past the bound, memory does not grow with the number of spans.
        tracemalloc.start()
        work(5_000)
        grown, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert assay.stats()["spans_dropped"] == 5_300
        assert grown < 2_000_000, grown

        live = start_server(settings, port=port)
        try:
            assert assay.flush(30)
            up = work(400)  # fewer than the bound: nothing may be dropped now
            assert assay.flush(30)
            stats = assay.stats()
            assert stats["spans_sent"] == 900 and stats["spans_buffered"] == 0
            assert stats["spans_dropped"] == 5_300
            with live.client() as client:
                count = client.get("/api/v1/projects").json()["items"][0]["span_count"]
            assert count == 900
        finally:
            live.stop()
    finally:
        assay.shutdown()
        provider.shutdown()
    # The application's calls cost the same whether or not the server answers: no call waits
    # on the network (a generous factor for a noisy machine; typical figures are ~20 µs).
    print(f"median per call: server away {away * 1e6:.1f} µs, server up {up * 1e6:.1f} µs")
    assert away < max(3 * up, 200e-6)
