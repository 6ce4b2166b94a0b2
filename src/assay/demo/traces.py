"""Generate agent traces a newcomer can explore: a support agent with retrieval, LLM and tool
calls over multi-turn sessions, a supervisor that hands work to a sub-agent in another service
(joined by W3C trace context), and some failures. Everything goes through the real
OpenTelemetry SDK and OTLP/HTTP exporter, exactly as an instrumented application would send it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode

PROJECT = "demo"

QUESTIONS = [
    ("Where is my order #{order}? It was supposed to arrive on Monday.", "order_status"),
    ("Can I return the headphones I bought last week?", "returns"),
    ("My invoice shows a charge twice for order #{order}.", "billing"),
    ("Do you ship to Norway, and how long does it take?", "shipping"),
    ("The blender I received is cracked. What can I do?", "damaged"),
    ("How do I change the delivery address for order #{order}?", "order_status"),
]
POLICIES = {
    "returns": "Items can be returned within 30 days of delivery in original packaging.",
    "billing": "Duplicate charges are refunded automatically within 5 business days.",
    "shipping": "We ship to the EU and Norway; delivery takes 3-7 business days.",
    "damaged": "Damaged items are replaced free of charge; send a photo within 14 days.",
    "order_status": "Orders ship within 2 business days; tracking is emailed on dispatch.",
}
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-5")]


@dataclass
class Clock:
    """Simulated time, so a trace's spans have realistic starts and durations."""

    now_ns: int

    def advance(self, ms: float) -> int:
        self.now_ns += int(ms * 1_000_000)
        return self.now_ns


def _provider(endpoint: str, service: str, headers: dict[str, str]) -> TracerProvider:
    resource = Resource.create(
        {"service.name": service, "assay.project": PROJECT, "deployment.environment": "demo"}
    )
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", headers=headers)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256))
    return provider


@contextmanager
def _span(
    tracer: trace.Tracer, name: str, clock: Clock, ms: float, **attrs: object
) -> Iterator[Span]:
    start = clock.now_ns
    span = tracer.start_span(name, start_time=start, attributes=attrs)  # type: ignore[arg-type]
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    finally:
        otel_context.detach(token)
        clock.advance(ms)
        span.end(end_time=max(clock.now_ns, start + 1))


def _messages(system: str, user: str) -> str:
    return json.dumps(
        [
            {"role": "system", "parts": [{"type": "text", "content": system}]},
            {"role": "user", "parts": [{"type": "text", "content": user}]},
        ]
    )


