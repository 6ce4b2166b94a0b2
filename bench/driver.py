"""Client driver: K processes POST OTLP batches and report what was acknowledged, and when.

Workers are forked so pre-generated payloads are shared copy-on-write, never re-serialised.
They start together on one event; the main process then polls the server until every
acknowledged span is queryable, which is where the throughput clock stops.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import queue
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event

import httpx

from payloads import Batch, PayloadGenerator, Probe

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_ATTEMPTS = 30
MAX_BACKOFF_S = 5.0
HEADERS = {"Content-Type": "application/x-protobuf"}


@dataclass
class WorkerResult:
    acked_spans: int = 0
    failed_spans: int = 0
    requests: int = 0
    retries: int = 0  # attempts answered 429/5xx or lost in transport, then re-sent
    latencies_s: list[float] = field(default_factory=list)  # of accepted requests
    last_ack: float = 0.0  # time.monotonic()
    last_probe: Probe | None = None
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GeneratedBatches:
    """Batches made inside the worker (for filling a big store): nothing to pre-generate."""

    seed: int
    start_ns: int
    spans: int
    project: str

    def __iter__(self) -> Iterator[Batch]:
        generator = PayloadGenerator(self.seed, self.start_ns, self.project)
        sent = 0
        while sent < self.spans:
            batch = generator.next_batch()
            sent += batch.span_count
            yield batch


def _post_with_retries(client: httpx.Client, url: str, batch: Batch, result: WorkerResult) -> bool:
    for attempt in range(MAX_ATTEMPTS):
        started = time.monotonic()
        try:
            response = client.post(url, content=batch.body, headers=HEADERS)
        except httpx.TransportError as error:
            result.errors.append(f"{type(error).__name__}: {error}")
        else:
            if response.status_code == 200:
                result.latencies_s.append(time.monotonic() - started)
                return True
            if response.status_code not in RETRY_STATUSES:
                result.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                return False
        result.retries += 1
        time.sleep(min(MAX_BACKOFF_S, 0.1 * 2**attempt))
    return False


def _worker(
    url: str, batches: Iterable[Batch], ready: Barrier, go: Event, out: Queue[WorkerResult]
) -> None:
    result = WorkerResult()
    with httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0)) as client:
        ready.wait()
        go.wait()
        for batch in batches:
            result.requests += 1
            if _post_with_retries(client, url, batch, result):
                result.acked_spans += batch.span_count
                result.last_ack = time.monotonic()
                result.last_probe = batch.probe
            else:
                result.failed_spans += batch.span_count
    result.errors = result.errors[:20]
    out.put(result)


@dataclass
class DriveResult:
    clients: int
    started: float  # time.monotonic() when every worker was released
    sent_spans: int
    acked_spans: int
    requests: int
    retries: int
    latencies_s: list[float]
    last_ack: float
    last_probe: Probe | None
    errors: list[str]

    @property
    def send_seconds(self) -> float:
        return self.last_ack - self.started


def _merge(workers: list[WorkerResult], started: float, clients: int) -> DriveResult:
    last = max(workers, key=lambda w: w.last_ack)
    return DriveResult(
        clients=clients,
        started=started,
        sent_spans=sum(w.acked_spans + w.failed_spans for w in workers),
        acked_spans=sum(w.acked_spans for w in workers),
        requests=sum(w.requests for w in workers),
        retries=sum(w.retries for w in workers),
        latencies_s=[latency for w in workers for latency in w.latencies_s],
        last_ack=last.last_ack,
        last_probe=last.last_probe,
        errors=[error for w in workers for error in w.errors][:20],
    )


def _collect(
    out: Queue[WorkerResult],
    workers: Sequence[BaseProcess],
    heartbeat: Callable[[], None] | None,
    heartbeat_s: float,
) -> list[WorkerResult]:
    results: list[WorkerResult] = []
    next_beat = time.monotonic() + heartbeat_s
    while len(results) < len(workers):
        try:
            results.append(out.get(timeout=1.0))
            continue
        except queue.Empty:
            pass
        if not any(worker.is_alive() for worker in workers) and out.empty():
            codes = [worker.exitcode for worker in workers]
            raise RuntimeError(f"client processes died without a result (exit codes {codes})")
        if heartbeat is not None and time.monotonic() >= next_beat:
            next_beat = time.monotonic() + heartbeat_s
            heartbeat()
    return results


def drive(
    url: str,
    shares: list[Iterable[Batch]],
    heartbeat: Callable[[], None] | None = None,
    heartbeat_s: float = 30.0,
) -> DriveResult:
    """One worker process per share; returns once every worker has finished sending.

    ``heartbeat`` (if given) is called every ``heartbeat_s`` while the workers send.
    """
    context = mp.get_context("fork")
    ready = context.Barrier(len(shares) + 1)
    go = context.Event()
    out: Queue[WorkerResult] = context.Queue()
    workers = [
        context.Process(target=_worker, args=(url, share, ready, go, out), daemon=True)
        for share in shares
    ]
    for worker in workers:
        worker.start()
    ready.wait()
    started = time.monotonic()
    go.set()
    results = _collect(out, workers, heartbeat, heartbeat_s)
    for worker in workers:
        worker.join()
    return _merge(results, started, len(shares))


def split(batches: list[Batch], clients: int) -> list[Iterable[Batch]]:
    """Round-robin shares so every client sends a similar mix and volume."""
    return [batches[i::clients] for i in range(clients)]


@dataclass(frozen=True)
class StoredResult:
    stored_spans: int
    done: float  # time.monotonic() when the count reached its final value
    complete: bool  # every expected span is queryable


def wait_until_stored(
    count: Callable[[], int],
    expected: int,
    timeout_s: float,
    stall_s: float = 30.0,
    interval_s: float = 0.1,
) -> StoredResult:
    """Poll ``count`` until it reaches ``expected``, stops moving for ``stall_s``, or times out."""
    started = time.monotonic()
    last_value, last_change = -1, started
    while True:
        now = time.monotonic()
        try:
            value = count()
        except httpx.HTTPError:
            value = last_value  # busy or briefly unreachable: not a change
        if value != last_value:
            last_value, last_change = value, now
        if value >= expected:
            return StoredResult(value, now, True)
        if now - last_change > stall_s or now - started > timeout_s:
            return StoredResult(value, last_change, False)
        time.sleep(interval_s)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
