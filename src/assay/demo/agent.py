"""The demo's real agent: a small support agent served in-process the way `assay agent serve`
serves one, registered with the demo server, and run once with the prompt's first version
while ``production`` points at the second (the override reaches `assay.prompt` inside)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

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


@dataclass
class DemoAgent:
    """The served agent (it keeps serving while the demo server does) and its first run."""

    base: str
    project: str
    agent_id: int
    run: dict[str, Any]
    provider: TracerProvider = field(repr=False)

    def trace_runs(self) -> None:
        """Trace the agent's runs again (runs started from the agents page while the demo
        serves); the demo's own steps are over by then."""
        assay.init(self.project, url=self.base, tracer_provider=self.provider)


def run_demo_agent(base: str, project: str) -> DemoAgent:
    """Serve `support_bot` on a loopback port, register it, run it once with version 1 of the
    prompt.

    The SDK gets a tracer provider of its own and is shut down after the run: the demo's server
    runs in this process, and with a global provider FastAPI would trace the server's own
    requests (its OTLP ingest too: every export would make spans to export), and an SDK left
    on would trace the server's judge calls, all into the demo project."""
    provider = TracerProvider()
    assay.init(project, url=base, tracer_provider=provider)
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
        # The run flushed its spans before answering: nothing is waiting to be sent.
        assay.shutdown()
    if ran.get("error"):
        raise RuntimeError(f"the agent's run failed: {ran['error']}")
    return DemoAgent(base, project, int(registration.id), ran, provider)
