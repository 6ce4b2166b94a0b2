"""`assay.models` against the real openai and anthropic SDKs pointed at the local fake model
server, and the mock provider: requests, usage and cost, spans, retries, the cache, limits."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assay.errors import ConfigError, UserError
from assay.models import (
    Model,
    ModelError,
    Request,
    Response,
    ResponseCache,
    Tool,
    Usage,
    get_model,
)
from assay.models._mock import embedding
from assay.models._retry import retry_after_seconds
from assay.sdk._state import STATE
from tests.fake_llm import (
    ANTHROPIC_TEXT,
    ANTHROPIC_USAGE,
    CHAT_TEXT,
    CHAT_USAGE,
    EMBEDDING_DIMENSIONS,
    EMBEDDING_TOKENS_PER_INPUT,
    FAIL_MODEL,
    Answer,
    FakeLLM,
)

GPT = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-5"
# USD per 1M tokens in the built-in price table: (input, output, cache read).
GPT_PRICE = (0.15, 0.60, 0.075)
CLAUDE_PRICE = (3.00, 15.00, 0.30)
VERDICT = Tool(
    "verdict",
    "Record a verdict.",
    {"type": "object", "properties": {"choice": {"type": "string", "enum": ["yes", "no"]}}},
)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _cost(price: tuple[float, float, float], inputs: int, cached: int, outputs: int) -> float:
    return ((inputs - cached) * price[0] + cached * price[2] + outputs * price[1]) / 1e6


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def isolated(fake: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.reset()
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ASSAY_MODEL_CACHE", raising=False)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = STATE.tracer
    STATE.tracer = provider.get_tracer("test")
    try:
        yield exporter
    finally:
        STATE.tracer = previous
        provider.shutdown()


def _openai(fake: FakeLLM, **options: Any) -> Model:
    return get_model(f"openai/{GPT}", base_url=fake.openai_url, api_key="test", **options)


def _anthropic(fake: FakeLLM, **options: Any) -> Model:
    return get_model(f"anthropic/{CLAUDE}", base_url=fake.anthropic_url, api_key="t", **options)


def _llm_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    finished = exporter.get_finished_spans()
    return [s for s in finished if (s.attributes or {}).get("assay.span.type") == "llm"]


def _bodies(fake: FakeLLM) -> list[dict[str, Any]]:
    return [body for _, body in fake.requests]


# --- chat ------------------------------------------------------------------------------------


def test_openai_chat_usage_cost_and_span(fake: FakeLLM, spans: InMemorySpanExporter) -> None:
    answer = _openai(fake).generate("What is the capital of France?", temperature=0.2)

    assert answer.text == CHAT_TEXT and answer.provider == "openai"
    u = CHAT_USAGE
    assert answer.usage.input_tokens == u.input_tokens
    assert answer.usage.output_tokens == u.output_tokens
    assert answer.usage.cached_tokens == u.cached_tokens
    assert answer.usage.reasoning_tokens == u.reasoning_tokens
    expected_cost = _cost(GPT_PRICE, u.input_tokens, u.cached_tokens, u.output_tokens)
    assert answer.usage.cost == pytest.approx(expected_cost)
    [span] = _llm_spans(spans)
    attributes = dict(span.attributes or {})
    assert span.name == f"chat {GPT}"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == GPT
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.response.model"] == answer.model
    assert attributes["gen_ai.usage.input_tokens"] == u.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == u.output_tokens
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == u.cached_tokens
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == u.reasoning_tokens
    assert attributes["assay.cost"] == pytest.approx(expected_cost)
    assert attributes["assay.cache_hit"] is False
    [sent] = json.loads(str(attributes["gen_ai.input.messages"]))
    assert sent["parts"][0]["content"] == "What is the capital of France?"
    [said] = json.loads(str(attributes["gen_ai.output.messages"]))
    assert said["parts"][0]["content"] == CHAT_TEXT


def test_openai_request_carries_tools_choice_and_limits(fake: FakeLLM) -> None:
    model = _openai(fake, max_tokens=300)
    answer = model.generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Go"}],
        tools=[VERDICT],
        tool_choice="verdict",
        temperature=0,
        seed=7,
    )
    [body] = _bodies(fake)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "verdict"}}
    assert body["tools"][0]["function"]["parameters"] == VERDICT.parameters
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    # OpenAI's reasoning models refuse max_tokens; compatible servers may know only it.
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body
    assert body["temperature"] == 0 and body["seed"] == 7
    call = answer.tool_call("verdict")
    assert call is not None and call.id == "call_fake_1"

    fake.reset()
    compatible = get_model(f"openai-compatible/{GPT}", base_url=fake.openai_url, max_tokens=9)
    compatible.generate("Go")
    [body] = _bodies(fake)
    assert body["max_tokens"] == 9 and "max_completion_tokens" not in body


def test_tool_choice_must_name_an_offered_tool(fake: FakeLLM) -> None:
    with pytest.raises(UserError, match="names no tool offered"):
        _openai(fake).generate("Go", tools=[VERDICT], tool_choice="other")
    assert fake.requests == []


def test_structured_output_on_openai(fake: FakeLLM) -> None:
    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    _openai(fake).generate("Go", response_format=schema)
    [body] = _bodies(fake)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema


def test_anthropic_chat_tools_usage_and_cost(fake: FakeLLM, spans: InMemorySpanExporter) -> None:
    answer = _anthropic(fake).generate(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"}],
        tools=[VERDICT],
        tool_choice="verdict",
    )
    [body] = _bodies(fake)
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Weather?"}]}]
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
    assert body["tools"][0]["input_schema"] == VERDICT.parameters
    assert body["max_tokens"] == 1024  # Anthropic requires it
    u = ANTHROPIC_USAGE
    # Anthropic counts cache reads and writes apart; ours include them in input_tokens.
    assert answer.usage.input_tokens == u.total_input_tokens
    assert answer.usage.cached_tokens == u.cache_read_input_tokens
    expected_cost = _cost(
        CLAUDE_PRICE, u.total_input_tokens, u.cache_read_input_tokens, u.output_tokens
    )
    assert answer.usage.cost == pytest.approx(expected_cost)
    call = answer.tool_call("verdict")
    assert call is not None and call.arguments == {"city": "Paris", "unit": "celsius"}
    [span] = _llm_spans(spans)
    assert span.attributes is not None
    assert span.attributes["gen_ai.provider.name"] == "anthropic"
    assert span.attributes["gen_ai.usage.input_tokens"] == u.total_input_tokens


def test_anthropic_text_and_structured_output(fake: FakeLLM) -> None:
    model = _anthropic(fake)
    assert model.generate("Capital?", temperature=0).text == ANTHROPIC_TEXT
    # The Messages API takes no temperature.
    assert "temperature" not in _bodies(fake)[0]
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    fake.script(Answer(text='{"city": "Paris"}'))
    answer = model.generate("Capital?", response_format=schema)
    body = _bodies(fake)[-1]
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert json.loads(answer.text) == {"city": "Paris"}


def test_async_generate_on_both_providers(fake: FakeLLM) -> None:
    async def both() -> list[Response]:
        return list(
            await asyncio.gather(_openai(fake).agenerate("Hi"), _anthropic(fake).agenerate("Hi"))
        )

    first, second = asyncio.run(both())
    assert (first.text, second.text) == (CHAT_TEXT, ANTHROPIC_TEXT)
    # A new event loop gets its own async client (the old one's connections died with its loop).
    model = _openai(fake)
    assert asyncio.run(model.agenerate("Hi")).text == CHAT_TEXT
    assert asyncio.run(model.agenerate("Hi again")).text == CHAT_TEXT


def test_sdk_environment_variables_are_honoured(
    fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert get_model(f"openai/{GPT}").generate("Hi").text == CHAT_TEXT
    assert get_model(f"anthropic/{CLAUDE}").generate("Hi").text == ANTHROPIC_TEXT
    assert [path for path, _ in fake.requests] == ["/v1/chat/completions", "/v1/messages"]


@pytest.mark.parametrize(("name", "variable"), [(GPT, "OPENAI_API_KEY"), (CLAUDE, "ANTHROPIC")])
def test_a_missing_api_key_says_what_to_set(fake: FakeLLM, name: str, variable: str) -> None:
    prefix = "openai" if name == GPT else "anthropic"
    url = fake.openai_url if name == GPT else fake.anthropic_url
    model = get_model(f"{prefix}/{name}", base_url=url)  # defining needs no key
    with pytest.raises(ConfigError, match=variable):
        model.generate("Hi")
    assert fake.requests == []


def test_model_names_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="provider/model"):
        get_model("gpt-4o")
    with pytest.raises(ConfigError, match="unknown model provider 'cohere'"):
        get_model("cohere/command-r")
    with pytest.raises(ConfigError, match="base_url"):
        get_model("openai-compatible/llama3")
    real_find_spec = importlib.util.find_spec

    def without_openai(name: str, *args: Any) -> Any:
        return None if name == "openai" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_openai)
    with pytest.raises(ConfigError, match=r"pip install 'assay\[openai\]'"):
        get_model("openai/gpt-4o")


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_429_is_retried_after_retry_after(
    fake: FakeLLM, spans: InMemorySpanExporter, provider: str
) -> None:
    model = (_openai if provider == "openai" else _anthropic)(fake, backoff=0.001)
    fake.script(Answer(status=429, headers={"retry-after": "0.2"}))
    answer = model.generate("Hi")
    assert answer.text in (CHAT_TEXT, ANTHROPIC_TEXT)
    assert len(fake.requests) == 2
    # The wait follows the header, not the (tiny) back-off.
    assert fake.arrivals[1] - fake.arrivals[0] >= 0.2
    [span] = _llm_spans(spans)
    assert span.attributes is not None and span.attributes["assay.retries"] == 1


def test_async_retry_honours_retry_after_ms(fake: FakeLLM) -> None:
    model = _openai(fake, backoff=5.0)
    fake.script(Answer(status=429, headers={"retry-after-ms": "150"}))
    started = time.monotonic()
    assert asyncio.run(model.agenerate("Hi")).text == CHAT_TEXT
    assert fake.arrivals[1] - fake.arrivals[0] >= 0.15 and time.monotonic() - started < 2


def test_server_errors_retry_with_backoff_until_the_limit(fake: FakeLLM) -> None:
    model = _openai(fake, retries=2, backoff=0.01)
    fake.script(*[Answer(status=503)] * 3)
    with pytest.raises(ModelError) as raised:
        model.generate("Hi")
    assert raised.value.status_code == 503 and raised.value.retryable
    assert len(fake.requests) == 3


def test_bad_requests_are_not_retried(fake: FakeLLM, spans: InMemorySpanExporter) -> None:
    model = get_model(f"openai/{FAIL_MODEL}", base_url=fake.openai_url, api_key="t", backoff=0)
    with pytest.raises(ModelError) as raised:
        model.generate("Hi")
    assert raised.value.status_code == 400 and not raised.value.retryable
    assert len(fake.requests) == 1
    [span] = _llm_spans(spans)
    assert not span.status.is_ok


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert retry_after_seconds({"retry-after-ms": "300", "retry-after": "9"}) == 0.3
    soon = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    found = retry_after_seconds({"retry-after": soon})
    assert found is not None and 25 < found <= 30
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# --- the cache -------------------------------------------------------------------------------


def test_cache_makes_a_repeat_at_temperature_zero_free(
    fake: FakeLLM, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    first = _openai(fake).generate("Capital?", temperature=0)
    # A new model object, as in a new process: the cache is on disk.
    second = _openai(fake).generate("Capital?", temperature=0)
    assert len(fake.requests) == 1
    assert second.text == first.text and second.cache_hit and not first.cache_hit
    assert second.usage.cost == 0 and second.usage.input_tokens == 0
    hit = _llm_spans(spans)[1].attributes or {}
    assert hit["assay.cache_hit"] is True and hit["assay.cost"] == 0
    entries = list((tmp_path / "cache" / "models").rglob("*"))
    assert [p.suffix for p in entries if p.is_file()] == [".json"]  # no temporary files left

    _openai(fake).generate("Capital of Italy?", temperature=0)
    assert len(fake.requests) == 2  # another request, another key


def test_cache_choice_per_call_and_per_model(
    fake: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _openai(fake)
    model.generate("Hi", temperature=0.7)
    model.generate("Hi", temperature=0.7)
    assert len(fake.requests) == 2  # sampling: never cached by default
    model.generate("Hi", temperature=0.7, cache=True)
    model.generate("Hi", temperature=0.7, cache=True)
    assert len(fake.requests) == 3
    uncached = _openai(fake, cache=False)
    uncached.generate("Hi", temperature=0)
    uncached.generate("Hi", temperature=0)
    assert len(fake.requests) == 5
    monkeypatch.setenv("ASSAY_MODEL_CACHE", "off")
    model.generate("Bye", temperature=0)
    model.generate("Bye", temperature=0)
    assert len(fake.requests) == 7


def test_cache_writes_are_atomic_under_concurrency(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    answers = [Response(text="x" * 50_000 + str(i), usage=Usage(1, 2)) for i in range(8)]
    seen: list[Response | None] = []

    def write(response: Response) -> None:
        for _ in range(20):
            cache.put("k" * 64, response)
            seen.append(cache.get("k" * 64))

    threads = [threading.Thread(target=write, args=(a,)) for a in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every read saw one whole answer, never a torn or empty file.
    assert all(found is not None and found in answers for found in seen)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["k" * 64 + ".json"]


# --- limits ----------------------------------------------------------------------------------


class SlowProvider:
    name = "slow"
    endpoint = "slow"

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0

    async def acomplete(self, request: Request, timeout: float) -> Response:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return Response("ok", provider=self.name)

    def complete(self, request: Request, timeout: float) -> Response:
        raise NotImplementedError

    def embed(self, model: str, texts: Sequence[str], timeout: float) -> Any:
        raise NotImplementedError

    async def aembed(self, model: str, texts: Sequence[str], timeout: float) -> Any:
        raise NotImplementedError


def test_concurrency_is_capped_per_provider() -> None:
    provider = SlowProvider()
    model = Model("slow/x", provider, max_concurrency=3)

    async def many() -> None:
        await asyncio.gather(*(model.agenerate(f"q{i}") for i in range(12)))

    asyncio.run(many())
    assert provider.most == 3


class SharedProvider(SlowProvider):
    """Answers slowly and counts its calls; fails the first ``failures`` of them."""

    name = "shared"
    endpoint = "shared"

    def __init__(self, failures: int = 0) -> None:
        self.calls = 0
        self.failures = failures
        self._lock = threading.Lock()

    def _answer(self) -> Response:
        with self._lock:
            self.calls += 1
            failing = self.calls <= self.failures
        if failing:
            raise ModelError("bad request", status_code=400)
        return Response("shared answer", usage=Usage(100, 10, cost=0.5), provider=self.name)

    async def acomplete(self, request: Request, timeout: float) -> Response:
        await asyncio.sleep(0.2)
        return self._answer()

    def complete(self, request: Request, timeout: float) -> Response:
        time.sleep(0.2)
        return self._answer()


def test_identical_requests_at_the_same_moment_make_one_call() -> None:
    provider = SharedProvider()
    model = Model("shared/x", provider, temperature=0)

    async def six() -> list[Response]:
        return await asyncio.gather(*(model.agenerate("Same question") for _ in range(6)))

    answers = asyncio.run(six())
    assert provider.calls == 1
    assert {a.text for a in answers} == {"shared answer"}
    assert sum(not a.cache_hit for a in answers) == 1  # paid for once
    assert sum(a.usage.cost or 0 for a in answers) == pytest.approx(0.5)

    # Threads calling the sync API share too; a different question is its own call.
    other = Model("shared/x", SharedProvider(), temperature=0)
    results: list[Response] = []
    threads = [
        threading.Thread(target=lambda: results.append(other.generate("Other question")))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert isinstance(other.provider, SharedProvider) and other.provider.calls == 1
    assert len(results) == 4 and sum(r.cache_hit for r in results) == 3


def test_when_the_shared_call_fails_each_waiter_calls_for_itself() -> None:
    provider = SharedProvider(failures=1)
    model = Model("shared/y", provider, temperature=0, retries=0)

    async def three() -> list[Response | BaseException]:
        return await asyncio.gather(
            *(model.agenerate("Will it fail?") for _ in range(3)), return_exceptions=True
        )

    outcomes = asyncio.run(three())
    failed = [o for o in outcomes if isinstance(o, ModelError)]
    answered = [o for o in outcomes if isinstance(o, Response)]
    assert len(failed) == 1 and len(answered) == 2
    # The first call failed; each waiter then made its own, which succeeded.
    assert provider.calls == 3


# --- embeddings ------------------------------------------------------------------------------


def test_openai_embeddings(fake: FakeLLM, spans: InMemorySpanExporter) -> None:
    model = get_model("openai/text-embedding-3-small", base_url=fake.openai_url, api_key="t")
    vectors = model.embed(["one", "two"])
    assert len(vectors) == 2 and len(vectors[0]) == EMBEDDING_DIMENSIONS
    assert vectors[1][0] == 2 * vectors[0][0]  # the fake's vectors, in order
    assert asyncio.run(model.aembed(["one"])) == vectors[:1]
    span = spans.get_finished_spans()[0]
    assert span.attributes is not None
    assert span.attributes["assay.span.type"] == "embedding"
    assert span.attributes["gen_ai.usage.input_tokens"] == 2 * EMBEDDING_TOKENS_PER_INPUT
    with pytest.raises(UserError, match="list of texts"):
        model.embed("one")
    with pytest.raises(UserError, match="no embeddings"):
        _anthropic(fake).embed(["one"])


def test_mock_embeddings_are_deterministic_and_similar_for_similar_texts() -> None:
    model = get_model("mock/embedder")
    a, b, c = model.embed(["the cat sat on the mat", "the cat sat on a mat", "stock prices fell"])
    assert a == embedding("the cat sat on the mat")

    def cosine(x: list[float], y: list[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert cosine(a, a) == pytest.approx(1.0)
    assert cosine(a, b) > 0.7 > cosine(a, c)


# --- the mock provider -----------------------------------------------------------------------


def test_mock_answers_scripted_outputs_then_defaults() -> None:
    seen: list[Request] = []

    def echo(request: Request) -> str:
        seen.append(request)
        return request.messages[-1].content.upper()

    model = get_model("mock/m", outputs=["first", {"choice": "no"}, echo])
    assert model.generate("q").text == "first"
    call = model.generate("q", tools=[VERDICT], tool_choice="verdict").tool_call("verdict")
    assert call is not None and call.arguments == {"choice": "no"}
    assert model.generate("shout").text == "SHOUT" and len(seen) == 1
    assert model.generate("q").text == "mock answer"
    # A forced tool with nothing scripted: the plainest arguments its schema allows.
    forced = model.generate("q", tools=[VERDICT], tool_choice="verdict").tool_call()
    assert forced is not None and forced.arguments == {"choice": "yes"}
    answer = model.generate("q")
    assert answer.usage.cost == 0 and answer.usage.input_tokens == 1
