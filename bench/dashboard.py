"""Dashboard speed at a million spans: every dashboard metric over 30 days grouped by model.

    .venv/bin/python bench/dashboard.py [--engine sqlite|postgres|both]
        [--spans 1000000] [--repeat 10] [--rebuild] [--keep-postgres]
        [--metrics count,latency_p95,...] [--no-pages]

1. Builds a store of ``--spans`` spans: ten per trace (an agent root, three LLM calls, tools,
   a retriever), so 100,000 traces spread over the 30 days before the build hour, with five
   models, tags, metadata (tenant, region), registry prompt versions and ~55,000 scores (an
   LLM judge, a code check, people's thumbs), plus a review queue two people labelled (the
   quality page's agreement). Spans go in through the span writer's own functions
   (``insert_spans``, ``refresh_traces``) in large transactions, not over HTTP: this benchmark
   times reading. The SQLite file is cached under ``bench/.cache`` (rebuilt after 6 days, when
   the quality page's weeks would run out of data); PostgreSQL gets a database of its own,
   ``assay_bench_dashboard``, dropped at the end unless ``--keep-postgres``.
2. Times each metric (count, error_rate, latency_p50/p95/p99, tokens, cost, score_mean) for
   the 30 days by day and model, in-process through the service (``services.metrics.series``)
   and over HTTP from a live ``assay server`` (``GET /api/v1/projects/{p}/metrics``), then the
   whole dashboard (the page and each of its chart SVGs, one after another) and the quality
   page. Each is run ``--repeat`` times after two warm-ups; the figures are the median and p95.

Figures are printed and written to ``bench/results/dashboard-<timestamp>.json``, with a digest
of each answer so two runs (before and after a change) can be checked to answer the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.services import metrics, review, rubrics
from assay.services.metrics import MetricQuery
from assay.services.principal import Principal
from assay.services.review import ItemsToAdd
from assay.services.runtime import Runtime
from assay.settings import Settings
from assay.store import migrate
from assay.store import projects as project_store
from assay.store.engine import make_engine
from assay.store.tables import scores, store_state, traces
from assay.store.writer import insert_spans, refresh_traces
from driver import median, percentile
from servers import POSTGRES_ADMIN_URL, Server, _launch, free_port, wait_until_healthy

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / ".cache"
RESULTS_DIR = BENCH_DIR / "results"
PG_DATABASE = "assay_bench_dashboard"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
PROJECT = "dashbench"
HOUR = 3_600 * 10**9
DAY = 24 * HOUR
RANGE_DAYS = 30
SPANS_PER_TRACE = 10
#: The build's end (an hour boundary) lives in the store itself, so a cached store says which
#: 30 days it covers.
END_KEY = "bench_dashboard_end_ns"
#: A cached store older than this has too little in the quality page's two weeks.
MAX_CACHE_AGE_NS = 6 * DAY
#: (model, share of traces, median latency ms, error rate, USD per 1k tokens)
MODELS = (
    ("gpt-4o", 0.30, 2_400, 0.04, 0.010),
    ("gpt-4o-mini", 0.25, 900, 0.05, 0.0006),
    ("claude-sonnet-4-5", 0.20, 3_100, 0.03, 0.015),
    ("llama-3.1-70b", 0.15, 1_700, 0.08, 0.0009),
    ("mistral-large", 0.10, 2_000, 0.06, 0.006),
)
TAGS = ("prod", "beta", "mobile", "web", "eval")
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark")
REGIONS = ("eu", "us", "apac")
PROMPTS = (("support", 4), ("router", 2))
#: (score name, source, share of traces scored)
SCORES = (("helpful", "llm", 0.30), ("correct", "code", 0.20), ("thumbs_up", "human", 0.05))
METRICS = (
    "count",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "tokens",
    "cost",
    "score_mean",
)
SCORE_METRIC = "helpful"
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class Options:
    engines: list[str]
    spans: int
    repeat: int
    warmup: int
    rebuild: bool
    keep_postgres: bool
    seed: int
    metrics: list[str]
    pages: bool


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per query")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--rebuild", action="store_true", help="ignore a cached store")
    parser.add_argument(
        "--keep-postgres", action="store_true", help=f"keep (and reuse) {PG_DATABASE}"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--metrics", default=",".join(METRICS), help="comma-separated: which metrics to time"
    )
    parser.add_argument(
        "--no-pages", action="store_true", help="skip the dashboard and quality pages"
    )
    args = parser.parse_args(argv)
    wanted = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        parser.error(f"unknown metrics {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return Options(
        engines=["sqlite", "postgres"] if args.engine == "both" else [args.engine],
        spans=args.spans,
        repeat=args.repeat,
        warmup=args.warmup,
        rebuild=args.rebuild,
        keep_postgres=args.keep_postgres,
        seed=args.seed,
        metrics=wanted,
        pages=not args.no_pages,
    )


# --- the store ---------------------------------------------------------------------------------


def _span(
    trace_id: str,
    index: int,
    parent: str | None,
    start: int,
    end: int,
    kind: str,
    **extra: Any,
) -> dict[str, Any]:
    root = parent is None
    row: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": f"{trace_id[:12]}{index:04x}",
        "parent_span_id": parent,
        "name": {"agent": "support-agent", "llm": "chat", "tool": "lookup"}.get(kind, kind),
        "kind": 1,
        "start_ns": start,
        "end_ns": end,
        "status_code": 0,
        "status_message": None,
        "attributes": {},
        "events": [],
        "links": [],
        "resource": {},
        "scope": {},
        "is_root": root,
        "type": kind,
        "is_error": False,
        "error": None,
        "duration_ns": end - start,
        "input": None,
        "output": None,
        "model": None,
        "provider": None,
        "operation": None,
        "input_tokens": None,
        "output_tokens": None,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "total_tokens": None,
        "cost": None,
        "session_id": None,
        "user_id": None,
        "tags": [],
        "metadata": {},
        "ingested_ns": end,
    }
    row.update(extra)
    return row


@dataclass
class TraceFacts:
    trace_id: str
    start_ns: int


def _trace(rng: random.Random, number: int, start: int) -> tuple[list[dict[str, Any]], TraceFacts]:
    """One agent trace of SPANS_PER_TRACE spans: a root, three LLM calls (one or two models),
    five tool calls and a retriever."""
    trace_id = f"{number:08x}{rng.getrandbits(96):024x}"
    weights = [m[1] for m in MODELS]
    first = rng.choices(MODELS, weights)[0]
    second = rng.choices(MODELS, weights)[0] if rng.random() < 0.2 else first
    # Latency: log-normal around the model's median, in ns.
    duration = int(first[2] * rng.lognormvariate(0, 0.6) * 10**6) + rng.randrange(10**6)
    failed = rng.random() < first[3]
    prompt_name, versions = rng.choice(PROMPTS)
    prompt = {PROMPT_NAME: prompt_name, PROMPT_VERSION: rng.randint(1, versions)}
    tags = rng.sample(TAGS, rng.randint(0, 2))
    meta = {"tenant": rng.choice(TENANTS), "region": rng.choice(REGIONS)}
    root_id = f"{trace_id[:12]}0000"
    end = start + duration
    rows = [
        _span(
            trace_id,
            0,
            None,
            start,
            end,
            "agent",
            status_code=2 if failed else 0,
            is_error=failed,
            error="upstream timed out" if failed else None,
            input=f"question {number}: where is my order?",
            output=None if failed else f"answer {number}: it ships tomorrow",
            session_id=f"session-{number // 4}",
            user_id=f"user-{number % 997}",
            tags=tags,
            metadata=meta,
        )
    ]
    step = max(1, duration // SPANS_PER_TRACE)
    for i in range(1, SPANS_PER_TRACE):
        at = start + i * step // 2
        if i in (1, 4, 7):
            model = first if i < 7 else second
            tokens_in, tokens_out = rng.randint(200, 2_000), rng.randint(20, 600)
            rows.append(
                _span(
                    trace_id,
                    i,
                    root_id,
                    at,
                    at + step,
                    "llm",
                    model=model[0],
                    provider="openai",
                    operation="chat",
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                    total_tokens=tokens_in + tokens_out,
                    cost=round((tokens_in + tokens_out) / 1000 * model[4], 8),
                    attributes=prompt if i == 1 else {},
                )
            )
        else:
            rows.append(
                _span(trace_id, i, root_id, at, at + step, "tool" if i < 9 else "retriever")
            )
    return rows, TraceFacts(trace_id, start)


def _batches(
    spans: int, end_ns: int, seed: int
) -> Iterator[tuple[list[dict[str, Any]], list[TraceFacts]]]:
    """Batches of ~10,000 spans, traces in start order over the RANGE_DAYS before end_ns."""
    rng = random.Random(seed)
    count = max(1, spans // SPANS_PER_TRACE)
    since = end_ns - RANGE_DAYS * DAY
    starts = sorted(since + rng.randrange(RANGE_DAYS * DAY - HOUR) for _ in range(count))
    rows: list[dict[str, Any]] = []
    facts: list[TraceFacts] = []
    for number, start in enumerate(starts):
        trace_rows, fact = _trace(rng, number, start)
        rows += trace_rows
        facts.append(fact)
        if len(rows) >= 10_000:
            yield rows, facts
            rows, facts = [], []
    if rows:
        yield rows, facts


def _score_rows(
    rng: random.Random, project_id: int, facts: list[TraceFacts]
) -> list[dict[str, Any]]:
    out = []
    for fact in facts:
        for name, source, share in SCORES:
            if rng.random() < share:
                value = rng.choice([0.0, 1.0]) if source != "llm" else rng.choice([0.0, 0.5, 1.0])
                out.append(
                    {
                        "project_id": project_id,
                        "trace_id": fact.trace_id,
                        "span_id": None,
                        "name": name,
                        "value": value,
                        "label": None,
                        "rationale": None,
                        "source": source,
                        "author": "bench",
                        "metadata": {},
                        # Scored a minute after the trace started.
                        "created_ns": fact.start_ns + 60 * 10**9,
                        "rubric_id": None,
                        "rubric_version": None,
                        "review_id": None,
                    }
                )
    return out


@dataclass
class Built:
    engine: str
    url: str
    end_ns: int
    spans: int
    traces: int
    scores: int
    load_seconds: float | None  # None: reused from the cache
    reviews: int


def _end_of(engine: Engine) -> int | None:
    try:
        with engine.connect() as conn:
            value = conn.execute(
                select(store_state.c.value).where(store_state.c.key == END_KEY)
            ).scalar()
    except SQLAlchemyError:  # no store there yet: build one
        return None
    return None if value is None else int(value)


def _load(engine: Engine, spans: int, end_ns: int, seed: int) -> tuple[int, int]:
    """Spans, trace rows and scores, in transactions of ~10,000 spans; (traces, scores)."""
    rng = random.Random(seed + 1)
    with engine.begin() as conn:
        project_id = project_store.ensure(conn, PROJECT)
    trace_count = score_count = 0
    for rows, facts in _batches(spans, end_ns, seed):
        for row in rows:
            row["project_id"] = project_id
        with engine.begin() as conn:
            insert_spans(conn, rows)
            refresh_traces(conn, rows)
            score_rows = _score_rows(rng, project_id, facts)
            if score_rows:
                conn.execute(scores.insert(), score_rows)
        trace_count += len(facts)
        score_count += len(score_rows)
        if trace_count % 20_000 < len(facts):
            console.print(f"    {trace_count * SPANS_PER_TRACE:,} spans loaded")
    return trace_count, score_count


def _seed_reviews(db: Runtime, end_ns: int) -> int:
    """A review queue of 150 traces from the last week, labelled by two people (agreement)."""
    who = Principal.local()
    rubric = rubrics.create_rubric(
        db,
        who,
        PROJECT,
        {
            "name": "resolved",
            "kind": "categorical",
            "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
        },
    )
    queue = review.create_queue(
        db,
        who,
        PROJECT,
        {"name": "weekly", "rubrics": [rubric["id"]], "reviews_per_item": 2},
    )
    with db.read() as conn:
        recent = conn.execute(
            select(traces.c.trace_id)
            .where(traces.c.start_ns >= end_ns - 7 * DAY)
            .order_by(traces.c.start_ns)
            .limit(150)
        ).scalars()
        trace_ids = list(recent)
    review.add_items(db, who, int(queue["id"]), ItemsToAdd(trace_ids=trace_ids))
    rng = random.Random(7)
    submitted = 0
    for person in ("ana", "ben"):
        reviewer = Principal.for_key(person, "annotator", PROJECT)
        current = review.next_item(db, reviewer, int(queue["id"]))
        while current is not None:
            choice = "yes" if rng.random() < 0.75 else "no"
            labels = [{"rubric_id": rubric["id"], "choice": choice}]
            done = review.submit_labels(
                db, reviewer, int(queue["id"]), int(current["item_id"]), labels
            )
            submitted += 1
            current = done["next"]
    return submitted


def _reset_postgres(drop_only: bool = False) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        name = sql.Identifier(PG_DATABASE)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def _postgres_exists() -> bool:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DATABASE])
        return found.fetchone() is not None


def build(engine_name: str, options: Options) -> Built:
    """The store for one engine: the cached one if it is fresh, else a new one."""
    if engine_name == "sqlite":
        path = CACHE_DIR / f"dashboard-{options.spans}-seed{options.seed}.db"
        url = f"sqlite:///{path}"
        existing = path.exists()
    else:
        url = PG_URL
        existing = _postgres_exists()
    now = time.time_ns()
    if existing and not options.rebuild:
        engine = make_engine(url)
        migrate.upgrade(engine)  # a store cached before a new migration gets it
        end_ns = _end_of(engine)
        if end_ns is not None and now - end_ns < MAX_CACHE_AGE_NS:
            with engine.connect() as conn:
                spans_n, traces_n, scores_n = _sizes(conn)
            engine.dispose()
            return Built(engine_name, url, end_ns, spans_n, traces_n, scores_n, None, 0)
        engine.dispose()
    if engine_name == "sqlite":
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        _reset_postgres()
    end_ns = now // HOUR * HOUR
    console.print(f"  building {options.spans:,} spans on {engine_name}...")
    started = time.monotonic()
    engine = make_engine(url)
    migrate.upgrade(engine)
    writer_engine = make_engine(url, role="writer")
    try:
        trace_count, score_count = _load(writer_engine, options.spans, end_ns, options.seed)
    finally:
        writer_engine.dispose()
    load_seconds = time.monotonic() - started
    runtime = Runtime.open(Settings(database_url=url, search_index=False))
    try:
        reviews = _seed_reviews(runtime, end_ns)
    finally:
        runtime.close()
    if engine_name == "postgres":
        # What autovacuum does after a bulk load (visibility map, planner statistics); on
        # SQLite Assay never runs ANALYZE, so neither does the benchmark.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    with engine.begin() as conn:
        conn.execute(store_state.insert().values(key=END_KEY, value=end_ns))
        spans_n, _, _ = _sizes(conn)
    engine.dispose()
    return Built(engine_name, url, end_ns, spans_n, trace_count, score_count, load_seconds, reviews)


def _sizes(conn: Any) -> tuple[int, int, int]:
    from assay.store.tables import spans

    return (
        int(conn.execute(select(func.count()).select_from(spans)).scalar_one()),
        int(conn.execute(select(func.count()).select_from(traces)).scalar_one()),
        int(conn.execute(select(func.count()).select_from(scores)).scalar_one()),
    )


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    via: str  # "service" | "http"
    p50_ms: float
    p95_ms: float
    runs: int
    digest: str  # of the answer: equal digests, equal answers
    detail: str = ""


def _time(
    name: str, via: str, call: Callable[[], Any], options: Options, detail: str = ""
) -> Timing:
    answer: Any = None
    latencies: list[float] = []
    for index in range(options.warmup + options.repeat):
        started = time.perf_counter()
        answer = call()
        elapsed = time.perf_counter() - started
        if index >= options.warmup:
            latencies.append(elapsed)
    text = json.dumps(answer, sort_keys=True, default=str)
    return Timing(
        name,
        via,
        median(latencies) * 1000,
        percentile(latencies, 0.95) * 1000,
        len(latencies),
        hashlib.sha256(text.encode()).hexdigest()[:12],
        detail,
    )


def _query(metric: str, built: Built) -> MetricQuery:
    since = built.end_ns - RANGE_DAYS * DAY
    score = SCORE_METRIC if metric == "score_mean" else None
    return MetricQuery(metric, since, built.end_ns, "day", "model", score)


def _range_params(built: Built) -> dict[str, str]:
    return {
        "since": metrics.iso(built.end_ns - RANGE_DAYS * DAY),
        "until": metrics.iso(built.end_ns),
        "bucket": "day",
        "group_by": "model",
    }


def time_service(built: Built, options: Options) -> list[Timing]:
    from assay.server.ui.dashboard import MAX_SCORE_CHARTS, TRACE_CHARTS, chart_svg

    runtime = Runtime.open(Settings(database_url=built.url, search_index=False))
    who = Principal.local()
    out: list[Timing] = []
    try:
        for metric in options.metrics:
            q = _query(metric, built)

            def one(q: MetricQuery = q) -> Any:
                return metrics.series(runtime, who, PROJECT, q).as_dict()

            timing = _time(metric, "service", one, options)
            out.append(timing)
            console.print(f"    service {metric}: p50 {timing.p50_ms:,.0f} ms")
        if not options.pages:
            return out

        def dashboard() -> Any:
            since = built.end_ns - RANGE_DAYS * DAY
            names = metrics.score_names(runtime, who, PROJECT, since)[:MAX_SCORE_CHARTS]
            wanted: list[tuple[str, str | None, str | None]] = [
                (metric, None, None) for metric, _ in TRACE_CHARTS
            ]
            wanted += [("score_mean", name, source) for name, source in names]
            svgs = []
            for metric, name, source in wanted:
                q = MetricQuery(metric, since, built.end_ns, "day", "model", name, source)
                svgs.append(chart_svg(PROJECT, metrics.series(runtime, who, PROJECT, q)))
            return len(svgs)

        out.append(_time("dashboard (all charts)", "service", dashboard, options))

        def quality() -> Any:
            found = metrics.quality(runtime, who, PROJECT)
            return [(h.label, h.this_week.n) for h in found["headlines"]]

        out.append(_time("quality page", "service", quality, options))
    finally:
        runtime.close()
    return out


def _start_server(built: Built, workdir: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "ASSAY_HOME": str(workdir / "home"),
        "ASSAY_SEARCH_INDEX": "false",
        "ASSAY_GRPC_PORT": "0",
    }
    command = [sys.executable, "-m", "assay.cli", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--db", built.url]
    log_path = workdir / "assay.log"
    server = Server(
        system="assay",
        engine=built.engine,
        base_url=f"http://127.0.0.1:{port}",
        project=PROJECT,
        process=_launch(command, env, log_path),
        log_path=log_path,
        count_spans=lambda client: 0,
        cleanup=lambda: None,
    )
    wait_until_healthy(server, "/healthz", timeout_s=120)
    return server


CHART_SRC = re.compile(r'(?:src|data)="(/p/[^"]+/dashboard/chart\.svg\?[^"]+)"')


def time_http(built: Built, options: Options) -> list[Timing]:
    out: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="assay-bench-dashboard-") as workdir:
        server = _start_server(built, Path(workdir))
        try:
            with httpx.Client(base_url=server.base_url, timeout=300) as client:
                api = f"/api/v1/projects/{quote(PROJECT, safe='')}/metrics"
                for metric in options.metrics:
                    params = {"metric": metric, **_range_params(built)}
                    if metric == "score_mean":
                        params["score"] = SCORE_METRIC

                    def one(params: dict[str, str] = params) -> Any:
                        response = client.get(api, params=params)
                        response.raise_for_status()
                        return response.json()["series"]

                    timing = _time(metric, "http", one, options)
                    out.append(timing)
                    console.print(f"    http {metric}: p50 {timing.p50_ms:,.0f} ms")
                if not options.pages:
                    return out
                page = f"/p/{quote(PROJECT, safe='')}/dashboard?{urlencode(_range_params(built))}"
                first = client.get(page)
                first.raise_for_status()
                charts = [src.replace("&amp;", "&") for src in CHART_SRC.findall(first.text)]
                if not charts:
                    raise RuntimeError("the dashboard page links no charts: has its HTML changed?")

                def html() -> Any:
                    response = client.get(page)
                    response.raise_for_status()
                    return len(CHART_SRC.findall(response.text))

                def whole() -> Any:
                    sizes = [html()]
                    for src in charts:
                        response = client.get(src)
                        response.raise_for_status()
                        sizes.append(len(response.content))
                    return len(sizes)

                out.append(_time("dashboard page (HTML)", "http", html, options))
                out.append(
                    _time(
                        "dashboard (HTML + charts)",
                        "http",
                        whole,
                        options,
                        f"{len(charts)} charts, fetched one after another",
                    )
                )

                def quality() -> Any:
                    response = client.get(f"/p/{quote(PROJECT, safe='')}/quality")
                    response.raise_for_status()
                    return response.status_code

                out.append(_time("quality page", "http", quality, options))
        finally:
            server.stop()
    return out


# --- report -------------------------------------------------------------------------------------


@dataclass
class EngineResult:
    built: Built
    timings: list[Timing] = field(default_factory=list)


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def print_report(results: list[EngineResult], options: Options) -> None:
    for result in results:
        b = result.built
        loaded = (
            f"built in {b.load_seconds:,.0f} s ({b.spans / b.load_seconds:,.0f} spans/s)"
            if b.load_seconds
            else "reused from the cache"
        )
        console.rule(
            f"{b.engine}: {b.spans:,} spans, {b.traces:,} traces, {b.scores:,} scores; {loaded}"
        )
        table = Table(show_lines=False)
        table.add_column("30 days by day and model")
        for label in ("service p50", "service p95", "HTTP p50", "HTTP p95"):
            table.add_column(label + " ms", justify="right")
        table.add_column("answer")
        names = list(dict.fromkeys(t.name for t in result.timings))
        for name in names:
            by_via = {t.via: t for t in result.timings if t.name == name}
            cells = []
            for via in ("service", "http"):
                t = by_via.get(via)
                cells += [f"{t.p50_ms:,.0f}", f"{t.p95_ms:,.0f}"] if t else ["-", "-"]
            digest = " / ".join(t.digest for t in by_via.values() if t.via == "service")
            table.add_row(name, *cells, digest)
        console.print(table)
    console.print(
        f"{options.repeat} timed runs per row after {options.warmup} warm-ups; "
        f"load average now {_load_average()} on {os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results: list[EngineResult] = []
    load_before = _load_average()
    try:
        for engine_name in options.engines:
            console.rule(f"{engine_name}: store of {options.spans:,} spans")
            built = build(engine_name, options)
            result = EngineResult(built)
            console.print("  timing through the service...")
            result.timings += time_service(built, options)
            console.print("  timing over HTTP...")
            result.timings += time_http(built, options)
            results.append(result)
    finally:
        if "postgres" in options.engines and not options.keep_postgres:
            _reset_postgres(drop_only=True)
    print_report(results, options)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"dashboard-{stamp}.json"
    record = {
        "options": asdict(options),
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
