"""The demo's real agent: a small support agent served in-process the way `assay agent serve`
serves one, registered with the demo server, and run once with the prompt's first version
while ``production`` points at the second (the override reaches `assay.prompt` inside)."""

from __future__ import annotations

import threading
from typing import Any

import assay
from assay.client import Client
from assay.demo.prompts import NAME as PROMPT_NAME
from assay.sdk._serve import AgentServer, register


@assay.traced(type="tool")
def look_up_policy(topic: str) -> str:
    return f"Refunds for {topic} are issued within 14 days of the return."


def support_bot(question: str) -> dict[str, Any]:
    """Answers from its registry prompt and a tool; a stand-in for the model keeps the demo
    offline (it echoes the system prompt it was given)."""
    prompt = assay.prompt(PROMPT_NAME)
    rendered = prompt.render(company="Acme", question=question)
    policy = look_up_policy("damaged items")
    return {"prompt_version": prompt.version, "system": rendered.system, "policy": policy}


def run_demo_agent(base: str, project: str) -> dict[str, Any]:
    """Serve `support_bot` on a loopback port, register it, run it once with version 1 of the
    prompt; the run's answer (output, trace id) and the agent's id."""
    if assay.stats().get("enabled") is not True:
        assay.init(project, url=base)
    endpoint = AgentServer(("127.0.0.1", 0), support_bot, "support-bot")
    url = f"http://127.0.0.1:{endpoint.server_address[1]}"
    client = Client(base, timeout=60)
    try:
        registration = register(client, project, "support-bot", url, "assay.demo.agent:support_bot")
        endpoint.token = registration.token
        threading.Thread(target=endpoint.serve_forever, daemon=True).start()
        overrides = {"prompts": {PROMPT_NAME: {"version": 1}}}
        ran: dict[str, Any] = client.post(
            f"/api/v1/agents/{registration.id}/runs",
            json={"input": "My parcel arrived damaged", "overrides": overrides},
        )
    finally:
        client.close()
    return {"agent_id": registration.id, **ran}
