"""Judges checked against people, in the browser: run a calibration from the judge's page, read
its figures next to the people's own agreement, edit the mapping of the judge's choices onto the
rubric's, compare with the previous calibration, go through the disagreements (and make them a
dataset), and set the project's gate and drift alert.

Roles: viewers read; editors calibrate, remap and add disagreements to a dataset; the gate and
the webhook are project settings, for administrators.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from assay.errors import UserError
from assay.server.bounds import RowId
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui.online import (
    _base,
    _in_project,
    _judge_context,
    _page,
    _redirect,
    _stored_form,
    _text,
    _used_placeholders,
)
from assay.services import calibration, evaluators
from assay.services.principal import Principal
from assay.ui.charts import SVG_HEADERS, SVG_MEDIA_TYPE, ChartLine, ChartPoint, line_chart

router = APIRouter(include_in_schema=False)


def _evaluator_in(request: Request, who: Principal, project: str, evaluator_id: int) -> None:
    who.require(project, "viewer")  # a project one may not see is refused before any id
    found = evaluators.get_evaluator(runtime_of(request), who, evaluator_id)
    _in_project(found, project, f"evaluator {evaluator_id}")


def _calibration_context(
    request: Request, who: Principal, project: str, evaluator_id: int, calibration_id: int
) -> dict[str, Any]:
    _evaluator_in(request, who, project, evaluator_id)
    found = calibration.calibration_page(runtime_of(request), who, evaluator_id, calibration_id)
    return {"project": project, "can_edit": who.can(project, "editor"), **found}


def _whole(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 2**31 - 1:
        raise UserError(f"{what}: {text[:20]!r} is not a whole number")
    return int(text)


@router.post(
    "/p/{project}/evaluators/{evaluator_id}/calibrations", dependencies=[Depends(csrf_protect)]
)
async def calibrate(
    request: Request, project: str, evaluator_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    await run_in_threadpool(_evaluator_in, request, who, project, evaluator_id)
    who.require(project, "editor")
    try:
        rubric_id = _whole(_text(form, "rubric_id"), "rubric")
        if rubric_id is None:
            raise UserError("choose the rubric whose labels the judge is checked against")
        version = _whole(_text(form, "version"), "version")
        made = await run_in_threadpool(
            lambda: calibration.calibrate(
                runtime_of(request), who, evaluator_id, rubric_id=rubric_id, version=version
            )
        )
    except UserError as refused:
        context = await run_in_threadpool(_judge_context, request, who, project, evaluator_id)
        stored = _stored_form(context["evaluator"])
        return _page(
            request,
            "evaluator.html",
            status=400,
            form=stored,
            used=_used_placeholders(stored["prompt"]),
            error=str(refused),
            tried=None,
            **context,
        )
    kappa = made.get("kappa") or {}
    shown = "none" if kappa.get("value") is None else f"{kappa['value']:.2f}"
    return _redirect(
        f"{_base(project)}/evaluators/{evaluator_id}/calibrations/{made['id']}",
        f"Calibrated v{made['version']} on {made['n']} items: kappa {shown}.",
    )


@router.get(
    "/p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}",
    response_class=HTMLResponse,
)
async def calibration_view(
    request: Request,
    project: str,
    evaluator_id: RowId,
    calibration_id: RowId,
    who: Principal = Depends(web_principal),
) -> HTMLResponse:
    context = await run_in_threadpool(
        _calibration_context, request, who, project, evaluator_id, calibration_id
    )
    return _page(request, "calibration.html", error=None, **context)


def agreement_svg(series: dict[str, Any]) -> str:
    """Kappa and accuracy per window with their intervals (the drift table's figures, drawn);
    a drifted window's label says so."""
    windows = series.get("series") or []
    labels = [str(w["start"])[:10] + (" (drift)" if w.get("drift") else "") for w in windows]

    def line(name: str, key: str) -> ChartLine:
        points = []
        for label, window in zip(labels, windows, strict=True):
            figure = window.get(key) or {}
            points.append(
                ChartPoint(
                    label, figure.get("value"), figure.get("low"), figure.get("high"), window["n"]
                )
            )
        return ChartLine(name, points)

    return line_chart(
        [line("kappa", "kappa"), line("accuracy", "accuracy")],
        title=f"v{series.get('version')} against people, per {series.get('window', 'week')}",
        y_format=lambda value: f"{value:.2f}",
        margin_right=60,
    )


@router.get("/p/{project}/evaluators/{evaluator_id}/agreement.svg")
async def agreement_chart(
    request: Request, project: str, evaluator_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    def draw() -> str:
        _evaluator_in(request, who, project, evaluator_id)
        # Reading the chart never acts on drift (no pause, no alert): the worker does that.
        return agreement_svg(
            calibration.agreement(runtime_of(request), who, evaluator_id, act=False)
        )

    try:
        svg = await run_in_threadpool(draw)
    except UserError as refused:
        return Response(str(refused), status_code=400, media_type="text/plain", headers=SVG_HEADERS)
    return Response(svg, media_type=SVG_MEDIA_TYPE, headers=SVG_HEADERS)


def _mapping(form: FormData, context: dict[str, Any]) -> dict[str, Any]:
    """The form's ``map:<judge choice>`` fields: a rubric choice, or a number on a numeric
    rubric."""
    numeric = context["rubric"]["kind"] == "numeric"
    chosen: dict[str, Any] = {}
    for choice in context["judge_choices"]:
        given = _text(form, f"map:{choice}").strip()
        if not given:
            continue
        if numeric:
            try:
                chosen[choice] = float(given)
            except ValueError:
                raise UserError(f"{choice}: {given[:40]!r} is not a number") from None
        else:
            chosen[choice] = given
    return chosen


@router.post(
    "/p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}/mapping",
    dependencies=[Depends(csrf_protect)],
)
async def remap(
    request: Request,
    project: str,
    evaluator_id: RowId,
    calibration_id: RowId,
    who: Principal = Depends(web_principal),
) -> Response:
    form = await request.form()
    context = await run_in_threadpool(
        _calibration_context, request, who, project, evaluator_id, calibration_id
    )
    who.require(project, "editor")
    try:
        chosen = _mapping(form, context)
        await run_in_threadpool(
            calibration.remap, runtime_of(request), who, evaluator_id, calibration_id, chosen
        )
    except UserError as refused:
        return _page(request, "calibration.html", status=400, error=str(refused), **context)
    return _redirect(
        f"{_base(project)}/evaluators/{evaluator_id}/calibrations/{calibration_id}",
        "Mapping saved: the figures are read again (no judge was called).",
    )


def _disagreements_context(
    request: Request, who: Principal, project: str, evaluator_id: int, calibration_id: int
) -> dict[str, Any]:
    context = _calibration_context(request, who, project, evaluator_id, calibration_id)
    context["items"] = calibration.disagreements(
        runtime_of(request), who, evaluator_id, calibration_id
    )
    return context


@router.get(
    "/p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements",
    response_class=HTMLResponse,
)
async def disagreements_view(
    request: Request,
    project: str,
    evaluator_id: RowId,
    calibration_id: RowId,
    who: Principal = Depends(web_principal),
) -> HTMLResponse:
    context = await run_in_threadpool(
        _disagreements_context, request, who, project, evaluator_id, calibration_id
    )
    return _page(request, "disagreements.html", error=None, **context)


@router.post(
    "/p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements/dataset",
    dependencies=[Depends(csrf_protect)],
)
async def disagreements_dataset(
    request: Request,
    project: str,
    evaluator_id: RowId,
    calibration_id: RowId,
    who: Principal = Depends(web_principal),
) -> Response:
    form = await request.form()
    await run_in_threadpool(_evaluator_in, request, who, project, evaluator_id)
    who.require(project, "editor")
    name = _text(form, "dataset").strip()
    try:
        if not name or len(name) > 200:
            raise UserError("name the dataset (1 to 200 characters): an existing one or a new one")
        added = await run_in_threadpool(
            calibration.disagreements_to_dataset,
            runtime_of(request),
            who,
            evaluator_id,
            calibration_id,
            name,
        )
    except UserError as refused:
        context = await run_in_threadpool(
            _disagreements_context, request, who, project, evaluator_id, calibration_id
        )
        return _page(request, "disagreements.html", status=400, error=str(refused), **context)
    return _redirect(
        f"{_base(project)}/datasets/{quote(name, safe='')}",
        f"Added {added['added']} disagreements to {name!r} (version {added['version']}).",
    )


@router.post("/p/{project}/judge-settings", dependencies=[Depends(csrf_protect)])
async def judge_settings(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    who.require(project, "admin")
    try:
        kappa_text = _text(form, "calibration_min_kappa").strip()
        try:
            kappa = float(kappa_text) if kappa_text else calibration.DEFAULT_MIN_KAPPA
        except ValueError:
            raise UserError(f"minimum kappa: {kappa_text[:20]!r} is not a number") from None
        items = _whole(_text(form, "calibration_min_items"), "minimum items")
        hook = _text(form, "judge_alert_webhook").strip() or None
        settings: dict[str, Any] = {
            "judges_must_be_calibrated": form.get("judges_must_be_calibrated") == "on",
            "calibration_min_kappa": kappa,
            "calibration_min_items": calibration.DEFAULT_MIN_ITEMS if items is None else items,
        }
        if hook is not None or form.get("clear_webhook") == "on":
            settings["judge_alert_webhook"] = hook
        await run_in_threadpool(
            calibration.set_judge_settings, runtime_of(request), who, project, settings
        )
    except UserError as refused:
        return _redirect(f"{_base(project)}/evaluators", f"Not saved: {refused}")
    return _redirect(f"{_base(project)}/evaluators", "Saved the judges' gate and drift alert.")
