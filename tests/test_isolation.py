"""Tenant isolation, route by route: every REST and web UI route x every role x own and other
project x ids taken from the other project, on both engines.

``ROUTES`` has one row per route of the app (``METHOD /path``). A row says which role of the
project the route needs and how to call it; the test derives the rest:

- **own**: each role of project A calls it on A's things: below the row's role it is refused
  (403), from it on it succeeds, and a read shows A's contents (A's marker).
- **foreign**: each role of A names B's things: B's project and ids (API 404, web 403: the UI
  answers 403 for any project one may not see), and A's project with B's ids (404). Rows add
  the tricky ones: a score on B's trace, a comparison of an experiment of A with one of B, a
  span of B inside the trace id both projects hold, filters and searches naming B's values.
- **leaks**: no answer to a caller of A, whatever its status, contains any of B's secrets (a
  marker in all of B's contents, B's names and ids) unless the caller sent that string itself.
- **control**: the administrator of every project does the same foreign call and succeeds, so
  a 404 above means "hidden", not "mistyped"; a read shows B's marker.
- **untouched**: a write route is followed by a snapshot of B (through the API, as its
  administrator): refused writes changed nothing of B's, and B's key still works.
- **like nothing**: each foreign call is made again with ids that exist in no project; the
  answers are the same (ids aside), so a caller of A cannot tell what B holds.
- **signed out** and **forged**: without credentials the API answers 401 and the UI sends to
  the sign-in page; a UI form without the session's CSRF token, with another user's, or from
  another origin is refused (403).

The A side's ids are the ones B shares (the trace id and session id both hold, the dataset
name both use): a caller of A sees only A's side of them. A route without a row fails
``test_every_route_has_a_row``; a new route family (rubrics, queues, labels...) is one row per
route, with the ids it needs added to ``tests/isolation_world.py``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import fastapi
import fastapi.routing
import httpx
import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from starlette.routing import Mount

from assay.server.app import create_app
from assay.settings import Settings
from assay.store import users as user_store
from tests.conftest import PG_ADMIN_DSN, LiveServer, _pg_url, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.isolation_world import (
    AGENT_URL,
    CONNECTION,
    PASSWORD,
    ROLES,
    SESSION_COOKIE,
    World,
    logs_body,
    metrics_body,
    monitor_body,
    seed,
)
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

# --- how a row calls its route ----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request. Strings in ``params``, ``query``, ``form``, ``json`` and ``absent`` are
    templates: ``{name}`` is the id of that name on the ``ids`` side, ``{A[name]}`` and
    ``{B[name]}`` name a side (see ``World.sides``)."""

    #: Whose project fills ``{project}`` ("a" or "b"), and whose ids fill the other parameters.
    project: str = "a"
    ids: str = "a"
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The path itself, for a mount (its files have no parameters).
    path: str | None = None
    #: The statuses a foreign call may get; None: API 404, UI 403 naming B's project, else 404.
    status: frozenset[int] | None = None
    #: Whether the administrator of every project succeeds at it (None: when it is all B's).
    control: bool | None = None
    #: More templates the answer must not contain.
    absent: tuple[str, ...] = ()


class Int(str):
    """A template rendered as a whole number: an id inside a JSON body."""

    __slots__ = ()


#: How a row makes its request; the side is whose ids it is for (a fresh name, an id of A's
#: made for a request that uses it up).
Fill = Callable[[World, str], Call]


def call(**fields: Any) -> Fill:
    return lambda _world, _side: Call(**fields)


#: A foreign call: changes to the row's request.
Foreign = Mapping[str, Any]
ALL_B: Foreign = {"project": "b", "ids": "b"}
B_IDS: Foreign = {"ids": "b"}


@dataclass(frozen=True)
class Row:
    #: The role needed in the project: viewer, annotator, editor, admin; or "site-admin"
    #: (administrators of every project), "signed-in" (anyone signed in), "public" (anyone).
    role: str
    request: Fill = call()
    #: None: B's project and ids, and (when the path has other parameters) A's project with
    #: B's ids. Rows without parameters naming a project list theirs explicitly.
    foreign: tuple[Foreign, ...] | None = None
    #: The success statuses (None: the API route's status code; UI: 200 for GET, 303 for POST).
    ok: frozenset[int] | None = None
    too_low: frozenset[int] = frozenset({403})
    #: What a successful read contains, as a name of World.sides (the caller's side's marker).
    shows: str | None = "marker"
    #: True when the request ends its session (each call signs in anew).
    fresh_session: bool = False
    #: What the administrator of every project gets on A's things (None: the success statuses).
    root_gets: frozenset[int] | None = None
    #: Further checks of a row, returning problems.
    extra: Callable[[World], list[str]] | None = None


S = frozenset


def _fresh_trace(world: World, side: str) -> Call:
    """An OTLP export of a new trace (on the B side: naming B's project and the shared trace,
    which an A key must not be able to write into)."""
    if side == "a":
        body = protobuf([span(new_trace_id(), new_span_id(), "iso-ingest")], service="iso-a")
        return Call(content=body, headers=PB)
    shared = bytes.fromhex(world.a["trace_id"])
    body = protobuf(
        [span(shared, new_span_id(), "iso-ingest-b")],
        service=world.b["project"],
        resource={"assay.project": world.b["project"]},
    )
    return Call(content=body, headers=PB, status=S({200}))


def _trace_by_id_extra(world: World) -> list[str]:
    """The administrator of both projects asking for the shared trace id is told to choose."""
    problems = []
    both = world.api_client.get(
        f"/api/v1/traces/{world.a['trace_id']}",
        headers={"Authorization": f"Bearer {world.keys['root']}"},
    )
    if both.status_code != 409 or world.b["project"] not in both.text:
        problems.append(f"root on the shared trace: {both.status_code} {both.text[:200]}")
    chosen = world.root(
        "GET", f"/api/v1/traces/{world.a['trace_id']}", params={"project": world.b["project"]}
    )
    if world.b["marker"] not in chosen.text or world.a["marker"] in chosen.text:
        problems.append("root choosing B's side of the shared trace got the wrong side")
    return problems


def _new_experiment(body: Any) -> Fill:
    """A new experiment of A for each own call (it finishes it or adds rows); B's seeded one
    for a foreign call."""

    def fill(world: World, side: str) -> Call:
        if side == "a":
            return Call(params={"experiment_id": str(world.new_experiment("a"))}, json=body)
        return Call(json=body)

    return fill


COMPARE_FOREIGN: tuple[Foreign, ...] = (
    ALL_B,
    B_IDS,
    {"params": {"a": "{A[a]}", "b": "{B[a]}"}},
    {"params": {"a": "{B[a]}", "b": "{A[a]}"}},
)
API_COMPARE_FOREIGN: tuple[Foreign, ...] = (
    ALL_B,
    {"params": {"baseline_id": "{A[a]}", "candidate_id": "{B[a]}"}},
    {"params": {"baseline_id": "{B[a]}", "candidate_id": "{A[a]}"}},
)
#: Lists: B's, found by searching B's words and filtering by B's score (the controls show
#: these find B's traces for its administrator); then A's, filtered by B's values: nothing of
#: B's, and A's side of the shared trace not listed for a score only B's side has.
LIST_FOREIGN: tuple[Foreign, ...] = (
    ALL_B,
    {**ALL_B, "query": {"q": "{B[marker]}"}},
    {**ALL_B, "query": {"score": "{B[score]}"}},
    {"query": {"q": "{B[marker]}"}, "status": S({200})},
    {"query": {"score": "{B[score]}"}, "status": S({200}), "absent": ("{A[trace_id]}",)},
    {"query": {"session_id": "{B[session_id]}"}, "status": S({200})},
    {"query": {"trace_id": "{B[trace_id]}"}, "status": S({200})},
)

METRIC_FOREIGN: tuple[Foreign, ...] = (
    ALL_B,
    {"query": {"metric": "score_mean", "score": "{B[score]}"}, "status": S({200})},
    {"query": {"metric": "count", "session_id": "{B[session_id]}"}, "status": S({200})},
    {"query": {"metric": "count", "group_by": "tag"}, "ids": "b", "status": S({200})},
)


def _new_record(world: World, side: str) -> Call:
    """A new record of A's for each own call (it deletes it); B's spare one otherwise."""
    record_id = world.new_record("a") if side == "a" else "{spare_record_id}"
    return Call(form={"record_id": record_id, "message": "iso delete"})


def _new_key(world: World, side: str) -> Call:
    return Call(params={"key_id": str(world.new_key("a"))} if side == "a" else {})


