"""Metric series against values computed here from the same spans, on both engines.

The store is written through the real span writer with known timestamps (some right at hour
boundaries); every expected figure is computed in this file from the test's own data.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from assay.errors import UserError
from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.services import metrics
from assay.services.filters import InvalidFilters
from assay.services.metrics import MetricQuery, parse_query, window_value
from assay.services.principal import Principal
from assay.statistics import t_quantile
from assay.store import projects as project_store
from assay.store import scores as score_store
from assay.store.database import Database
from assay.store.engine import make_engine
from assay.store.writer import SpanWriter

HOUR = 3_600 * 10**9
DAY = 24 * HOUR
#: Monday 2 March 2026, 00:00 UTC: a day and an hour boundary.
T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp()) * 10**9
PROJECT = "metrics"
MODELS = ("gpt-4o", "claude-sonnet-4-5", "mistral-large")
TAGS = ("prod", "beta", "<b>x</b>")
TENANTS = ("acme", "globex")


@dataclass
class Trace:
    trace_id: str
    start_ns: int
    duration_ns: int
    error: bool
    models: list[str]
    tags: list[str]
    tenant: str | None
    prompt: tuple[str, int] | None
    tokens: int
    cost: float
    scores: list[tuple[str, str, float]] = field(default_factory=list)  # name, source, value


def _row(trace: Trace, span_id: str, *, parent: str | None, model: str | None) -> dict[str, Any]:
    root = parent is None
    attributes: dict[str, Any] = {}
    if trace.prompt and root:
        attributes = {PROMPT_NAME: trace.prompt[0], PROMPT_VERSION: trace.prompt[1]}
    # A child call inside the root: the trace's duration is the root's.
    start = trace.start_ns if root else trace.start_ns + 1
    end = trace.start_ns + trace.duration_ns if root else start + 1
    return {
        "trace_id": trace.trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": "run" if root else "call",
        "kind": 1,
        "start_ns": start,
        "end_ns": end,
        "status_code": 2 if trace.error and root else 0,
        "status_message": None,
        "attributes": attributes,
        "events": [],
        "links": [],
        "resource": {},
        "scope": {},
        "is_root": root,
        "type": "llm" if model else "agent",
        "is_error": trace.error and root,
        "error": "boom" if trace.error and root else None,
        "duration_ns": end - start,
        "input": "question",
        "output": "answer",
        "model": model,
        "provider": None,
        "operation": None,
        "input_tokens": None,
        "output_tokens": None,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "total_tokens": trace.tokens if root else None,
        "cost": trace.cost if root else None,
        "session_id": None,
        "user_id": None,
        "tags": trace.tags if root else [],
        "metadata": ({"tenant": trace.tenant} if trace.tenant else {}) if root else {},
        "ingested_ns": time.time_ns(),
    }


def _spans(trace: Trace) -> list[dict[str, Any]]:
    root_id = trace.trace_id[:16]
    first = trace.models[0] if trace.models else None
    rows = [_row(trace, root_id, parent=None, model=first)]
    for i, model in enumerate(trace.models[1:]):
        rows.append(_row(trace, f"{i + 1:016x}", parent=root_id, model=model))
    return rows


def _make_traces() -> list[Trace]:
    rng = random.Random(17)
    traces: list[Trace] = []

    def add(start: int, **fixed: Any) -> None:
        n = len(traces)
        trace = Trace(
            trace_id=f"{n + 1:032x}",
            start_ns=start,
            duration_ns=fixed.get("duration_ns", rng.randint(1, 5_000) * 10**6 + n),
            error=fixed.get("error", rng.random() < 0.2),
            models=fixed.get("models", rng.sample(MODELS, rng.randint(0, 2))),
            tags=fixed.get("tags", rng.sample(TAGS, rng.randint(0, 2))),
            tenant=fixed.get("tenant", rng.choice([*TENANTS, None])),
            prompt=fixed.get("prompt", rng.choice([("greet", 1), ("greet", 2), None])),
            tokens=rng.randint(0, 900),
            cost=round(rng.random() / 100, 6),
        )
        for name in ("helpful", "correct"):
            for source in ("human", "llm"):
                if rng.random() < 0.6:
                    trace.scores.append((name, source, rng.choice([0.0, 0.25, 0.5, 1.0])))
        traces.append(trace)

    for _ in range(150):
        add(T0 + rng.randrange(2 * DAY))
    # Right at hour boundaries: the first nanosecond of an hour and the last of the one before.
    add(T0 + HOUR, duration_ns=10**9, models=["gpt-4o"])
    add(T0 + HOUR - 1, duration_ns=2 * 10**9, models=["gpt-4o"])
    add(T0 + 5 * HOUR, duration_ns=3 * 10**9, models=["gpt-4o"])
    # Outside the range: never counted.
    add(T0 - 1)
    add(T0 + 2 * DAY)
    return traces


TRACES = _make_traces()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    from assay.store import migrate

    engine: Engine = make_engine(db_url)
    migrate.upgrade(engine)
    writer = SpanWriter(make_engine(db_url, role="writer"))
    writer.start()
    try:
        rows = [row for trace in TRACES for row in _spans(trace)]
        writer.write_sync(rows, [PROJECT] * len(rows))
    finally:
        writer.stop()
        writer.engine.dispose()
    database = Database(engine=engine, updates=engine)
    with database.write() as conn:
        found = project_store.get_id(conn, PROJECT)
        assert found is not None
        items = [
            {"trace_id": t.trace_id, "name": name, "source": source, "value": value}
            for t in TRACES
            for name, source, value in t.scores
        ]
        score_store.insert(conn, found, items)
    yield database
    engine.dispose()


WHO = Principal.local()


def _query(**params: str) -> MetricQuery:
    pairs = {"since": str(T0), "until": str(T0 + 2 * DAY), **params}
    return parse_query(list(pairs.items()), now_ns=T0 + 3 * DAY)


def _in_range(trace: Trace) -> bool:
    return T0 <= trace.start_ns < T0 + 2 * DAY


def _groups(trace: Trace, group_by: str | None) -> list[str | None]:
    if group_by is None:
        return [None]
    if group_by == "model":
        return list(trace.models) or [None]
    if group_by == "tag":
        return list(trace.tags) or [None]
    if group_by == "metadata.tenant":
        return [trace.tenant]
    assert group_by == "prompt_version"
    return [f"{trace.prompt[0]} v{trace.prompt[1]}" if trace.prompt else None]


def _expected_members(
    width: int, group_by: str | None
) -> dict[tuple[int, str | None], list[Trace]]:
    out: dict[tuple[int, str | None], list[Trace]] = {}
    for trace in TRACES:
        if _in_range(trace):
            for group in _groups(trace, group_by):
                out.setdefault(((trace.start_ns - T0) // width, group), []).append(trace)
    return out


def _points(result: dict[str, Any]) -> dict[tuple[int, str | None], dict[str, Any]]:
    out = {}
    for series in result["series"]:
        for i, point in enumerate(series["points"]):
            out[i, series["group"]] = point
    return out


def _series(db: Database, **params: str) -> dict[str, Any]:
    return metrics.series(db, WHO, PROJECT, _query(**params)).as_dict()


@pytest.mark.parametrize("group_by", [None, "model", "tag", "metadata.tenant", "prompt_version"])
def test_counts_error_rates_tokens_and_cost_per_bucket_and_group(
    db: Database, group_by: str | None
) -> None:
    extra = {"group_by": group_by} if group_by else {}
    expected = _expected_members(HOUR, group_by)
    by_metric = {
        m: _points(_series(db, metric=m, bucket="hour", **extra))
        for m in ("count", "error_rate", "tokens", "cost")
    }
    count = by_metric["count"]
    assert len({g for _, g in count}) == len({g for _, g in expected})
    assert len(count) == 48 * len({g for _, g in expected})
    for key, point in count.items():
        members = expected.get(key, [])
        assert point["value"] == len(members) == point["n"], key
        assert by_metric["tokens"][key]["value"] == sum(t.tokens for t in members)
        assert by_metric["cost"][key]["value"] == pytest.approx(sum(t.cost for t in members))
        rate = by_metric["error_rate"][key]
        if not members:
            assert rate["value"] is None and rate["n"] == 0
            continue
        errors = sum(t.error for t in members)
        assert rate["value"] == pytest.approx(errors / len(members))
        assert rate["low"] <= rate["value"] <= rate["high"]
        # Wilson, computed here.
        n, z = len(members), 1.959963984540054
        p = errors / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert rate["low"] == pytest.approx(max(0.0, centre - half), abs=1e-12)
        assert rate["high"] == pytest.approx(min(1.0, centre + half), abs=1e-12)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)) if k >= 0 else 0


@pytest.mark.parametrize(("metric", "percent"), [("latency_p50", 50), ("latency_p95", 95)])
def test_exact_percentiles_per_day_and_model_with_order_statistic_intervals(
    db: Database, metric: str, percent: int
) -> None:
    found = _points(_series(db, metric=metric, bucket="day", group_by="model"))
    expected = _expected_members(DAY, "model")
    assert found.keys() == {(i, g) for i in (0, 1) for _, g in expected}
    for key, members in expected.items():
        durations = sorted(t.duration_ns for t in members)
        n = len(durations)
        rank = -(-percent * n // 100)  # ceil(p * n), in integers
        point = found[key]
        assert point["n"] == n
        assert point["value"] == durations[rank - 1] / 1e6
        p = percent / 100
        lows = [r for r in range(1, n + 1) if _binomial_cdf(r - 1, n, p) <= 0.025]
        highs = [r for r in range(1, n + 1) if _binomial_cdf(r - 1, n, p) >= 0.975]
        assert point["low"] == (durations[max(lows) - 1] / 1e6 if lows else None)
        assert point["high"] == (durations[min(highs) - 1] / 1e6 if highs else None)


def test_traces_at_an_hour_boundary_fall_in_the_hour_they_start(db: Database) -> None:
    q = _query(metric="latency_p99", bucket="hour", group_by="model")
    found = {s.group: s.points for s in metrics.series(db, WHO, PROJECT, q).series}["gpt-4o"]
    # The hour boundary traces: 2 s ending hour 0, 1 s starting hour 1.
    hour0 = sorted(
        t.duration_ns for t in TRACES if "gpt-4o" in t.models and T0 <= t.start_ns < T0 + HOUR
    )
    hour1 = sorted(
        t.duration_ns
        for t in TRACES
        if "gpt-4o" in t.models and T0 + HOUR <= t.start_ns < T0 + 2 * HOUR
    )
    assert 2 * 10**9 in hour0 and 10**9 in hour1
    assert (
        found[0].n == len(hour0) and found[0].value == hour0[-(-99 * len(hour0) // 100) - 1] / 1e6
    )
    assert (
        found[1].n == len(hour1) and found[1].value == hour1[-(-99 * len(hour1) // 100) - 1] / 1e6
    )


@pytest.mark.parametrize("source", [None, "human", "llm"])
def test_score_means_with_t_intervals_per_source(db: Database, source: str | None) -> None:
    extra = {"source": source} if source else {}
    found = _points(_series(db, metric="score_mean", score="helpful", bucket="day", **extra))
    for day in (0, 1):
        values = [
            value
            for t in TRACES
            if _in_range(t) and (t.start_ns - T0) // DAY == day
            for name, src, value in t.scores
            if name == "helpful" and (source is None or src == source)
        ]
        point = found[day, None]
        assert point["n"] == len(values) > 2
        assert point["value"] == pytest.approx(statistics.fmean(values))
        half = (
            t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
        )
        assert point["low"] == pytest.approx(statistics.fmean(values) - half)
        assert point["high"] == pytest.approx(statistics.fmean(values) + half)


def test_a_filter_narrows_the_traces_like_the_trace_list(db: Database) -> None:
    found = _points(_series(db, metric="count", bucket="day", model="gpt-4o", status="error"))
    for day in (0, 1):
        expected = [
            t
            for t in TRACES
            if _in_range(t) and (t.start_ns - T0) // DAY == day and "gpt-4o" in t.models and t.error
        ]
        assert found[day, None]["value"] == len(expected)


def test_an_empty_range_has_points_without_values(db: Database) -> None:
    q = parse_query(
        [("metric", "latency_p95"), ("since", str(T0 + 10 * DAY)), ("until", str(T0 + 11 * DAY))],
        now_ns=T0,
    )
    result = metrics.series(db, WHO, PROJECT, q)
    assert q.bucket == "hour"  # one day: hourly points
    assert len(result.series) == 1 and len(result.series[0].points) == 24
    assert all(p.value is None and p.n == 0 for p in result.series[0].points)
    count = metrics.series(db, WHO, PROJECT, replace_metric(q, "count")).series[0].points
    assert all(p.value == 0 and p.n == 0 for p in count)


def replace_metric(q: MetricQuery, metric: str) -> MetricQuery:
    from dataclasses import replace

    return replace(q, metric=metric)


def test_window_value_is_the_metric_over_one_window(db: Database) -> None:
    with db.read() as conn:
        project_id = project_store.get_id(conn, PROJECT)
    assert project_id is not None
    since, until = T0 + 3 * HOUR, T0 + 9 * HOUR
    members = [t for t in TRACES if since <= t.start_ns < until]
    errors = window_value(db, project_id, "error_rate", {}, since, until)
    assert errors.n == len(members)
    assert errors.value == pytest.approx(sum(t.error for t in members) / len(members))
    assert errors.low is not None and errors.high is not None
    values = [
        v for t in members for name, src, v in t.scores if name == "correct" and src == "human"
    ]
    mean = window_value(
        db, project_id, "score_mean", {"score": "correct", "source": "human"}, since, until
    )
    assert mean.n == len(values) and mean.value == pytest.approx(statistics.fmean(values))
    tagged = [t for t in members if "prod" in t.tags and t.tenant == "acme"]
    count = window_value(
        db,
        project_id,
        "count",
        {"filter": {"tag": ["prod"], "metadata": "tenant=acme"}},
        since,
        until,
    )
    assert count.value == len(tagged)
    empty = window_value(db, project_id, "score_mean", {"score": "correct"}, T0 - 9 * DAY, T0 - DAY)
    assert empty.value is None and empty.n == 0
    with pytest.raises(InvalidFilters, match="status"):
        window_value(db, project_id, "count", {"filter": {"status": "nope"}}, since, until)
    with pytest.raises(UserError, match="metric"):
        window_value(db, project_id, "nonsense", {}, since, until)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"metric": "latency_p42"}, "metric"),
        ({}, "metric"),
        ({"metric": "score_mean"}, "score"),
        ({"metric": "count", "bucket": "week"}, "bucket"),
        ({"metric": "count", "group_by": "colour"}, "group_by"),
        ({"metric": "count", "since": "yesterday"}, "since"),
        ({"metric": "count", "since": "2026-03-05T00:00:00Z"}, "since"),
        ({"metric": "count", "since": "2020-01-01T00:00:00Z", "bucket": "hour"}, "bucket"),
        ({"metric": "count", "source": "robot"}, "source"),
        ({"metric": "count", "q": "words"}, "q"),
        ({"metric": "count", "colour": "red"}, "colour"),
        ({"metric": "count", "status": "maybe"}, "status"),
    ],
)
def test_bad_parameters_name_the_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidFilters) as raised:
        parse_query(list(params.items()), now_ns=T0 + 3 * DAY)
    assert field in {problem.field for problem in raised.value.problems}


def test_the_bucket_follows_the_range_when_not_given() -> None:
    now = T0 + 40 * DAY
    assert parse_query([("metric", "count"), ("range", "24h")], now_ns=now).bucket == "hour"
    assert parse_query([("metric", "count"), ("since", "30d")], now_ns=now).bucket == "day"
    default = parse_query([("metric", "count")], now_ns=now)
    assert default.until_ns == now and default.since_ns == now - 7 * DAY


def test_the_rest_api_answers_series_and_names_bad_fields(live: Any) -> None:
    from assay.store import keys as key_store
    from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

    starts = [T0 + i * 10 * 60 * 10**9 for i in range(9)]  # every 10 minutes: two hours
    durations = [100.0 * (i + 1) for i in range(9)]
    body = protobuf(
        [
            span(
                new_trace_id(),
                new_span_id(),
                "run",
                start=start,
                duration_ms=duration,
                attributes={"gen_ai.request.model": "gpt-4o" if i % 2 else "claude"},
            )
            for i, (start, duration) in enumerate(zip(starts, durations, strict=True))
        ],
        service="rest-metrics",
    )
    with live.runtime.updates.begin() as conn:
        viewer = key_store.create(conn, name="v", role="viewer", project="rest-metrics")[0]
        editor = key_store.create(conn, name="e", role="editor", project="rest-metrics")[0]
    with live.client(headers={"Authorization": f"Bearer {editor}"}) as client:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    with live.client(headers={"Authorization": f"Bearer {viewer}"}) as client:
        answer = client.get(
            "/api/v1/projects/rest-metrics/metrics",
            params={
                "metric": "latency_p95",
                "since": "2026-03-02T00:00:00Z",
                "until": "2026-03-02T02:00:00Z",
                "group_by": "model",
            },
        )
        assert answer.status_code == 200, answer.text
        series = {s["group"]: s["points"] for s in answer.json()["series"]}
        assert set(series) == {"gpt-4o", "claude"}
        for group, parity in (("gpt-4o", 1), ("claude", 0)):
            assert [p["t"] for p in series[group]] == [
                "2026-03-02T00:00:00Z",
                "2026-03-02T01:00:00Z",
            ]
            for hour, point in enumerate(series[group]):
                mine = sorted(
                    d
                    for i, (s, d) in enumerate(zip(starts, durations, strict=True))
                    if i % 2 == parity and T0 + hour * HOUR <= s < T0 + (hour + 1) * HOUR
                )
                assert point["n"] == len(mine)
                assert point["value"] == pytest.approx(mine[-(-95 * len(mine) // 100) - 1])
                assert set(point) == {"t", "value", "n", "low", "high"}
        bad = client.get(
            "/api/v1/projects/rest-metrics/metrics",
            params={"metric": "count", "group_by": "colour", "since": "soon"},
        )
        assert bad.status_code == 400
        assert "group_by" in bad.json()["error"]["message"]
        assert "since" in bad.json()["error"]["message"]
        unknown = client.get("/api/v1/projects/rest-metrics/metrics", params={"metric": "p42"})
        assert unknown.status_code == 422 and "metric" in unknown.text


XSS_TAG = '<script>alert("tag")</script><img src=x onerror=alert(1)>'


def test_dashboard_charts_are_self_contained_svg_with_escaped_groups_and_links(
    live: Any,
) -> None:
    from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

    now = time.time_ns()
    trace_ids = [new_trace_id() for _ in range(3)]
    body = protobuf(
        [
            span(
                trace_id,
                new_span_id(),
                "run",
                start=now - (i + 1) * HOUR,
                duration_ms=50.0 * (i + 1),
                attributes={
                    "gen_ai.request.model": "gpt-4o",
                    "tag.tags": [XSS_TAG, "plain"],
                    "metadata": '{"tenant": "</svg><script>x()</script>"}',
                },
            )
            for i, trace_id in enumerate(trace_ids)
        ],
        service="dash",
    )
    with live.client() as client:
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
        for group_by in ("tag", "metadata.tenant"):
            chart = client.get(
                "/p/dash/dashboard/chart.svg",
                params={"metric": "count", "range": "24h", "group_by": group_by},
            )
            assert chart.status_code == 200, chart.text
            assert chart.headers["content-type"].startswith("image/svg+xml")
            policy = chart.headers["content-security-policy"]
            assert "script-src 'none'" in policy and "default-src 'none'" in policy
            svg = chart.text
            # Parsed as XML: no script element, no event handler, nothing fetched from elsewhere.
            from xml.etree import ElementTree

            root = ElementTree.fromstring(svg)
            tags = {element.tag.rsplit("}", 1)[-1] for element in root.iter()}
            assert "script" not in tags and "foreignObject" not in tags
            for element in root.iter():
                for name, value in element.attrib.items():
                    assert not name.lower().startswith("on"), name
                    if name.endswith("href"):
                        assert value.startswith("/p/dash/traces?"), value
            assert "http://" not in svg.replace("http://www.w3.org/", "")
            assert "https://" not in svg and "//kozea" not in svg
        tagged = client.get(
            "/p/dash/dashboard/chart.svg",
            params={"metric": "count", "range": "24h", "group_by": "tag"},
        ).text
        assert "&lt;script&gt;" in tagged and "<script" not in tagged
        # A point links to its traces: the bucket's times and the group as filters.
        assert "tag=%3Cscript%3E" in tagged
        page = client.get("/p/dash/dashboard", params={"range": "24h", "group_by": "tag"})
        assert page.status_code == 200
        assert page.text.count('class="chart-frame"') >= 7
        assert "/p/dash/dashboard/chart.svg?" in page.text
        bad = client.get("/p/dash/dashboard", params={"group_by": "metadata", "key": ""})
        assert bad.status_code == 400 and "group_by" in bad.text
        quality = client.get("/p/dash/quality")
        assert quality.status_code == 200
        assert "Latency p95" in quality.text and "items reviewed this week" in quality.text
