"""Web UI timings on a big store: the pages people open all day.

    .venv/bin/python bench/ui.py [--peer phoenix|none] [--spans N] [--clients 4]
                                 [--requests 30] [--engine sqlite|postgres] [--store DIR]
                                 [--no-fill]

``--peer phoenix`` (the default) compares side by side with Arize Phoenix in one run, on
identical stores of ``--spans`` (default 20,000: Phoenix stores only ~75 spans/s): see
``ui_peer.py``. ``--peer none`` measures Assay alone at ``--spans`` (default 1,000,000):

1. Starts an Assay server (``assay server``) on a store: a fresh SQLite file in ``--store`` (kept
   afterwards, so a second run can pass ``--no-fill`` and measure again), or a fresh PostgreSQL
   database ``assay_bench``.
2. Fills it through OTLP with the ingest benchmark's agent traces (``payloads.py``: ~10 spans
   per trace, ~1 KB input and output per span, sessions, tags, errors), generated inside
   ``--clients`` sender processes, plus one trace of 1,000 spans (an agent fanning out to LLM
   and tool calls) and waits until every span is stored and the text index has caught up.
3. Requests each page ``--requests`` times in sequence (after 3 warm-up requests) with httpx and
   reports p50/p95 of the wall time and of the server's own time (the ``Server-Timing``
   header: database plus rendering).

Figures are printed and written to ``bench/results/ui-<timestamp>.json`` (``--peer none``) or
``bench/results/ui-phoenix-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from driver import GeneratedBatches, drive, median, percentile, wait_until_stored
from payloads import COMMON_WORD, DEFAULT_PROJECT, RARE_WORD
from servers import Server, start_assay

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BIG_TRACE_SPANS = 1_000
_TIMING = re.compile(r"([\w-]+);dur=([\d.]+)")


def _attr(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def big_trace(project: str, start_ns: int, spans: int = BIG_TRACE_SPANS) -> tuple[bytes, str, str]:
    """One OTLP request holding a ``spans``-span agent trace; returns it, its trace id and the
    id of an LLM span in it (for the span-detail measurement)."""
    rng = random.Random(7)
    trace_id = rng.randbytes(16)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            _attr("service.name", "big-agent"),
            _attr("assay.project", project),
            _attr("openinference.project.name", project),  # Phoenix's project
        ]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench-ui"
    root_id = rng.randbytes(8)
    root = scope.spans.add(
        trace_id=trace_id,
        span_id=root_id,
        name="research-agent",
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + 600 * 10**9,
    )
    root.attributes.extend(
        [
            _attr("openinference.span.kind", "AGENT"),
            _attr("input.value", "Survey every supplier contract and flag risky clauses."),
            _attr("session.id", "big-session"),
        ]
    )
    steps = [rng.randbytes(8) for _ in range(20)]
    llm_span = ""
    for index, step in enumerate(steps):
        span = scope.spans.add(
            trace_id=trace_id,
            span_id=step,
            parent_span_id=root_id,
            name=f"review contract {index}",
            start_time_unix_nano=start_ns + index * 30 * 10**9,
            end_time_unix_nano=start_ns + (index + 1) * 30 * 10**9,
        )
        span.attributes.append(_attr("openinference.span.kind", "CHAIN"))
    for index in range(spans - 1 - len(steps)):
        parent = steps[index % len(steps)]
        start = start_ns + (index % len(steps)) * 30 * 10**9 + (index // len(steps)) * 10**8
        span_id = rng.randbytes(8)
        span = scope.spans.add(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            name="chat gpt-4o" if index % 2 else "search_clauses",
            start_time_unix_nano=start,
            end_time_unix_nano=start + rng.randint(20, 900) * 10**6,
        )
        text = " ".join(
            rng.choice(("clause", "supplier", "risk", "term", "payment")) for _ in range(150)
        )
        if index % 2:
            llm_span = llm_span or span_id.hex()
            messages = [
                {"role": "system", "parts": [{"type": "text", "content": "You review contracts."}]},
                {"role": "user", "parts": [{"type": "text", "content": text}]},
            ]
            answer = [{"role": "assistant", "parts": [{"type": "text", "content": text[:400]}]}]
            span.attributes.extend(
                [
                    _attr("gen_ai.operation.name", "chat"),
                    _attr("gen_ai.request.model", "gpt-4o"),
                    _attr("gen_ai.usage.input_tokens", 900),
                    _attr("gen_ai.usage.output_tokens", 120),
                    _attr("gen_ai.input.messages", json.dumps(messages)),
                    _attr("gen_ai.output.messages", json.dumps(answer)),
                ]
            )
        else:
            span.attributes.extend(
                [
                    _attr("openinference.span.kind", "TOOL"),
                    _attr("input.value", text[:300]),
                    _attr("output.value", text),
                ]
            )
    return request.SerializeToString(), trace_id.hex(), llm_span


@dataclass
class PageStats:
    name: str
    path: str
    requests: int
    p50_ms: float
    p95_ms: float
    server_p50_ms: float
    server_p95_ms: float
    db_p50_ms: float
    bytes: int
    errors: list[str]


def _server_ms(header: str) -> tuple[float, float]:
    parts = {name: float(value) for name, value in _TIMING.findall(header)}
    return sum(parts.values()), parts.get("db", float("nan"))


def time_page(
    client: httpx.Client, name: str, path: str, requests: int, fragment: bool
) -> PageStats:
    headers = {"X-Assay-Fragment": "1"} if fragment else {}
    walls: list[float] = []
    servers: list[float] = []
    dbs: list[float] = []
    errors: list[str] = []
    size = 0
    for attempt in range(requests + 3):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        wall = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            errors.append(f"HTTP {response.status_code}")
            continue
        if attempt < 3:
            continue  # warm-up
        size = len(response.content)
        total, db = _server_ms(response.headers.get("server-timing", ""))
        walls.append(wall)
        servers.append(total)
        dbs.append(db)
    return PageStats(
        name=name,
        path=path,
        requests=len(walls),
        p50_ms=median(walls),
        p95_ms=percentile(walls, 0.95),
        server_p50_ms=median(servers),
        server_p95_ms=percentile(servers, 0.95),
        db_p50_ms=median(dbs),
        bytes=size,
        errors=errors[:5],
    )


def _first_session(client: httpx.Client, project: str) -> str:
    answer = client.get(f"/api/v1/projects/{project}/traces", params={"limit": 200})
    answer.raise_for_status()
    found = [t["session_id"] for t in answer.json()["items"] if t.get("session_id")]
    return found[len(found) // 2] if found else "none"


def _a_typical_trace(client: httpx.Client, project: str) -> str:
    answer = client.get(f"/api/v1/projects/{project}/traces", params={"limit": 20})
    answer.raise_for_status()
    return str(answer.json()["items"][-1]["trace_id"])


def pages(
    client: httpx.Client, project: str, big: str, llm_span: str
) -> list[tuple[str, str, bool]]:
    p = quote(project, safe="")
    session = _first_session(client, project)
    typical = _a_typical_trace(client, project)
    return [
        ("projects page", "/", False),
        ("traces, newest first", f"/p/{p}/traces", False),
        ("traces status=error", f"/p/{p}/traces?status=error", False),
        ("traces model=gpt-4o&range=7d", f"/p/{p}/traces?model=gpt-4o&range=7d", False),
        (
            "traces tag=vip&min_duration_ms=1000",
            f"/p/{p}/traces?tag=vip&min_duration_ms=1000",
            False,
        ),
        ("traces sort=duration", f"/p/{p}/traces?sort=duration", False),
        ("traces q=<common word>", f"/p/{p}/traces?q={COMMON_WORD}", False),
        ("traces q=<rare word>", f"/p/{p}/traces?q={RARE_WORD}", False),
        ("trace page, ~10 spans", f"/p/{p}/traces/{typical}", False),
        ("trace page, 1,000 spans", f"/p/{p}/traces/{big}", False),
        ("span detail (fragment)", f"/p/{p}/traces/{big}/spans/{llm_span}", True),
        ("sessions page", f"/p/{p}/sessions", False),
        ("session page", f"/p/{p}/sessions/{quote(session, safe='')}", False),
    ]


def fill(server: Server, spans: int, clients: int, start_ns: int) -> int:
    per_client = -(-spans // clients)
    shares = [
        GeneratedBatches(9_001 + k, start_ns + k * 10**6, per_client, server.project)
        for k in range(clients)
    ]
    started = time.monotonic()

    def progress() -> None:
        with httpx.Client(timeout=60) as client:
            print(f"    {server.count_spans(client):,} spans stored", flush=True)

    result = drive(server.ingest_url, list(shares), heartbeat=progress)
    print(f"  sent {result.acked_spans:,} spans in {time.monotonic() - started:.0f} s", flush=True)
    return int(result.acked_spans)


def wait_for_index(server: Server, timeout_s: float = 1_800) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        backlog = server.search_backlog()
        if not backlog:
            return
        print(f"    text index backlog: {backlog:,} spans", flush=True)
        time.sleep(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", choices=("phoenix", "none"), default="phoenix")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--spans", type=int, help="default 20,000 with a peer, else 1,000,000")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--requests", type=int, help="per page (default 30), or rounds with a peer (default 20)"
    )
    parser.add_argument("--store", type=Path, help="directory for the SQLite store (kept)")
    parser.add_argument("--no-fill", action="store_true", help="measure the store as it is")
    args = parser.parse_args(argv)
    if args.peer == "phoenix":
        if args.engine != "sqlite" or args.store or args.no_fill:
            parser.error(
                "--peer phoenix runs both on fresh SQLite stores: no --engine postgres, "
                "--store or --no-fill (those are for --peer none)"
            )
        import ui_peer  # here, not at the top: ui_peer imports this module

        return ui_peer.run(args.spans or 20_000, args.clients, args.requests or 20)
    args.spans = args.spans or 1_000_000
    args.requests = args.requests or 30
    if args.no_fill and (args.engine != "sqlite" or args.store is None):
        parser.error("--no-fill needs --engine sqlite and the --store of an earlier run")
    workdir = args.store or Path(tempfile.mkdtemp(prefix="assay-bench-ui-"))
    workdir.mkdir(parents=True, exist_ok=True)
    project = DEFAULT_PROJECT
    server = start_assay(args.engine, workdir, project)
    big_path = workdir / "big-trace.json"
    try:
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            if not args.no_fill:
                now = time.time_ns()
                # ~1.6 s between traces: 1M spans (~100k traces) cover about two days.
                sent = fill(
                    server, args.spans - BIG_TRACE_SPANS, args.clients, now - 2 * 86_400 * 10**9
                )
                body, big, llm_span = big_trace(project, now - 3_600 * 10**9)
                answer = client.post(
                    "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
                )
                answer.raise_for_status()
                sent += BIG_TRACE_SPANS
                big_path.write_text(json.dumps({"trace_id": big, "llm_span": llm_span}))
                stored = wait_until_stored(lambda: server.count_spans(client), sent, 900)
                print(f"  {stored.stored_spans:,} spans stored", flush=True)
                wait_for_index(server)
            saved = json.loads(big_path.read_text())
            total = server.count_spans(client)
            print(f"timing {args.requests} requests per page on {total:,} spans ({args.engine})")
            results = [
                time_page(client, name, path, args.requests, fragment)
                for name, path, fragment in pages(
                    client, project, saved["trace_id"], saved["llm_span"]
                )
            ]
    finally:
        server.stop()
    columns = ("wall p50", "p95", "server p50", "p95", "db p50", "KiB")
    widths = (9, 7, 11, 7, 7, 6)
    print(f"\n{'page':40} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for r in results:
        print(
            f"{r.name:40} {r.p50_ms:9.1f} {r.p95_ms:7.1f} {r.server_p50_ms:11.1f} "
            f"{r.server_p95_ms:7.1f} {r.db_p50_ms:7.1f} {r.bytes / 1024:6.0f}"
            + (f"  errors: {r.errors}" if r.errors else "")
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"ui-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "engine": args.engine,
                "spans": total,
                "requests": args.requests,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                },
                "pages": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
