"""The review room: queues and rubrics (``/p/{project}/review``), the reviewer view (one item at
a time, keyboard first), adjudication with the agreement between reviewers, and adding traces to
a queue from the traces list.

Every rule lives in :mod:`assay.services.review`, :mod:`assay.services.rubrics` and
:mod:`assay.services.review_results`; these routes parse, call them and render. The reviewer
view swaps items in place: its fetches (next, labels, skip, back, undo) answer with the item as
an HTML fragment rendered here (escaped like every page), or ``{"error": {...}}`` with a 4xx.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Request
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from assay.errors import Conflict, NotFound, UserError
from assay.server.bounds import BigRowId, RowId
from assay.server.security.web import csrf_protect, web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import environment, render
from assay.server.ui.conversation import pretty, show
from assay.server.ui.traces import segment
from assay.services import datasets, review, review_results, rubrics
from assay.services.filters import parse_filters
from assay.services.principal import Principal

router = APIRouter(include_in_schema=False)

#: Form fields and JSON bodies of the review room are small; anything longer is cut.
MAX_FIELD_CHARS = 100_000
MAX_BODY_BYTES = 2_000_000
#: The keys of the trace-list filter a "add all matching" form may carry.
FILTER_KEYS = frozenset(
    {
        "q",
        "range",
        "since",
        "until",
        "name",
        "status",
        "type",
        "model",
        "tag",
        "session_id",
        "user_id",
        "trace_id",
        "metadata",
        "min_duration_ms",
        "max_duration_ms",
        "min_cost",
        "max_cost",
        "score",
        "min_score",
        "max_score",
    }
)


# --- rubric instructions: Markdown, safely ----------------------------------------------------


def _http_only(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


#: CommonMark with raw HTML escaped (``html: False``), no images, and links to http(s) only:
#: instructions are written by editors but read by everyone, so nothing in them may run.
_markdown = MarkdownIt("commonmark", {"html": False}).disable("image")
_markdown.validateLink = _http_only  # type: ignore[method-assign]


def instructions_html(text: str | None) -> Markup:
    """A rubric's instructions as HTML: Markdown with every tag the author typed escaped."""
    if not text:
        return Markup("")
    # markdown-it escapes raw HTML itself (html=False); links were checked above.
    return Markup(_markdown.render(text))


environment.filters["instructions"] = instructions_html


# --- helpers ----------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _queue_in_project(queue: dict[str, Any], project: str) -> dict[str, Any]:
    """A queue named under another project's path is not there (one of the caller's own
    projects' queues, reached through the wrong project)."""
    if str(queue["project"]) != project:
        raise NotFound(f"queue {queue['id']} does not exist")
    return queue


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def _number(text: str, what: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{what} must be a number (got {text[:40]!r})") from None
    if not math.isfinite(value):
        raise UserError(f"{what} must be a finite number")
    return value


def _choices_from_text(text: str) -> list[dict[str, Any]]:
    """Choices typed one a line: ``name``, ``name = value`` or ``name = value : description``."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        head, _, description = line.partition(":")
        name, has_value, raw_value = head.partition("=")
        choice: dict[str, Any] = {"name": name.strip(), "description": description.strip()}
        if has_value:
            choice["value"] = _number(raw_value, f"the value of choice {name.strip()!r}")
        out.append(choice)
    return out


def _anchors_from_text(text: str) -> list[dict[str, Any]]:
    """Anchors typed one a line: ``value = label``."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        raw_value, _, label = line.partition("=")
        out.append({"value": _number(raw_value, "an anchor's value"), "label": label.strip()})
    return out


def rubric_from_form(form: Any) -> dict[str, Any]:
    """The rubric definition of the create form, in the shape the rubrics service checks."""
    kind = _field(form, "kind")
    raw: dict[str, Any] = {
        "name": _field(form, "name"),
        "kind": kind,
        "rationale": _field(form, "rationale") or "optional",
        "instructions": _field(form, "instructions"),
        "may_correct_expected": _field(form, "may_correct_expected") == "on",
    }
    if kind == "categorical":
        raw["choices"] = _choices_from_text(_field(form, "choices"))
        raw["multiple"] = _field(form, "multiple") == "on"
        raw["ordered"] = _field(form, "ordered") == "on"
    elif kind == "numeric":
        for key in ("min", "max", "step"):
            value = _number(_field(form, key), key)
            if value is not None:
                raw[key] = value
        raw["anchors"] = _anchors_from_text(_field(form, "anchors"))
    return raw


def _reviewers(text: str) -> list[str]:
    return sorted({name.strip() for name in text.replace(",", "\n").splitlines() if name.strip()})


def _json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text or b"{}")
    except ValueError:
        raise UserError(f"{what} is not JSON") from None