def _llm(
    tracer: trace.Tracer,
    clock: Clock,
    rng: random.Random,
    user: str,
    answer: str,
    tool_call: dict[str, object] | None = None,
) -> None:
    provider, model = rng.choice(MODELS)
    input_tokens = rng.randint(400, 2400)
    output_parts: list[dict[str, object]] = [{"type": "text", "content": answer}]
    if tool_call:
        output_parts = [{"type": "tool_call", **tool_call}]
    with _span(
        tracer,
        f"chat {model}",
        clock,
        rng.uniform(400, 2500),
        **{
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": rng.randint(40, 400),
            "gen_ai.usage.cache_read.input_tokens": rng.choice([0, 0, input_tokens // 2]),
            "gen_ai.input.messages": _messages("You are a helpful support agent.", user),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": output_parts, "finish_reason": "stop"}]
            ),
        },
    ):
        pass


def support_run(
    tracer: trace.Tracer, clock: Clock, rng: random.Random, session: str, user: str
) -> None:
    template, topic = rng.choice(QUESTIONS)
    question = template.format(order=rng.randint(10000, 99999))
    fails = rng.random() < 0.15
    answer = f"{POLICIES[topic]} I have noted this on your account."
    with _span(
        tracer,
        "support-agent",
        clock,
        rng.uniform(50, 200),
        **{
            "openinference.span.kind": "AGENT",
            "input.value": question,
            "session.id": session,
            "user.id": user,
            "tag.tags": ["support", topic],
            "metadata": json.dumps({"channel": rng.choice(["web", "email"]), "topic": topic}),
        },
    ) as root:
        clock.advance(5)
        with _span(
            tracer,
            "retrieve policies",
            clock,
            rng.uniform(30, 120),
            **{
                "openinference.span.kind": "RETRIEVER",
                "input.value": question,
                "retrieval.documents.0.document.content": POLICIES[topic],
                "retrieval.documents.0.document.score": round(rng.uniform(0.7, 0.95), 3),
                "output.value": json.dumps([POLICIES[topic]]),
            },
        ):
            pass
        _llm(tracer, clock, rng, question, "", {"name": "lookup_order", "arguments": "{}"})
        with _span(
            tracer,
            "lookup_order",
            clock,
            rng.uniform(80, 600),
            **{
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup_order",
                "gen_ai.tool.call.arguments": json.dumps({"customer": user}),
            },
        ) as tool:
            if fails:
                error = TimeoutError("orders service did not answer within 5s")
                tool.record_exception(error)
                tool.set_status(Status(StatusCode.ERROR, str(error)))
            else:
                tool.set_attribute(
                    "gen_ai.tool.call.result",
                    json.dumps({"status": rng.choice(["shipped", "processing", "delivered"])}),
                )
        if fails:
            root.set_status(Status(StatusCode.ERROR, "tool lookup_order failed"))
            root.set_attribute("output.value", "Sorry, I cannot reach the order system right now.")
            return
        _llm(tracer, clock, rng, question, answer)
        root.set_attribute("output.value", answer)


def supervisor_run(
    supervisor: trace.Tracer, researcher: trace.Tracer, clock: Clock, rng: random.Random
) -> None:
    topic = rng.choice(["EU battery regulation", "heat pump subsidies", "EV charging standards"])
    with _span(
        supervisor,
        "supervisor",
        clock,
        rng.uniform(50, 150),
        **{"openinference.span.kind": "AGENT", "input.value": f"Write a brief on {topic}."},
    ) as root:
        _llm(supervisor, clock, rng, f"Plan a brief on {topic}", "1. research 2. summarise")
        # The hand-off crosses a process boundary: only the W3C headers travel.
        headers: dict[str, str] = {}
        with _span(supervisor, "POST /research", clock, 5, **{"http.request.method": "POST"}):
            inject(headers)
            remote = extract(headers)
            token = otel_context.attach(remote)
            try:
                with _span(
                    researcher,
                    "web-researcher",
                    clock,
                    rng.uniform(20, 80),
                    **{"openinference.span.kind": "AGENT", "input.value": topic},
                ) as sub:
                    with _span(
                        researcher,
                        "web_search",
                        clock,
                        rng.uniform(300, 900),
                        **{
                            "openinference.span.kind": "TOOL",
                            "tool.name": "web_search",
                            "input.value": json.dumps({"query": topic}),
                            "output.value": json.dumps([f"{topic}: overview", f"{topic}: news"]),
                        },
                    ):
                        pass
                    _llm(researcher, clock, rng, f"Summarise findings on {topic}", "Findings...")
                    sub.set_attribute("output.value", f"Three key findings on {topic}.")
            finally:
                otel_context.detach(token)
        _llm(supervisor, clock, rng, "Write the brief", f"Brief: {topic} in three points.")
        root.set_attribute("output.value", f"Brief: {topic} in three points.")


def is_supervisor_run(index: int) -> bool:
    """Every sixth run is the supervisor's; the rest are the support agent's."""
    return index % 6 == 5


def support_runs(runs: int) -> int:
    """How many of ``runs`` demo runs are the support agent's (tagged ``support``)."""
    return sum(1 for index in range(runs) if not is_supervisor_run(index))


def send_demo_traces(
    endpoint: str, *, runs: int = 60, api_key: str | None = None, seed: int = 7
) -> int:
    """Send the demo traces to ``endpoint``; returns the number of traces sent."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    support = _provider(endpoint, "support-agent", headers)
    supervisor = _provider(endpoint, "research-supervisor", headers)
    researcher = _provider(endpoint, "web-researcher", headers)
    rng = random.Random(seed)
    clock = Clock(time.time_ns() - 3 * 3600 * 1_000_000_000)
    sessions = [(f"session-{i:03d}", f"user-{rng.randint(1, 20):02d}") for i in range(runs // 3)]
    sent = 0
    for index in range(runs):
        clock.advance(rng.uniform(30_000, 180_000))
        if is_supervisor_run(index):
            supervisor_run(supervisor.get_tracer("demo"), researcher.get_tracer("demo"), clock, rng)
        else:
            session, user = rng.choice(sessions)
            support_run(support.get_tracer("demo"), clock, rng, session, user)
        sent += 1
    for provider in (support, supervisor, researcher):
        provider.force_flush(30_000)
        provider.shutdown()
    return sent
