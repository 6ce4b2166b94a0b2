"""Web UI side by side: Assay's pages against the GraphQL queries Arize Phoenix's UI issues for
the same views, on identical stores, in one run. Started by ``bench/ui.py --peer phoenix``.

1. Starts Assay (SQLite) and Phoenix (``phoenix serve``, SQLite, its own virtualenv in
   ``bench/.venvs/phoenix``) on fresh stores, sends both the same pre-generated OTLP batches
   (``payloads.py``) plus the same 1,000-span trace, and waits until every span is stored on
   both, Assay's text index has caught up and both servers are idle.
2. Phoenix's UI is a client-side app fed by ``POST /graphql``. The queries are taken verbatim
   from the installed app's compiled bundle (``phoenix/server/static/assets/index-*.js``, Relay
   operations named below), with the variables its pages send: the traces page's root-span
   list (``ProjectPageQueriesTracesQuery``: 30 root spans newest first, each with up to 50
   descendants, in the default "last 7 days" range), the trace page (``TraceDetailsQuery`` for
   the tree, then ``SpanDetailsQuery`` for the root span it opens on) and a click on a span
   (``SpanDetailsQuery``).
3. Times each Assay page and the matching Phoenix request(s) by wall time from one httpx
   client, in interleaved rounds (which server goes first alternates), after warm-up rounds.

Assay's figures are whole server-rendered HTML pages; Phoenix's are only the data queries:
a browser still has to load Phoenix's JavaScript app and render the rows.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from driver import drive, median, percentile, split, wait_until_stored
from payloads import DEFAULT_PROJECT, PayloadGenerator, batches_for_spans
from servers import (
    PHOENIX_VENV,
    Server,
    _process_tree,
    ensure_phoenix,
    phoenix_version,
    start_assay,
    start_phoenix,
)
from ui import (
    BIG_TRACE_SPANS,
    RESULTS_DIR,
    _a_typical_trace,
    _server_ms,
    big_trace,
    wait_for_index,
)

OTLP_HEADERS = {"content-type": "application/x-protobuf"}
PHOENIX_OPERATIONS = (
    "ProjectPageQueriesTracesQuery",  # the traces page's list (first load, filter in the URL)
    "ProjectPageQuery",  # the stats header above it, loaded alongside
    "TraceDetailsQuery",  # the trace page's tree
    "SpanDetailsQuery",  # the detail pane of the selected span
)
ERRORS_FILTER = "error_count > 0"  # the traces page's "filter by errors" snippet
WARM_UP_ROUNDS = 2


# --- Phoenix's own queries ---------------------------------------------------------------------


def phoenix_queries(venv: Path = PHOENIX_VENV) -> dict[str, str]:
    """The text of each operation in ``PHOENIX_OPERATIONS``, as the installed app sends it."""
    bundles = sorted(venv.glob("lib/python*/site-packages/phoenix/server/static/assets/index-*.js"))
    if not bundles:
        raise RuntimeError(f"Phoenix's app bundle not found under {venv}")
    source = bundles[0].read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for name in PHOENIX_OPERATIONS:
        match = re.search(rf"name:`{name}`,operationKind:`query`,text:`(.*?)`", source, re.S)
        if match is None:
            raise RuntimeError(f"{name} not found in {bundles[0].name}: has Phoenix's UI changed?")
        found[name] = match.group(1)
    return found


def _seven_days_ago() -> str:
    """The start of the app's default time range ("Last 7 Days", rounded down to the hour)."""
    now = dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(days=7)).replace(minute=0, second=0, microsecond=0).isoformat()


@dataclass(frozen=True)
class Request:
    operation: str
    variables: dict[str, Any]


def graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> httpx.Response:
    return client.post("/graphql", json={"query": query, "variables": variables})


