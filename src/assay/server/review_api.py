"""Human review under /api/v1: rubrics, queues and their items, the reviewer's loop (next,
labels, skip, undo), labels out (JSON, CSV, JSONL), agreement and adjudication."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import Field

from assay.server.api import filters as trace_filters
from assay.server.bounds import INT64_MAX, INT64_MIN, ApiModel, BigRowId, RefId, RowId
from assay.server.responses import JSON, ApiError
from assay.server.security.api_keys import api_principal
from assay.server.state import runtime_of
from assay.services import review, review_results, rubrics
from assay.services.filters import parse_filters
from assay.services.principal import Principal

router = APIRouter(prefix="/api/v1", tags=["review"])

Who = Annotated[Principal, Depends(api_principal)]
MAX_LABELS = 50
MAX_IDS = review.MAX_ITEMS_PER_ADD


# --- rubrics ----------------------------------------------------------------------------------


class ChoiceIn(ApiModel):
    name: str = Field(min_length=1, max_length=100)
    value: float | None = None
    description: str = Field(default="", max_length=2_000)


class AnchorIn(ApiModel):
    value: float
    label: str = Field(default="", max_length=200)


class RubricIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["categorical", "pass_fail", "numeric", "text"]
    choices: list[ChoiceIn] | None = Field(default=None, max_length=rubrics.MAX_CHOICES)
    multiple: bool = False
    ordered: bool = False
    min: float | None = None
    max: float | None = None
    step: float | None = None
    anchors: list[AnchorIn] = Field(default_factory=list, max_length=100)
    rationale: Literal["required", "optional", "off"] = "optional"
    instructions: str = Field(default="", max_length=rubrics.MAX_TEXT, description="Markdown")
    description: str = Field(default="", max_length=2_000)
    may_correct_expected: bool = False

    def raw(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


@router.post("/projects/{project}/rubrics", status_code=201, summary="Create a rubric")
def create_rubric(request: Request, project: str, body: RubricIn, who: Who) -> JSON:
    return JSON(
        rubrics.create_rubric(runtime_of(request), who, project, body.raw()), status_code=201
    )


@router.get("/projects/{project}/rubrics", summary="List a project's rubrics")
def list_rubrics(request: Request, project: str, who: Who) -> JSON:
    items = rubrics.list_rubrics(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/rubrics/{rubric_id}", summary="One rubric, at its current version")
def get_rubric(request: Request, rubric_id: RowId, who: Who) -> JSON:
    return JSON(rubrics.get_rubric(runtime_of(request), who, rubric_id))


@router.put("/rubrics/{rubric_id}", summary="Change a rubric: a new version")
def update_rubric(request: Request, rubric_id: RowId, body: RubricIn, who: Who) -> JSON:
    return JSON(rubrics.update_rubric(runtime_of(request), who, rubric_id, body.raw()))


@router.get("/rubrics/{rubric_id}/versions", summary="A rubric's versions, newest first")
def rubric_versions(request: Request, rubric_id: RowId, who: Who) -> JSON:
    items = rubrics.rubric_versions(runtime_of(request), who, rubric_id)
    return JSON({"items": items, "next_cursor": None})


# --- queues -----------------------------------------------------------------------------------


class QueueIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    rubrics: list[int] = Field(min_length=1, max_length=50)
    reviews_per_item: int = Field(default=1, ge=1, le=review.MAX_REVIEWS_PER_ITEM)
    reviewers: list[str] = Field(
        default_factory=list, max_length=1000, description="user names; empty: any annotator"
    )
    lease_seconds: int = Field(default=review.DEFAULT_LEASE_SECONDS, ge=1, le=86_400)
    description: str | None = Field(default=None, max_length=10_000)


class QueueChange(ApiModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    rubrics: list[int] | None = Field(default=None, min_length=1, max_length=50)
    reviews_per_item: int | None = Field(default=None, ge=1, le=review.MAX_REVIEWS_PER_ITEM)
    reviewers: list[str] | None = Field(default=None, max_length=1000)
    lease_seconds: int | None = Field(default=None, ge=1, le=86_400)
    description: str | None = Field(default=None, max_length=10_000)


@router.post("/projects/{project}/queues", status_code=201, summary="Create a review queue")
def create_queue(request: Request, project: str, body: QueueIn, who: Who) -> JSON:
    queue = review.create_queue(runtime_of(request), who, project, body.model_dump())
    return JSON(queue, status_code=201)


@router.get("/projects/{project}/queues", summary="List a project's review queues")
def list_queues(request: Request, project: str, who: Who) -> JSON:
    items = review.list_queues(runtime_of(request), who, project)
    return JSON({"items": items, "next_cursor": None})


@router.get("/queues/{queue_id}", summary="One queue: rubrics, reviewers, progress")
def get_queue(request: Request, queue_id: RowId, who: Who) -> JSON:
    return JSON(review.get_queue(runtime_of(request), who, queue_id))


@router.patch("/queues/{queue_id}", summary="Change a queue")
def update_queue(request: Request, queue_id: RowId, body: QueueChange, who: Who) -> JSON:
    changes = body.model_dump(exclude_none=True)
    if "rubrics" in changes:
        changes["rubric_ids"] = changes.pop("rubrics")
    return JSON(review.update_queue(runtime_of(request), who, queue_id, changes))


@router.get("/queues/{queue_id}/progress", summary="Items done, per reviewer")
def queue_progress(request: Request, queue_id: RowId, who: Who) -> JSON:
    return JSON(review.progress(runtime_of(request), who, queue_id))


# --- items --------------------------------------------------------------------------------------


class SpanRef(ApiModel):
    trace_id: str = Field(pattern="^[0-9a-fA-F]{32}$")
    span_id: str = Field(pattern="^[0-9a-fA-F]{16}$")


class RecordRef(ApiModel):
    dataset: str = Field(min_length=1, max_length=200)
    record_id: str = Field(min_length=1, max_length=64)


class ItemsIn(ApiModel):
    trace_ids: list[Annotated[str, Field(pattern="^[0-9a-fA-F]{32}$")]] = Field(
        default_factory=list, max_length=MAX_IDS
    )
    spans: list[SpanRef] = Field(default_factory=list, max_length=MAX_IDS)
    session_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=MAX_IDS
    )
    experiment_rows: list[Annotated[int, Field(ge=1, le=INT64_MAX)]] = Field(
        default_factory=list, max_length=MAX_IDS
    )
    dataset_records: list[RecordRef] = Field(default_factory=list, max_length=MAX_IDS)
    filter: dict[str, str | float | int | list[str]] | None = Field(
        default=None,
        description="trace-list query parameters (since, range, name, status, tag, score, ...)",
    )
    sample: int | None = Field(default=None, ge=1, le=MAX_IDS, description="random sample size")
    seed: Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)] | None = None


def _filter_pairs(raw: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        pairs += [(key, str(v)) for v in values]
    return pairs


_FILTER_KEYS = set(trace_filters.__annotations__) - {"return"}


@router.post("/queues/{queue_id}/items", status_code=201, summary="Add items to a queue")
def add_items(request: Request, queue_id: RowId, body: ItemsIn, who: Who) -> JSON:
    rt = runtime_of(request)
    if body.filter is not None:
        unknown = sorted(set(body.filter) - _FILTER_KEYS)
        if unknown:
            raise ApiError(400, "bad_request", f"unknown filter field(s): {', '.join(unknown)}")
        found, problems = parse_filters(_filter_pairs(body.filter))
        if problems:
            raise ApiError(400, "bad_request", "; ".join(str(p) for p in problems))
        result = review.add_by_filter(rt, who, queue_id, found, sample=body.sample, seed=body.seed)
        return JSON(result, status_code=201)
    wanted = review.ItemsToAdd(
        trace_ids=body.trace_ids,
        spans=[(s.trace_id, s.span_id) for s in body.spans],
        session_ids=body.session_ids,
        experiment_rows=body.experiment_rows,
        dataset_records=[(r.dataset, r.record_id) for r in body.dataset_records],
    )
    if not len(wanted):
        raise ApiError(
            400,
            "bad_request",
            "give 'trace_ids', 'spans', 'session_ids', 'experiment_rows', 'dataset_records' "
            "or a 'filter'",
        )
    return JSON(review.add_items(rt, who, queue_id, wanted), status_code=201)


@router.get("/queues/{queue_id}/items", summary="The queue's items, in order")
def list_items(
    request: Request,
    queue_id: RowId,
    who: Who,
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = None,
    done: bool | None = None,
) -> JSON:
    if cursor is not None and not (cursor.isdigit() and int(cursor) <= INT64_MAX):
        raise ApiError(400, "bad_request", "cursor is not valid; pass next_cursor unchanged")
    items, next_id = review_results.list_items(
        runtime_of(request),
        who,
        queue_id,
        after_id=int(cursor) if cursor else None,
        limit=limit,
        done=done,
    )
    return JSON({"items": items, "next_cursor": None if next_id is None else str(next_id)})


@router.get("/queues/{queue_id}/items/{item_id}", summary="One item (blind rules apply)")
def get_item(request: Request, queue_id: RowId, item_id: BigRowId, who: Who) -> JSON:
    return JSON(review.get_item(runtime_of(request), who, queue_id, item_id))


# --- the reviewer's loop ------------------------------------------------------------------------


@router.get(
    "/queues/{queue_id}/next",
    summary="The caller's next item, leased to them; 204 when none is left",
    responses={204: {"description": "nothing left for the caller"}},
)
def next_item(request: Request, queue_id: RowId, who: Who) -> Response:
    found = review.next_item(runtime_of(request), who, queue_id)
    return Response(status_code=204) if found is None else JSON(found)


class LabelIn(ApiModel):
    rubric_id: RefId
    value: float | bool | str | None = None
    choice: str | None = Field(default=None, max_length=100)
    choices: list[str] | None = Field(default=None, max_length=rubrics.MAX_CHOICES)
    text: str | None = Field(default=None, max_length=rubrics.MAX_TEXT)
    rationale: str | None = Field(default=None, max_length=rubrics.MAX_TEXT)


class LabelsIn(ApiModel):
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_LABELS)
    next: bool = Field(default=True, description="lease and return the next item")


@router.post(
    "/queues/{queue_id}/items/{item_id}/labels",
    status_code=201,
    summary="Submit the caller's labels for an item; answers with the next item",
)
def submit_labels(
    request: Request, queue_id: RowId, item_id: BigRowId, body: LabelsIn, who: Who
) -> JSON:
    result = review.submit_labels(
        runtime_of(request),
        who,
        queue_id,
        item_id,
        [label.model_dump(exclude_none=True) for label in body.labels],
        next_item=body.next,
    )
    return JSON(result, status_code=201)


@router.post("/queues/{queue_id}/items/{item_id}/skip", summary="Skip an item; the next one")
def skip_item(request: Request, queue_id: RowId, item_id: BigRowId, who: Who) -> JSON:
    return JSON({"next": review.skip_item(runtime_of(request), who, queue_id, item_id)})


@router.post("/queues/{queue_id}/undo", summary="Take back the caller's last submission")
def undo_last(request: Request, queue_id: RowId, who: Who) -> JSON:
    return JSON({"item": review.undo_last(runtime_of(request), who, queue_id)})


# --- labels out, agreement, adjudication --------------------------------------------------------


def _cursor(cursor: str | None) -> int | None:
    if cursor is not None and not (cursor.isdigit() and int(cursor) <= INT64_MAX):
        raise ApiError(400, "bad_request", "cursor is not valid; pass next_cursor unchanged")
    return int(cursor) if cursor else None


def _labels_page(
    request: Request,
    who: Principal,
    queue_id: int | None,
    rubric_id: int | None,
    limit: int,
    cursor: str | None,
) -> JSON:
    items, last = review_results.list_labels(
        runtime_of(request),
        who,
        queue_id=queue_id,
        rubric_id=rubric_id,
        after_id=_cursor(cursor),
        limit=limit,
    )
    return JSON({"items": items, "next_cursor": None if last is None else str(last)})


@router.get("/queues/{queue_id}/labels", summary="The queue's labels (blind rules apply)")
def queue_labels(
    request: Request,
    queue_id: RowId,
    who: Who,
    limit: int = Query(default=1000, ge=1, le=10_000),
    cursor: str | None = None,
) -> JSON:
    return _labels_page(request, who, queue_id, None, limit, cursor)


@router.get("/rubrics/{rubric_id}/labels", summary="A rubric's labels across its queues")
def rubric_labels(
    request: Request,
    rubric_id: RowId,
    who: Who,
    limit: int = Query(default=1000, ge=1, le=10_000),
    cursor: str | None = None,
) -> JSON:
    return _labels_page(request, who, None, rubric_id, limit, cursor)


def _export(
    request: Request, who: Principal, queue_id: int | None, rubric_id: int | None, fmt: str
) -> StreamingResponse:
    lines = review_results.export_labels(
        runtime_of(request), who, queue_id=queue_id, rubric_id=rubric_id, fmt=fmt
    )
    name = f"queue-{queue_id}" if queue_id is not None else f"rubric-{rubric_id}"
    media = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        lines,
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-labels.{fmt}"'},
    )


ExportFormat = Annotated[Literal["csv", "jsonl"], Query(alias="format")]
#: What an export answers, for the OpenAPI document.
EXPORTED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one label per line: CSV with a header row, or JSON lines",
        "content": {"text/csv": {}, "application/x-ndjson": {}},
    }
}


@router.get(
    "/queues/{queue_id}/export",
    summary="Every label of the queue: CSV or JSON lines",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
def export_queue(
    request: Request, queue_id: RowId, who: Who, fmt: ExportFormat = "jsonl"
) -> StreamingResponse:
    return _export(request, who, queue_id, None, fmt)


@router.get(
    "/rubrics/{rubric_id}/export",
    summary="Every label of the rubric: CSV or JSON lines",
    response_class=StreamingResponse,
    responses=EXPORTED,
)
def export_rubric(
    request: Request, rubric_id: RowId, who: Who, fmt: ExportFormat = "jsonl"
) -> StreamingResponse:
    return _export(request, who, None, rubric_id, fmt)


@router.get(
    "/queues/{queue_id}/agreement",
    summary="Agreement between reviewers per rubric: percent, kappa, alpha with 95% intervals",
)
def queue_agreement(request: Request, queue_id: RowId, who: Who) -> JSON:
    return JSON(review_results.agreement(runtime_of(request), who, queue_id))


@router.get("/queues/{queue_id}/adjudication", summary="Items to adjudicate, labels side by side")
def adjudication(
    request: Request,
    queue_id: RowId,
    who: Who,
    all: bool = Query(default=False, description="every item with 2+ labels, not only disputes"),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> JSON:
    items, last = review_results.adjudication(
        runtime_of(request),
        who,
        queue_id,
        disagreements_only=not all,
        after_item=_cursor(cursor),
        limit=limit,
    )
    return JSON({"items": items, "next_cursor": None if last is None else str(last)})


class GoldIn(ApiModel):
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_LABELS)


@router.put("/queues/{queue_id}/items/{item_id}/gold", summary="Set an item's gold labels")
def set_gold(request: Request, queue_id: RowId, item_id: BigRowId, body: GoldIn, who: Who) -> JSON:
    gold = review_results.set_gold(
        runtime_of(request),
        who,
        queue_id,
        item_id,
        [label.model_dump(exclude_none=True) for label in body.labels],
    )
    return JSON({"items": gold})
