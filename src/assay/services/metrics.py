"""Metrics over a project's traces and scores: time series for the dashboard and the API, and
one window's value for monitors.

A metric is computed per time bucket (UTC hours or days; a trace counts in the bucket its start
falls in) and per group (model, tag, metadata.KEY, prompt_version; see store/metrics.py), over
the traces the filter language of the trace list selects. Every point is
``{"t", "value", "n", "low", "high"}`` with a 95% interval:

- ``count``: traces (n is the same; no interval).
- ``error_rate``: the share of traces with a failed span, with a Wilson score interval.
- ``latency_p50|p95|p99``: the nearest-rank percentile of trace durations in milliseconds (the
  value at rank ceil(p * n), which is PostgreSQL's ``percentile_disc``), exact within the
  bucket, with a distribution-free order-statistic interval (None where n is too small).
- ``tokens``, ``cost``: totals over the bucket's traces (no interval).
- ``score_mean``: the mean of the numeric scores named ``score`` (of ``source`` human, llm or
  code if given) on the bucket's traces and their spans, with a Student t interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from assay.errors import UserError
from assay.services import review_results
from assay.services.filters import (
    RANGES,
    FilterProblem,
    InvalidFilters,
    parse_filters,
    parse_time,
)
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.statistics import mean_interval_from_sums, percentile_interval, proportion_interval
from assay.store import metrics as metric_store
from assay.store.database import Connection, Database
from assay.store.listing import Filters
from assay.store.metrics import Buckets

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
PERCENTILES = {"latency_p50": 0.50, "latency_p95": 0.95, "latency_p99": 0.99}
SOURCES = ("human", "llm", "code")
BUCKETS = {"hour": 3_600 * 10**9, "day": 86_400 * 10**9}
#: Without a bucket: hours up to this range, days beyond (24 to 72 points, then 4 and up).
HOURLY_UP_TO_NS = 3 * BUCKETS["day"]
#: The most points one series may have.
MAX_BUCKETS = 1_000
#: The most groups shown: the largest (most traces or scores); the rest are counted.
MAX_GROUPS = 12
#: Without since or range: the last week.
DEFAULT_RANGE_NS = 7 * BUCKETS["day"]
MAX_NAME_CHARS = 200
#: The parameters a metric query reads itself; the rest are filters of the trace list.
OWN_KEYS = ("metric", "bucket", "group_by", "score", "source", "since", "until", "range")
#: Filter keys a metric cannot use: text search pages through matches, it does not aggregate.
UNSUPPORTED_FILTERS = ("q",)
#: Filter keys the trace list takes (besides the times), for the unknown-key check.
FILTER_KEYS = (
    "name",
    "type",
    "status",
    "model",
    "tag",
    "metadata",
    "session_id",
    "user_id",
    "trace_id",
    "min_duration_ms",
    "max_duration_ms",
    "min_cost",
    "max_cost",
    "min_score",
    "max_score",
    "prompt",
    "prompt_version",
)


@dataclass(frozen=True)
class Point:
    t_ns: int
    value: float | None
    n: int
    low: float | None = None
    high: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": iso(self.t_ns),
            "value": self.value,
            "n": self.n,
            "low": self.low,
            "high": self.high,
        }


@dataclass(frozen=True)
class Series:
    #: The group's value (None: ungrouped, or the traces without a value for the group).
    group: str | None
    points: list[Point]

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "points": [point.as_dict() for point in self.points]}


@dataclass(frozen=True)
class MetricQuery:
    metric: str
    since_ns: int
    until_ns: int
    bucket: str
    group_by: str | None = None
    score: str | None = None
    source: str | None = None
    filters: Filters = field(default_factory=Filters)

    @property
    def buckets(self) -> Buckets:
        width = BUCKETS[self.bucket]
        origin = self.since_ns // width * width
        return Buckets(origin, width, max(1, -(-(self.until_ns - origin) // width)))


@dataclass(frozen=True)
class MetricSeries:
    query: MetricQuery
    series: list[Series]
    #: Groups beyond MAX_GROUPS, not shown.
    groups_left_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "metric": q.metric,
            "score": q.score,
            "source": q.source,
            "bucket": q.bucket,
            "group_by": q.group_by,
            "since": iso(q.since_ns),
            "until": iso(q.until_ns),
            "series": [s.as_dict() for s in self.series],
            "groups_left_out": self.groups_left_out,
        }


@dataclass(frozen=True)
class WindowValue:
    """A metric over one window: ``value`` None when the window has no data."""

    value: float | None
    n: int
    low: float | None
    high: float | None


def iso(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 10**9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- reading a query ----------------------------------------------------------------------------


def _group_by(text: str, problems: list[FilterProblem]) -> str | None:
    if text in metric_store.GROUPS:
        return text
    if text.startswith(metric_store.METADATA_PREFIX):
        key = text[len(metric_store.METADATA_PREFIX) :]
        if key and len(key) <= MAX_NAME_CHARS:
            return text
    problems.append(
        FilterProblem(
            "group_by",
            f"{text[:40]!r} is not one of model, tag, prompt_version or metadata.KEY",
        )
    )
    return None


def _metric_fields(
    single: dict[str, str], problems: list[FilterProblem]
) -> tuple[str, str | None, str | None]:
    metric = single.get("metric", "")
    if metric not in METRICS:
        shown = f"{metric[:40]!r} is not" if metric else "is missing; it must be"
        problems.append(FilterProblem("metric", f"{shown} one of {', '.join(METRICS)}"))
    score = single.get("score") or None
    if score is not None and len(score) > MAX_NAME_CHARS:
        problems.append(FilterProblem("score", f"is longer than {MAX_NAME_CHARS} characters"))
    if metric == "score_mean" and score is None:
        problems.append(FilterProblem("score", "name the score to average (score=NAME)"))
    source = single.get("source") or None
    if source is not None and source not in SOURCES:
        problems.append(FilterProblem("source", f"{source[:40]!r} is not human, llm or code"))
    return metric, score, source


def _moment(key: str, text: str | None, now_ns: int, problems: list[FilterProblem]) -> int | None:
    """A time: ISO 8601, epoch ns, or a window back from now (7d, 24h...)."""
    if text is None:
        return None
    if text in RANGES:
        return now_ns - RANGES[text] * 10**9
    found = parse_time(text)
    if found is None:
        problems.append(
            FilterProblem(
                key,
                f"{text[:40]!r} is not a time: use ISO 8601 (2026-01-31T12:00:00Z), epoch "
                f"nanoseconds or a window back from now ({', '.join(RANGES)})",
            )
        )
    return found


def _time_range(
    single: dict[str, str], now_ns: int, problems: list[FilterProblem]
) -> tuple[int, int]:
    until = _moment("until", single.get("until"), now_ns, problems)
    since = _moment("since", single.get("since"), now_ns, problems)
    if since is None and "range" in single:
        if single["range"] in RANGES:
            since = now_ns - RANGES[single["range"]] * 10**9
        else:
            problems.append(
                FilterProblem(
                    "range", f"{single['range'][:40]!r} is not one of {', '.join(RANGES)}"
                )
            )
    until = now_ns if until is None else until
    since = until - DEFAULT_RANGE_NS if since is None else since
    if since >= until:
        problems.append(FilterProblem("since", "must be before until"))
    return since, until


def _bucket(single: dict[str, str], since: int, until: int, problems: list[FilterProblem]) -> str:
    bucket = single.get("bucket") or ("hour" if until - since <= HOURLY_UP_TO_NS else "day")
    if bucket not in BUCKETS:
        problems.append(FilterProblem("bucket", f"{bucket[:40]!r} is not hour or day"))
        return "day"
    points = -(-(until - since) // BUCKETS[bucket])
    if points > MAX_BUCKETS:
        problems.append(
            FilterProblem(
                "bucket",
                f"{bucket} buckets over this range make {points} points (at most "
                f"{MAX_BUCKETS}): use a longer bucket or a shorter range",
            )
        )
    return bucket


def parse_query(pairs: Iterable[tuple[str, str]], *, now_ns: int | None = None) -> MetricQuery:
    """A metric query from a query string's pairs; :class:`InvalidFilters` names every field
    that cannot be used (unknown ones too)."""
    now = time.time_ns() if now_ns is None else now_ns
    pairs = list(pairs)
    problems: list[FilterProblem] = []
    single = {key: value.strip() for key, value in pairs if key in OWN_KEYS and value.strip()}
    filter_pairs = [(key, value) for key, value in pairs if key not in OWN_KEYS]
    for key in dict.fromkeys(key for key, _ in filter_pairs):
        if key in UNSUPPORTED_FILTERS:
            problems.append(FilterProblem(key, "text search cannot be used with metrics"))
        elif key not in FILTER_KEYS:
            problems.append(FilterProblem(key[:40], "is not a parameter of a metric query"))
    metric, score, source = _metric_fields(single, problems)
    group_by = _group_by(single["group_by"], problems) if "group_by" in single else None
    since, until = _time_range(single, now, problems)
    bucket = _bucket(single, since, until, problems)
    filters, filter_problems = parse_filters(
        [(k, v) for k, v in filter_pairs if k in FILTER_KEYS], now_ns=now
    )
    problems += filter_problems
    if problems:
        raise InvalidFilters(problems)
    return MetricQuery(metric, since, until, bucket, group_by, score, source, filters)


def _filter_pairs(raw: Any) -> list[tuple[str, str]]:
    """A monitor's filter (``{"model": "x", "tag": ["a", "b"]}``) as query-string pairs."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise InvalidFilters([FilterProblem("filter", "must be an object of filter fields")])
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            if one is not None:
                pairs.append((str(key), str(one)))
    return pairs


