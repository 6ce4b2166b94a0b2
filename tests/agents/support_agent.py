"""A support agent for the `assay agent serve` tests: it fetches its system prompt through
`assay.prompt`, calls a tool (a traced tool span) and asks a model (the fake OpenAI-compatible
server at $FAKE_LLM_URL) in an LLM span of its own. It needs no provider SDK, so it also runs on
a base install.

Served by: assay agent serve tests/agents/support_agent.py:answer --project support

Each call appends a line to $AGENT_CALLS_FILE (if set), so a test can see whether the function
ran at all.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

import assay

PROMPT = "support-system"


@assay.traced(type="tool")
def lookup_order(order_id: str) -> dict[str, str]:
    return {"order": order_id, "status": "shipped"}


def answer(question: str, params: dict[str, Any]) -> dict[str, Any]:
    calls = os.environ.get("AGENT_CALLS_FILE")
    if calls:
        with open(calls, "a", encoding="utf-8") as file:
            file.write(f"{question}\n")
    system = assay.prompt(PROMPT).render(company="Acme")
    order = lookup_order("A-1")
    messages = [*system.messages, {"role": "user", "content": f"{question} ({order['status']})"}]
    body = {"model": system.model or "gpt-4o-mini", "messages": messages, **system.params}
    body.update(params)
    with assay.span("chat", type="llm") as call:
        call.log(input=messages, model=body["model"])
        reply = httpx.post(f"{os.environ['FAKE_LLM_URL']}/chat/completions", json=body).json()
        text = reply["choices"][0]["message"]["content"]
        call.log(output=text)
    return {"answer": text, "prompt_version": system.version}
