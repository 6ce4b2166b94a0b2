"""Soak: steady ingest at a fixed rate for minutes, with list and search queries beside it.

    ASSAY_BENCH_BIN=... python bench/soak.py [--engine sqlite|postgres|both] [--duration S]
        [--rate SPANS_PER_S] [--clients K] [--query-interval S] [--sample S]

Starts Assay on a fresh store, lets K client processes post agent traces (``payloads.py``, ~100
spans per request) paced to the given rate, while one client runs trace lists and text
searches (common, medium and rare words) in turn. Every ``--sample`` seconds it prints the
ingest rate, the search index lag (stored spans not yet in the text index, read from the
store), the query latencies of that interval and the server's RSS; at the end, totals and
whether the lag stayed bounded. Writes JSON to ``bench/results/soak-<timestamp>.json``.

The default rate is about half of the measured ingest capacity on this project's 2-core VM
(README: ~6,000 spans/s on SQLite, ~4,200 on PostgreSQL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from urllib.parse import quote

import httpx

from driver import HEADERS, median, percentile
from payloads import COMMON_WORD, DEFAULT_PROJECT, MEDIUM_WORD, RARE_WORD, PayloadGenerator
from servers import Server, start_assay

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_RATES = {"sqlite": 3_000, "postgres": 2_000}
TRACES_PER_REQUEST = 10
QUERIES = [
    ("list", "traces", {}),
    ("search", "traces", {"q": COMMON_WORD}),
    ("list", "traces", {"status": "error"}),
    ("search", "spans", {"q": MEDIUM_WORD}),
    ("search", "traces", {"q": RARE_WORD}),
    ("search", "spans", {"q": COMMON_WORD}),
]


# --- paced ingest, one process per client ------------------------------------------------------


def _ingest_worker(
    url: str,
    seed: int,
    rate: float,
    seconds: float,
    go: Event,
    acked: Synchronized[int],
    failed: Synchronized[int],
) -> None:
    generator = PayloadGenerator(seed, time.time_ns(), DEFAULT_PROJECT, TRACES_PER_REQUEST)
    with httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0)) as client:
        go.wait()
        started = time.monotonic()
        sent = 0
        while True:
            # Send each request on schedule; a late one goes at once (the offered load holds).
            due = started + sent / rate
            now = time.monotonic()
            if due - started >= seconds or now - started >= seconds:
                return  # the duration is wall time: a server that fell behind is not waited for
            if due > now:
                time.sleep(due - now)
            batch = generator.next_batch()
            sent += batch.span_count
            try:
                ok = client.post(url, content=batch.body, headers=HEADERS).status_code == 200
            except httpx.TransportError:
                ok = False
            counter = acked if ok else failed
            with counter.get_lock():
                counter.value += batch.span_count


# --- queries beside it -------------------------------------------------------------------------


@dataclass
class QuerySample:
    at: float  # seconds since the start
    kind: str  # list | search
    ms: float
    ok: bool


def _query_loop(
    base_url: str, started: float, seconds: float, interval: float, out: list[QuerySample]
) -> None:
    prefix = f"{base_url}/api/v1/projects/{quote(DEFAULT_PROJECT, safe='')}"
    index = 0
    with httpx.Client(timeout=120) as client:
        while time.monotonic() - started < seconds:
            kind, resource, params = QUERIES[index % len(QUERIES)]
            index += 1
            began = time.monotonic()
            try:
                ok = client.get(f"{prefix}/{resource}", params={"limit": "50", **params}).is_success
            except httpx.TransportError:
                ok = False
            out.append(QuerySample(began - started, kind, (time.monotonic() - began) * 1000, ok))
            time.sleep(max(0.0, interval - (time.monotonic() - began)))


# --- sampling and report -----------------------------------------------------------------------


@dataclass
class Interval:
    at: float
    ingest_per_s: float
    lag_spans: int | None
    list_p50_ms: float
    list_p95_ms: float
    search_p50_ms: float
    search_p95_ms: float
    rss_mib: float
    load1: float


@dataclass
class SoakResult:
    engine: str
    duration_s: float
    rate: float
    clients: int
    acked_spans: int
    failed_spans: int
    ingest_s: float = 0.0
    intervals: list[Interval] = field(default_factory=list)
    list_p50_ms: float = 0.0
    list_p95_ms: float = 0.0
    search_p50_ms: float = 0.0
    search_p95_ms: float = 0.0
    query_errors: int = 0
    lag_max: int = 0
    lag_max_second_half: int = 0
    lag_final: int = 0
    catch_up_s: float | None = None  # after ingest stops, until the index covers every span
    rss_start_mib: float = 0.0
    rss_max_mib: float = 0.0
    rss_end_mib: float = 0.0
    load1_median: float = 0.0


def _latencies(samples: list[QuerySample], kind: str, since: float, until: float) -> list[float]:
    return [s.ms for s in samples if s.kind == kind and s.ok and since <= s.at < until]


def _print_interval(row: Interval) -> None:
    lag = "-" if row.lag_spans is None else f"{row.lag_spans:,}"
    print(
        f"{row.at:>6.0f} {row.ingest_per_s:>9,.0f} {lag:>9} "
        f"{row.list_p50_ms:>7.0f} {row.list_p95_ms:>7.0f} "
        f"{row.search_p50_ms:>8.0f} {row.search_p95_ms:>8.0f} "
        f"{row.rss_mib:>7.0f} {row.load1:>5.1f}",
        flush=True,
    )


def soak(engine: str, args: argparse.Namespace, workdir: Path) -> SoakResult:
    rate = args.rate or DEFAULT_RATES[engine]
    server: Server = start_assay(engine, workdir, DEFAULT_PROJECT)
    result = SoakResult(engine, args.duration, rate, args.clients, 0, 0)
    try:
        context = mp.get_context("fork")
        go = context.Event()
        acked: Synchronized[int] = context.Value("q", 0)
        failed: Synchronized[int] = context.Value("q", 0)
        workers = [
            context.Process(
                target=_ingest_worker,
                args=(
                    server.ingest_url,
                    index + 1,
                    rate / args.clients,
                    args.duration,
                    go,
                    acked,
                    failed,
                ),
                daemon=True,
            )
            for index in range(args.clients)
        ]
        for worker in workers:
            worker.start()
        samples: list[QuerySample] = []
        result.rss_start_mib = server.memory().rss_mib
        started = time.monotonic()
        go.set()
        queries = threading.Thread(
            target=_query_loop,
            args=(server.base_url, started, args.duration, args.query_interval, samples),
            daemon=True,
        )
        queries.start()
        print(f"\n{engine}: {rate:,.0f} spans/s offered by {args.clients} clients", end="")
        print(f" for {args.duration:.0f} s")
        print(
            f"{'t s':>6} {'spans/s':>9} {'lag':>9} {'list50':>7} {'list95':>7} "
            f"{'search50':>8} {'search95':>8} {'RSS MiB':>7} {'load':>5}"
        )
        previous_at, previous_acked = 0.0, 0
        while True:
            time.sleep(args.sample)
            at = time.monotonic() - started
            now_acked = acked.value
            row = Interval(
                at=at,
                ingest_per_s=(now_acked - previous_acked) / (at - previous_at),
                lag_spans=server.search_backlog(),
                list_p50_ms=median(_latencies(samples, "list", previous_at, at)),
                list_p95_ms=percentile(_latencies(samples, "list", previous_at, at), 0.95),
                search_p50_ms=median(_latencies(samples, "search", previous_at, at)),
                search_p95_ms=percentile(_latencies(samples, "search", previous_at, at), 0.95),
                rss_mib=server.memory().rss_mib,
                load1=os.getloadavg()[0],
            )
            result.intervals.append(row)
            _print_interval(row)
            previous_at, previous_acked = at, now_acked
            if at >= args.duration:
                break
        for worker in workers:
            worker.join(60)
        result.ingest_s = time.monotonic() - started  # until the last answer
        queries.join(120)
        stopped = time.monotonic()
        while time.monotonic() - stopped < 120:
            if (server.search_backlog() or 0) <= 0:
                result.catch_up_s = time.monotonic() - stopped
                break
            time.sleep(0.2)
        result.acked_spans = acked.value
        result.failed_spans = failed.value
        if result.failed_spans or result.catch_up_s is None:
            print(f"server log (tail):\n{server.log_tail(40)}")
    finally:
        result.rss_end_mib = server.memory().rss_mib
        server.stop()
    lags = [row.lag_spans for row in result.intervals if row.lag_spans is not None]
    half = [
        row.lag_spans
        for row in result.intervals
        if row.lag_spans is not None and row.at >= args.duration / 2
    ]
    result.lag_max = max(lags, default=0)
    result.lag_max_second_half = max(half, default=0)
    result.lag_final = lags[-1] if lags else 0
    lists = _latencies(samples, "list", 0, float("inf"))
    searches = _latencies(samples, "search", 0, float("inf"))
    result.list_p50_ms, result.list_p95_ms = median(lists), percentile(lists, 0.95)
    result.search_p50_ms, result.search_p95_ms = median(searches), percentile(searches, 0.95)
    result.query_errors = sum(1 for s in samples if not s.ok)
    result.rss_max_mib = max((row.rss_mib for row in result.intervals), default=0.0)
    result.load1_median = median([row.load1 for row in result.intervals])
    return result


def _print_summary(result: SoakResult) -> None:
    seconds = result.ingest_s or result.duration_s
    catch_up = "-" if result.catch_up_s is None else f"{result.catch_up_s:.1f} s"
    print(
        f"{result.engine}: {result.acked_spans:,} spans acknowledged "
        f"({result.acked_spans / seconds:,.0f}/s of {result.rate:,.0f} offered; "
        f"{result.failed_spans:,} refused)\n"
        f"  search index lag: max {result.lag_max:,} spans, max in the second half "
        f"{result.lag_max_second_half:,}, at the end {result.lag_final:,}; "
        f"index complete {catch_up} after ingest stopped\n"
        f"  queries p50/p95 ms: lists {result.list_p50_ms:.0f}/{result.list_p95_ms:.0f}, "
        f"search {result.search_p50_ms:.0f}/{result.search_p95_ms:.0f} "
        f"({result.query_errors} errors)\n"
        f"  server RSS MiB: start {result.rss_start_mib:.0f}, max {result.rss_max_mib:.0f}, "
        f"end {result.rss_end_mib:.0f}; load average (1 min) median {result.load1_median:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of ingest")
    parser.add_argument("--rate", type=float, default=0, help="spans/s (default: per engine)")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--query-interval", type=float, default=0.5)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds per report line")
    args = parser.parse_args(argv)
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    results = []
    for engine in engines:
        with tempfile.TemporaryDirectory(prefix=f"assay-soak-{engine}-") as scratch:
            results.append(soak(engine, args, Path(scratch)))
    print()
    for result in results:
        _print_summary(result)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"soak-{stamp}.json"
    path.write_text(json.dumps([asdict(result) for result in results], indent=2))
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
