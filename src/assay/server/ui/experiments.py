"""The experiments room: the list, one experiment with its rows, and a comparison of two.

Rows are loaded whole (an experiment is thousands of rows, not millions), filtered and sorted
here, and one page of them is rendered; diffs are computed for that page only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from assay.evals import compare
from assay.evals.comparison import TOLERANCE
from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.server.bounds import INT32_MAX, RowId
from assay.server.security.web import web_principal
from assay.server.state import runtime_of
from assay.server.ui._diff import as_text, diff
from assay.server.ui._render import _pretty, render
from assay.services import experiments, review
from assay.services.experiments import score_names, score_summary
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

PAGE_ROWS = 200
PAGE_CASES = 100
#: Each value in a row's detail is cut here; "show all" opens the row on its own.
DETAIL_CHARS = 4_000
FULL_CHARS = 1_000_000
ROW_SORTS = ("case", "latency", "cost", "tokens")


def _base(project: str) -> str:
    return f"/p/{quote(project, safe='')}/experiments"


def _float(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _int(raw: str | None, default: int) -> int:
    return min(int(raw), INT32_MAX) if raw and raw.isdigit() and len(raw) < 12 else default


def clip(value: Any, limit: int) -> dict[str, Any]:
    """A value as display text, cut at ``limit`` characters, with its full length."""
    text = "" if value is None else _pretty(value)
    return {"text": text[:limit], "total": len(text), "cut": len(text) > limit}


# ---------------------------------------------------------------------------------------------
# The list


def _with_previous(items: list[dict[str, Any]]) -> None:
    """Give each experiment the id of the one before it of the same eval (to compare with)."""
    for index, item in enumerate(items):
        item["previous_id"] = next(
            (
                older["id"]
                for older in items[index + 1 :]
                if older["eval_name"] == item["eval_name"]
            ),
            None,
        )


@router.get("/p/{project}/experiments", response_class=HTMLResponse)
async def experiments_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    name = request.query_params.get("q", "").strip()
    dataset = request.query_params.get("dataset", "")
    prompt = request.query_params.get("prompt", "").strip()[:200]
    raw_version = request.query_params.get("prompt_version", "").strip()
    prompt_version = _int(raw_version, 0) or None
    if raw_version and prompt_version is None:
        message = f"prompt_version: {raw_version[:40]!r} is not a version number (1, 2, ...)"
        return render(request, "error.html", status=400, title="Bad request", message=message)
    group = request.query_params.get("group", "") == "prompt"
    items, datasets = await run_in_threadpool(
        lambda: experiments.experiments_overview(
            runtime_of(request),
            who,
            project,
            name=name or None,
            dataset=dataset or None,
            prompt=prompt or None,
            prompt_version=prompt_version,
        )
    )
    _with_previous(items)
    for item in items:
        item["prompt"] = _prompt_of(item)
    return render(
        request,
        "experiments.html",
        project=project,
        room="experiments",
        experiments=items,
        datasets=datasets,
        q=name,
        dataset=dataset,
        prompt=prompt,
        prompt_version=prompt_version,
        group=group,
        groups=_by_prompt(items) if group else [],
        base=_base(project),
    )


def _prompt_of(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The registry prompt and version an experiment was recorded as made with, if any."""
    metadata = item.get("metadata") or {}
    name, version = metadata.get(PROMPT_NAME), metadata.get(PROMPT_VERSION)
    if not isinstance(name, str) or not name:
        return None
    return {"name": name, "version": version if isinstance(version, int) else None}