def _new_user(form: Mapping[str, str] | None = None) -> Fill:
    return lambda world, _side: Call(params={"user_id": str(world.new_user())}, form=form or {})


#: A numeric rubric (the seeded ones' definition).
RUBRIC: dict[str, Any] = {"kind": "numeric", "min": 0, "max": 1, "instructions": "iso"}
JUDGE: dict[str, Any] = {
    "prompt": "Is this good? {{{{input}}}}",
    "choices": {"good": 1.0, "bad": 0.0},
    "model": "gpt-4o-mini",
}


def _labels(rubric: str) -> dict[str, Any]:
    return {
        "labels": [{"rubric_id": Int(rubric), "value": 1, "rationale": "iso {marker}"}],
        "next": False,
    }


LABELS = _labels("{rubric_id}")


def _skip(world: World, side: str) -> Call:
    """A's skip queue's item, taken by each caller of A first (one skips what one holds)."""
    if side == "a":
        world.lease_everyone(world.a["skip_queue_id"])
    return Call(params={"queue_id": "{skip_queue_id}", "item_id": "{skip_queue_item_id}"})


def _fresh_logs(world: World, side: str) -> Call:
    """An OTLP log export (on the B side: naming B's project, where an A key cannot write)."""
    headers = {"content-type": "application/json"}
    if side == "a":
        return Call(content=logs_body("iso-a", world.fresh("iso log")), headers=headers)
    body = logs_body(world.b["project"], "iso log b", {"assay.project": world.b["project"]})
    return Call(content=body, headers=headers, status=S({200}))


def _fresh_metrics(world: World, side: str) -> Call:
    headers = {"content-type": "application/json"}
    if side == "a":
        return Call(content=metrics_body("iso-a"), headers=headers)
    body = metrics_body(world.b["project"], {"assay.project": world.b["project"]})
    return Call(content=body, headers=headers, status=S({200}))


#: An A key naming B's project in the header (refused), and in the payload (kept in A).
INGEST_FOREIGN: tuple[Foreign, ...] = (
    {
        "headers": {"content-type": "application/json", "X-Assay-Project": "{B[project]}"},
        "status": S({403}),
        "control": True,
    },
    {"ids": "b"},
)
TRACES_FOREIGN: tuple[Foreign, ...] = (
    {"headers": {**PB, "X-Assay-Project": "{B[project]}"}, "status": S({403}), "control": True},
    {"ids": "b"},
)


def _new_label_move(world: World, side: str) -> Call:
    """A label of A's moved just now, for each own call to undo; B's label otherwise."""
    if side != "a":
        return Call()
    label = world.fresh("lab")
    world.root(
        "PUT",
        f"/api/v1/projects/{world.a['project']}/prompts/{world.a['name']}/labels/{label}",
        json={"version": 1},
    )
    return Call(params={"label": label})


def _dataset_runs_finish(world: World) -> list[str]:
    """The control's dataset run on B's agent goes on in the background: it finishes (every
    record unreachable) before the next row snapshots B."""
    deadline = time.monotonic() + 30
    base = f"/api/v1/projects/{world.b['project']}/experiments"
    while any(e["status"] == "running" for e in world.root("GET", base).json()["items"]):
        if time.monotonic() > deadline:
            return ["a dataset run on B's agent did not finish within 30 s"]
        time.sleep(0.05)
    return []


#: A playground run of the prompt named alike in both projects, through the connection to the
#: fake model both have (tests/isolation_world.py's seed_calibrations).
PLAYGROUND_RUN: dict[str, Any] = {"prompt": "{name}", "version": Int("2"), "connection": "iso-fake"}

#: The review room's UI routes: their ids are the ``ui_*`` ones of tests/isolation_world.py.
UI_QUEUE = {"queue_id": "{ui_queue_id}"}
UI_ITEM = {**UI_QUEUE, "item_id": "{ui_item_id}"}
UI_LABELS = '[{{"rubric_id": {ui_rubric_id}, "choice": "yes", "rationale": "iso"}}]'
REVIEW_UI_ROUTES: dict[str, Row] = {
    "GET /p/{project}/review": Row("viewer"),
    "POST /p/{project}/review/rubrics": Row(
        "editor", lambda w, _s: Call(form={"name": w.fresh("rubric"), "kind": "text"})
    ),
    "POST /p/{project}/review/queues": Row(
        "editor",
        lambda w, _s: Call(form={"name": w.fresh("queue"), "rubric": "{ui_rubric_id}"}),
        # A's project with B's rubric: "not a rubric of this project", on the room's page.
        foreign=(ALL_B, {**B_IDS, "status": S({400})}),
    ),
    "POST /p/{project}/review/add": Row(
        "annotator",
        call(form={"queue_id": "{ui_queue_id}", "scope": "picked", "trace_id": "{trace_id}"}),
        foreign=(
            ALL_B,
            {**B_IDS, "status": S({404})},
            # A's queue, B's trace: not in this project, nothing added.
            {
                "form": {
                    "queue_id": "{A[ui_queue_id]}",
                    "scope": "picked",
                    "trace_id": "{B[trace_id]}",
                },
                "status": S({400}),
            },
        ),
    ),
    "GET /p/{project}/review/{queue_id}": Row("viewer", call(params=UI_QUEUE)),
    "GET /p/{project}/review/{queue_id}/next": Row("annotator", call(params=UI_QUEUE)),
    "GET /p/{project}/review/{queue_id}/items/{item_id}": Row("viewer", call(params=UI_ITEM)),
    "POST /p/{project}/review/{queue_id}/items/{item_id}/labels": Row(
        "annotator", call(params=UI_ITEM, form={"labels": UI_LABELS}), ok=S({200}), shows=None
    ),
    "POST /p/{project}/review/{queue_id}/items/{item_id}/skip": Row(
        # 409 unless the caller holds the item open: a refusal that still checked the caller.
        "annotator",
        call(params=UI_ITEM),
        ok=S({200, 409}),
        shows=None,
    ),
    "POST /p/{project}/review/{queue_id}/undo": Row(
        "annotator", call(params=UI_QUEUE), ok=S({200, 409}), shows=None
    ),
    "POST /p/{project}/review/{queue_id}/items/{item_id}/correct": Row(
        "annotator",
        call(params=UI_ITEM, form={"dataset": "golden", "expected": "iso corrected"}),
        ok=S({200}),
        shows=None,
    ),
    "GET /p/{project}/review/{queue_id}/adjudicate": Row("editor", call(params=UI_QUEUE)),
    "POST /p/{project}/review/{queue_id}/items/{item_id}/gold": Row(
        "editor", call(params=UI_ITEM, form={"labels": UI_LABELS})
    ),
    "POST /settings/personal-keys": Row(
        "signed-in",
        call(form={"project": ""}),
        # A key for a project the caller may not see: refused like any page of it.
        foreign=({"project": "b", "form": {"project": "{B[project]}"}, "status": S({403})},),
    ),
}

