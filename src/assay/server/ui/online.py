"""Online scoring in the browser: judges (stored evaluators), the rules that run them on
production traces, and the provider connections they call.

Roles: viewers read everything here (never a key: only its last four characters); editors
create and edit judges, rules and connections, try a judge on a trace (a paid call) and start
backfills. Every judge edit that changes its definition is a new version; the scores keep the
version they were made with.

The forms work without script: "Try on this trace" is a second submit button of the judge's
form, so what is tried is what is on the screen, saved or not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from assay.errors import NotFound, ProjectNotFound, UserError
from assay.scorers._template import PROMPT_NAMES, PromptTemplate
from assay.server.bounds import RowId
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import render
from assay.services import calibration, connections, evaluators, review, rules
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

FLASH_COOKIE = "assay_flash"
#: A rule action's trigger as the rule's page says it.
TRIGGER_NAMES = {
    "undecided": "the judge cannot decide (an error, a tie)",
    "disagrees_with_feedback": "the judge disagrees with end-user feedback",
    "sample": "a random share of what the judges scored",
}
PROVIDERS = ("openai", "anthropic", "mistral", "ollama", "openai-compatible")
PLACEHOLDERS = [f"{{{{{name}}}}}" for name in PROMPT_NAMES]
NEW_JUDGE = {
    "name": "",
    "prompt": "Question: {{input}}\nAnswer: {{output}}\n\nIs the answer correct and helpful?",
    "choices": "good = 1\nbad = 0",
    "model": "",
    "connection": "",
    "use_reasoning": True,
    "trace_id": "",
}


def _base(project: str) -> str:
    return f"/p/{quote(project, safe='')}"


def _redirect(url: str, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE, quote(flash[:300]), httponly=True, samesite="strict", path="/"
        )
    return response


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    raw = request.cookies.get(FLASH_COOKIE)
    response = render(
        request,
        template,
        status=status,
        room="online",
        flash=unquote(raw) if raw else None,
        base=_base(context["project"]),
        **context,
    )
    if raw:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


def _or_empty(load: Any) -> list[dict[str, Any]]:
    """A list of a project that has no traces yet is empty, not missing."""
    try:
        found: list[dict[str, Any]] = load()
    except ProjectNotFound as missing:
        if missing.hidden:
            raise
        return []
    return found


def _in_project(found: Mapping[str, Any], project: str, what: str) -> None:
    if found["project"] != project:
        raise NotFound(f"{what} is not in project {project!r}")


# ---------------------------------------------------------------------------------------------
# Judges


def parse_choices(text: str) -> dict[str, float]:
    """``label = value`` per line (``:`` works too) into the judge's choices."""
    choices: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        sep = "=" if "=" in line else ":"
        label, found, value = line.rpartition(sep)
        label = label.strip()
        if not found or not label:
            raise UserError(f"choices, line {number}: write it as label = value, like good = 1")
        try:
            number_value = float(value.strip())
        except ValueError:
            raise UserError(
                f"choices, line {number}: {value.strip()[:40]!r} is not a number"
            ) from None
        if not math.isfinite(number_value):
            raise UserError(f"choices, line {number}: the value must be a finite number")
        choices[label] = number_value
    if len(choices) < 2:
        raise UserError("a judge needs at least two choices, one per line: good = 1")
    return choices


def _choices_text(choices: Mapping[str, Any]) -> str:
    return "\n".join(f"{label} = {value:g}" for label, value in choices.items())


def _judge_form(form: FormData) -> dict[str, Any]:
    return {
        "name": _text(form, "name").strip(),
        "prompt": _text(form, "prompt"),
        "choices": _text(form, "choices"),
        "model": _text(form, "model").strip(),
        "connection": _text(form, "connection").strip(),
        "use_reasoning": form.get("use_reasoning") == "on",
        "trace_id": _text(form, "trace_id").strip().lower(),
    }