# --- computing ------------------------------------------------------------------------------


def _point(metric: str, q: MetricQuery, t_ns: int, found: Any) -> Point:
    """One bucket and group's point from what the store summed or listed (None: no traces)."""
    if metric == "count":
        n = found.n if found else 0
        return Point(t_ns, float(n), n)
    if metric in ("tokens", "cost"):
        n = found.n if found else 0
        total = (found.tokens if metric == "tokens" else found.cost) if found else 0
        return Point(t_ns, float(total), n)
    if metric == "error_rate":
        if not found or not found.n:
            return Point(t_ns, None, 0)
        rate = proportion_interval([1] * found.errors + [0] * (found.n - found.errors))
        return Point(t_ns, rate.mean, found.n, rate.low, rate.high)
    if metric in PERCENTILES:
        if not found:
            return Point(t_ns, None, 0)
        p = percentile_interval(found, PERCENTILES[metric])
        ms = [None if v is None else v / 1e6 for v in (p.value, p.low, p.high)]
        return Point(t_ns, ms[0], p.n, ms[1], ms[2])
    # score_mean
    if not found or not found.n:
        return Point(t_ns, None, 0)
    mean = mean_interval_from_sums(found.n, found.total, found.squares)
    return Point(t_ns, mean.mean, found.n, mean.low, mean.high)


