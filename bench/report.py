"""Figures of one benchmark session: the record written to JSON and the tables printed."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from driver import median
from queries import QueryStats


@dataclass
class IngestRun:
    """One fresh server fed the whole payload."""

    system: str
    engine: str
    run: int
    clients: int
    sent_spans: int
    acked_spans: int
    stored_spans: int
    complete: bool
    seconds: float  # first send -> last acknowledged span queryable
    spans_per_s: float  # stored spans / seconds
    ack_spans_per_s: float  # acknowledged spans / (first send -> last ack)
    requests: int
    retries: int
    request_p50_ms: float
    request_p95_ms: float
    rss_mib: float
    peak_rss_mib: float
    startup_s: float
    search_found_s: float | None = None  # last ack -> its unique word found by /spans?q=
    index_lag_s: float | None = None  # last ack -> background text index covers every span
    errors: list[str] = field(default_factory=list)


@dataclass
class BigStore:
    """Assay filled to many spans, then asked the queries the UI asks."""

    engine: str
    spans_in_store: int
    fill_spans: int
    fill_seconds: float
    fill_spans_per_s: float  # generator runs inside the clients: indicative only
    search_found_s: float | None  # last ack -> /spans?q=<word of the last batch> finds it
    index_catch_up_s: float | None  # last ack -> background text index covers every span
    rss_mib: float
    peak_rss_mib: float
    queries: list[QueryStats]
    errors: list[str] = field(default_factory=list)


@dataclass
class Session:
    started_at: str
    settings: dict[str, Any]
    environment: dict[str, Any]
    runs: list[IngestRun] = field(default_factory=list)
    big_stores: list[BigStore] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = asdict(self)
        record["summary"] = [asdict(row) for row in summarise(self.runs)]
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")


@dataclass
class SummaryRow:
    system: str
    engine: str
    runs: int
    sent_spans: int
    acked_spans: int
    stored_spans: int
    spans_per_s: float  # median over runs
    spans_per_s_min: float
    spans_per_s_max: float
    ack_spans_per_s: float
    request_p50_ms: float
    request_p95_ms: float
    rss_mib: float
    search_found_s: float | None
    index_lag_s: float | None
    ratio_vs_peer: float | None  # spans/s of this row over the peer's; None for the peer
    rss_ratio_vs_peer: float | None  # RSS of this row over the peer's


def _summarise_group(runs: list[IngestRun]) -> SummaryRow:
    rates = [r.spans_per_s for r in runs]
    found = [r.search_found_s for r in runs if r.search_found_s is not None]
    lags = [r.index_lag_s for r in runs if r.index_lag_s is not None]
    return SummaryRow(
        system=runs[0].system,
        engine=runs[0].engine,
        runs=len(runs),
        sent_spans=runs[0].sent_spans,
        acked_spans=min(r.acked_spans for r in runs),
        stored_spans=min(r.stored_spans for r in runs),
        spans_per_s=median(rates),
        spans_per_s_min=min(rates),
        spans_per_s_max=max(rates),
        ack_spans_per_s=median([r.ack_spans_per_s for r in runs]),
        request_p50_ms=median([r.request_p50_ms for r in runs]),
        request_p95_ms=median([r.request_p95_ms for r in runs]),
        rss_mib=median([r.rss_mib for r in runs]),
        search_found_s=median(found) if found else None,
        index_lag_s=median(lags) if lags else None,
        ratio_vs_peer=None,
        rss_ratio_vs_peer=None,
    )


def summarise(runs: list[IngestRun]) -> list[SummaryRow]:
    groups: dict[tuple[str, str], list[IngestRun]] = {}
    for run in runs:
        groups.setdefault((run.system, run.engine), []).append(run)
    rows = [_summarise_group(group) for group in groups.values()]
    peer = next((row for row in rows if row.system == "phoenix"), None)
    for row in rows:
        if peer and row is not peer and peer.spans_per_s > 0:
            row.ratio_vs_peer = row.spans_per_s / peer.spans_per_s
        if peer and row is not peer and peer.rss_mib > 0:
            row.rss_ratio_vs_peer = row.rss_mib / peer.rss_mib
    return rows


def _num(value: float | None, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ingest_table(rows: list[SummaryRow]) -> Table:
    table = Table(title="OTLP ingest (fresh store per run; spans/s = median of runs)")
    for column in (
        "system",
        "engine",
        "runs",
        "sent",
        "acked",
        "stored",
        "spans/s",
        "min-max",
        "ack spans/s",
        "req p50 ms",
        "req p95 ms",
        "RSS MiB",
        "found s",
        "index lag s",
        "vs peer",
        "RSS vs peer",
    ):
        table.add_column(column, justify="left" if column in ("system", "engine") else "right")
    for row in rows:
        table.add_row(
            row.system,
            row.engine,
            str(row.runs),
            _num(row.sent_spans),
            _num(row.acked_spans),
            _num(row.stored_spans),
            _num(row.spans_per_s),
            f"{_num(row.spans_per_s_min)}-{_num(row.spans_per_s_max)}",
            _num(row.ack_spans_per_s),
            _num(row.request_p50_ms),
            _num(row.request_p95_ms),
            _num(row.rss_mib),
            _num(row.search_found_s, 2),
            _num(row.index_lag_s, 1),
            _ratio(row.ratio_vs_peer),
            _ratio(row.rss_ratio_vs_peer),
        )
    return table


def _store_caption(store: BigStore) -> str:
    return (
        f"Assay {store.engine} with {store.spans_in_store:,} spans: filled at "
        f"{store.fill_spans_per_s:,.0f} spans/s (generator in the loop); last batch searchable "
        f"{_num(store.search_found_s, 2)} s and text index complete "
        f"{_num(store.index_catch_up_s, 1)} s after the last ack; "
        f"RSS {store.rss_mib:,.0f} MiB (peak {store.peak_rss_mib:,.0f})"
    )


def _store_table(store: BigStore) -> Table:
    table = Table(title=f"Read latency, Assay {store.engine}, {store.spans_in_store:,} spans")
    for column in ("query", "requests", "p50 ms", "p95 ms", "items", "errors"):
        table.add_column(column, justify="left" if column in ("query", "errors") else "right")
    for query in store.queries:
        table.add_row(
            query.name,
            str(query.requests),
            _num(query.p50_ms, 1),
            _num(query.p95_ms, 1),
            str(query.first_items),
            "; ".join(query.errors)[:60],
        )
    return table


def print_report(session: Session, console: Console) -> None:
    console.print(_ingest_table(summarise(session.runs)))
    for store in session.big_stores:
        console.print(_store_table(store))
        console.print(_store_caption(store))
    for run in session.runs:
        if run.errors or not run.complete:
            status = "incomplete" if not run.complete else "errors"
            console.print(f"[yellow]{run.system}/{run.engine} run {run.run}: {status}[/yellow]")
            for error in run.errors[:5]:
                console.print(f"  {error}")
    for note in session.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
