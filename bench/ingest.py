"""OTLP ingest benchmark: Assay against Arize Phoenix on the same payload, in the same run.

    .venv/bin/python bench/ingest.py [--engine sqlite|postgres|both] [--spans N] [--clients K]
                                     [--peer phoenix|none] [--peer-spans M] [--runs R]
                                     [--store-spans S]

1. Generates agent traces (``payloads.py``) before any clock starts.
2. For each run, starts a server on a fresh store, lets K client processes POST the batches to
   ``/v1/traces``, and stops the clock when the server reports every acknowledged span.
   Assay gets N spans per run; Phoenix (SQLite, ~150 spans/s) gets the first M spans of the
   same batches, so the spans are byte-identical and spans/s comparable.
3. Fills a fresh Assay store to S spans and times trace lists, filters and text search.

Figures are printed and written to ``bench/results/ingest-<timestamp>.json``. Phoenix is
installed into ``bench/.venvs/phoenix`` on first use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from driver import (
    DriveResult,
    GeneratedBatches,
    drive,
    median,
    percentile,
    split,
    wait_until_stored,
)
from payloads import DEFAULT_PROJECT, Batch, PayloadGenerator, batches_for_spans
from queries import index_catch_up, measure_queries, search_finds
from report import BigStore, IngestRun, Session, print_report
from servers import (
    PHOENIX_VENV,
    Server,
    ServerError,
    assay_available,
    ensure_phoenix,
    phoenix_version,
    start_assay,
    start_phoenix,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
console = Console(width=None if sys.stdout.isatty() else 180)


@dataclass(frozen=True)
class Settings:
    engines: list[str]
    spans: int
    peer: str
    peer_spans: int
    clients: int
    workers: int | None
    runs: int
    store_spans: int
    queries: int
    seed: int
    project: str


def parse_settings(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--spans", type=int, default=50_000, help="spans per Assay run")
    parser.add_argument("--peer", choices=["phoenix", "none"], default="phoenix")
    parser.add_argument("--peer-spans", type=int, default=5_000, help="spans per Phoenix run")
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--workers", type=int, help="assay server --workers (default: its own)")
    parser.add_argument("--runs", type=int, default=3, help="fresh-store runs per server")
    parser.add_argument("--store-spans", type=int, default=1_000_000, help="0 skips queries")
    parser.add_argument("--queries", type=int, default=50, help="requests per query")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    return Settings(
        engines=engines,
        spans=args.spans,
        peer=args.peer,
        peer_spans=args.peer_spans,
        clients=args.clients,
        workers=args.workers,
        runs=args.runs,
        store_spans=args.store_spans,
        queries=args.queries,
        seed=args.seed,
        project=args.project,
    )


@contextmanager
def scratch_dir(label: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"assay-bench-{label}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _payload_start_ns() -> int:
    """Spans start a day ago, on the hour, so reruns within the hour send identical bytes."""
    hour_ns = 3600 * 10**9
    return (time.time_ns() // hour_ns - 24) * hour_ns


# --- one ingest run ----------------------------------------------------------------------------


def _count(server: Server) -> int:
    with httpx.Client(timeout=30) as client:
        return server.count_spans(client)


def _store_timeout_s(server: Server, spans: int) -> float:
    # Assay acknowledges only what is durable; Phoenix queues in memory and writes later.
    return 120.0 if server.system == "assay" else 120.0 + spans / 20


def _poll_interval_s(server: Server) -> float:
    # Phoenix writes on the one CPU-bound event loop that also answers the count query:
    # polling it 10x a second would slow it down. 0.5 s is <1% of a Phoenix run.
    return 0.1 if server.system == "assay" else 0.5


def _search_found(server: Server, sent: DriveResult, timeout_s: float) -> float | None:
    if server.system != "assay" or sent.last_probe is None:
        return None
    word = sent.last_probe.ref_word
    return search_finds(server.base_url, server.project, word, sent.last_ack, timeout_s)


def _ingest_run(server: Server, batches: list[Batch], settings: Settings, run: int) -> IngestRun:
    baseline = _count(server)
    sent = drive(server.ingest_url, split(batches, settings.clients))
    with httpx.Client(timeout=30) as client:
        stored = wait_until_stored(
            lambda: server.count_spans(client) - baseline,
            sent.acked_spans,
            timeout_s=_store_timeout_s(server, sent.acked_spans),
            interval_s=_poll_interval_s(server),
        )
    memory = server.memory()
    seconds = stored.done - sent.started
    return IngestRun(
        system=server.system,
        engine=server.engine,
        run=run,
        clients=sent.clients,
        sent_spans=sent.sent_spans,
        acked_spans=sent.acked_spans,
        stored_spans=stored.stored_spans,
        complete=stored.complete,
        seconds=seconds,
        spans_per_s=stored.stored_spans / seconds if seconds > 0 else 0.0,
        ack_spans_per_s=sent.acked_spans / sent.send_seconds if sent.send_seconds > 0 else 0.0,
        requests=sent.requests,
        retries=sent.retries,
        request_p50_ms=median(sent.latencies_s) * 1000,
        request_p95_ms=percentile(sent.latencies_s, 0.95) * 1000,
        rss_mib=memory.rss_mib,
        peak_rss_mib=memory.peak_mib,
        startup_s=0.0,
        search_found_s=_search_found(server, sent, timeout_s=120),
        index_lag_s=index_catch_up(server.search_backlog, sent.last_ack, timeout_s=600),
        errors=sent.errors,
    )


def _print_run(run: IngestRun) -> None:
    console.print(
        f"  {run.system}/{run.engine} run {run.run}: {run.stored_spans:,}/{run.acked_spans:,} "
        f"stored in {run.seconds:.1f}s = {run.spans_per_s:,.0f} spans/s, "
        f"req p50 {run.request_p50_ms:,.0f} ms, RSS {run.rss_mib:,.0f} MiB"
        + (f", {run.retries} retries" if run.retries else "")
    )


def run_fresh_stores(
    system: str, engine: str, batches: list[Batch], settings: Settings
) -> list[IngestRun]:
    """``settings.runs`` runs, each on a new server with an empty store."""
    results: list[IngestRun] = []
    for run in range(1, settings.runs + 1):
        with scratch_dir(f"{system}-{engine}") as workdir:
            started = time.monotonic()
            server = (
                start_assay(engine, workdir, settings.project, settings.workers)
                if system == "assay"
                else start_phoenix(workdir, settings.project)
            )
            try:
                startup_s = time.monotonic() - started
                result = _ingest_run(server, batches, settings, run)
                result.startup_s = startup_s
            finally:
                server.stop()
        _print_run(result)
        results.append(result)
    return results


# --- big store ---------------------------------------------------------------------------------


def _fill(server: Server, spans: int, settings: Settings, start_ns: int) -> DriveResult | None:
    """Top the store up by ``spans`` new spans, generated inside the client processes."""
    if spans <= 0:
        return None
    console.print(f"  adding {spans:,} spans (clients generate as they send)...")
    per_client = -(-spans // settings.clients)
    shares = [
        GeneratedBatches(settings.seed * 1_000 + 101 + k, start_ns, per_client, settings.project)
        for k in range(settings.clients)
    ]

    def progress() -> None:
        try:
            console.print(f"    {_count(server):,} spans stored")
        except httpx.HTTPError as error:
            console.print(f"    (count failed: {error})")

    return drive(server.ingest_url, list(shares), heartbeat=progress)


def big_store(engine: str, batches: list[Batch], settings: Settings, start_ns: int) -> BigStore:
    """Fill a fresh Assay store to ``store_spans`` (the run's payload first), then query it."""
    with scratch_dir(f"store-{engine}") as workdir:
        server = start_assay(engine, workdir, settings.project, settings.workers)
        try:
            return _fill_and_query(server, batches, settings, start_ns)
        finally:
            server.stop()


def _fill_and_query(
    server: Server, batches: list[Batch], settings: Settings, start_ns: int
) -> BigStore:
    first = drive(server.ingest_url, split(batches, settings.clients))
    remaining = settings.store_spans - first.acked_spans
    filled = _fill(server, remaining, settings, start_ns - 30 * 86_400 * 10**9)
    last = filled if filled is not None and filled.last_probe is not None else first
    acked = first.acked_spans + (filled.acked_spans if filled else 0)
    with httpx.Client(timeout=60) as client:
        stored = wait_until_stored(lambda: server.count_spans(client), acked, timeout_s=600)
    fill_seconds = last.last_ack - first.started
    found = _search_found(server, last, timeout_s=600)
    catch_up = index_catch_up(server.search_backlog, last.last_ack)
    console.print(
        f"  {stored.stored_spans:,} spans stored at {acked / fill_seconds:,.0f} spans/s; "
        f"text index complete {catch_up or float('nan'):.1f}s after the last ack; "
        f"timing {settings.queries} requests per query"
    )
    memory = server.memory()
    probes = [batch.probe for batch in batches]
    queries = measure_queries(server.base_url, server.project, probes, repeat=settings.queries)
    return BigStore(
        engine=server.engine,
        spans_in_store=stored.stored_spans,
        fill_spans=acked,
        fill_seconds=fill_seconds,
        fill_spans_per_s=acked / fill_seconds if fill_seconds > 0 else 0.0,
        search_found_s=found,
        index_catch_up_s=catch_up,
        rss_mib=memory.rss_mib,
        peak_rss_mib=memory.peak_mib,
        queries=queries,
        errors=first.errors + (filled.errors if filled else []),
    )


# --- session -----------------------------------------------------------------------------------


def _environment(settings: Settings) -> dict[str, object]:
    env: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "assay_available": assay_available(),
    }
    if settings.peer == "phoenix":
        env["phoenix_version"] = phoenix_version()
    return env