def _by_prompt(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Experiments grouped by prompt and version (newest version first), then the rest."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    rest = []
    for item in items:
        found = item["prompt"]
        if found is None:
            rest.append(item)
        else:
            groups.setdefault((found["name"], found["version"] or 0), []).append(item)
    ordered = [
        {"title": f"{name} v{version}" if version else name, "items": members}
        for (name, version), members in sorted(groups.items(), key=lambda g: (g[0][0], -g[0][1]))
    ]
    if rest:
        ordered.append({"title": "no registry prompt", "items": rest})
    return ordered


@router.get("/p/{project}/experiments/compare", include_in_schema=False)
async def choose_comparison(request: Request, project: str) -> Response:
    """The target of the "compare with" selects: a plain GET form, no script needed (the page
    it leads to checks the caller)."""
    a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
    if not (a.isdigit() and b.isdigit()):
        return RedirectResponse(_base(project), status_code=303)
    return RedirectResponse(f"{_base(project)}/{a}/compare/{b}", status_code=303)


# ---------------------------------------------------------------------------------------------
# One experiment


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None]
    costs = [float(r["cost"]) for r in rows if r.get("cost") is not None]
    return {
        "rows": len(rows),
        "cases": len({r["case_key"] for r in rows}),
        "trials": max((int(r["trial"]) for r in rows), default=-1) + 1,
        "errors": sum(1 for r in rows if r.get("error")),
        "input_tokens": sum(int(r.get("input_tokens") or 0) for r in rows),
        "output_tokens": sum(int(r.get("output_tokens") or 0) for r in rows),
        "cost": sum(costs) if costs else None,
        "latency_mean": sum(latencies) / len(latencies) if latencies else None,
        "latency_p50": _percentile(latencies, 0.5),
        "latency_p95": _percentile(latencies, 0.95),
    }


def _scores_by_name(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s.get("name")): s for s in row.get("scores") or []}


def _score_value(row: Mapping[str, Any], name: str) -> float | None:
    score = _scores_by_name(row).get(name)
    if score is None or score.get("error") or score.get("value") is None:
        return None
    return float(score["value"])


def _matches_text(row: Mapping[str, Any], needle: str) -> bool:
    fields = (row.get("case_key"), row.get("input"), row.get("expected"), row.get("output"))
    haystack = " ".join(as_text(value) for value in (*fields, row.get("error")))
    return needle in haystack.lower()


def filter_rows(rows: list[dict[str, Any]], params: Mapping[str, str]) -> list[dict[str, Any]]:
    needle = params.get("q", "").strip().lower()
    only_errors = params.get("errors") == "1"
    score = params.get("score", "")
    below, above = _float(params.get("below")), _float(params.get("above"))
    out = []
    for row in rows:
        if only_errors and not (
            row.get("error") or any(s.get("error") for s in row.get("scores") or [])
        ):
            continue
        if score and (below is not None or above is not None):
            value = _score_value(row, score)
            if value is None:
                continue
            if below is not None and not value < below:
                continue
            if above is not None and not value > above:
                continue
        if needle and not _matches_text(row, needle):
            continue
        out.append(row)
    return out


def sort_rows(rows: list[dict[str, Any]], sort: str, descending: bool) -> list[dict[str, Any]]:
    def value(row: dict[str, Any]) -> float | None:
        if sort == "latency":
            return row.get("latency_ms")
        if sort == "cost":
            return row.get("cost")
        if sort == "tokens":
            tokens = (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
            return float(tokens) if tokens else None
        return _score_value(row, sort)

    if sort in ("", "case"):
        ordered = sorted(rows, key=lambda r: (str(r["case_key"]), int(r["trial"])))
        return ordered[::-1] if descending else ordered
    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]  # rows without the value go last either way
    present.sort(key=lambda r: float(value(r) or 0.0), reverse=descending)
    return present + missing


def row_view(row: dict[str, Any], limit: int) -> dict[str, Any]:
    return {
        **row,
        "key": f"{row['case_key']}:{row['trial']}",
        "by_name": _scores_by_name(row),
        "tokens": (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0),
        "detail": {
            "input": clip(row.get("input"), limit),
            "expected": clip(row.get("expected"), limit),
            "output": clip(row.get("output"), limit),
            "metadata": clip(row.get("metadata") or None, limit),
            "error": clip(row.get("error"), limit),
        },
    }