def _data(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {json.dumps(body['errors'])[:500]}")
    data: dict[str, Any] = body["data"]
    return data


def phoenix_project_id(client: httpx.Client, project: str) -> str:
    answer = _data(graphql(client, "{ projects { edges { node { id name } } } }", {}))
    for edge in answer["projects"]["edges"]:
        if edge["node"]["name"] == project:
            return str(edge["node"]["id"])
    raise RuntimeError(f"Phoenix has no project {project!r}")


def phoenix_span_ids(
    client: httpx.Client, queries: dict[str, str], project_id: str, trace_id: str
) -> dict[str, str]:
    """OTel span id -> Phoenix node id for every span of a trace; "root" -> the root's."""
    answer = _data(
        graphql(client, queries["TraceDetailsQuery"], {"id": project_id, "traceId": trace_id})
    )
    trace = answer["project"]["trace"]
    if trace is None:
        raise RuntimeError(f"Phoenix has no trace {trace_id}")
    ids = {edge["span"]["spanId"]: edge["span"]["id"] for edge in trace["spans"]["edges"]}
    ids["root"] = trace["rootSpans"]["edges"][0]["span"]["id"]
    return ids


# --- the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    assay_path: str | None  # None: a Phoenix request with no Assay counterpart
    fragment: bool  # Assay: ask for the HTML fragment the page swaps in
    phoenix: list[Request]  # sent one after another, as the app does; wall times add up


def cases(
    assay: httpx.Client,
    phoenix: httpx.Client,
    queries: dict[str, str],
    project: str,
    big: str,
    llm_span: str,
) -> list[Case]:
    p = quote(project, safe="")
    project_id = phoenix_project_id(phoenix, project)
    typical = _a_typical_trace(assay, project)
    typical_ids = phoenix_span_ids(phoenix, queries, project_id, typical)
    big_ids = phoenix_span_ids(phoenix, queries, project_id, big)
    time_range = {"start": _seven_days_ago()}

    def trace_list(condition: str | None) -> list[Request]:
        variables = {"id": project_id, "timeRange": time_range, "traceFilterCondition": condition}
        return [Request("ProjectPageQueriesTracesQuery", variables)]

    def trace_page(trace_id: str, root: str) -> list[Request]:
        return [
            Request("TraceDetailsQuery", {"id": project_id, "traceId": trace_id}),
            Request("SpanDetailsQuery", {"id": root}),
        ]

    return [
        Case("traces, newest first", f"/p/{p}/traces", False, trace_list(None)),
        Case(
            "traces, errors only", f"/p/{p}/traces?status=error", False, trace_list(ERRORS_FILTER)
        ),
        Case(
            "trace page, ~10 spans",
            f"/p/{p}/traces/{typical}",
            False,
            trace_page(typical, typical_ids["root"]),
        ),
        Case(
            "trace page, 1,000 spans",
            f"/p/{p}/traces/{big}",
            False,
            trace_page(big, big_ids["root"]),
        ),
        Case(
            "span detail (click in 1,000-span trace)",
            f"/p/{p}/traces/{big}/spans/{llm_span}",
            True,
            [Request("SpanDetailsQuery", {"id": big_ids[llm_span]})],
        ),
        Case(
            "Phoenix only: traces page stats header",
            None,
            False,
            [Request("ProjectPageQuery", {"id": project_id, "timeRange": time_range})],
        ),
    ]


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Sample:
    wall_ms: float
    size: int  # decoded body
    server_ms: float = float("nan")  # Assay's Server-Timing total
    transferred: int = 0  # on the wire (Phoenix gzips its GraphQL answers; Assay does not)
    parts_ms: list[float] = field(default_factory=list)  # Phoenix: per GraphQL request
    round: int = 0


@dataclass
class Samples:
    assay: list[Sample] = field(default_factory=list)
    phoenix: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _time_assay(client: httpx.Client, case: Case) -> Sample:
    assert case.assay_path is not None
    headers = {"X-Assay-Fragment": "1"} if case.fragment else {}
    started = time.perf_counter()
    response = client.get(case.assay_path, headers=headers)
    wall = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"assay {case.assay_path}: HTTP {response.status_code}")
    server, _ = _server_ms(response.headers.get("server-timing", ""))
    return Sample(wall, len(response.content), server, response.num_bytes_downloaded)


