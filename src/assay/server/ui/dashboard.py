"""The dashboard (volume, errors, latency, tokens, cost and score means over time, per group),
its charts (SVG documents, see assay/ui/charts.py), and the read-only quality page."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from assay.server.security.web import web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import _cost, _duration, render
from assay.server.ui.traces import segment
from assay.services import metrics
from assay.services.filters import InvalidFilters
from assay.services.metrics import MetricQuery, MetricSeries
from assay.services.principal import Principal
from assay.ui.charts import SVG_HEADERS, SVG_MEDIA_TYPE, ChartLine, ChartPoint, line_chart

router = APIRouter(include_in_schema=False)

RANGE_CHOICES = ("24h", "7d", "30d")
#: Page-only parameters: the metadata key box of the "group by" choice.
PAGE_KEYS = ("key",)
#: The dashboard's charts: (metric, title, y formatter).
TRACE_CHARTS: tuple[tuple[str, str], ...] = (
    ("count", "Traces"),
    ("error_rate", "Error rate"),
    ("latency_p50", "Latency p50"),
    ("latency_p95", "Latency p95"),
    ("latency_p99", "Latency p99"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
)
#: Score charts shown at most (one per score name and source).
MAX_SCORE_CHARTS = 12


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _whole(value: float) -> str:
    # Axis ticks between whole numbers (0.5 traces) keep their decimal.
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _usd(value: float) -> str:
    return _cost(value) or "$0"


def _ms(value: float) -> str:
    return _duration(value) or "0 ms"


def _score(value: float) -> str:
    return f"{value:.3g}"


FORMATS: dict[str, Callable[[float], str]] = {
    "count": _whole,
    "error_rate": _percent,
    "latency_p50": _ms,
    "latency_p95": _ms,
    "latency_p99": _ms,
    "tokens": _whole,
    "cost": _usd,
    "score_mean": _score,
}


def _metric_pairs(request: Request) -> list[tuple[str, str]]:
    """The page's query as a metric query's pairs: "group_by=metadata" with "key=K" becomes
    "group_by=metadata.K"; empty values and page-only keys are dropped."""
    params = request.query_params
    pairs = [
        (k, v)
        for k, v in params.multi_items()
        if v.strip() and k not in PAGE_KEYS and not (k == "group_by" and v == "metadata")
    ]
    if params.get("group_by") == "metadata":
        pairs.append(("group_by", f"metadata.{(params.get('key') or '').strip()}"))
    if not any(k in ("since", "range") for k, _ in pairs):
        pairs.append(("range", "7d"))
    return pairs


def _traces_link(project: str, q: MetricQuery, result: MetricSeries, line: int, point: int) -> str:
    """The traces behind one point: its bucket (within the range), its group, the filters."""
    buckets = q.buckets
    start = buckets.origin_ns + point * buckets.width_ns
    since, until = max(start, q.since_ns), min(start + buckets.width_ns, q.until_ns)
    pairs: list[tuple[str, str]] = [("since", metrics.iso(since)), ("until", metrics.iso(until))]
    group = result.series[line].group
    if group is not None and q.group_by is not None:
        if q.group_by == "model":
            pairs.append(("model", group))
        elif q.group_by == "tag":
            pairs.append(("tag", group))
        elif q.group_by == "prompt_version":
            name, _, version = group.rpartition(" v")
            pairs += [("prompt", name), ("prompt_version", version)] if version.isdigit() else []
        else:
            key = q.group_by.removeprefix("metadata.")
            pairs.append(("metadata", f"{key}={group}"))
    if q.score:
        pairs.append(("score", q.score))
    f = q.filters
    for key in ("name", "type", "status", "model", "session_id", "user_id", "prompt"):
        value = getattr(f, key)
        if value is not None and not any(k == key for k, _ in pairs):
            pairs.append((key, str(value)))
    pairs += [("tag", tag) for tag in f.tags]
    pairs += [("metadata", f"{k}={v}") for k, v in f.metadata]
    return f"/p/{segment(project)}/traces?{urlencode(pairs)}"


def _label(q: MetricQuery, t_ns: int) -> str:
    moment = metrics.iso(t_ns)
    return moment[5:10] if q.bucket == "day" else f"{moment[5:10]} {moment[11:16]}"


def _title(q: MetricQuery) -> str:
    if q.metric == "score_mean":
        return f"{q.score} ({q.source or 'all sources'}), mean"
    return dict(TRACE_CHARTS).get(q.metric, q.metric)


def chart_svg(project: str, result: MetricSeries) -> str:
    q = result.query
    lines = [
        ChartLine(
            "(none)" if s.group is None and q.group_by else (s.group or ""),
            [ChartPoint(_label(q, p.t_ns), p.value, p.low, p.high, p.n) for p in s.points],
        )
        for s in result.series
    ]
    return line_chart(
        lines,
        title=_title(q),
        y_format=FORMATS[q.metric],
        # A point with nothing behind it (a count of 0) links nowhere.
        link_for_point=lambda line, point: (
            _traces_link(project, q, result, line, point)
            if result.series[line].points[point].n
            else None
        ),
    )


@router.get("/p/{project}/dashboard/chart.svg")
async def dashboard_chart(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    def draw() -> str:
        q = metrics.parse_query(_metric_pairs(request))
        return chart_svg(project, metrics.series(runtime_of(request), who, project, q))

    try:
        svg = await run_in_threadpool(draw)
    except InvalidFilters as bad:
        return Response(str(bad), status_code=400, media_type="text/plain", headers=SVG_HEADERS)
    return Response(svg, media_type=SVG_MEDIA_TYPE, headers=SVG_HEADERS)


def _chart_src(project: str, pairs: list[tuple[str, str]], **extra: str) -> str:
    keep = [(k, v) for k, v in pairs if k not in ("metric", "score", "source")]
    return f"/p/{segment(project)}/dashboard/chart.svg?{urlencode([*keep, *extra.items()])}"


@router.get("/p/{project}/dashboard", response_class=HTMLResponse)
async def dashboard_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    pairs = _metric_pairs(request)
    problems: list[str] = []
    charts: list[dict[str, str]] = []
    score_charts = 0
    try:
        q = metrics.parse_query([*pairs, ("metric", "count")])
    except InvalidFilters as bad:
        problems = [str(problem) for problem in bad.problems]
        q = None
    if q is not None:
        names = await run_in_threadpool(
            metrics.score_names, runtime_of(request), who, project, q.since_ns
        )
        judges = await run_in_threadpool(
            metrics.calibrated_judges, runtime_of(request), who, project
        )
        charts = [
            {"title": title, "src": _chart_src(project, pairs, metric=metric)}
            for metric, title in TRACE_CHARTS
        ]
        charts += [
            {
                "title": f"{name} ({source})",
                "src": _chart_src(project, pairs, metric="score_mean", score=name, source=source),
            }
            for name, source in names[:MAX_SCORE_CHARTS]
        ]
        score_charts = len(names[:MAX_SCORE_CHARTS])
        # Where a judge was calibrated: its agreement with people, week by week (all time:
        # the windows are the judge's, not this range's).
        charts += [
            {
                "title": f"{judge['name']}: agreement with people",
                "src": f"/p/{segment(project)}/evaluators/{judge['evaluator_id']}/agreement.svg",
            }
            for judge in judges
        ]
    params = request.query_params
    return render(
        request,
        "dashboard.html",
        status=400 if problems else 200,
        project=project,
        room="dashboard",
        charts=charts,
        score_charts=score_charts,
        problems=problems,
        query_view=q,
        ranges=RANGE_CHOICES,
        chosen_range=params.get("range") or ("" if params.get("since") else "7d"),
        group_by=params.get("group_by") or "",
        key=params.get("key") or "",
        bucket=params.get("bucket") or "",
        model=params.get("model") or "",
        tag=params.get("tag") or "",
        status_filter=params.get("status") or "",
        segment=segment,
    )


@router.get("/p/{project}/quality", response_class=HTMLResponse)
async def quality_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    started = time.perf_counter()
    found = await run_in_threadpool(metrics.quality, runtime_of(request), who, project)
    return render(
        request,
        "quality.html",
        project=project,
        room="quality",
        quality=found,
        fmt=format_value,
        segment=segment,
        took_ms=(time.perf_counter() - started) * 1000,
    )


def format_value(metric: str, value: float | None) -> str:
    return "–" if value is None else FORMATS[metric](value)