def _text(value: Any) -> str:
    """A metadata value as the page shows it: any JSON shape becomes text."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def described(metadata: Any) -> dict[str, Any]:
    """What the page's header shows of an experiment's metadata, whatever JSON shape the
    client stored (a number for the commit, a string for the scorers, ...)."""
    metadata = metadata if isinstance(metadata, Mapping) else {}
    git = metadata.get("git")
    git = git if isinstance(git, Mapping) else {}
    scorers = metadata.get("scorers")
    listed = scorers if isinstance(scorers, list) else [] if scorers is None else [scorers]
    return {
        "git": {
            "commit": _text(git.get("commit")),
            "branch": _text(git.get("branch")),
            "dirty": git.get("dirty") is True,
        },
        "task": _text(metadata.get("task")),
        "scorers": [
            {"name": _text(s.get("name")), "version": _text(s.get("version"))}
            if isinstance(s, Mapping)
            else {"name": _text(s), "version": ""}
            for s in listed
        ],
    }


@router.get("/p/{project}/experiments/{experiment_id}", response_class=HTMLResponse)
async def experiment_page(
    request: Request, project: str, experiment_id: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    params = request.query_params
    experiment, rows, others = await run_in_threadpool(
        lambda: experiments.experiment_view(runtime_of(request), who, project, experiment_id)
    )
    names = score_names(rows)
    sort = params.get("sort", "case")
    if sort not in ROW_SORTS and sort not in names:
        sort = "case"
    descending = params.get("order", "asc") == "desc"
    shown = sort_rows(filter_rows(rows, params), sort, descending)
    page = max(1, _int(params.get("page"), 1))
    pages = max(1, math.ceil(len(shown) / PAGE_ROWS))
    window = shown[(page - 1) * PAGE_ROWS : page * PAGE_ROWS]
    opened_key = f"{params.get('case', '')}:{params.get('trial', '0')}"
    opened = next((r for r in rows if f"{r['case_key']}:{r['trial']}" == opened_key), None)
    queues = []
    if who.can(project, "annotator"):
        queues = await run_in_threadpool(review.list_queues, runtime_of(request), who, project)
    return render(
        request,
        "experiment.html",
        review_queues=queues,
        project=project,
        room="experiments",
        base=_base(project),
        experiment=experiment,
        described=described(experiment.get("metadata")),
        summary=score_summary(rows, names),
        totals=totals(rows),
        names=names,
        rows=[row_view(r, DETAIL_CHARS) for r in window],
        opened=row_view(opened, FULL_CHARS) if opened else None,
        matched=len(shown),
        page=page,
        pages=pages,
        sort=sort,
        descending=descending,
        others=others,
        params=params,
    )


# ---------------------------------------------------------------------------------------------
# Two experiments


def _first_trials(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The lowest trial of each case: the one whose output the diff shows."""
    out: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: int(r["trial"])):
        out.setdefault(str(row["case_key"]), row)
    return out


