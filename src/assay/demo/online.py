"""The demo's online scoring: a judge on the server scoring a sample of new traces as they
arrive, through a connection to an offline stand-in model.

The stand-in is a small OpenAI-compatible server on loopback in the demo's process (the only
address the demo's egress policy allows besides the known providers): it answers the judge's
``give_verdict`` tool call by reading the rendered prompt, like the demo's offline eval judge,
and a request without tools (the playground's) with the demo prompt's reply, streamed if asked.
A real connection (OpenAI, Anthropic, ...) is made the same way on the connections page.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

JUDGE_NAME = "helpful"
RULE_NAME = "helpfulness-sample"
JUDGE_PROMPT = """You grade a customer-support agent's reply.
Customer: {{input}}
Reply: {{output}}
Does the reply help the customer?"""
JUDGE_CHOICES = {"helps": 1.0, "partly": 0.5, "does not help": 0.0}
UNHELPFUL = ("sorry", "cannot", "can't", "let me check")


def _verdict(prompt: str) -> dict[str, str]:
    """Stands in for a model: a reply that apologises or defers does not help; a short one
    partly helps; the rest helps. A real model reasons about meaning instead."""
    reply = prompt.partition("Reply:")[2].partition("Does the reply")[0].strip().lower()
    if not reply or any(word in reply for word in UNHELPFUL):
        return {
            "reasoning": "(offline demo judge) The reply defers or apologises without helping.",
            "choice": "does not help",
        }
    if len(reply) < 40:
        return {
            "reasoning": "(offline demo judge) Short; it may not be enough.",
            "choice": "partly",
        }
    return {
        "reasoning": "(offline demo judge) The reply answers with the policy.",
        "choice": "helps",
    }


def _text_events(body: dict[str, Any], text: str) -> Iterator[str]:
    """A text answer as Chat Completions stream events, word by word, usage last."""
    envelope = {
        "id": "chatcmpl-demo",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": str(body.get("model") or "demo-model"),
    }
    words = text.split(" ")
    for i, word in enumerate(words):
        piece = word if i == len(words) - 1 else word + " "
        delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        yield f"data: {json.dumps({**envelope, 'choices': [delta]})}\n\n"
    done = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield f"data: {json.dumps({**envelope, 'choices': [done]})}\n\n"
    usage = {"prompt_tokens": 40, "completion_tokens": len(words), "total_tokens": 40 + len(words)}
    yield f"data: {json.dumps({**envelope, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _text_answer(body: dict[str, Any]) -> Response:
    """A request without tools (the playground's): the demo prompt's stand-in reply."""
    from assay.demo.prompts import stand_in_reply

    text = stand_in_reply(body.get("messages") or [])
    if body.get("stream"):
        return StreamingResponse(_text_events(body, text), media_type="text/event-stream")
    message = {"role": "assistant", "content": text}
    return JSONResponse(
        {
            "id": "chatcmpl-demo",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or "demo-model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
        }
    )


async def _chat(request: Request) -> Response:
    body: dict[str, Any] = await request.json()
    if not body.get("tools"):
        return _text_answer(body)
    prompt = "\n".join(str(m.get("content") or "") for m in body.get("messages") or [])
    tools = body.get("tools") or [{}]
    tool = str((tools[0].get("function") or {}).get("name") or "give_verdict")
    arguments = json.dumps(_verdict(prompt))
    words = max(1, len(prompt) // 4)
    return JSONResponse(
        {
            "id": "chatcmpl-demo",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or "demo-judge"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_demo",
                                "type": "function",
                                "function": {"name": tool, "arguments": arguments},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": words, "completion_tokens": 30, "total_tokens": words + 30},
        }
    )


class StandInModel:
    """The stand-in model server, on a free loopback port, in a thread."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        app = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StandInModel:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the demo's stand-in judge model did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


#: The rule's settings, made or (over an earlier demo run's rule) put back.
RULE = {
    "sample_rate": 0.5,
    "delay_seconds": 3,
    "daily_budget_usd": 1.0,
    "filter": {"tag": ["support"]},  # the support agent's runs, not the evals' or the judges'
    "enabled": True,
}


@dataclass(frozen=True)
class OnlineRule:
    id: int
    #: Traces the rule had matched before this demo run sent any.
    matched_before: int


def set_up_online_scoring(base_url: str, project: str, model: StandInModel) -> OnlineRule:
    """A connection to the stand-in, a judge and a rule scoring half the new traces, a few
    seconds after their last span. Run before the traces are sent."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        connections = client.get(f"/api/v1/projects/{project}/connections")
        existing = {c["name"]: c for c in connections.json().get("items", [])}
        if "demo-judge" in existing:
            client.patch(
                f"/api/v1/connections/{existing['demo-judge']['id']}",
                json={"base_url": model.base_url, "api_key": "offline-demo"},
            ).raise_for_status()
        else:
            client.post(
                f"/api/v1/projects/{project}/connections",
                json={
                    "name": "demo-judge",
                    "provider": "openai-compatible",
                    "base_url": model.base_url,
                    "api_key": "offline-demo",
                    "default_model": "gpt-4o-mini",
                },
            ).raise_for_status()
        pushed = client.post(
            f"/api/v1/projects/{project}/evaluators/push",
            json={
                "name": JUDGE_NAME,
                "kind": "judge",
                "definition": {
                    "prompt": JUDGE_PROMPT,
                    "choices": JUDGE_CHOICES,
                    "model": "openai-compatible/gpt-4o-mini",
                },
                "connection": "demo-judge",
            },
        )
        pushed.raise_for_status()
        rules = client.get(f"/api/v1/projects/{project}/rules").raise_for_status().json()
        for rule in rules.get("items", []):
            if rule["name"] == RULE_NAME:
                # An earlier demo run's rule, as this demo sets it (older demos filtered on a
                # key the rules did not read, and judged every trace).
                changed = client.patch(f"/api/v1/rules/{rule['id']}", json=RULE)
                changed.raise_for_status()
                return OnlineRule(int(rule["id"]), int(changed.json()["status"]["matched"]))
        made = client.post(
            f"/api/v1/projects/{project}/rules",
            json={"name": RULE_NAME, "evaluators": [pushed.json()["id"]], **RULE},
        )
        made.raise_for_status()
        return OnlineRule(int(made.json()["id"]), 0)


def rule_status(base_url: str, rule_id: int) -> dict[str, Any]:
    answer = httpx.get(f"{base_url}/api/v1/rules/{rule_id}", timeout=30).raise_for_status()
    status: dict[str, Any] = answer.json()["status"]
    return status


def wait_for_rule(
    base_url: str,
    rule_id: int,
    settled: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float,
) -> dict[str, Any]:
    """The rule's status once ``settled`` says so; RuntimeError naming ``what`` was awaited,
    and what the rule is doing, at the timeout. The server's worker does the work: this only
    reads the rule's status, a few times a second."""
    deadline = time.monotonic() + timeout
    while True:
        status = rule_status(base_url, rule_id)
        if settled(status):
            return status
        if status["paused"] or time.monotonic() > deadline:
            errors = "; ".join(str(e.get("last_error")) for e in status.get("last_errors") or [])
            raise RuntimeError(
                f"{what} did not happen"
                + (f" (the rule is {status['paused_reason']})" if status["paused"] else "")
                + f" within {timeout:.0f} s: matched {status['matched']}, "
                f"{status['pending']} pending, {status['running']} running, "
                f"{status['done']} done, {status['failed']} failed"
                + (f"; last errors: {errors}" if errors else "")
            )
        time.sleep(0.1)


def wait_for_scores(
    base_url: str, rule: OnlineRule, support_runs: int, timeout: float = 30.0
) -> dict[str, Any]:
    """The rule's status once every support run this demo sent went quiet (the rule's delay),
    was matched, and what was sampled of it is scored."""

    def settled(status: dict[str, Any]) -> bool:
        matched = int(status["matched"]) >= rule.matched_before + support_runs
        return matched and not status["pending"] and not status["running"]

    return wait_for_rule(
        base_url, rule.id, settled, f"judging the {support_runs} support runs sent", timeout
    )