async def _payload(request: Request) -> dict[str, Any]:
    """The body of a reviewer-view call: JSON (what review.js sends), or a form whose
    ``labels`` field holds the labels as JSON (a plain form, a script)."""
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise UserError("the request is too large")
        found = _json(body, "the request body")
        if not isinstance(found, dict):
            raise UserError("the request body must be a JSON object")
        return found
    form = await request.form()
    out: dict[str, Any] = {key: _field(form, key) for key in form if key != "csrf_token"}
    if "labels" in out:
        out["labels"] = _json(out["labels"], "the 'labels' field")
    return out


# --- the item as the reviewer sees it ---------------------------------------------------------


def _shown(value: Any) -> Any:
    if value is None or value == "":
        return None
    return show(value if isinstance(value, str) else pretty(value))


def _step(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": step.get("type") or "span",
        "name": step.get("name") or "",
        "is_error": bool(step.get("is_error")),
        "error": step.get("error"),
        "input": _shown(step.get("input")),
        "output": _shown(step.get("output")),
    }


def item_context(view: dict[str, Any]) -> dict[str, Any]:
    """What ``_review_item.html`` draws for one item view of the review service."""
    content = view.get("content") or {}
    feedback = [
        {
            "name": row.get("name"),
            "label": row.get("label"),
            "value": row.get("value"),
            "rationale": row.get("rationale"),
            "author": row.get("author"),
        }
        for row in content.get("feedback") or []
    ]
    mine = {
        int(label["rubric_id"]): {
            "label": label.get("label"),
            "value": label.get("value"),
            "rationale": label.get("rationale"),
            "choices": (label.get("metadata") or {}).get("choices"),
            "text": (label.get("metadata") or {}).get("text"),
        }
        for label in view.get("my_labels") or []
    }
    return {
        "item": view,
        "gone": not content,
        "input_shown": _shown(content.get("input")),
        "output_shown": _shown(content.get("output")),
        "expected_shown": _shown(content.get("expected")),
        "expected_raw": content.get("expected"),
        "steps": [_step(step) for step in content.get("steps") or []],
        "turns": content.get("turns") or [],
        "feedback": feedback,
        "mine": mine,
        "mine_json": json.dumps(
            {str(k): v for k, v in mine.items()}, ensure_ascii=False, default=str
        ),
        "scores": content.get("scores"),
        "source": content,
    }


def _item_fragment(request: Request, project: str, view: dict[str, Any] | None) -> Response:
    if view is None:
        response = render(request, "_review_done.html", project=project, segment=segment)
        response.headers["X-Assay-Item"] = ""
        return response
    response = render(
        request, "_review_item.html", project=project, segment=segment, **item_context(view)
    )
    response.headers["X-Assay-Item"] = str(view["item_id"])
    return response


# --- the room: queues and rubrics -------------------------------------------------------------