def _collect(conn: Connection, project: int, q: MetricQuery, buckets: Buckets) -> dict[Any, Any]:
    """The store's per (bucket, group) sums or durations for the query's metric."""
    if q.metric in PERCENTILES:
        return metric_store.trace_durations(conn, project, q.filters, buckets, q.group_by)
    if q.metric == "score_mean":
        return metric_store.score_moments(
            conn,
            project,
            q.filters,
            buckets,
            q.group_by,
            name=q.score or "",
            source=q.source,
        )
    return metric_store.trace_totals(conn, project, q.filters, buckets, q.group_by)


def _size(found: Any) -> int:
    return len(found) if isinstance(found, list) else int(found.n)


def _series(q: MetricQuery, found: dict[Any, Any], buckets: Buckets) -> MetricSeries:
    sizes: dict[str | None, int] = {}
    for (_, group), value in found.items():
        sizes[group] = sizes.get(group, 0) + _size(value)
    if q.group_by is None:
        sizes = {None: sizes.get(None, 0)}
    # Largest groups first; the group without a value last.
    order = sorted(sizes, key=lambda g: (g is None, -sizes[g], g or ""))
    shown = order[:MAX_GROUPS]
    series = [
        Series(
            group,
            [
                _point(
                    q.metric,
                    q,
                    buckets.origin_ns + i * buckets.width_ns,
                    found.get((i, group)),
                )
                for i in range(buckets.count)
            ],
        )
        for group in shown
    ]
    return MetricSeries(q, series, len(order) - len(shown))