def _time_phoenix(client: httpx.Client, queries: dict[str, str], case: Case) -> Sample:
    parts, size, sent = [], 0, 0
    for request in case.phoenix:
        started = time.perf_counter()
        response = graphql(client, queries[request.operation], request.variables)
        parts.append((time.perf_counter() - started) * 1000)
        _data(response)  # an answer with errors must not count as a fast one
        size += len(response.content)
        sent += response.num_bytes_downloaded
    return Sample(sum(parts), size, transferred=sent, parts_ms=parts)


def time_rounds(
    assay: httpx.Client,
    phoenix: httpx.Client,
    queries: dict[str, str],
    all_cases: list[Case],
    rounds: int,
) -> list[Samples]:
    """Every case in every round, Assay and Phoenix back to back, who goes first alternating."""
    samples = [Samples() for _ in all_cases]
    for round_number in range(-WARM_UP_ROUNDS, rounds):
        started = time.monotonic()
        for case, out in zip(all_cases, samples, strict=True):
            timers: list[tuple[str, Callable[[], Sample]]] = [
                ("phoenix", functools.partial(_time_phoenix, phoenix, queries, case))
            ]
            if case.assay_path is not None:
                timers.insert(0, ("assay", functools.partial(_time_assay, assay, case)))
            if round_number % 2:
                timers.reverse()
            for system, timer in timers:
                try:
                    sample = timer()
                except (httpx.HTTPError, RuntimeError) as error:
                    out.errors.append(f"{system}: {error}"[:300])
                    continue
                if round_number >= 0:
                    sample.round = round_number
                    getattr(out, system).append(sample)
        label = "warm-up" if round_number < 0 else f"round {round_number + 1}/{rounds}"
        print(f"  {label}: {time.monotonic() - started:.1f} s", flush=True)
    return samples


@dataclass
class CaseStats:
    name: str
    assay_path: str | None
    phoenix_operations: list[str]
    rounds: int
    assay_p50_ms: float | None
    assay_p95_ms: float | None
    assay_server_p50_ms: float | None  # Server-Timing: database plus rendering
    assay_kib: float | None
    phoenix_p50_ms: float
    phoenix_p95_ms: float
    phoenix_kib: float
    phoenix_kib_transferred: float  # gzipped
    phoenix_parts_p50_ms: list[float]  # per operation, in order
    ratio: float | None  # Phoenix median / Assay median
    paired_ratio_p50: float | None  # median over rounds of Phoenix / Assay in the same round
    errors: list[str]
    assay_ms: list[float]  # every measured round, in order
    phoenix_ms: list[float]


def summarise(case: Case, samples: Samples) -> CaseStats:
    phoenix_walls = [s.wall_ms for s in samples.phoenix]
    assay_walls = [s.wall_ms for s in samples.assay]
    has_assay = case.assay_path is not None and bool(assay_walls)
    assay_by_round = {s.round: s.wall_ms for s in samples.assay}
    paired = [
        s.wall_ms / assay_by_round[s.round] for s in samples.phoenix if s.round in assay_by_round
    ]
    ratio = median(phoenix_walls) / median(assay_walls) if has_assay else None
    return CaseStats(
        name=case.name,
        assay_path=case.assay_path,
        phoenix_operations=[request.operation for request in case.phoenix],
        rounds=len(phoenix_walls),
        assay_p50_ms=median(assay_walls) if has_assay else None,
        assay_p95_ms=percentile(assay_walls, 0.95) if has_assay else None,
        assay_server_p50_ms=median([s.server_ms for s in samples.assay]) if has_assay else None,
        assay_kib=samples.assay[-1].size / 1024 if has_assay else None,
        phoenix_p50_ms=median(phoenix_walls),
        phoenix_p95_ms=percentile(phoenix_walls, 0.95),
        phoenix_kib=samples.phoenix[-1].size / 1024 if samples.phoenix else float("nan"),
        phoenix_kib_transferred=(
            samples.phoenix[-1].transferred / 1024 if samples.phoenix else float("nan")
        ),
        phoenix_parts_p50_ms=[
            median([s.parts_ms[i] for s in samples.phoenix]) for i in range(len(case.phoenix))
        ],
        ratio=ratio,
        paired_ratio_p50=median(paired) if has_assay and paired else None,
        errors=samples.errors[:5],
        assay_ms=[round(wall, 2) for wall in assay_walls],
        phoenix_ms=[round(wall, 2) for wall in phoenix_walls],
    )