ROUTES: dict[str, Row] = {
    # --- REST API ------------------------------------------------------------------------
    "GET /api/v1/projects": Row("viewer", shows="project", foreign=()),
    "PATCH /api/v1/projects/{project}": Row(
        "admin", call(json={"settings": {"note": "iso"}}), shows=None
    ),
    "GET /api/v1/projects/{project}/traces": Row("viewer", foreign=LIST_FOREIGN),
    "GET /api/v1/projects/{project}/spans": Row("viewer", foreign=LIST_FOREIGN),
    # Metrics: B's; A's averaged over B's score or filtered to B's session (nothing of B's).
    "GET /api/v1/projects/{project}/metrics": Row(
        "viewer", call(query={"metric": "count"}), foreign=METRIC_FOREIGN, shows=None
    ),
    "GET /api/v1/projects/{project}/traces/{trace_id}": Row("viewer"),
    "GET /api/v1/traces/{trace_id}": Row(
        "viewer",
        foreign=(ALL_B, {"query": {"project": "{B[project]}"}, "status": S({404})}),
        # Both projects hold the shared trace id: their administrator is asked to choose.
        root_gets=S({409}),
        extra=_trace_by_id_extra,
    ),
    "POST /api/v1/projects/{project}/scores": Row(
        "annotator",
        call(json={"trace_id": "{trace_id}", "name": "iso", "value": 1, "label": "ok"}),
        foreign=(
            ALL_B,
            B_IDS,
            # B's span inside the trace id both hold.
            {
                "json": {
                    "trace_id": "{A[trace_id]}",
                    "span_id": "{B[span_in_shared]}",
                    "name": "iso",
                    "label": "ok",
                },
                "status": S({404}),
            },
            # One good score and one for B's trace: none is stored.
            {
                "json": [
                    {"trace_id": "{A[trace_id]}", "name": "iso", "value": 1},
                    {"trace_id": "{B[trace_id]}", "name": "iso", "value": 1},
                ],
                "status": S({404}),
            },
        ),
    ),
    "GET /api/v1/projects/{project}/datasets": Row("viewer", shows="name"),
    "POST /api/v1/projects/{project}/datasets": Row(
        "editor", lambda w, _s: Call(json={"name": w.fresh("ds")})
    ),
    "GET /api/v1/projects/{project}/datasets/{name}": Row("viewer"),
    "GET /api/v1/projects/{project}/datasets/{name}/records": Row("viewer"),
    "POST /api/v1/projects/{project}/datasets/{name}/changes": Row(
        "editor",
        lambda w, _s: Call(json={"insert": [{"input": w.fresh("input")}]}),
        foreign=(
            ALL_B,
            B_IDS,
            {
                "json": {"update": [{"record_id": "{B[record_id]}", "input": "x"}]},
                "status": S({400, 404}),
            },
            {"json": {"delete": ["{B[record_id]}"]}, "status": S({400, 404})},
        ),
    ),
    "GET /api/v1/projects/{project}/datasets/{name}/versions": Row("viewer"),
    "GET /api/v1/projects/{project}/datasets/{name}/export": Row(
        "viewer", call(query={"format": "jsonl"})
    ),
    "POST /api/v1/projects/{project}/exports": Row(
        "viewer",
        call(json={"format": "jsonl", "label": "a-score", "label_value": "good", "span": "root"}),
        foreign=(
            ALL_B,
            # B's label, and B's trace in the filter, named in A's project: nothing of B's.
            {
                "json": {"format": "jsonl", "label": "{B[score]}", "span": "root"},
                "status": S({200}),
            },
            {
                "json": {
                    "format": "openai-chat",
                    "label": "a-score",
                    "filter": {"trace_id": "{B[trace_id]}"},
                },
                "status": S({200}),
            },
        ),
    ),
    "POST /api/v1/projects/{project}/experiments": Row(
        "editor",
        lambda w, _s: Call(json={"eval_name": "iso", "name": w.fresh("exp"), "dataset": "{name}"}),
        # A's project with B's dataset: there is no such dataset in A.
        foreign=(ALL_B, {**B_IDS, "status": S({400, 404})}),
    ),
    "GET /api/v1/projects/{project}/experiments": Row("viewer"),
    "GET /api/v1/experiments/{experiment_id}": Row("viewer"),
    "PATCH /api/v1/experiments/{experiment_id}": Row(
        "editor", _new_experiment({"status": "complete", "summary": {"note": "iso"}})
    ),
    "POST /api/v1/experiments/{experiment_id}/rows": Row(
        "editor", _new_experiment([{"case_key": "iso", "output": "iso answer"}])
    ),
    "GET /api/v1/experiments/{experiment_id}/rows": Row("viewer"),
    "GET /api/v1/experiments/{baseline_id}/compare/{candidate_id}": Row(
        "viewer", shows=None, foreign=API_COMPARE_FOREIGN
    ),
    "POST /v1/traces": Row(
        "editor",
        _fresh_trace,
        foreign=(
            # An A key naming B's project in the header, and in the spans (they stay in A).
            {
                "headers": {**PB, "X-Assay-Project": "{B[project]}"},
                "status": S({403}),
                "control": True,
            },
            {"ids": "b"},
        ),
    ),
    # --- REST API: logs -------------------------------------------------------------------
    "GET /api/v1/projects/{project}/logs": Row(
        "viewer",
        foreign=(
            ALL_B,
            {**ALL_B, "query": {"q": "{B[marker]}"}},
            {"query": {"q": "{B[marker]}"}, "status": S({200})},
        ),
    ),
    "POST /v1/logs": Row("editor", _fresh_logs, foreign=INGEST_FOREIGN),
    "POST /v1/metrics": Row("editor", _fresh_metrics, foreign=INGEST_FOREIGN),
    "POST /api/public/otel/v1/traces": Row("editor", _fresh_trace, foreign=TRACES_FOREIGN),
    "POST /otel/v1/traces": Row("editor", _fresh_trace, foreign=TRACES_FOREIGN),
    # --- REST API: human review -------------------------------------------------------------
    "POST /api/v1/projects/{project}/rubrics": Row(
        "editor",
        lambda w, _s: Call(json={**RUBRIC, "name": w.fresh("rubric")}),
        foreign=(ALL_B,),
    ),
    "GET /api/v1/projects/{project}/rubrics": Row("viewer", foreign=(ALL_B,)),
    "GET /api/v1/rubrics/{rubric_id}": Row("viewer"),
    "PUT /api/v1/rubrics/{rubric_id}": Row(
        "editor",
        call(json={**RUBRIC, "name": "{rubric_name}"}),
    ),
    "GET /api/v1/rubrics/{rubric_id}/versions": Row("viewer"),
    "GET /api/v1/rubrics/{rubric_id}/labels": Row("viewer"),
    "GET /api/v1/rubrics/{rubric_id}/export": Row("viewer"),
    "POST /api/v1/projects/{project}/queues": Row(
        "editor",
        lambda w, _s: Call(json={"name": w.fresh("queue"), "rubrics": [Int("{rubric_id}")]}),
        foreign=(
            ALL_B,
            # B's rubric in a queue of A's.
            {
                "json": {"name": "iso-queue", "rubrics": [Int("{B[rubric_id]}")]},
                "status": S({400, 404}),
            },
        ),
    ),
    "GET /api/v1/projects/{project}/queues": Row("viewer", foreign=(ALL_B,)),
    "GET /api/v1/queues/{queue_id}": Row("viewer"),
    "PATCH /api/v1/queues/{queue_id}": Row(
        "editor",
        call(json={"description": "queue about {marker}"}),
        foreign=(
            ALL_B,
            {"json": {"rubrics": [Int("{B[rubric_id]}")]}, "status": S({400, 404})},
        ),
    ),
    "GET /api/v1/queues/{queue_id}/progress": Row("viewer", shows=None),
    "POST /api/v1/queues/{queue_id}/items": Row(
        "annotator",
        call(json={"trace_ids": ["{trace_id}"]}),
        foreign=(
            ALL_B,
            # B's things in a queue of A's: nothing is added.
            {"json": {"trace_ids": ["{B[trace_id]}"]}, "status": S({404})},
            {
                "json": {
                    "spans": [{"trace_id": "{A[trace_id]}", "span_id": "{B[span_in_shared]}"}]
                },
                "status": S({404}),
            },
            {"json": {"session_ids": ["{B[session_id]}"]}, "status": S({404})},
            {
                "json": {
                    "dataset_records": [{"dataset": "{B[name]}", "record_id": "{B[record_id]}"}]
                },
                "status": S({404}),
            },
            {"json": {"experiment_rows": [Int("{B[row_id]}")]}, "status": S({404})},
            # A filter naming B's values matches none of A's traces.
            {"json": {"filter": {"score": "{B[score]}"}}, "status": S({201})},
        ),
    ),
    "GET /api/v1/queues/{queue_id}/items": Row("viewer", shows="trace_id"),
    "GET /api/v1/queues/{queue_id}/items/{item_id}": Row(
        "viewer",
        foreign=(ALL_B, {"params": {"item_id": "{B[item_id]}"}, "status": S({404})}),
    ),
    "GET /api/v1/queues/{queue_id}/next": Row(
        # In the queue for skipping: a caller holding the labelled item would not see the
        # others' labels on it (blind review), and later reads show them.
        "annotator",
        call(params={"queue_id": "{skip_queue_id}"}),
        shows=None,
    ),
    "POST /api/v1/queues/{queue_id}/items/{item_id}/labels": Row(
        "annotator",
        call(json=LABELS),
        foreign=(
            ALL_B,
            {"params": {"item_id": "{B[item_id]}"}, "status": S({404})},
            # B's rubric on A's item.
            {"json": _labels("{B[rubric_id]}"), "status": S({400})},
        ),
    ),
    "POST /api/v1/queues/{queue_id}/items/{item_id}/skip": Row(
        "annotator",
        _skip,
        foreign=(
            ALL_B,
            {
                "params": {"queue_id": "{A[skip_queue_id]}", "item_id": "{B[skip_queue_item_id]}"},
                "status": S({404, 409}),
            },
        ),
    ),
    "POST /api/v1/queues/{queue_id}/undo": Row("annotator", shows=None),
    "GET /api/v1/queues/{queue_id}/labels": Row("viewer"),
    "GET /api/v1/queues/{queue_id}/export": Row("viewer", call(query={"format": "csv"})),
    "GET /api/v1/queues/{queue_id}/agreement": Row("viewer"),
    "GET /api/v1/queues/{queue_id}/adjudication": Row("editor"),
    "PUT /api/v1/queues/{queue_id}/items/{item_id}/gold": Row(
        "editor",
        call(json=LABELS),
        foreign=(
            ALL_B,
            {"params": {"item_id": "{B[item_id]}"}, "status": S({404})},
            {"json": _labels("{B[rubric_id]}"), "status": S({400})},
        ),
    ),
    # --- REST API: online scoring -----------------------------------------------------------
    "POST /api/v1/projects/{project}/connections": Row(
        "editor",
        lambda w, _s: Call(json={**CONNECTION, "name": w.fresh("conn"), "api_key": w.fresh("sk")}),
        foreign=(ALL_B,),
    ),
    "GET /api/v1/projects/{project}/connections": Row("viewer", foreign=(ALL_B,)),
    "GET /api/v1/connections/{connection_id}": Row("viewer"),
    "PATCH /api/v1/connections/{connection_id}": Row(
        "editor", call(json={"default_model": "model-{marker}"})
    ),
    "DELETE /api/v1/connections/{connection_id}": Row(
        "editor",
        lambda w, side: Call(
            params={"connection_id": str(w.new_connection("a"))}
            if side == "a"
            else {"connection_id": "{spare_connection_id}"}
        ),
    ),
    "POST /api/v1/projects/{project}/evaluators": Row(
        "editor",
        lambda w, _s: Call(
            json={**JUDGE, "name": w.fresh("judge"), "connection": Int("{connection_id}")}
        ),
        foreign=(
            ALL_B,
            # B's connection for a judge of A's, by id and by name.
            {
                "json": {**JUDGE, "name": "iso-judge", "connection": Int("{B[connection_id]}")},
                "status": S({400, 404}),
            },
            {
                "json": {**JUDGE, "name": "iso-judge", "connection": "{B[connection_name]}"},
                "status": S({400, 404}),
            },
        ),
    ),
    "GET /api/v1/projects/{project}/evaluators": Row("viewer", foreign=(ALL_B,)),
    "POST /api/v1/projects/{project}/evaluators/push": Row(
        "editor",
        lambda w, _s: Call(json={"name": w.fresh("pushed"), "kind": "judge", "definition": JUDGE}),
        foreign=(
            ALL_B,
            {
                "json": {
                    "name": "iso-pushed",
                    "kind": "judge",
                    "definition": JUDGE,
                    "connection": Int("{B[connection_id]}"),
                },
                "status": S({400, 404}),
            },
        ),
    ),
    "POST /api/v1/projects/{project}/evaluators/try": Row(
        "editor",
        call(json={"trace_id": "{trace_id}", "kind": "builtin", "scorer": "no_errors"}),
        shows=None,
        foreign=(
            ALL_B,
            # B's trace, B's span in the shared trace, B's evaluator and connection, from A.
            {**B_IDS, "status": S({404})},
            {
                "json": {
                    "trace_id": "{A[trace_id]}",
                    "span_id": "{B[span_in_shared]}",
                    "kind": "builtin",
                    "scorer": "no_errors",
                },
                "status": S({404}),
            },
            {
                "json": {"trace_id": "{A[trace_id]}", "evaluator_id": Int("{B[evaluator_id]}")},
                "status": S({404}),
            },
            {
                "json": {
                    "trace_id": "{A[trace_id]}",
                    "prompt": "x",
                    "connection": Int("{B[connection_id]}"),
                },
                "status": S({400, 404}),
            },
        ),
    ),
    "GET /api/v1/evaluators/{evaluator_id}": Row("viewer"),
    "PATCH /api/v1/evaluators/{evaluator_id}": Row(
        "editor",
        call(json={"temperature": 0.0}),
        foreign=(
            ALL_B,
            {"json": {"connection": Int("{B[connection_id]}")}, "status": S({400, 404})},
        ),
    ),
    "POST /api/v1/projects/{project}/rules": Row(
        "editor",
        lambda w, _s: Call(
            json={"name": w.fresh("rule"), "evaluators": [Int("{evaluator_id}")], "enabled": False}
        ),
        foreign=(
            ALL_B,
            {
                "json": {"name": "iso-rule", "evaluators": [Int("{B[evaluator_id]}")]},
                "status": S({400, 404}),
            },
            {
                "json": {"name": "iso-rule", "evaluators": ["{B[evaluator_name]}"]},
                "status": S({400, 404}),
            },
        ),
    ),
    "GET /api/v1/projects/{project}/rules": Row("viewer", foreign=(ALL_B,)),
    "GET /api/v1/rules/{rule_id}": Row("viewer"),
    "PATCH /api/v1/rules/{rule_id}": Row(
        "editor",
        call(json={"sample_rate": 0.5}),
        foreign=(
            ALL_B,
            {"json": {"evaluators": [Int("{B[evaluator_id]}")]}, "status": S({400, 404})},
            # Routing A's rule into B's review queue: not a queue of this project.
            {
                "json": {"actions": [{"when": "undecided", "queue": Int("{B[queue_id]}")}]},
                "status": S({400}),
            },
        ),
    ),
    "POST /api/v1/rules/{rule_id}/backfill": Row(
        "editor", call(json={"preview": True}), shows=None
    ),
    "POST /api/v1/projects/{project}/automations": Row(
        "editor",
        lambda w, _s: Call(
            json={
                "name": w.fresh("automation"),
                "schedule": "daily",
                "target": {"queue": Int("{queue_id}")},
                "enabled": False,
            }
        ),
        foreign=(
            ALL_B,
            {
                "json": {
                    "name": "iso-automation",
                    "schedule": "daily",
                    "target": {"queue": Int("{B[queue_id]}")},
                },
                "status": S({400, 404}),
            },
        ),
    ),
    "GET /api/v1/projects/{project}/automations": Row("viewer", foreign=(ALL_B,)),
    "GET /api/v1/automations/{automation_id}": Row("viewer"),
    "PATCH /api/v1/automations/{automation_id}": Row(
        "editor",
        call(json={"max_per_run": 50}),
        foreign=(
            ALL_B,
            {"json": {"target": {"queue": Int("{B[queue_id]}")}}, "status": S({400, 404})},
        ),
    ),
    "DELETE /api/v1/automations/{automation_id}": Row(
        "editor",
        lambda w, side: Call(
            params={"automation_id": str(w.new_automation("a"))}
            if side == "a"
            else {"automation_id": "{spare_automation_id}"}
        ),
    ),
    "POST /api/v1/automations/{automation_id}/run": Row("editor", shows=None),
    "GET /api/v1/automations/{automation_id}/runs": Row("viewer", shows=None),
    # --- monitors ---------------------------------------------------------------------------
    "POST /api/v1/projects/{project}/monitors": Row(
        "editor", lambda w, _s: Call(json=monitor_body(w.fresh("monitor")))
    ),
    "GET /api/v1/projects/{project}/monitors": Row("viewer", foreign=(ALL_B,)),
    "GET /api/v1/monitors/{monitor_id}": Row("viewer"),
    "PATCH /api/v1/monitors/{monitor_id}": Row("editor", call(json={"threshold": 0.25})),
    "DELETE /api/v1/monitors/{monitor_id}": Row(
        "editor",
        lambda w, side: Call(
            params={"monitor_id": str(w.new_monitor("a"))}
            if side == "a"
            else {"monitor_id": "{spare_monitor_id}"}
        ),
    ),
    "POST /api/v1/monitors/{monitor_id}/evaluate": Row("editor"),
    "GET /healthz": Row("public", shows=None),
    "GET /openapi.json": Row("public", shows=None),
    "MOUNT /static": Row("public", call(path="/static/assay.css"), shows=None),
    # --- web UI: pages ----------------------------------------------------------------------
    "GET /": Row("signed-in", shows="project"),
    "GET /login": Row("public", ok=S({200, 303}), shows=None),
    "GET /settings": Row("signed-in", shows=None),
    "GET /p/{project}/traces": Row(
        "viewer",
        # The rows fetched while scrolling, too.
        foreign=(*LIST_FOREIGN, {"headers": {"X-Assay-Fragment": "1"}, "status": S({200})}),
    ),
    "GET /p/{project}/traces/{trace_id}": Row(
        "viewer",
        foreign=(
            ALL_B,
            B_IDS,
            # The shared trace with B's span in it open: A's page, without B's span.
            {"query": {"span": "{B[span_in_shared]}"}, "status": S({200})},
        ),
    ),
    "GET /p/{project}/traces/{trace_id}/spans/{span_id}": Row(
        "viewer",
        call(headers={"X-Assay-Fragment": "1"}),
        foreign=(ALL_B, B_IDS, {"params": {"span_id": "{B[span_in_shared]}"}, "status": S({404})}),
    ),
    "GET /p/{project}/sessions": Row("viewer"),
    "GET /p/{project}/dashboard": Row("viewer", shows=None),
    "GET /p/{project}/dashboard/chart.svg": Row(
        "viewer", call(query={"metric": "count"}), foreign=METRIC_FOREIGN, shows=None
    ),
    "GET /p/{project}/quality": Row("viewer", shows=None),
    "GET /p/{project}/sessions/{session_id:path}": Row("viewer"),
    "GET /p/{project}/datasets": Row("viewer", shows="name"),
    "GET /p/{project}/dataset-names": Row("viewer", shows="name"),
    "GET /p/{project}/datasets/{name}": Row("viewer"),
    "GET /p/{project}/datasets/{name}/record": Row(
        "viewer",
        call(query={"id": "{record_id}"}),
        foreign=(ALL_B, B_IDS, {"query": {"id": "{B[record_id]}"}, "status": S({404})}),
    ),
    "GET /p/{project}/datasets/{name}/new": Row("editor", shows="name"),
    "GET /p/{project}/datasets/{name}/export": Row(
        "viewer", call(query={"format": "csv"}), shows="name"
    ),
    "GET /p/{project}/datasets/{name}/export/download": Row(
        "viewer", call(query={"format": "jsonl"})
    ),
    "GET /p/{project}/experiments": Row("viewer", shows="experiment_name"),
    "GET /p/{project}/experiments/compare": Row(
        # Only a redirect to the comparison page, which checks the caller.
        "public",
        call(query={"a": "{a}", "b": "{b}"}),
        ok=S({303}),
        shows=None,
        foreign=(),
    ),
    "GET /p/{project}/experiments/{experiment_id}": Row("viewer"),
    "GET /p/{project}/experiments/{a}/compare/{b}": Row("viewer", foreign=COMPARE_FOREIGN),
    "GET /p/{project}/experiments/{a}/compare/{b}/case": Row(
        "viewer", call(query={"key": "c1"}), foreign=COMPARE_FOREIGN
    ),
    # --- web UI: forms (CSRF-protected) ---------------------------------------------------
    "POST /login": Row(
        "public",
        call(
            form={"name": "a-viewer", "password": PASSWORD, "csrf_token": "t" * 43},
            headers={"Cookie": f"assay_csrf={'t' * 43}"},
        ),
        ok=S({303}),
        fresh_session=True,  # signing in ends the session the caller had
    ),
    "POST /logout": Row("signed-in", fresh_session=True),
    "POST /settings/password": Row(
        "signed-in",
        call(form={"current": PASSWORD, "new": PASSWORD, "confirm": PASSWORD}),
    ),
    "POST /settings/keys": Row(
        "admin",
        lambda w, _s: Call(form={"project": "{project}", "role": "viewer", "name": w.fresh("k")}),
        foreign=(
            {**ALL_B, "status": S({403})},
            # A key for every project is for administrators of every project.
            {"form": {"project": "", "role": "viewer", "name": "iso"}, "status": S({403})},
        ),
    ),
    "POST /settings/keys/{key_id}/revoke": Row(
        # A key one may not manage is one that does not exist.
        "admin",
        _new_key,
        too_low=S({404}),
        foreign=(
            {**ALL_B, "status": S({404}), "control": True},
            # The key of the administrator of every project.
            {"params": {"key_id": "{B[root_key_id]}"}, "status": S({404})},
        ),
    ),
    "POST /settings/users": Row(
        "site-admin",
        lambda w, _s: Call(
            form={
                "name": w.fresh("u"),
                "password": PASSWORD,
                "project": "{project}",
                "role": "viewer",
            }
        ),
        foreign=(),
    ),
    "POST /settings/users/{user_id}/grant": Row(
        "site-admin", _new_user({"project": "{project}", "role": "viewer"}), foreign=()
    ),
    "POST /settings/users/{user_id}/revoke": Row(
        "site-admin", _new_user({"project": "{project}"}), foreign=()
    ),
    "POST /settings/users/{user_id}/disable": Row("site-admin", _new_user(), foreign=()),
    "POST /p/{project}/datasets": Row(
        "editor", lambda w, _s: Call(form={"name": w.fresh("ds"), "description": "iso"})
    ),
    "POST /p/{project}/datasets/{name}/records": Row(
        "editor", lambda w, _s: Call(form={"input": w.fresh("input"), "metadata": "{{}}"})
    ),
    "POST /p/{project}/datasets/{name}/record": Row(
        "editor",
        # The record keeps its side's marker, for the record page's own check.
        call(form={"record_id": "{record_id}", "input": "edited {marker}", "metadata": "{{}}"}),
        foreign=(
            ALL_B,
            B_IDS,
            {
                "form": {"record_id": "{B[record_id]}", "input": "x", "metadata": "{{}}"},
                "status": S({400, 404}),
            },
        ),
    ),
    "POST /p/{project}/datasets/{name}/record/delete": Row(
        "editor",
        _new_record,
        foreign=(ALL_B, B_IDS, {"form": {"record_id": "{B[record_id]}"}, "status": S({404})}),
    ),
    "POST /p/{project}/datasets/add-from-trace": Row(
        "annotator",
        call(form={"dataset": "golden", "trace_id": "{trace_id}", "span_id": "{span_id}"}),
        foreign=(
            ALL_B,
            # B's trace, and B's span inside the shared trace: "not in this project".
            {**B_IDS, "status": S({400, 404})},
            {
                "form": {
                    "dataset": "golden",
                    "trace_id": "{A[trace_id]}",
                    "span_id": "{B[span_in_shared]}",
                },
                "status": S({400, 404}),
            },
        ),
    ),
    # --- the prompt registry (``{name}``: the prompt both projects name alike) -----------------
    "GET /api/v1/projects/{project}/prompts": Row("viewer", shows="name"),
    "POST /api/v1/projects/{project}/prompts": Row(
        "editor",
        lambda w, _s: Call(
            json={"name": w.fresh("pr"), "messages": [{"role": "user", "content": "hi"}]}
        ),
    ),
    "GET /api/v1/projects/{project}/prompts/{name}": Row(
        "viewer",
        call(query={"label": "{label}"}),
        foreign=(ALL_B, B_IDS, {**B_IDS, "query": {"version": "2"}}),
    ),
    "GET /api/v1/projects/{project}/prompts/{name}/versions": Row("viewer"),
    "GET /api/v1/projects/{project}/prompts/{name}/labels": Row("viewer", shows=None),
    "GET /api/v1/projects/{project}/prompts/{name}/diff": Row(
        "viewer", call(query={"from": "1", "to": "2"})
    ),
    "PUT /api/v1/projects/{project}/prompts/{name}/labels/{label}": Row(
        "editor", call(json={"version": 1}), shows=None
    ),
    "POST /api/v1/projects/{project}/prompts/{name}/labels/{label}/undo": Row(
        "editor", _new_label_move, shows=None
    ),
    # --- agent endpoints (``{agent_id}``: an agent at a loopback port nothing listens on) ------
    "POST /api/v1/projects/{project}/agents": Row(
        "editor",
        lambda w, _s: Call(json={"name": w.fresh("agent"), "url": AGENT_URL}),
        foreign=(ALL_B,),
    ),
    "GET /api/v1/projects/{project}/agents": Row("viewer", foreign=(ALL_B,)),
    "DELETE /api/v1/agents/{agent_id}": Row(
        "editor",
        lambda w, side: Call(
            params={"agent_id": str(w.new_agent("a"))}
            if side == "a"
            else {"agent_id": "{spare_agent_id}"}
        ),
    ),
    "POST /api/v1/agents/{agent_id}/heartbeat": Row("editor", call(json={"online": True})),
    "POST /api/v1/agents/{agent_id}/runs": Row("annotator", call(json={"input": "iso"})),
    "POST /api/v1/agents/{agent_id}/dataset-runs": Row(
        "annotator", call(json={"dataset": "golden"}), extra=_dataset_runs_finish
    ),
    "GET /p/{project}/agents": Row("viewer"),
    "POST /p/{project}/agents/{agent_id}/run": Row(
        "annotator", call(form={"input": "iso"}), ok=S({200})
    ),
    # --- web UI: the review room (ids of its own: ui_queue_id, ui_item_id, ui_rubric_id) ---
    **REVIEW_UI_ROUTES,
    # Judge calibration: A's evaluator with B's calibration, rubric or name is "not found".
    "POST /api/v1/evaluators/{evaluator_id}/calibrations": Row(
        "editor",
        call(json={"rubric_id": "{cal_rubric_id}"}),
        foreign=(
            ALL_B,
            {"json": {"rubric_id": "{B[cal_rubric_id]}"}, "status": S({404})},
        ),
    ),
    "GET /api/v1/evaluators/{evaluator_id}/calibrations": Row("viewer"),
    "GET /api/v1/evaluators/{evaluator_id}/calibrations/{calibration_id}": Row(
        "viewer",
        foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
    ),
    "GET /api/v1/evaluators/{evaluator_id}/calibrations/compare": Row(
        "viewer",
        call(query={"baseline": "{calibration_id}", "candidate": "{calibration_id}"}),
        foreign=(
            ALL_B,
            {
                "query": {"baseline": "{A[calibration_id]}", "candidate": "{B[calibration_id]}"},
                "status": S({404}),
            },
        ),
    ),
    "PUT /api/v1/evaluators/{evaluator_id}/calibrations/{calibration_id}/mapping": Row(
        "editor",
        call(json={"mapping": {"good": "pass", "bad": "fail"}}),
        foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
    ),
    "GET /api/v1/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements": Row(
        "viewer",
        shows="project",
        foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
    ),
    "POST /api/v1/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements/dataset": (
        Row(
            "editor",
            lambda w, _s: Call(json={"dataset": w.fresh("judge-fails")}),
            shows=None,
            foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
        )
    ),
    "GET /api/v1/evaluators/{evaluator_id}/agreement": Row("viewer"),
    "GET /api/v1/projects/{project}/judges/{name}/gate": Row(
        "viewer", call(params={"name": "{evaluator_name}"})
    ),
    # --- web UI: online scoring (judges, rules, connections) --------------------------------
    "GET /p/{project}/evaluators": Row("viewer"),
    "GET /p/{project}/evaluators/{evaluator_id}": Row("viewer"),
    "GET /p/{project}/evaluators/{evaluator_id}/agreement.svg": Row("viewer", shows=None),
    "POST /p/{project}/evaluators": Row(
        "editor",
        lambda w, _s: Call(
            form={
                "name": w.fresh("judge"),
                "prompt": "{{{{input}}}}",
                "model": "gpt-4o-mini",
                "choices": "good = 1\nbad = 0",
                "action": "save",
            }
        ),
    ),
    "POST /p/{project}/evaluators/{evaluator_id}": Row(
        "editor",
        call(
            form={
                "prompt": "{{{{input}}}} edited {marker}",
                "choices": "good = 1\nbad = 0",
                "action": "save",
            }
        ),
    ),
    "GET /p/{project}/rules": Row("viewer"),
    "GET /p/{project}/rules/{rule_id}": Row("viewer"),
    "POST /p/{project}/rules": Row(
        "editor",
        lambda w, _s: Call(
            form={"name": w.fresh("rule"), "evaluators": "{evaluator_id}", "sample_percent": "5"}
        ),
        foreign=(ALL_B, {**B_IDS, "status": S({400})}),
    ),
    "POST /p/{project}/rules/{rule_id}/actions": Row(
        # The same action again is kept once: every role's call adds nothing new after the first.
        "editor",
        call(form={"op": "add", "when": "undecided", "queue": "{queue_id}"}),
        foreign=(
            ALL_B,
            B_IDS,
            {
                "form": {"op": "add", "when": "undecided", "queue": "{B[queue_id]}"},
                "status": S({400}),
            },
        ),
    ),
    # --- web UI: judges checked against people ----------------------------------------------
    "POST /p/{project}/evaluators/{evaluator_id}/calibrations": Row(
        "editor",
        call(form={"rubric_id": "{cal_rubric_id}"}),
        foreign=(
            ALL_B,
            B_IDS,
            {"form": {"rubric_id": "{B[cal_rubric_id]}"}, "status": S({404})},
        ),
    ),
    "GET /p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}": Row(
        "viewer",
        foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
    ),
    "POST /p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}/mapping": Row(
        "editor",
        call(form={"map:good": "pass", "map:bad": "fail"}),
        foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
    ),
    "GET /p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements": Row(
        "viewer",
        foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
    ),
    "POST /p/{project}/evaluators/{evaluator_id}/calibrations/{calibration_id}/disagreements"
    "/dataset": (
        Row(
            "editor",
            lambda w, _s: Call(form={"dataset": w.fresh("judge-fails")}),
            foreign=(ALL_B, B_IDS, {"params": {"calibration_id": "{B[calibration_id]}"}}),
        )
    ),
    "POST /p/{project}/judge-settings": Row(
        # The gate stays off: A's rules are made by other rows with an uncalibrated judge.
        "admin",
        call(form={"calibration_min_kappa": "0.6", "calibration_min_items": "30"}),
        foreign=(ALL_B,),
    ),
    "POST /p/{project}/rules/{rule_id}/pause": Row("editor"),
    "POST /p/{project}/rules/{rule_id}/resume": Row("editor"),
    "POST /p/{project}/rules/{rule_id}/backfill": Row(
        # The preview: a count and a cost, on the rule's page.
        "editor",
        call(form={"action": "preview"}),
        ok=S({200}),
    ),
    "GET /p/{project}/automations": Row("viewer"),
    "GET /p/{project}/automations/{automation_id}": Row("viewer"),
    "POST /p/{project}/automations": Row(
        "editor",
        lambda w, _s: Call(
            form={"name": w.fresh("automation"), "schedule": "daily", "target": "queue:{queue_id}"}
        ),
        foreign=(ALL_B, {**B_IDS, "status": S({400})}),
    ),
    "POST /p/{project}/automations/{automation_id}/run": Row("editor"),
    "POST /p/{project}/automations/{automation_id}/pause": Row("editor"),
    "POST /p/{project}/automations/{automation_id}/resume": Row("editor"),
    "GET /p/{project}/monitors": Row("viewer"),
    "GET /p/{project}/monitors/{monitor_id}": Row("viewer"),
    "POST /p/{project}/monitors": Row(
        "editor",
        lambda w, _s: Call(
            form={
                "name": w.fresh("monitor"),
                "metric": "score_mean",
                "score": "a-score",
                "window_minutes": "60",
                "threshold": "0.5",
                "direction": "below",
            }
        ),
    ),
    "POST /p/{project}/monitors/{monitor_id}/evaluate": Row("editor"),
    "POST /p/{project}/monitors/{monitor_id}/pause": Row("editor"),
    "POST /p/{project}/monitors/{monitor_id}/resume": Row("editor"),
    "GET /p/{project}/connections": Row("viewer"),
    "POST /p/{project}/connections": Row(
        "editor",
        lambda w, _s: Call(
            form={"name": w.fresh("conn"), "provider": "openai", "api_key": "sk-iso-new-0000"}
        ),
    ),
    "POST /p/{project}/connections/{connection_id}": Row(
        "editor", call(form={"default_model": "model-{marker}"})
    ),
    # --- web UI: prompts and the playground (``{name}``: the prompt and dataset named alike) --
    "GET /p/{project}/prompts": Row("viewer", shows="name"),
    "GET /p/{project}/prompts/{name}": Row("viewer"),
    "POST /p/{project}/prompts/{name}/labels": Row(
        "editor", call(form={"label": "production", "version": "1"})
    ),
    "POST /p/{project}/prompts/{name}/labels/{label}/undo": Row(
        "editor", _new_label_move, shows=None
    ),
    "GET /p/{project}/playground": Row(
        "annotator", call(query={"prompt": "{name}"}), foreign=(ALL_B, B_IDS)
    ),
    "POST /p/{project}/playground/run": Row(
        "annotator",
        call(json={**PLAYGROUND_RUN, "variables": {}}),
        ok=S({200}),
        shows=None,
        foreign=(ALL_B, B_IDS),
    ),
    "POST /p/{project}/playground/runs": Row(
        "annotator",
        call(json={**PLAYGROUND_RUN, "dataset": "{name}", "scorers": ["exact_match"]}),
        ok=S({201}),
        shows="name",
        foreign=(ALL_B, B_IDS),
    ),
    "GET /p/{project}/playground/runs/{experiment_id}": Row(
        "viewer", call(params={"experiment_id": "{playground_run_id}"}), shows="name"
    ),
    "GET /p/{project}/playground/records": Row(
        "annotator", call(query={"dataset": "{name}"}), foreign=(ALL_B, B_IDS)
    ),
    "POST /p/{project}/playground/save": Row(
        "editor",
        lambda w, _s: Call(
            json={"name": w.fresh("pg"), "draft": {"messages": [{"role": "user", "content": "x"}]}}
        ),
        ok=S({201}),
        shows=None,
        foreign=(ALL_B,),
    ),
    "POST /p/{project}/playground/promote": Row(
        "editor",
        call(json={"name": "{name}", "label": "production", "version": Int("1")}),
        ok=S({200}),
        shows=None,
        foreign=(ALL_B, B_IDS),
    ),
}

