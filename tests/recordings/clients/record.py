"""Record what other tools' real clients export over OTLP, for the vocabulary tests.

Each scenario below runs a real third-party client (OpenLLMetry's traceloop-sdk, Langfuse,
pydantic-ai with Logfire, OpenInference's instrumentors, LangGraph) in a process of its own,
against the local fake model server (tests/fake_llm.py), exporting OTLP/HTTP to a small
capturing endpoint started here. The trace export requests it receives are written, byte for
byte (base64 protobuf), to ``<scenario>.json`` beside this file with the client versions, so the
test suite replays real payloads without installing any of these clients.

The clients are not Assay's dependencies: install them in a venv of their own, e.g.::

    python -m venv /work/venvs/clients
    /work/venvs/clients/bin/pip install traceloop-sdk langfuse "pydantic-ai-slim[openai]" \\
        logfire openinference-instrumentation-anthropic openinference-instrumentation-openai \\
        openinference-instrumentation-langchain langgraph langchain-openai anthropic openai \\
        opentelemetry-exporter-otlp-proto-http uvicorn starlette httpx

and run from the repository root (``... record NAME`` records one scenario)::

    /work/venvs/clients/bin/python -m tests.recordings.clients.record
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import importlib.metadata
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fake_llm import Answer, FakeLLM

if TYPE_CHECKING:
    from anthropic.types import MessageParam, ToolParam
    from openai.types.chat import ChatCompletionMessageParam

HERE = Path(__file__).parent
QUESTION = "What is the capital of France?"
SESSION = "session-42"
USER = "user-7"
WEATHER_ARGUMENTS = {"city": "Paris"}
FINAL_TEXT = "It is sunny in Paris."


# --- the capturing OTLP endpoint --------------------------------------------------------------


class Capture:
    """An OTLP/HTTP endpoint that keeps every trace export body and answers success to all."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                with capture.lock:
                    capture.paths.append(self.path)
                    if self.path.rstrip("/").endswith("/v1/traces"):
                        capture.bodies.append(
                            {
                                "path": self.path,
                                "content_type": self.headers.get("content-type") or "",
                                "body": base64.b64encode(body).decode("ascii"),
                            }
                        )
                self.send_response(200)
                protobuf = "protobuf" in (self.headers.get("content-type") or "")
                self.send_header(
                    "content-type", "application/x-protobuf" if protobuf else "application/json"
                )
                answer = b"" if protobuf else b"{}"
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[dict[str, str]]:
        with self.lock:
            taken, self.bodies, self.paths = self.bodies, [], []
        return taken


# --- scenarios: each runs in a process of its own (they set global tracer providers) ---------


def _env(name: str) -> str:
    return os.environ[name]


def scenario_openinference_anthropic() -> None:
    """Claude through OpenInference's Anthropic instrumentor: a plain answer, a streamed one, a
    tool call and a failed call (model "fail"), all under the global tracer provider (so
    anthropic's own spans, where it makes them, are recorded too)."""
    import anthropic
    from openinference.instrumentation.anthropic import AnthropicInstrumentor

    provider = _otel_provider("claude-app")
    AnthropicInstrumentor().instrument(tracer_provider=provider)
    client = anthropic.Anthropic(base_url=_env("FAKE_ANTHROPIC"), api_key="test", max_retries=0)
    ask: list[MessageParam] = [{"role": "user", "content": QUESTION}]
    client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=ask)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=ask) as s:
        s.get_final_message()
    tools: list[ToolParam] = [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    with contextlib.suppress(anthropic.APIError):
        client.messages.create(model="fail", max_tokens=100, messages=ask)
    provider.shutdown()


def scenario_openinference_openai_responses() -> None:
    """OpenAI's Responses API through OpenInference's OpenAI instrumentor."""
    import openai
    from openinference.instrumentation.openai import OpenAIInstrumentor

    provider = _otel_provider("responses-app")
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=_env("FAKE_OPENAI"), api_key="test", max_retries=0)
    client.responses.create(model="gpt-4o-mini", input=QUESTION)
    provider.shutdown()