def series(db: Database, who: Principal, project: str, q: MetricQuery) -> MetricSeries:
    """The metric's series per group over the query's range (viewers and up)."""
    buckets = q.buckets
    with db.read() as conn:
        found_project = project_id(conn, who, project)
        found = _collect(conn, found_project, q, buckets)
    return _series(q, found, buckets)


def metric_series(
    db: Database, who: Principal, project: str, pairs: Iterable[tuple[str, str]]
) -> dict[str, Any]:
    """``GET .../metrics``: the query string's metric as ``{"series": [...]}``."""
    return series(db, who, project, parse_query(pairs)).as_dict()


def score_names(db: Database, who: Principal, project: str, since_ns: int) -> list[tuple[str, str]]:
    """The (name, source) pairs of numeric scores given since ``since_ns``: the dashboard's
    score charts."""
    with db.read() as conn:
        found = project_id(conn, who, project)
        return metric_store.score_names(conn, found, since_ns)


def window_value(
    db: Database,
    project_id: int,
    metric: str,
    params: Mapping[str, Any],
    since_ns: int,
    until_ns: int,
) -> WindowValue:
    """``metric`` over the traces that started in [since_ns, until_ns) (for monitors; the
    caller has checked access). ``params``: "score" and "source" for score_mean, and "filter",
    the trace list's filter fields as an object. Bad parameters raise :class:`InvalidFilters`
    (a :class:`UserError`) naming the field."""
    if until_ns <= since_ns:
        raise UserError("the window must end after it starts")
    return window_values(db, project_id, metric, params, since_ns, until_ns - since_ns, 1)[0]


def _collect_kind(q: MetricQuery) -> tuple[Any, ...]:
    """What :func:`_collect` reads for ``q``: metrics of one kind share it (count, error rate,
    tokens and cost are the same sums)."""
    if q.metric in PERCENTILES:
        kind: tuple[Any, ...] = ("durations", q.metric)
    elif q.metric == "score_mean":
        kind = ("scores", q.score, q.source)
    else:
        kind = ("totals",)
    return (*kind, repr(q.filters))