# --- the app's routes -------------------------------------------------------------------------

PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


def _routes(app: FastAPI) -> list[Any]:
    """The app's routes, the included routers' flattened (FastAPI >= 0.16x keeps included
    routers as one entry each; ``iter_route_contexts`` walks into them)."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(walk(app.routes)) if walk is not None else list(app.routes)


def route_table(app: FastAPI) -> dict[str, Any]:
    """Every route of the app as ``METHOD /path`` (a mounted app as ``MOUNT /path``)."""
    found: dict[str, Any] = {}
    for route in _routes(app):
        original = getattr(route, "original_route", route)
        methods = getattr(route, "methods", None)
        if isinstance(original, Mount):
            found[f"MOUNT {route.path}"] = route
        elif methods:
            for method in sorted(set(methods) - {"HEAD"}):
                found[f"{method} {route.path}"] = route
        else:
            found[f"{type(original).__name__} {getattr(route, 'path', route)}"] = route
    return found


def _app(tmp_path: Path) -> FastAPI:
    return create_app(Settings(database_url=f"sqlite:///{tmp_path}/routes.db", home=tmp_path))


def rows_missing(app: FastAPI) -> list[str]:
    """What is wrong between the app's routes and ROUTES, as instructions."""
    routes = route_table(app)
    missing = [
        f"add a row for {key} to ROUTES in tests/test_isolation.py"
        for key in sorted(routes)
        if key not in ROUTES
    ]
    stale = [
        f"ROUTES has a row for {key}, which the app no longer has"
        for key in ROUTES
        if key not in routes
    ]
    return missing + stale