async def _room(
    request: Request,
    who: Principal,
    project: str,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    rt = runtime_of(request)

    def load() -> dict[str, Any]:
        queues = review.list_queues(rt, who, project)
        found = rubrics.list_rubrics(rt, who, project)
        progress = {int(q["id"]): review.progress(rt, who, int(q["id"])) for q in queues}
        return {"queues": queues, "rubrics": found, "progress": progress}

    context = await run_in_threadpool(load)
    notice = None
    added = request.query_params.get("added")
    if added and added.isdigit() and not error:
        already = request.query_params.get("already", "0")
        notice = f"Added {added} item(s) to the queue" + (
            f" ({already} were there already)." if already.isdigit() and already != "0" else "."
        )
    return render(
        request,
        "review.html",
        status=status,
        project=project,
        room="review",
        segment=segment,
        error=error,
        notice=notice,
        form=form or {},
        may_edit=who.can(project, "editor"),
        **context,
    )


@router.get("/p/{project}/review", response_class=HTMLResponse)
async def review_room(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    return await _room(request, who, project)


@router.post("/p/{project}/review/rubrics", dependencies=[Depends(csrf_protect)])
async def create_rubric(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    try:
        raw = rubric_from_form(form)
        await run_in_threadpool(rubrics.create_rubric, runtime_of(request), who, project, raw)
    except (UserError, Conflict) as exc:
        kept = {key: _field(form, key) for key in form if key != "csrf_token"}
        message = exc.message if isinstance(exc, Conflict) else str(exc)
        return await _room(request, who, project, error=message, status=400, form=kept)
    return RedirectResponse(f"/p/{segment(project)}/review#rubrics", status_code=303)


@router.post("/p/{project}/review/queues", dependencies=[Depends(csrf_protect)])
async def create_queue(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    form = await request.form()
    try:
        rubric_ids = [int(v) for v in form.getlist("rubric") if isinstance(v, str) and v.isdigit()]
        per_item = _field(form, "reviews_per_item").strip() or "1"
        if not per_item.isdigit():
            raise UserError("reviews per item must be a whole number")
        raw = {
            "name": _field(form, "name"),
            "rubrics": rubric_ids,
            "reviewers": []
            if _field(form, "who") != "named"
            else _reviewers(_field(form, "reviewers")),
            "reviews_per_item": int(per_item[:3]),
            "description": _field(form, "description")[:10_000] or None,
        }
        if _field(form, "who") == "named" and not raw["reviewers"]:
            raise UserError("name the reviewers, or choose anyone with the annotator role")
        created = await run_in_threadpool(
            review.create_queue, runtime_of(request), who, project, raw
        )
    except (UserError, Conflict) as exc:
        kept = {key: _field(form, key) for key in form if key != "csrf_token"}
        message = exc.message if isinstance(exc, Conflict) else str(exc)
        return await _room(request, who, project, error=message, status=400, form=kept)
    return RedirectResponse(f"/p/{segment(project)}/review#queue-{created['id']}", status_code=303)


# --- adding traces from the lists -------------------------------------------------------------


@router.post("/p/{project}/review/add", dependencies=[Depends(csrf_protect)])
async def add_to_queue(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    """Items into a queue: the ticked traces (``trace_id``), experiment rows
    (``experiment_row``) or records of ``dataset`` (``record_id``); or every trace the traces
    list's filter (``filter``, its query string) matches, all or a random sample of ``sample``."""
    who.require(project, "annotator")
    form = await request.form()
    rt = runtime_of(request)
    raw_queue = _field(form, "queue_id").strip()
    if not raw_queue.isdigit() or not 1 <= int(raw_queue) <= 2**31 - 1:
        return await _room(request, who, project, error="choose a queue", status=400)
    queue_id = int(raw_queue)
    queue = await run_in_threadpool(review.get_queue, rt, who, queue_id)
    _queue_in_project(queue, project)
    trace_ids = [
        v.strip().lower()
        for v in form.getlist("trace_id")
        if isinstance(v, str) and len(v.strip()) == 32
    ]
    try:
        if _field(form, "scope") == "filter":
            pairs = [
                (k, v) for k, v in parse_qsl(_field(form, "filter")[:10_000]) if k in FILTER_KEYS
            ]
            filters, problems = parse_filters(pairs)
            if problems:
                raise UserError("; ".join(str(p) for p in problems))
            raw_sample = _field(form, "sample").strip()
            sample = None
            if _field(form, "how") == "sample":
                if not raw_sample.isdigit() or not 1 <= int(raw_sample[:7]) <= 100_000:
                    raise UserError("a sample is a whole number of traces from 1 to 100,000")
                sample = int(raw_sample)
            result = await run_in_threadpool(
                lambda: review.add_by_filter(rt, who, queue_id, filters, sample=sample)
            )
        else:
            dataset = _field(form, "dataset").strip()[:200]
            wanted = review.ItemsToAdd(
                trace_ids=trace_ids,
                experiment_rows=[
                    int(v)
                    for v in form.getlist("experiment_row")
                    if isinstance(v, str) and v.isdigit() and len(v) < 19
                ],
                dataset_records=[
                    (dataset, v[:64])
                    for v in form.getlist("record_id")
                    if dataset and isinstance(v, str) and v
                ],
            )
            if not len(wanted):
                raise UserError("tick the traces, rows or records to add first")
            result = await run_in_threadpool(review.add_items, rt, who, queue_id, wanted)
    except UserError as exc:
        return await _room(request, who, project, error=str(exc), status=400)
    except NotFound as exc:
        return await _room(request, who, project, error=exc.message, status=400)
    query = urlencode({"added": result["added"], "already": result["already"]})
    return RedirectResponse(
        f"/p/{segment(project)}/review?{query}#queue-{queue_id}", status_code=303
    )


# --- the reviewer view ------------------------------------------------------------------------


@router.get("/p/{project}/review/{queue_id}", response_class=HTMLResponse)
async def reviewer_view(
    request: Request, project: str, queue_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    who.require(project)
    rt = runtime_of(request)
    queue = _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    reviewers = queue["reviewers"]
    me = review.reviewer_name(who)
    may_review = who.can(project, "annotator") and (not reviewers or me in reviewers)
    view = await run_in_threadpool(review.next_item, rt, who, queue_id) if may_review else None
    context = item_context(view) if view is not None else {}
    return render(
        request,
        "reviewer.html",
        project=project,
        room="review",
        segment=segment,
        queue=queue,
        may_review=may_review,
        may_edit=who.can(project, "editor"),
        first=view,
        **context,
    )


@router.get("/p/{project}/review/{queue_id}/next", response_class=HTMLResponse)
async def next_fragment(
    request: Request, project: str, queue_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    """The caller's next item (leased to them) as a fragment; the done note when none is left."""
    who.require(project)
    rt = runtime_of(request)
    _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    view = await run_in_threadpool(review.next_item, rt, who, queue_id)
    return _item_fragment(request, project, view)


@router.get("/p/{project}/review/{queue_id}/items/{item_id}", response_class=HTMLResponse)
async def item_fragment(
    request: Request,
    project: str,
    queue_id: RowId,
    item_id: BigRowId,
    who: Principal = Depends(web_principal),
) -> Response:
    """One item of the queue (going back to one the caller submitted); blind rules apply."""
    who.require(project)
    rt = runtime_of(request)
    _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    view = await run_in_threadpool(review.get_item, rt, who, queue_id, item_id)
    return _item_fragment(request, project, view)


def _labels_from(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("labels"), list):
        raise UserError('send {"labels": [{"rubric_id", "choice" or "value", "rationale"}]}')
    labels = body["labels"]
    if len(labels) > 50 or not all(isinstance(label, dict) for label in labels):
        raise UserError("at most 50 labels, each an object")
    out = []
    for label in labels:
        rubric_id = label.get("rubric_id")
        if isinstance(rubric_id, str) and rubric_id.isdigit() and len(rubric_id) < 12:
            rubric_id = int(rubric_id)  # from a form
        out.append({**label, "rubric_id": rubric_id})
    return out


@router.post(
    "/p/{project}/review/{queue_id}/items/{item_id}/labels",
    dependencies=[Depends(csrf_protect)],
)
async def submit_labels(
    request: Request,
    project: str,
    queue_id: RowId,
    item_id: BigRowId,
    who: Principal = Depends(web_principal),
) -> Response:
    """Submit the caller's labels; the answer is the next item, as a fragment."""
    who.require(project)
    rt = runtime_of(request)
    _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    try:
        labels = _labels_from(await _payload(request))
        result = await run_in_threadpool(
            lambda: review.submit_labels(rt, who, queue_id, item_id, labels)
        )
    except UserError as exc:
        return _error(400, "bad_request", str(exc))
    except Conflict as exc:
        return _error(409, exc.code, exc.message)
    response = _item_fragment(request, project, result["next"])
    response.headers["X-Assay-Labels"] = ",".join(str(i) for i in result["label_ids"])
    return response


@router.post(
    "/p/{project}/review/{queue_id}/items/{item_id}/skip",
    dependencies=[Depends(csrf_protect)],
)
async def skip_item(
    request: Request,
    project: str,
    queue_id: RowId,
    item_id: BigRowId,
    who: Principal = Depends(web_principal),
) -> Response:
    who.require(project)
    rt = runtime_of(request)
    _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    try:
        view = await run_in_threadpool(review.skip_item, rt, who, queue_id, item_id)
    except Conflict as exc:
        return _error(409, exc.code, exc.message)
    return _item_fragment(request, project, view)


@router.post("/p/{project}/review/{queue_id}/undo", dependencies=[Depends(csrf_protect)])
async def undo_last(
    request: Request, project: str, queue_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    """Take back the caller's last submission: that item again, with its labels as a draft."""
    who.require(project)
    rt = runtime_of(request)
    _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    view = await run_in_threadpool(review.undo_last, rt, who, queue_id)
    if view is None:
        return _error(409, "nothing_to_undo", "you have submitted nothing in this queue yet")
    return _item_fragment(request, project, view)


@router.post(
    "/p/{project}/review/{queue_id}/items/{item_id}/correct",
    dependencies=[Depends(csrf_protect)],
)
async def correct_expected(
    request: Request,
    project: str,
    queue_id: RowId,
    item_id: BigRowId,
    who: Principal = Depends(web_principal),
) -> Response:
    """ "Correct and add to dataset": the item's trace (or span) becomes a record of a dataset
    with the corrected expected answer, its lineage to the trace kept."""
    who.require(project)
    rt = runtime_of(request)
    queue = _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    try:
        body = await _payload(request)
        dataset = str(body.get("dataset") or "").strip()[:200]
        expected_text = str(body.get("expected") or "")[:MAX_FIELD_CHARS]
        if not dataset:
            raise UserError("name the dataset to add the item to")
        if not any(rubric["may_correct_expected"] for rubric in queue["rubrics"]):
            raise UserError("this queue's rubrics do not ask for corrected answers")
        view = await run_in_threadpool(review.get_item, rt, who, queue_id, item_id)
        if not view["trace_id"] or view["kind"] not in ("trace", "span"):
            raise UserError("only traces and spans can be added to a dataset from here")
        stripped = expected_text.strip()
        expected: Any = expected_text
        if stripped[:1] in ("{", "["):
            try:
                expected = json.loads(stripped)
            except ValueError:
                expected = expected_text
        version = await run_in_threadpool(
            lambda: datasets.add_span(
                rt,
                who,
                project,
                dataset,
                str(view["trace_id"]),
                view["span_id"],
                expected=expected,
                expected_given=True,
            )
        )
    except UserError as exc:
        return _error(400, "bad_request", str(exc))
    return JSONResponse({"dataset": dataset, "version": version})


# --- adjudication and agreement ---------------------------------------------------------------


@router.get("/p/{project}/review/{queue_id}/adjudicate", response_class=HTMLResponse)
async def adjudicate_page(
    request: Request, project: str, queue_id: RowId, who: Principal = Depends(web_principal)
) -> Response:
    """For editors: the agreement between reviewers (the ceiling a judge is measured against)
    and the items where reviewers disagree, labels and rationales side by side."""
    who.require(project)
    rt = runtime_of(request)
    queue = _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    show_all = request.query_params.get("all") == "1"
    agreement = await run_in_threadpool(review_results.agreement, rt, who, queue_id)
    items, _more = await run_in_threadpool(
        lambda: review_results.adjudication(
            rt, who, queue_id, disagreements_only=not show_all, limit=100
        )
    )
    by_id = {int(rubric["id"]): rubric for rubric in queue["rubrics"]}
    for item in items:
        gold = {int(g["rubric_id"]): g for g in item["gold"]}
        item["rubric_rows"] = [
            {
                "rubric": by_id[rubric_id],
                "labels": item["labels"].get(rubric_id, []),
                "gold": gold.get(rubric_id),
            }
            for rubric_id in queue["rubric_ids"]
            if rubric_id in by_id
        ]
    return render(
        request,
        "adjudicate.html",
        project=project,
        room="review",
        segment=segment,
        queue=queue,
        agreement=agreement["rubrics"],
        items=items,
        show_all=show_all,
        notice="Gold label saved." if request.query_params.get("done") == "gold" else None,
    )


@router.post(
    "/p/{project}/review/{queue_id}/items/{item_id}/gold",
    dependencies=[Depends(csrf_protect)],
)
async def set_gold(
    request: Request,
    project: str,
    queue_id: RowId,
    item_id: BigRowId,
    who: Principal = Depends(web_principal),
) -> Response:
    who.require(project)
    rt = runtime_of(request)
    queue = _queue_in_project(await run_in_threadpool(review.get_queue, rt, who, queue_id), project)
    form = await request.form()
    try:
        labels = _gold_labels(form, queue)
        await run_in_threadpool(review_results.set_gold, rt, who, queue_id, item_id, labels)
    except UserError as exc:
        return render(
            request,
            "error.html",
            status=400,
            title="Gold label not saved",
            message=str(exc),
            project=project,
        )
    back = f"/p/{segment(project)}/review/{queue_id}/adjudicate"
    return RedirectResponse(f"{back}?done=gold#item-{item_id}", status_code=303)


def _gold_labels(form: Any, queue: dict[str, Any]) -> list[dict[str, Any]]:
    """The adjudication form's gold labels (``gold-<rubric>`` and ``why-<rubric>`` fields), or
    a ``labels`` field holding them as JSON."""
    if "labels" in form:
        return _labels_from({"labels": _json(_field(form, "labels"), "the 'labels' field")})
    labels: list[dict[str, Any]] = []
    for rubric in queue["rubrics"]:
        picked = _field(form, f"gold-{rubric['id']}").strip()
        if not picked:
            continue
        label: dict[str, Any] = {
            "rubric_id": int(rubric["id"]),
            "rationale": _field(form, f"why-{rubric['id']}") or None,
        }
        if rubric["kind"] == "numeric":
            label["value"] = _number(picked, "the gold value")
        elif rubric["kind"] == "text":
            label["text"] = picked
        elif rubric.get("multiple"):
            label["choices"] = [c.strip() for c in picked.split(",") if c.strip()]
        else:
            label["choice"] = picked
        labels.append(label)
    if not labels:
        raise UserError("pick the gold label of at least one rubric")
    return labels