def window_values(
    db: Database,
    project_id: int,
    metric: str,
    params: Mapping[str, Any],
    since_ns: int,
    width_ns: int,
    count: int,
    *,
    shared: dict[tuple[Any, ...], dict[Any, Any]] | None = None,
) -> list[WindowValue]:
    """:func:`window_value` over ``count`` consecutive windows of ``width_ns`` from
    ``since_ns``, in one query. ``shared``: what earlier calls read for the same windows,
    reused by metrics of the same kind (the quality page's figures)."""
    pairs = [("metric", metric), *_filter_pairs(params.get("filter"))]
    for key in ("score", "source"):
        if params.get(key) is not None:
            pairs.append((key, str(params[key])))
    until_ns = since_ns + width_ns * count
    # Parsed as a query (one day bucket is a placeholder); each window is a bucket.
    parsed = parse_query([*pairs, ("bucket", "day")], now_ns=until_ns)
    q = replace(parsed, since_ns=since_ns, until_ns=until_ns, bucket="day")
    q = replace(q, filters=replace(q.filters, since=None, until=None))
    buckets = Buckets(since_ns, width_ns, count)
    kind = _collect_kind(q)
    found = None if shared is None else shared.get(kind)
    if found is None:
        with db.read() as conn:
            found = _collect(conn, project_id, q, buckets)
        if shared is not None:
            shared[kind] = found
    out = []
    for i in range(count):
        point = _point(metric, q, since_ns + i * width_ns, found.get((i, None)))
        out.append(WindowValue(point.value, point.n, point.low, point.high))
    return out


# --- the quality page ----------------------------------------------------------------------

WEEK_NS = 7 * BUCKETS["day"]
#: Headline figures: (label, metric, params).
HEADLINES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("Traces", "count", {}),
    ("Error rate", "error_rate", {}),
    ("Latency p95 (ms)", "latency_p95", {}),
    ("Cost (USD)", "cost", {}),
)
#: How many scores, review queues and judges the quality page shows at most.
QUALITY_SCORES = 6
QUALITY_QUEUES = 3
QUALITY_JUDGES = 6
#: Judges whose agreement with people the dashboard draws, at most.
MAX_JUDGES = 6


@dataclass(frozen=True)
class Headline:
    label: str
    metric: str
    params: dict[str, Any]
    this_week: WindowValue
    last_week: WindowValue

    @property
    def change(self) -> float | None:
        now, before = self.this_week.value, self.last_week.value
        return None if now is None or before is None else now - before


def calibrated_judges(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    """The project's judges with a calibration against people (id, name, its latest figures):
    the dashboard draws each one's agreement over time."""
    with db.read() as conn:
        return metric_store.latest_calibrations(conn, project_id(conn, who, project), MAX_JUDGES)


def quality(
    db: Database, who: Principal, project: str, now_ns: int | None = None
) -> dict[str, Any]:
    """The read-only quality page: this week against last week for the headline metrics and
    each score mean (with intervals), reviews submitted each week, people's agreement in the
    busiest recent review queues, and each judge's latest calibration against people."""
    now = time.time_ns() if now_ns is None else now_ns
    week, before = (now - WEEK_NS, now), (now - 2 * WEEK_NS, now - WEEK_NS)
    with db.read() as conn:
        found = project_id(conn, who, project)
        names = metric_store.score_names(conn, found, now - 2 * WEEK_NS)[:QUALITY_SCORES]
        reviewed = metric_store.reviews_submitted(conn, found, *week)
        reviewed_before = metric_store.reviews_submitted(conn, found, *before)
        queue_ids = metric_store.recent_queue_ids(conn, found, QUALITY_QUEUES)
        judges = metric_store.latest_calibrations(conn, found, QUALITY_JUDGES)
    wanted = [
        *HEADLINES,
        *(
            (f"{name} ({source})", "score_mean", {"score": name, "source": source})
            for name, source in names
        ),
    ]
    # Both weeks in one query per kind of figure (the trace sums serve four of them).
    shared: dict[tuple[Any, ...], dict[Any, Any]] = {}
    headlines = []
    for label, metric, params in wanted:
        last_week, this_week = window_values(
            db, found, metric, params, before[0], WEEK_NS, 2, shared=shared
        )
        headlines.append(Headline(label, metric, params, this_week, last_week))
    agreement = [review_results.agreement(db, who, queue_id) for queue_id in queue_ids]
    return {
        "since": iso(week[0]),
        "until": iso(week[1]),
        "headlines": headlines,
        "reviewed": reviewed,
        "reviewed_before": reviewed_before,
        "agreement": agreement,
        "judges": judges,
    }