def test_every_route_has_a_row(tmp_path: Path) -> None:
    problems = rows_missing(_app(tmp_path))
    assert not problems, "\n".join(problems)


def test_a_new_route_without_a_row_is_named(tmp_path: Path) -> None:
    app = _app(tmp_path)
    rubrics = fastapi.APIRouter(prefix="/api/v1/projects/{project}/rubrics")
    rubrics.get("/{rubric_id}")(lambda project, rubric_id: {})
    app.include_router(rubrics)
    app.post("/p/{project}/queues")(lambda project: {})
    assert rows_missing(app) == [
        "add a row for GET /api/v1/projects/{project}/rubrics/{rubric_id} to ROUTES in "
        "tests/test_isolation.py",
        "add a row for POST /p/{project}/queues to ROUTES in tests/test_isolation.py",
    ]


def test_every_row_is_well_formed() -> None:
    for key, row in ROUTES.items():
        assert row.role in (*ROLES, "site-admin", "signed-in", "public"), key
        if row.foreign is None:
            assert row.role not in ROLES or "{" in key, (
                f"{key}: a route without parameters lists its foreign calls"
            )


# --- the seeded server, one per engine --------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"isolation-{request.param}")
    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{home}/assay.db"
    else:
        database = f"assay_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = _pg_url(database)
    judge = FakeLLM().start()
    judge.always(Answer(arguments={"reasoning": "looks good", "choice": "good"}))
    live: LiveServer = start_server(Settings(database_url=url, home=home, egress_allow="127.0.0.1"))
    # Dozens of users are made and sign in here: argon2 at its cheapest settings keeps that
    # from dominating the run (hashes made at any settings verify alike).
    cheap = pytest.MonkeyPatch()
    cheap.setattr(user_store, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))
    try:
        seeded = seed(live, judge_url=judge.openai_url)
        app = live.server.config.app
        assert isinstance(app, FastAPI)
        seeded.routes = route_table(app)
        yield seeded
        seeded.api_client.close()
    finally:
        cheap.undo()
        live.stop()
        judge.stop()
        if database is not None:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# --- making and judging one request -----------------------------------------------------------