def compare_cases(
    baseline: list[dict[str, Any]], candidate: list[dict[str, Any]], result: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One entry per case of either experiment, with per-score deltas and a verdict."""
    deltas: dict[str, dict[str, dict[str, float]]] = {}
    for entry in result["cases"]:
        deltas.setdefault(entry["case_key"], {})[entry["score"]] = entry
    before, after = _first_trials(baseline), _first_trials(candidate)
    cases = []
    for key in sorted(set(before) | set(after)):
        scores = deltas.get(key, {})
        values = [float(s["delta"]) for s in scores.values()]
        worst, best = (min(values), max(values)) if values else (None, None)
        if key not in before:
            verdict = "new"
        elif key not in after:
            verdict = "missing"
        elif worst is not None and worst < -TOLERANCE:
            verdict = "regressed"
        elif best is not None and best > TOLERANCE:
            verdict = "improved"
        else:
            verdict = "unchanged"
        cases.append(
            {
                "case_key": key,
                "a": before.get(key),
                "b": after.get(key),
                "scores": scores,
                "worst": worst,
                "best": best,
                "verdict": verdict,
            }
        )
    return cases


_VERDICT_ORDER = {"regressed": 0, "improved": 1, "unchanged": 2, "new": 3, "missing": 4}


def sort_cases(cases: list[dict[str, Any]], sort: str, descending: bool) -> list[dict[str, Any]]:
    if not sort:
        # Regressions first (worst first), then improvements (best first), then the rest.
        def default(case: dict[str, Any]) -> tuple[int, float, str]:
            order = _VERDICT_ORDER[case["verdict"]]
            if case["verdict"] == "regressed":
                return order, float(case["worst"]), case["case_key"]
            if case["verdict"] == "improved":
                return order, -float(case["best"]), case["case_key"]
            return order, 0.0, case["case_key"]

        return sorted(cases, key=default)
    present = [c for c in cases if sort in c["scores"]]
    missing = [c for c in cases if sort not in c["scores"]]
    present.sort(key=lambda c: float(c["scores"][sort]["delta"]), reverse=descending)
    return present + missing


@router.get("/p/{project}/experiments/{a}/compare/{b}", response_class=HTMLResponse)
async def compare_page(
    request: Request, project: str, a: RowId, b: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    params = request.query_params
    loaded = await run_in_threadpool(
        lambda: experiments.comparison_view(runtime_of(request), who, project, a, b)
    )
    result = compare(loaded["a_rows"], loaded["b_rows"])
    cases = compare_cases(loaded["a_rows"], loaded["b_rows"], result)
    counts = {verdict: 0 for verdict in _VERDICT_ORDER}
    for case in cases:
        counts[case["verdict"]] += 1
    show = params.get("show", "all")
    if show == "changed":
        cases = [c for c in cases if c["verdict"] in ("regressed", "improved")]
    elif show in _VERDICT_ORDER:
        cases = [c for c in cases if c["verdict"] == show]
    sort = params.get("sort", "")
    if sort not in result["scores"]:
        sort = ""
    descending = params.get("order", "asc") == "desc"
    cases = sort_cases(cases, sort, descending)
    page = max(1, _int(params.get("page"), 1))
    pages = max(1, math.ceil(len(cases) / PAGE_CASES))
    window = cases[(page - 1) * PAGE_CASES : page * PAGE_CASES]
    for case in window:
        before, after = (case["a"] or {}).get("output"), (case["b"] or {}).get("output")
        case["same"] = as_text(before) == as_text(after)
        case["input"] = (case["a"] or case["b"] or {}).get("input")
    return render(
        request,
        "compare.html",
        project=project,
        room="experiments",
        base=_base(project),
        baseline=loaded["baseline"],
        candidate=loaded["candidate"],
        scores=result["scores"],
        significant_regression=result["significant_regression"],
        totals_a=totals(loaded["a_rows"]),
        totals_b=totals(loaded["b_rows"]),
        cases=window,
        counts=counts,
        matched=len(cases),
        page=page,
        pages=pages,
        show=show,
        sort=sort,
        descending=descending,
        others=loaded["others"],
    )


@router.get("/p/{project}/experiments/{a}/compare/{b}/case", response_class=HTMLResponse)
async def compare_case(
    request: Request, project: str, a: RowId, b: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    """One case's side-by-side diff, fetched when its row opens: diffs cost milliseconds each,
    so a page computes only those someone looks at."""
    key = request.query_params.get("key", "")
    a_rows, b_rows = await run_in_threadpool(
        lambda: experiments.case_rows(runtime_of(request), who, project, a, b, key)
    )
    before, after = _first_trials(a_rows).get(key), _first_trials(b_rows).get(key)
    return render(
        request,
        "_compare_case.html",
        project=project,
        base=_base(project),
        baseline_id=a,
        candidate_id=b,
        case_key=key,
        a=before,
        b=after,
        diff=diff((before or {}).get("output"), (after or {}).get("output")),
    )