def scenario_traceloop() -> None:
    """OpenLLMetry: a workflow running an agent that calls a tool and the model (OpenAI), with
    association properties for the session and the user."""
    import openai
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import agent, task, tool, workflow

    Traceloop.init(
        app_name="traceloop-app",
        api_endpoint=_env("CAPTURE_URL"),
        disable_batch=True,
        telemetry_enabled=False,
    )
    Traceloop.set_association_properties({"session_id": SESSION, "user_id": USER})
    client = openai.OpenAI(base_url=_env("FAKE_OPENAI"), api_key="test", max_retries=0)

    @tool(name="get_weather")
    def get_weather(city: str) -> dict[str, str]:
        return {"city": city, "sky": "sunny"}

    @task(name="summarise")
    def summarise(text: str) -> str:
        return text.upper()

    @agent(name="weather_agent")
    def weather_agent(question: str) -> str:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        weather = get_weather("Paris")
        summary: str = summarise(f"{answer.choices[0].message.content} {weather['sky']}")
        return summary

    @workflow(name="weather_workflow")
    def run(question: str) -> str:
        answer: str = weather_agent(question)
        return answer

    run(QUESTION)
    with contextlib.suppress(openai.APIError):
        client.chat.completions.create(model="fail", messages=[{"role": "user", "content": "x"}])
    Traceloop.flush() if hasattr(Traceloop, "flush") else None
    time.sleep(1)


def scenario_traceloop_anthropic() -> None:
    """OpenLLMetry's Anthropic instrumentor (under traceloop-sdk) with anthropic's own spans: a
    plain and a streamed Claude call."""
    import anthropic
    from traceloop.sdk import Traceloop

    Traceloop.init(
        app_name="traceloop-claude",
        api_endpoint=_env("CAPTURE_URL"),
        disable_batch=True,
        telemetry_enabled=False,
    )
    client = anthropic.Anthropic(base_url=_env("FAKE_ANTHROPIC"), api_key="test", max_retries=0)
    ask: list[MessageParam] = [{"role": "user", "content": QUESTION}]
    client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=ask)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=ask) as s:
        s.get_final_message()
    time.sleep(1)


def scenario_langfuse() -> None:
    """Langfuse's OTel-based SDK: a traced function whose trace has a session, a user, tags and
    metadata, holding a generation with model, usage and cost, a tool, and a generation that
    failed (level ERROR)."""
    os.environ["LANGFUSE_PUBLIC_KEY"] = "pk-lf-local"
    os.environ["LANGFUSE_SECRET_KEY"] = "sk-lf-local"
    os.environ["LANGFUSE_HOST"] = _env("CAPTURE_URL")
    os.environ["LANGFUSE_BASE_URL"] = _env("CAPTURE_URL")
    import openai
    from langfuse import get_client, observe, propagate_attributes

    langfuse = get_client()
    client = openai.OpenAI(base_url=_env("FAKE_OPENAI"), api_key="test", max_retries=0)

    @observe(name="lookup_weather", as_type="tool")
    def lookup_weather(city: str) -> dict[str, str]:
        return {"city": city, "sky": "sunny"}

    @observe(name="weather-agent")
    def run(question: str) -> str:
        with propagate_attributes(
            session_id=SESSION, user_id=USER, tags=["recorded"], metadata={"team": "search"}
        ):
            messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": question}]
            with langfuse.start_as_current_observation(
                name="chat gpt-4o-mini", as_type="generation", model="gpt-4o-mini", input=messages
            ) as generation:
                answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                text = answer.choices[0].message.content or ""
                usage = answer.usage
                assert usage is not None
                generation.update(
                    output={"role": "assistant", "content": text},
                    usage_details={"input": usage.prompt_tokens, "output": usage.completion_tokens},
                    cost_details={"input": 0.0001, "output": 0.0002},
                )
            lookup_weather("Paris")
            with langfuse.start_as_current_observation(
                name="chat fail", as_type="generation", model="fail", input=messages
            ) as failed:
                try:
                    client.chat.completions.create(model="fail", messages=messages)
                except openai.APIError as error:
                    failed.update(level="ERROR", status_message=str(error))
        return text

    run(QUESTION)
    langfuse.flush()
    langfuse.shutdown()


