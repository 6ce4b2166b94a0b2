"""Read latency on a big store: trace lists with filters, and text search over spans and traces.

Every query runs ``repeat`` times in sequence from one client; the figures are p50/p95 of the
wall time per request. Values that pick a needle (session id, unique reference word) rotate
through probes taken from different batches so repeated requests do not hit one row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from driver import median, percentile
from payloads import COMMON_WORD, MEDIUM_WORD, RARE_WORD, Probe


@dataclass(frozen=True)
class QuerySpec:
    name: str
    path: str  # relative to /api/v1/projects/{project}
    params: list[dict[str, str]]  # one per request, cycled


@dataclass
class QueryStats:
    name: str
    requests: int
    p50_ms: float
    p95_ms: float
    first_items: int  # rows in the first answer: shows how selective the query is
    errors: list[str]


def query_specs(probes: list[Probe]) -> list[QuerySpec]:
    def each(key: str, values: list[str]) -> list[dict[str, str]]:
        return [{"limit": "50", key: value} for value in values]

    sessions = [p.session_id for p in probes]
    refs = [p.ref_word for p in probes]
    specs = [
        QuerySpec("traces", "/traces", [{"limit": "50"}]),
        QuerySpec("traces status=error", "/traces", each("status", ["error"])),
        QuerySpec("traces model=gpt-4o", "/traces", each("model", ["gpt-4o"])),
        QuerySpec("traces min_duration_ms=1000", "/traces", each("min_duration_ms", ["1000"])),
        QuerySpec("traces session_id=<one>", "/traces", each("session_id", sessions)),
    ]
    words = {"common": [COMMON_WORD], "medium": [MEDIUM_WORD], "rare": [RARE_WORD], "unique": refs}
    for resource in ("traces", "spans"):
        for label, values in words.items():
            specs.append(
                QuerySpec(f"{resource} q=<{label} word>", f"/{resource}", each("q", values))
            )
    return specs


def _time_query(
    client: httpx.Client, url: str, spec: QuerySpec, repeat: int, warmup: int
) -> QueryStats:
    latencies: list[float] = []
    errors: list[str] = []
    first_items = -1
    for index in range(warmup + repeat):
        params = spec.params[index % len(spec.params)]
        started = time.monotonic()
        try:
            response = client.get(url, params=params)
        except httpx.TransportError as error:
            errors.append(f"{type(error).__name__}: {error}")
            continue
        elapsed = time.monotonic() - started
        if response.status_code != 200:
            errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            continue
        if first_items < 0:
            first_items = len(response.json().get("items", []))
        if index >= warmup:
            latencies.append(elapsed)
    return QueryStats(
        name=spec.name,
        requests=len(latencies),
        p50_ms=median(latencies) * 1000,
        p95_ms=percentile(latencies, 0.95) * 1000,
        first_items=first_items,
        errors=errors[:5],
    )


def measure_queries(
    base_url: str, project: str, probes: list[Probe], repeat: int = 50, warmup: int = 2
) -> list[QueryStats]:
    prefix = f"{base_url}/api/v1/projects/{quote(project, safe='')}"
    with httpx.Client(timeout=120) as client:
        return [
            _time_query(client, prefix + spec.path, spec, repeat, warmup)
            for spec in query_specs(probes)
        ]


def search_finds(
    base_url: str, project: str, word: str, since: float, timeout_s: float = 300
) -> float | None:
    """Seconds from ``since`` (a time.monotonic()) until ``/spans?q=word`` returns a span."""
    url = f"{base_url}/api/v1/projects/{quote(project, safe='')}/spans"
    with httpx.Client(timeout=60) as client:
        while time.monotonic() - since < timeout_s:
            try:
                response = client.get(url, params={"q": word, "limit": "1"})
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                if response.json().get("items"):
                    return time.monotonic() - since
            elif response is not None and 400 <= response.status_code < 500:
                return None  # search not offered in this form: nothing to wait for
            time.sleep(0.1)
    return None


def index_catch_up(
    backlog: Callable[[], int | None], since: float, timeout_s: float = 1_800
) -> float | None:
    """Seconds from ``since`` until the background text index covers every stored span."""
    while time.monotonic() - since < timeout_s:
        remaining = backlog()
        if remaining is None:
            return None
        if remaining <= 0:
            return time.monotonic() - since
        time.sleep(0.2)
    return None