def _judge_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    if not values["prompt"].strip():
        raise UserError("the prompt is required")
    return {
        "prompt": values["prompt"],
        "choices": parse_choices(values["choices"]),
        "model": values["model"] or None,
        "use_reasoning": values["use_reasoning"],
    }


def _stored_form(found: Mapping[str, Any]) -> dict[str, Any]:
    definition = found["definition"]
    return {
        "name": found["name"],
        "prompt": definition.get("prompt", ""),
        "choices": _choices_text(definition.get("choices") or {}),
        "model": definition.get("model") or "",
        "connection": str(found["connection_id"] or ""),
        "use_reasoning": bool(definition.get("use_reasoning", True)),
        "trace_id": "",
    }


def _used_placeholders(prompt: str) -> list[str]:
    try:
        names = PromptTemplate(prompt).names
    except Exception:  # the form shows the error when it is saved or tried
        return []
    return [f"{{{{{name}}}}}" for name in PROMPT_NAMES if name in names]


def _judge_context(
    request: Request, who: Principal, project: str, evaluator_id: int | None
) -> dict[str, Any]:
    who.require(project, "viewer")  # a project one may not see is refused before any id
    rt = runtime_of(request)
    context: dict[str, Any] = {
        "project": project,
        "connections": _or_empty(lambda: connections.list_connections(rt, who, project)),
        "placeholders": PLACEHOLDERS,
        "can_edit": who.can(project, "editor"),
    }
    if evaluator_id is None:
        context["evaluators"] = _or_empty(lambda: evaluators.list_evaluators(rt, who, project))
        context["judge_settings"] = _judge_settings(rt, who, project)
        context["is_admin"] = who.can(project, "admin")
    else:
        found = evaluators.get_evaluator(rt, who, evaluator_id)
        _in_project(found, project, f"evaluator {evaluator_id}")
        context["evaluator"] = found
        # Calibrations against people's labels, and agreement over time.
        context["overview"] = calibration.evaluator_overview(rt, who, evaluator_id)
    return context


def _judge_settings(rt: Any, who: Principal, project: str) -> dict[str, Any] | None:
    """The gate and drift-alert settings; None for a project that has no traces yet."""
    try:
        return calibration.judge_settings(rt, who, project)
    except ProjectNotFound as missing:
        if missing.hidden:
            raise
        return None


@router.get("/p/{project}/evaluators", response_class=HTMLResponse)
async def evaluators_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_judge_context, request, who, project, None)
    form: dict[str, Any] = dict(NEW_JUDGE)
    return _page(
        request,
        "evaluators.html",
        form=form,
        used=_used_placeholders(form["prompt"]),
        error=None,
        tried=None,
        **context,
    )


@router.get("/p/{project}/evaluators/{evaluator_id}", response_class=HTMLResponse)
async def evaluator_page(
    request: Request, project: str, evaluator_id: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_judge_context, request, who, project, evaluator_id)
    form = _stored_form(context["evaluator"])
    form["trace_id"] = request.query_params.get("trace_id", "")[:64]
    return _page(
        request,
        "evaluator.html",
        form=form,
        used=_used_placeholders(form["prompt"]),
        error=None,
        tried=None,
        **context,
    )


def _try(
    request: Request, who: Principal, project: str, evaluator_id: int | None, values: Any
) -> dict[str, Any]:
    if not values["trace_id"]:
        raise UserError("name a trace to try the judge on: paste its trace id")
    return evaluators.try_evaluator(
        runtime_of(request),
        who,
        project,
        trace_id=values["trace_id"],
        kind="judge",
        fields=_judge_fields(values),
        connection=int(values["connection"]) if values["connection"].isdigit() else None,
    )