# --- filling both stores -----------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    total = 0
    for member in _process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def wait_until_idle(server: Server, timeout_s: float = 180, busy: float = 0.05) -> float:
    """Seconds until the server's process tree used under ``busy`` of a CPU for 3 s in a row
    (Phoenix keeps working after it has stored the spans)."""
    started = time.monotonic()
    quiet_since = started
    last = _cpu_seconds(server.process.pid)
    while time.monotonic() - started < timeout_s:
        time.sleep(0.5)
        now = _cpu_seconds(server.process.pid)
        if now - last > busy * 0.5:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 3:
            return time.monotonic() - started
        last = now
    return time.monotonic() - started


def fill_both(
    assay: Server, phoenix: Server, spans: int, clients: int, seed: int
) -> tuple[str, str, dict[str, Any]]:
    """Identical batches and the same big trace to both; returns the big trace's id, one of its
    LLM spans and what happened (seconds, stored counts)."""
    now = time.time_ns()
    generator = PayloadGenerator(seed, now - 86_400 * 10**9, assay.project)
    batches = batches_for_spans(generator, spans - BIG_TRACE_SPANS)
    big_body, big, llm_span = big_trace(assay.project, now - 3_600 * 10**9)
    expected = sum(batch.span_count for batch in batches) + BIG_TRACE_SPANS
    print(f"  {len(batches)} batches, {expected:,} spans each (incl. one of 1,000)", flush=True)
    filled: dict[str, Any] = {"expected_spans": expected}
    for server in (assay, phoenix):
        started = time.monotonic()
        sent = drive(server.ingest_url, split(batches, clients))
        with httpx.Client(base_url=server.base_url, timeout=300) as client:
            client.post("/v1/traces", content=big_body, headers=OTLP_HEADERS).raise_for_status()
            stored = wait_until_stored(
                functools.partial(server.count_spans, client),
                expected,
                timeout_s=120 + expected / 20,
                interval_s=0.1 if server.system == "assay" else 1.0,
            )
        seconds = time.monotonic() - started
        print(
            f"  {server.system}: {stored.stored_spans:,}/{expected:,} spans stored in "
            f"{seconds:.0f} s ({stored.stored_spans / seconds:,.0f} spans/s)"
            + (f", {len(sent.errors)} send errors" if sent.errors else ""),
            flush=True,
        )
        if not stored.complete:
            raise RuntimeError(f"{server.system} stored {stored.stored_spans:,} of {expected:,}")
        filled[server.system] = {
            "stored_spans": stored.stored_spans,
            "seconds": seconds,
            "send_errors": sent.errors[:5],
        }
    wait_for_index(assay)
    for server in (assay, phoenix):
        filled[server.system]["idle_after_s"] = wait_until_idle(server)
    return big, llm_span, filled