def _payloads(settings: Settings, start_ns: int) -> tuple[list[Batch], list[Batch]]:
    """Assay's batches and Phoenix's, which are the leading batches of the same stream."""
    generator = PayloadGenerator(settings.seed, start_ns, settings.project)
    batches = batches_for_spans(generator, max(settings.spans, settings.peer_spans))
    assay, peer, total = [], [], 0
    for batch in batches:
        if total < settings.peer_spans:
            peer.append(batch)
        total += batch.span_count
    assay_total = 0
    for batch in batches:
        if assay_total >= settings.spans:
            break
        assay.append(batch)
        assay_total += batch.span_count
    return assay, peer


def _run_system(
    session: Session, system: str, engine: str, batches: list[Batch], settings: Settings
) -> None:
    console.rule(f"{system} on {engine}: {sum(b.span_count for b in batches):,} spans per run")
    try:
        session.runs += run_fresh_stores(system, engine, batches, settings)
    except (ServerError, httpx.HTTPError, OSError) as error:
        session.notes.append(f"{system}/{engine} failed: {error}")
        console.print(f"[red]{system}/{engine} failed:[/red] {error}")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results_path = RESULTS_DIR / f"ingest-{stamp}.json"
    if settings.peer == "phoenix":
        ensure_phoenix(PHOENIX_VENV)
    session = Session(stamp, vars(settings), _environment(settings))
    start_ns = _payload_start_ns()
    console.print("generating payloads...")
    assay_batches, peer_batches = _payloads(settings, start_ns)
    has_assay = bool(session.environment["assay_available"])
    if not has_assay:
        session.notes.append("assay server not found (assay server --help failed): not measured")
    for engine in settings.engines if has_assay else []:
        _run_system(session, "assay", engine, assay_batches, settings)
        session.write_json(results_path)
    if settings.peer == "phoenix":
        _run_system(session, "phoenix", "sqlite", peer_batches, settings)
        session.write_json(results_path)
    for engine in settings.engines if has_assay and settings.store_spans > 0 else []:
        console.rule(f"assay on {engine}: query latency at {settings.store_spans:,} spans")
        try:
            session.big_stores.append(big_store(engine, assay_batches, settings, start_ns))
        except (ServerError, httpx.HTTPError, OSError) as error:
            session.notes.append(f"big store on {engine} failed: {error}")
        session.write_json(results_path)
    print_report(session, console)
    session.write_json(results_path)
    console.print(f"figures written to {results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