async def _judge_post(
    request: Request, who: Principal, project: str, evaluator_id: int | None
) -> Response:
    form = await request.form()
    values = _judge_form(form)
    trying = form.get("action") == "try"
    if evaluator_id is not None:  # another project's judge is missing here, before any call
        await run_in_threadpool(_judge_context, request, who, project, evaluator_id)
    who.require(project, "editor")
    tried = None
    try:
        if trying:
            tried = await run_in_threadpool(_try, request, who, project, evaluator_id, values)
        else:
            fields = _judge_fields(values)
            connection = int(values["connection"]) if values["connection"].isdigit() else None
            if evaluator_id is None:
                if not values["name"]:
                    raise UserError("a name is required")
                made = await run_in_threadpool(
                    lambda: evaluators.create_evaluator(
                        runtime_of(request),
                        who,
                        project,
                        name=values["name"],
                        kind="judge",
                        fields=fields,
                        connection=connection,
                    )
                )
                return _redirect(
                    f"{_base(project)}/evaluators/{made['id']}",
                    f"Saved judge {made['name']!r} as version {made['version']}.",
                )
            context = await run_in_threadpool(_judge_context, request, who, project, evaluator_id)
            before = context["evaluator"]["version"]
            changed = await run_in_threadpool(
                lambda: evaluators.update_evaluator(
                    runtime_of(request),
                    who,
                    evaluator_id,
                    fields=fields,
                    connection=connection,
                )
            )
            message = (
                f"Saved as version {changed['version']}."
                if changed["version"] != before
                else "Nothing changed: still version {}.".format(changed["version"])
            )
            return _redirect(f"{_base(project)}/evaluators/{evaluator_id}", message)
        error = None
        status = 200
    except UserError as refused:
        error, status = str(refused), 400
    context = await run_in_threadpool(_judge_context, request, who, project, evaluator_id)
    return _page(
        request,
        "evaluators.html" if evaluator_id is None else "evaluator.html",
        status=status,
        form=values,
        used=_used_placeholders(values["prompt"]),
        error=error,
        tried=tried,
        **context,
    )