# --- report ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _times(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def print_table(stats: list[CaseStats], spans: int, version: str) -> None:
    print(
        f"\nWall time from one client, ms, {stats[0].rounds} interleaved rounds, "
        f"{spans:,} spans in each store (SQLite). Assay: the whole HTML page; "
        f"Phoenix {version}: only the GraphQL data its page asks for (no JS, no rendering)."
    )
    head = ("Assay p50", "p95", "Phoenix p50", "p95", "ratio", "paired", "KiB A/P")
    widths = (9, 7, 11, 8, 6, 6, 11)
    print(f"{'view':42} " + " ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for s in stats:
        ratio, paired = _times(s.ratio), _times(s.paired_ratio_p50)
        kib = ("-" if s.assay_kib is None else f"{s.assay_kib:,.0f}") + f"/{s.phoenix_kib:,.1f}"
        print(
            f"{s.name:42} {_ms(s.assay_p50_ms):>9} {_ms(s.assay_p95_ms):>7} "
            f"{_ms(s.phoenix_p50_ms):>11} {_ms(s.phoenix_p95_ms):>8} {ratio:>6} {paired:>6} "
            f"{kib:>11}" + (f"  errors: {s.errors}" if s.errors else "")
        )
    print("ratio: Phoenix median / Assay median; paired: median of the per-round ratios.")
    for s in stats:
        if len(s.phoenix_operations) > 1:
            parts = " + ".join(
                f"{name} {ms:,.1f}"
                for name, ms in zip(s.phoenix_operations, s.phoenix_parts_p50_ms, strict=True)
            )
            print(f"Phoenix {s.name}: {parts} ms (medians)")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops both servers


def run(spans: int, clients: int, rounds: int, seed: int = 1) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    ensure_phoenix(PHOENIX_VENV)
    version = phoenix_version(PHOENIX_VENV)
    queries = phoenix_queries(PHOENIX_VENV)
    project = DEFAULT_PROJECT
    workdir = Path(tempfile.mkdtemp(prefix="assay-bench-ui-peer-"))
    started = time.monotonic()
    assay = phoenix = None
    try:
        (workdir / "assay").mkdir()
        (workdir / "phoenix").mkdir()
        assay = start_assay("sqlite", workdir / "assay", project)
        phoenix = start_phoenix(workdir / "phoenix", project)
        print(f"Assay and Phoenix {version} started; filling both", flush=True)
        big, llm_span, filled = fill_both(assay, phoenix, spans, clients, seed)
        with (
            httpx.Client(base_url=assay.base_url, timeout=300) as assay_client,
            httpx.Client(base_url=phoenix.base_url, timeout=300) as phoenix_client,
        ):
            all_cases = cases(assay_client, phoenix_client, queries, project, big, llm_span)
            print(f"timing {len(all_cases)} views, {rounds} rounds", flush=True)
            samples = time_rounds(assay_client, phoenix_client, queries, all_cases, rounds)
        memory = {
            "assay_rss_mib": assay.memory().rss_mib,
            "phoenix_rss_mib": phoenix.memory().rss_mib,
        }
    finally:
        for server in (phoenix, assay):
            if server is not None:
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    stats = [summarise(case, out) for case, out in zip(all_cases, samples, strict=True)]
    stored = filled["assay"]["stored_spans"]
    print_table(stats, stored, version)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"ui-phoenix-{stamp}.json"
    record = {
        "peer": "phoenix",
        "phoenix_version": version,
        "engine": "sqlite",
        "spans": stored,
        "rounds": rounds,
        "warm_up_rounds": WARM_UP_ROUNDS,
        "measured": "wall time from one httpx client; Assay: whole HTML page; "
        "Phoenix: only the GraphQL queries its page issues (no JS bundle, no rendering)",
        "fill": filled,
        "memory_after": memory,
        "total_seconds": time.monotonic() - started,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "cases": [asdict(s) for s in stats],
        "phoenix_queries": queries,
    }
    out.write_text(json.dumps(record, indent=2))
    print(f"\nwritten to {out} ({time.monotonic() - started:.0f} s in all)")
    return 0