def scenario_pydantic_ai() -> None:
    """pydantic-ai instrumented by Logfire (sending OTLP to the capture, not to Logfire): an
    agent run that calls a tool and answers, a Logfire log line with a message template, and a
    second turn of the same conversation (``message_history``)."""
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = _env("CAPTURE_URL")
    os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    import logfire
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    logfire.configure(
        send_to_logfire=False, service_name="pydantic-ai-app", console=False, metrics=False
    )
    logfire.instrument_pydantic_ai()
    model = OpenAIChatModel(
        "gpt-4o-mini", provider=OpenAIProvider(base_url=_env("FAKE_OPENAI"), api_key="test")
    )
    weather_agent = Agent(model, name="weather_agent", instructions="Answer about the weather.")

    @weather_agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    result = weather_agent.run_sync("Weather in Paris?")
    logfire.info("answered {city} with {answer}", city="Paris", answer=result.output)
    # The next turn of the same conversation: its run keeps the conversation id.
    weather_agent.run_sync("Thanks!", message_history=result.all_messages())
    logfire.force_flush()
    logfire.shutdown()


def scenario_langgraph() -> None:
    """A LangGraph ReAct agent (ChatOpenAI and a tool) under OpenInference's LangChain
    instrumentor: the root chain's output is the conversation as a message list."""
    from langchain_core.tools import tool as lc_tool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent
    from openinference.instrumentation.langchain import LangChainInstrumentor

    provider = _otel_provider("langgraph-app")
    LangChainInstrumentor().instrument(tracer_provider=provider)

    @lc_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    model = ChatOpenAI(
        model="gpt-4o-mini", base_url=_env("FAKE_OPENAI"), api_key="test", max_retries=0
    )
    graph = create_react_agent(model, [get_weather])
    graph.invoke({"messages": [{"role": "user", "content": "Weather in Paris?"}]})
    provider.shutdown()


def _otel_provider(service: str) -> Any:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"{_env('CAPTURE_URL')}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


#: name -> (run, the packages whose versions the recording names, the fake's scripted answers).
SCENARIOS: dict[str, tuple[Callable[[], None], tuple[str, ...], tuple[Answer, ...]]] = {
    "openinference_anthropic": (
        scenario_openinference_anthropic,
        ("anthropic", "openinference-instrumentation-anthropic"),
        (),
    ),
    "openinference_openai_responses": (
        scenario_openinference_openai_responses,
        ("openai", "openinference-instrumentation-openai"),
        (),
    ),
    "traceloop": (scenario_traceloop, ("traceloop-sdk", "openai"), ()),
    "traceloop_anthropic": (
        scenario_traceloop_anthropic,
        ("traceloop-sdk", "opentelemetry-instrumentation-anthropic", "anthropic"),
        (),
    ),
    "langfuse": (scenario_langfuse, ("langfuse", "openai"), ()),
    "pydantic_ai": (
        scenario_pydantic_ai,
        ("pydantic-ai-slim", "logfire", "openai"),
        (Answer(arguments=WEATHER_ARGUMENTS), Answer(text=FINAL_TEXT), Answer(text="Welcome.")),
    ),
    "langgraph": (
        scenario_langgraph,
        ("langgraph", "langchain-openai", "openinference-instrumentation-langchain"),
        (Answer(arguments=WEATHER_ARGUMENTS), Answer(text=FINAL_TEXT)),
    ),
}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def record(name: str, fake: FakeLLM, capture: Capture) -> Path:
    _, packages, script = SCENARIOS[name]
    fake.reset()
    fake.script(*script)
    capture.take()
    env = {
        **os.environ,
        "CAPTURE_URL": capture.url,
        "FAKE_OPENAI": fake.openai_url,
        "FAKE_ANTHROPIC": fake.anthropic_url,
        "OTEL_SERVICE_NAME": f"{name}-app",
    }
    subprocess.run([sys.executable, "-m", __spec__.name, "run", name], env=env, check=True)
    time.sleep(0.5)
    bodies = capture.take()
    assert bodies, f"{name}: the client exported no trace"
    path = HERE / f"{name}.json"
    recording = {
        "scenario": name,
        "what": SCENARIOS[name][0].__doc__,
        "versions": {package: _version(package) for package in packages},
        "requests": bodies,
    }
    path.write_text(json.dumps(recording, indent=1) + "\n")
    return path


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        SCENARIOS[sys.argv[2]][0]()
        return
    names = sys.argv[1:] or list(SCENARIOS)
    capture = Capture()
    with FakeLLM() as fake:
        for name in names:
            print(f"recorded {record(name, fake, capture)}")


if __name__ == "__main__":
    main()
