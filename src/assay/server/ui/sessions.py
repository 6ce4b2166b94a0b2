"""Sessions: traces grouped by session id, and one session read as a conversation."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from assay.server.security.web import web_principal
from assay.server.state import runtime_of
from assay.server.ui._render import render
from assay.server.ui.conversation import as_messages, pretty
from assay.server.ui.traces import Timed, segment
from assay.services import traces
from assay.services.principal import Principal
from assay.services.traces import SESSION_TURNS, TURN_CHARS, InvalidQuery, Page

router = APIRouter(include_in_schema=False)


@router.get("/p/{project}/sessions", response_class=HTMLResponse)
async def sessions_page(
    request: Request, project: str, who: Principal = Depends(web_principal)
) -> Response:
    user_id = (request.query_params.get("user_id") or "").strip()[:200] or None
    cursor = request.query_params.get("cursor") or None
    timed = Timed()

    def load() -> Page:
        return traces.list_sessions(
            runtime_of(request), who, project, user_id=user_id, cursor=cursor
        )

    problems: list[str] = []
    try:
        page = await timed.run("db", load)
    except InvalidQuery as bad:
        problems.append(str(bad))
        page = Page([], None)
    started = time.perf_counter()
    response = render(
        request,
        "sessions.html",
        # A value that could not be used is the client's error, named above the list.
        status=400 if problems else 200,
        project=project,
        room="sessions",
        sessions=page.items,
        next_cursor=page.next_cursor,
        cursor=cursor,
        user_id=user_id,
        problems=problems,
        segment=segment,
    )
    return timed.finish(response, started)


def turn_text(value: str | None, role: str) -> str:
    """What one side of a turn said: the last ``role`` message of a conversation, or the text."""
    if not value:
        return ""
    messages = None
    if value.lstrip()[:1] in ("[", "{"):
        try:
            messages = as_messages(json.loads(value))
        except ValueError:
            messages = None
    if messages:
        said = [m for m in messages if m.role == role] or messages[-1:]
        texts = [part.text for part in said[-1].parts if part.text]
        return "\n".join(texts)
    return pretty(value)


@router.get("/p/{project}/sessions/{session_id:path}", response_class=HTMLResponse)
async def session_page(
    request: Request, project: str, session_id: str, who: Principal = Depends(web_principal)
) -> Response:
    timed = Timed()
    turns: list[dict[str, Any]] = await timed.run(
        "db", lambda: traces.session_traces(runtime_of(request), who, project, session_id)
    )
    started = time.perf_counter()
    more = len(turns) > SESSION_TURNS
    turns = turns[:SESSION_TURNS]
    for turn in turns:
        turn["said"] = turn_text(turn["input"], "user")
        turn["answered"] = turn_text(turn["output"], "assistant")
    response = render(
        request,
        "session.html",
        project=project,
        room="sessions",
        session_id=session_id,
        turns=turns,
        more=more,
        turn_chars=TURN_CHARS,
        summary={
            "user_id": next((t["user_id"] for t in turns if t["user_id"]), None),
            "first_ns": turns[0]["start_ns"],
            "last_ns": turns[-1]["start_ns"],
            "tokens": sum(t["total_tokens"] or 0 for t in turns),
            "cost": sum(t["cost"] or 0.0 for t in turns),
            "errors": sum(1 for t in turns if t["error_count"]),
        },
        segment=segment,
    )
    return timed.finish(response, started)