def _render(template: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(template, Int):
        return int(template.format(**context))
    if isinstance(template, str):
        return template.format(**context)
    if isinstance(template, list):
        return [_render(item, context) for item in template]
    if isinstance(template, dict):
        return {key: _render(value, context) for key, value in template.items()}
    return template


@dataclass
class Prepared:
    method: str
    url: str
    query: dict[str, str]
    json: Any
    form: dict[str, str] | None
    content: bytes | None
    headers: dict[str, str]
    absent: list[str]

    def text(self) -> str:
        """Everything the caller sent: it may come back (an error names the id asked for)."""
        sent = [
            unquote(self.url),
            json.dumps(self.query),
            json.dumps(self.json),
            json.dumps(self.form),
            json.dumps(self.headers),
        ]
        return " ".join(sent).lower()


def prepare(world: World, key: str, c: Call, *, nowhere: bool = False) -> Prepared:
    """The request of ``c``; with ``nowhere``, B's ids are replaced by ids that exist in no
    project (to compare the answers: B's things must look like nothing at all)."""
    method, template = key.split(" ", 1)
    if method == "MOUNT":
        method = "GET"
    sides = {"a": world.a, "b": world.sides["nowhere"] if nowhere else world.b}
    context = {**sides[c.ids], "A": sides["a"], "B": sides["b"]}
    context["project"] = sides[c.project]["project"]
    values = {**context, **_render(dict(c.params), context)}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(
                f"{key}: no id for {{{name}}}: give both sides one in seed() of "
                "tests/isolation_world.py",
                pytrace=False,
            )
        return quote(str(values[name]), safe="")

    url = c.path or PARAMETER.sub(fill, template)
    return Prepared(
        method=method,
        url=url,
        query=_render(dict(c.query), context),
        json=_render(c.json, context),
        form=_render(dict(c.form), context) if c.form is not None else None,
        content=c.content,
        headers=_render(dict(c.headers), context),
        absent=_render(list(c.absent), context),
    )


def is_api(key: str) -> bool:
    path = key.split(" ", 1)[1]
    return path.startswith(("/api/", "/v1/", "/otel/", "/healthz", "/openapi.json"))


def send(world: World, who: str, key: str, p: Prepared, *, csrf: str = "own") -> httpx.Response:
    """``who``: a role of A, "root", "mixed" or "anonymous". ``csrf``: "own", "none",
    "other" (another user's token), "origin" (the right token, from another site)."""
    headers = dict(p.headers)
    form = dict(p.form) if p.form is not None else None
    if who != "anonymous":
        if is_api(key):
            headers["Authorization"] = f"Bearer {world.keys[who]}"
        else:
            user = world.new_session(who) if ROUTES[key].fresh_session else world.users[who]
            cookie = f"{SESSION_COOKIE}={user.token}"
            headers["Cookie"] = "; ".join(filter(None, [headers.get("Cookie"), cookie]))
            if p.method != "GET" and key != "POST /login":
                token = {"own": user.csrf, "none": "", "origin": user.csrf}.get(csrf)
                if token is None:
                    other = "root" if who != "root" else "viewer"
                    token = world.users[other].csrf
                if p.json is not None:  # a page script's JSON call sends it as a header
                    headers["X-CSRF-Token"] = token
                else:
                    form = {**(form or {}), "csrf_token": token}
                if csrf == "origin":
                    headers["Origin"] = "https://evil.example"
    if p.method != "GET" and not is_api(key) and form is None and p.json is None:
        form = {}
    # Only the cookies given here: what an earlier answer set (a sign-in's session, a CSRF
    # cookie) must not make a later caller someone else.
    world.api_client.cookies.clear()
    return world.api_client.request(
        p.method,
        p.url,
        params=p.query or None,
        json=p.json,
        data=form,
        content=p.content,
        headers=headers,
    )


def enough(who: str, role: str) -> bool:
    """Whether ``who`` (a role of A, "root", "anonymous") has ``role`` in A."""
    if role == "public" or who == "root":
        return True
    if who == "anonymous":
        return False
    if role == "signed-in":
        return True
    if role == "site-admin":
        return False
    return ROLES.index(who) >= ROLES.index(role)


def ok_statuses(world: World, key: str, row: Row) -> frozenset[int]:
    if row.ok is not None:
        return row.ok
    if is_api(key):
        route = world.routes[key]
        return S({getattr(route, "status_code", None) or 200})
    return S({200}) if key.startswith(("GET ", "MOUNT ")) else S({303})


def foreign_calls(key: str, row: Row) -> tuple[Foreign, ...]:
    if row.foreign is not None:
        return row.foreign
    names = PARAMETER.findall(key)
    if not names:
        return ()
    return (ALL_B, B_IDS) if "project" in names and len(names) > 1 else (ALL_B,)


def foreign_statuses(key: str, c: Call) -> frozenset[int]:
    if c.status is not None:
        return c.status
    if is_api(key):
        return S({404})
    return S({403}) if c.project == "b" else S({404})


def describe(change: Foreign) -> str:
    return json.dumps({k: v for k, v in change.items() if k not in ("status", "control")})


def is_control(c: Call) -> bool:
    if c.control is not None:
        return c.control
    return c.status is None and c.project == "b" and c.ids == "b"


def gist(body: str, around: str | None = None) -> str:
    """A page's text without markup, for a failure message: near ``around`` if given."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S | re.I)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
    if around is not None and around.lower() in text.lower():
        at = text.lower().index(around.lower())
        return "..." + text[max(0, at - 120) : at + 120] + "..."
    return text[:240]


class Judge:
    """Makes the calls of one route's row and collects what is wrong with the answers."""

    def __init__(self, world: World, key: str) -> None:
        self.world, self.key, self.row = world, key, ROUTES[key]
        self.problems: list[str] = []
        self.checks = 0
        self.writes = not key.startswith(("GET ", "MOUNT "))
        self.ok = ok_statuses(world, key, self.row)

    def make(self, change: Foreign) -> Call:
        return replace(self.row.request(self.world, change.get("ids", "a")), **change)

    def shows(self, side: str) -> str | None:
        if self.writes or not self.row.shows:
            return None
        return self.world.sides[side].get(self.row.shows)

    def check(
        self,
        who: str,
        what: str,
        c: Call,
        statuses: frozenset[int],
        *,
        csrf: str = "own",
        shows: str | None = None,
        secrets: list[str] | None = None,
    ) -> httpx.Response:
        """Make the call as ``who`` and judge the answer: its status, B's ``secrets`` (all
        of them unless given; none for root), and what it ``shows``."""
        p = prepare(self.world, self.key, c)
        response = send(self.world, who, self.key, p, csrf=csrf)
        self.checks += 1
        body = response.text + " " + response.headers.get("location", "")
        url = p.url + (f"?{httpx.QueryParams(p.query)}" if p.query else "")
        where = f"{self.key} as {who}, {what} ({p.method} {url[:200]})"
        if response.status_code not in statuses:
            self.problems.append(
                f"{where}: {response.status_code}, expected {sorted(statuses)}: {gist(body)}"
            )
        if who != "root":
            sent = p.text()
            leaked = [
                secret
                for secret in [*(self.world.b_secrets if secrets is None else secrets), *p.absent]
                if secret.lower() not in sent and secret.lower() in body.lower()
            ]
            if leaked:
                self.problems.append(
                    f"{where}: the answer contains {leaked}: {gist(body, leaked[0])}"
                )
        shown = [secret for secret in self.world.never if secret in body]
        if shown:
            self.problems.append(f"{where}: the answer contains a connection's API key")
        if shows and response.status_code < 300 and shows not in body:
            self.problems.append(f"{where}: the answer does not show {shows!r}: {gist(body)}")
        return response

    def like_nothing(self, who: str, what: str, c: Call, response: httpx.Response) -> None:
        """The same call naming things that exist nowhere gets the same answer: a caller of
        A cannot tell B's ids from made-up ones (no oracle for what B holds)."""
        p = prepare(self.world, self.key, c, nowhere=True)
        other = send(self.world, who, self.key, p)
        self.checks += 1
        body = other.text
        nowhere, b = self.world.sides["nowhere"], self.world.b
        for name in sorted(nowhere, key=lambda n: -len(nowhere[n])):
            if nowhere[name].isdigit():
                body = re.sub(rf"\b{nowhere[name]}\b", b[name], body)
            else:
                body = body.replace(nowhere[name], b[name])
        if other.status_code != response.status_code or body != response.text:
            at = next(
                (i for i, (x, y) in enumerate(zip(body, response.text, strict=False)) if x != y),
                min(len(body), len(response.text)),
            )
            self.problems.append(
                f"{self.key} as {who}, {what}: B's ids get {response.status_code} "
                f"{response.text[max(0, at - 80) : at + 80]!r}; ids of nothing get "
                f"{other.status_code} {body[max(0, at - 80) : at + 80]!r}"
            )

    def own_and_foreign(self) -> None:
        """Each role of A on A's things, then on B's; the administrator of all on A's."""
        row = self.row
        for who in ROLES:
            allowed = enough(who, row.role)
            if allowed:
                self.check(who, "own", self.make({}), self.ok, shows=self.shows("a"))
            else:
                self.check(who, "role too low", self.make({}), row.too_low)
            for change in foreign_calls(self.key, row):
                c = self.make(change)
                statuses = foreign_statuses(self.key, c) | (S() if allowed else row.too_low)
                what = f"foreign {describe(change)}"
                self.like_nothing(who, what, c, self.check(who, what, c, statuses))
        self.check("root", "own", self.make({}), row.root_gets or self.ok, shows=self.shows("a"))
        if not is_api(self.key):
            self.two_teams()

    def two_teams(self) -> None:
        """A user who views A and administers B: on A's pages a viewer, whatever their role in
        B, and B's ids in A's URLs are still not A's. They may know B's name, and A's side of
        the shared trace says B holds it too; nothing else of B's is on A's pages."""
        row, may_know = self.row, [self.world.b["project"]]
        secrets = [s for s in self.world.b_secrets if s not in may_know]
        if row.role not in ROLES:
            secrets = []  # not a page of A: the settings page rightly lists B's keys too
        allowed = enough("viewer", row.role)
        what = "own as A's viewer and B's admin"
        if allowed:
            self.check(
                "mixed", what, self.make({}), self.ok, shows=self.shows("a"), secrets=secrets
            )
        else:
            self.check("mixed", what, self.make({}), row.too_low, secrets=secrets)
        for change in foreign_calls(self.key, row):
            c = self.make(change)
            if c.project != "a":
                continue  # B's own things, which they administer
            statuses = foreign_statuses(self.key, c) | (S() if allowed else row.too_low)
            self.check("mixed", f"foreign {describe(change)}", c, statuses, secrets=secrets)

    def signed_out(self) -> None:
        if self.row.role == "public":
            self.check("anonymous", "signed out", self.make({}), self.ok)
        elif is_api(self.key):
            self.check("anonymous", "signed out", self.make({}), S({401}))
        else:
            response = self.check("anonymous", "signed out", self.make({}), S({303}))
            if not response.headers.get("location", "").startswith("/login"):
                self.problems.append(f"{self.key} signed out: not sent to /login")

    def forged(self) -> None:
        """A form without the session's token, with another user's, or from another site."""
        if not self.writes or is_api(self.key) or self.row.role == "public":
            return
        role = self.row.role
        who = "root" if role == "site-admin" else next(r for r in ROLES if enough(r, role))
        for forgery in ("none", "other", "origin"):
            self.check(who, f"forged ({forgery} CSRF token)", self.make({}), S({403}), csrf=forgery)

    def controls(self) -> None:
        """The administrator of every project succeeds at the foreign calls that are all B's:
        their refusal above was isolation, not a wrong id."""
        for change in foreign_calls(self.key, self.row):
            c = self.make(change)
            if is_control(c):
                c = replace(c, status=None)
                self.check("root", f"control {describe(change)}", c, self.ok, shows=self.shows("b"))


@pytest.mark.parametrize("key", sorted(ROUTES))
def test_isolation(world: World, key: str) -> None:
    judge = Judge(world, key)
    before = world.b_state() if judge.writes else None
    judge.own_and_foreign()
    judge.signed_out()
    judge.forged()
    if before is not None:
        after = world.b_state()
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if changed:
            judge.problems.append(f"{key}: refused requests changed B's {changed}")
    judge.controls()
    if judge.row.extra is not None:
        judge.problems.extend(judge.row.extra(world))
    if judge.problems:
        pytest.fail("\n".join(judge.problems), pytrace=False)