@router.post("/p/{project}/evaluators", dependencies=[Depends(csrf_protect)])
async def create_judge(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    return await _judge_post(request, who, project, None)


@router.post("/p/{project}/evaluators/{evaluator_id}", dependencies=[Depends(csrf_protect)])
async def edit_judge(
    request: Request, project: str, evaluator_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _judge_post(request, who, project, evaluator_id)


# ---------------------------------------------------------------------------------------------
# Rules


def _rules_context(request: Request, who: Principal, project: str) -> dict[str, Any]:
    rt = runtime_of(request)
    return {
        "project": project,
        "rules": _or_empty(lambda: rules.list_rules(rt, who, project)),
        "evaluators": _or_empty(lambda: evaluators.list_evaluators(rt, who, project)),
        "can_edit": who.can(project, "editor"),
    }


def _number(text: str, what: str, *, whole: bool = False) -> float | int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{what}: {text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{what} must be a finite number")
    if whole:
        if value != int(value):
            raise UserError(f"{what} must be a whole number")
        return int(value)
    return value


def _rule_fields(form: FormData) -> dict[str, Any]:
    name = _text(form, "name").strip()
    if not name:
        raise UserError("a name is required")
    chosen = [int(v) for v in form.getlist("evaluators") if isinstance(v, str) and v.isdigit()]
    if not chosen:
        raise UserError("choose at least one judge for the rule to run")
    rate = _number(_text(form, "sample_percent"), "sample rate")
    return {
        "name": name,
        "evaluators": chosen,
        "target": _text(form, "target") or "trace",
        "sample_rate": 1.0 if rate is None else float(rate) / 100,
        "delay_seconds": _number(_text(form, "delay_seconds"), "delay", whole=True),
        "daily_budget_usd": _number(_text(form, "daily_budget_usd"), "daily budget"),
        "calls_per_minute": _number(
            _text(form, "calls_per_minute"), "calls per minute", whole=True
        ),
    }


@router.get("/p/{project}/rules", response_class=HTMLResponse)
async def rules_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_rules_context, request, who, project)
    return _page(request, "rules.html", form={}, error=None, **context)


@router.post("/p/{project}/rules", dependencies=[Depends(csrf_protect)])
async def create_rule(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    who.require(project, "editor")
    try:
        fields = _rule_fields(form)
        made = await run_in_threadpool(rules.create_rule, runtime_of(request), who, project, fields)
    except UserError as refused:
        context = await run_in_threadpool(_rules_context, request, who, project)
        values = {key: _text(form, key) for key in form}
        return _page(request, "rules.html", status=400, form=values, error=str(refused), **context)
    return _redirect(f"{_base(project)}/rules/{made['id']}", f"Created rule {made['name']!r}.")


def _rule_context(request: Request, who: Principal, project: str, rule_id: int) -> dict[str, Any]:
    who.require(project, "viewer")
    rt = runtime_of(request)
    found = rules.get_rule(rt, who, rule_id)
    _in_project(found, project, f"rule {rule_id}")
    named = {e["id"]: e for e in _or_empty(lambda: evaluators.list_evaluators(rt, who, project))}
    queues = {q["id"]: q for q in _or_empty(lambda: review.list_queues(rt, who, project))}
    return {
        "project": project,
        "rule": found,
        "queues": queues,
        "triggers": TRIGGER_NAMES,
        "counts": found["status"],
        "rule_evaluators": [named[i] for i in found["evaluators"] if i in named],
        "can_edit": who.can(project, "editor"),
    }


@router.get("/p/{project}/rules/{rule_id}", response_class=HTMLResponse)
async def rule_page(
    request: Request, project: str, rule_id: RowId, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_rule_context, request, who, project, rule_id)
    return _page(request, "rule.html", preview=None, backfill={}, error=None, **context)


def _changed_actions(form: FormData, current: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rule's actions after the form: one added (``op=add``) or one removed by position."""
    if form.get("op") == "remove":
        index = _number(_text(form, "index"), "action", whole=True)
        if index is None or not 0 <= int(index) < len(current):
            raise UserError("that action is no longer on the rule; reload the page")
        return [a for i, a in enumerate(current) if i != int(index)]
    when = _text(form, "when")
    queue = _text(form, "queue")
    if not queue:
        raise UserError("choose the review queue the items go to")
    action: dict[str, Any] = {"when": when, "queue": queue}
    if when == "sample":
        percent = _number(_text(form, "rate_percent"), "share")
        action["rate"] = 0.1 if percent is None else float(percent) / 100
    same = {**action, "queue": int(queue) if queue.isdigit() else queue}
    if same in current:
        return current  # already there: kept once
    return [*current, action]


@router.post("/p/{project}/rules/{rule_id}/actions", dependencies=[Depends(csrf_protect)])
async def rule_actions(
    request: Request, project: str, rule_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    context = await run_in_threadpool(_rule_context, request, who, project, rule_id)
    who.require(project, "editor")
    try:
        actions = _changed_actions(form, list(context["rule"]["actions"]))
        await run_in_threadpool(
            rules.update_rule, runtime_of(request), who, rule_id, {"actions": actions}
        )
    except UserError as refused:
        return _page(
            request,
            "rule.html",
            status=400,
            preview=None,
            backfill={},
            error=str(refused),
            **context,
        )
    return _redirect(f"{_base(project)}/rules/{rule_id}", "Saved the rule's routing to people.")


@router.post("/p/{project}/rules/{rule_id}/pause", dependencies=[Depends(csrf_protect)])
async def pause_rule(
    request: Request, project: str, rule_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _switch(request, who, project, rule_id, enabled=False)


@router.post("/p/{project}/rules/{rule_id}/resume", dependencies=[Depends(csrf_protect)])
async def resume_rule(
    request: Request, project: str, rule_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    return await _switch(request, who, project, rule_id, enabled=True)


async def _switch(
    request: Request, who: Principal, project: str, rule_id: int, *, enabled: bool
) -> Response:
    rt = runtime_of(request)
    await run_in_threadpool(_rule_context, request, who, project, rule_id)
    await run_in_threadpool(rules.update_rule, rt, who, rule_id, {"enabled": enabled})
    return _redirect(
        f"{_base(project)}/rules/{rule_id}", "Rule resumed." if enabled else "Rule paused."
    )


def _day_ns(text: str, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UserError(f"{what}: {text[:20]!r} is not a date like 2026-01-31") from None
    return int(day.timestamp()) * 1_000_000_000


@router.post("/p/{project}/rules/{rule_id}/backfill", dependencies=[Depends(csrf_protect)])
async def backfill_rule(
    request: Request, project: str, rule_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    values = {"since": _text(form, "since"), "until": _text(form, "until")}
    context = await run_in_threadpool(_rule_context, request, who, project, rule_id)
    who.require(project, "editor")
    preview = form.get("action") != "start"
    try:
        since = _day_ns(values["since"], "from")
        until = _day_ns(values["until"], "until")
        if until is not None:
            until += 86_400 * 1_000_000_000  # the whole last day
        result = await run_in_threadpool(
            lambda: rules.backfill(
                runtime_of(request),
                who,
                rule_id,
                since_ns=since,
                until_ns=until,
                preview=preview,
            )
        )
    except UserError as refused:
        return _page(
            request,
            "rule.html",
            status=400,
            preview=None,
            backfill=values,
            error=str(refused),
            **context,
        )
    if not preview:
        return _redirect(
            f"{_base(project)}/rules/{rule_id}",
            f"Backfill started: {result['calls']:,} calls queued.",
        )
    return _page(request, "rule.html", preview=result, backfill=values, error=None, **context)


# ---------------------------------------------------------------------------------------------
# Connections


def _connections_context(request: Request, who: Principal, project: str) -> dict[str, Any]:
    rt = runtime_of(request)
    return {
        "project": project,
        "connections": _or_empty(lambda: connections.list_connections(rt, who, project)),
        "providers": PROVIDERS,
        "can_edit": who.can(project, "editor"),
    }


@router.get("/p/{project}/connections", response_class=HTMLResponse)
async def connections_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> HTMLResponse:
    context = await run_in_threadpool(_connections_context, request, who, project)
    return _page(request, "connections.html", form={}, error=None, editing=None, **context)


@router.post("/p/{project}/connections", dependencies=[Depends(csrf_protect)])
async def create_connection(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    who.require(project, "editor")
    values = {k: _text(form, k).strip() for k in ("name", "provider", "base_url", "default_model")}
    try:
        if not values["name"]:
            raise UserError("a name is required")
        made = await run_in_threadpool(
            lambda: connections.create_connection(
                runtime_of(request),
                who,
                project,
                name=values["name"],
                provider=values["provider"] or "openai",
                base_url=values["base_url"] or None,
                api_key=_text(form, "api_key").strip() or None,
                default_model=values["default_model"] or None,
            )
        )
    except UserError as refused:
        context = await run_in_threadpool(_connections_context, request, who, project)
        return _page(
            request,
            "connections.html",
            status=400,
            form=values,  # never the key: it is typed again
            error=str(refused),
            editing=None,
            **context,
        )
    return _redirect(f"{_base(project)}/connections", f"Saved connection {made['name']!r}.")


@router.post("/p/{project}/connections/{connection_id}", dependencies=[Depends(csrf_protect)])
async def edit_connection(
    request: Request, project: str, connection_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    who.require(project, "viewer")
    rt = runtime_of(request)
    found = await run_in_threadpool(connections.get_connection, rt, who, connection_id)
    _in_project(found, project, f"connection {connection_id}")
    who.require(project, "editor")
    changes: dict[str, Any] = {
        "base_url": _text(form, "base_url").strip() or None,
        "default_model": _text(form, "default_model").strip() or None,
        "api_key": _text(form, "api_key").strip() or None,
    }
    try:
        await run_in_threadpool(connections.update_connection, rt, who, connection_id, changes)
    except UserError as refused:
        context = await run_in_threadpool(_connections_context, request, who, project)
        return _page(
            request,
            "connections.html",
            status=400,
            form={},
            error=str(refused),
            editing=connection_id,
            **context,
        )
    return _redirect(f"{_base(project)}/connections", f"Saved connection {found['name']!r}.")
