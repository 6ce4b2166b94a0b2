"""Deterministic OTLP payloads that look like LLM agent traffic.

Each trace is one agent run of about ten spans (agent, LLM calls, tool calls, a retrieval and a
sub-agent), each span carrying roughly 1 KB of input and 1 KB of output text drawn from a
Zipf-distributed vocabulary. Even traces speak OpenInference, odd traces the OTel GenAI
semantic conventions. Traces are packed ~50 to an ``ExportTraceServiceRequest``.

The same seed always yields the same bytes, so two servers can be fed identical payloads, and
the words used by the query benchmark are known in advance (``COMMON_WORD`` and friends).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span, Status

DEFAULT_PROJECT = "bench-agent"
TRACES_PER_BATCH = 50
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "mistral-large-latest")
PROVIDERS = {
    "gpt-4o": "openai",
    "gpt-4o-mini": "openai",
    "claude-sonnet-4-5": "anthropic",
    "mistral-large-latest": "mistral_ai",
}
TOOLS = ("lookup_order", "search_web", "get_weather", "create_ticket", "convert_currency")

# --- vocabulary --------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_COMMON_WORDS = _words("""
the to and of a in is for that you it with on this be are your as we have can will or from
customer order please account refund shipping payment delivery invoice support request issue
product service price update information help policy return address email number date time
item status team check system data report agent tool result answer question context document
model response error message user assistant search query review detail summary plan step need
available within days business confirm process change contact manager subscription billing
warranty replacement tracking package store online cancel option discount credit card balance
""")
_SYLLABLES = _words(
    "ka ve lo mi ra tu sen dor pla qui zen bro fal tis mun gar vel nor pex cul ash bim "
    "tor dri hal jun kel mos nix pru rav sol tem urn vox wel yar zor"
)
_VOCAB_SIZE = 20_000
_VOCAB_SEED = 20_240_601
_ZIPF_EXPONENT = 1.0


def _pseudo_words(count: int, taken: set[str]) -> list[str]:
    rng = random.Random(_VOCAB_SEED)
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _build_vocabulary() -> tuple[list[str], list[float]]:
    words = list(dict.fromkeys(_COMMON_WORDS))
    words += _pseudo_words(_VOCAB_SIZE - len(words), set(words))
    weights = [1.0 / (rank**_ZIPF_EXPONENT) for rank in range(1, len(words) + 1)]
    return words, list(accumulate(weights))


_SENTENCE_POOL_SIZE = 64_000


def _build_sentence_pool() -> list[str]:
    """Zipf-distributed sentences; texts are stitched from these, which is ~10x faster."""
    words, cumulative_weights = _build_vocabulary()
    rng = random.Random(_VOCAB_SEED + 1)
    punctuation = (".", ".", ".", "?", "!", ":")
    pool = []
    for _ in range(_SENTENCE_POOL_SIZE):
        chosen = rng.choices(words, cum_weights=cumulative_weights, k=rng.randint(6, 22))
        pool.append(" ".join(chosen).capitalize() + rng.choice(punctuation))
    return pool


def _word_with_sentence_count(pool: list[str], wanted: int) -> str:
    """The first pseudo-word (past the common words) found in exactly ``wanted`` sentences."""
    counts: Counter[str] = Counter()
    for sentence in pool:
        counts.update(set(sentence.lower().rstrip(".?!:").split()))
    common = set(_COMMON_WORDS)
    candidates = sorted(w for w, n in counts.items() if n == wanted and w not in common)
    return candidates[0]


SENTENCES = _build_sentence_pool()
COMMON_WORD = "customer"  # top-ranked content word: in most spans
MEDIUM_WORD = _word_with_sentence_count(SENTENCES, 60)  # in about 2% of spans
RARE_WORD = _word_with_sentence_count(SENTENCES, 1)  # in about one span in 2,500


def _text(rng: random.Random, min_chars: int, max_chars: int, prefix: str = "") -> str:
    """Sentences from the pool, between ``min_chars`` and roughly ``max_chars`` long."""
    target = rng.randint(min_chars, max_chars)
    parts = [prefix] if prefix else []
    length = len(prefix)
    pool_size = len(SENTENCES)
    while length < target:
        sentence = SENTENCES[int(rng.random() * pool_size)]
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)


# --- trace plan (vocabulary-neutral) -----------------------------------------------------------


@dataclass
class SpanPlan:
    """One span of an agent run before it is written in a given attribute vocabulary."""

    kind: str  # agent | llm | tool | retriever
    name: str
    span_id: bytes
    parent_id: bytes
    start_ns: int
    end_ns: int
    input_text: str
    output_text: str
    model: str = ""
    tool: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""


@dataclass
class TracePlan:
    trace_id: bytes
    session_id: str
    user_id: str
    ref_word: str  # occurs in this trace only
    tags: list[str]
    metadata: dict[str, str | int]
    spans: list[SpanPlan] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        return self.spans[0].end_ns


_DURATIONS_MS = {"llm": (250, 6_000), "tool": (5, 900), "retriever": (40, 400), "agent": (0, 0)}
_ERROR_RATE = {"llm": 0.02, "tool": 0.06, "retriever": 0.02, "agent": 0.0}


class _TraceBuilder:
    """Lays out one agent run: children run one after another inside their parent."""

    def __init__(self, rng: random.Random, trace: TracePlan, start_ns: int) -> None:
        self.rng = rng
        self.trace = trace
        self.clock_ns = start_ns
        self.model = rng.choice(MODELS)

    def _span_id(self) -> bytes:
        return self.rng.randbytes(8)

    def _gap(self) -> None:
        self.clock_ns += self.rng.randint(1, 30) * 1_000_000

    def open_agent(self, name: str, parent: SpanPlan | None, question: str) -> SpanPlan:
        span = SpanPlan(
            kind="agent",
            name=name,
            span_id=self._span_id(),
            parent_id=parent.span_id if parent else b"",
            start_ns=self.clock_ns,
            end_ns=0,
            input_text=question,
            output_text="",
        )
        self.trace.spans.append(span)
        self._gap()
        return span

    def close_agent(self, span: SpanPlan) -> None:
        self._gap()
        span.end_ns = self.clock_ns
        span.output_text = _text(self.rng, 700, 1_300)

    def leaf(self, kind: str, name: str, parent: SpanPlan, tool: str = "") -> SpanPlan:
        low, high = _DURATIONS_MS[kind]
        duration_ns = self.rng.randint(low, high) * 1_000_000
        input_text = _text(self.rng, 700, 1_400)
        output_text = _text(self.rng, 700, 1_400)
        span = SpanPlan(
            kind=kind,
            name=name,
            span_id=self._span_id(),
            parent_id=parent.span_id,
            start_ns=self.clock_ns,
            end_ns=self.clock_ns + duration_ns,
            input_text=input_text,
            output_text=output_text,
            model=self.model if kind == "llm" else "",
            tool=tool,
        )
        if kind == "llm":
            span.prompt_tokens = len(input_text) // 4 + self.rng.randint(200, 3_000)
            span.completion_tokens = len(output_text) // 4
        if self.rng.random() < _ERROR_RATE[kind]:
            span.error = f"{name} failed: " + _text(self.rng, 40, 120)
        self.trace.spans.append(span)
        self.clock_ns = span.end_ns
        self._gap()
        return span


def _plan_trace(rng: random.Random, start_ns: int, session_id: str, user_id: str) -> TracePlan:
    ref_word = "ref" + rng.randbytes(6).hex()
    trace = TracePlan(
        trace_id=rng.randbytes(16),
        session_id=session_id,
        user_id=user_id,
        ref_word=ref_word,
        tags=rng.sample(["prod", "beta", "mobile", "web", "vip", "eu", "us"], k=rng.randint(1, 3)),
        metadata={
            "tenant": f"tenant-{rng.randint(1, 40)}",
            "app_version": f"2.{rng.randint(0, 9)}",
        },
    )
    build = _TraceBuilder(rng, trace, start_ns)
    question = _text(rng, 700, 1_300, prefix=f"Question about {ref_word}:")
    root = build.open_agent("support_agent.run", None, question)
    build.leaf("llm", "llm.plan", root)
    build.leaf("retriever", "retrieve.knowledge_base", root)
    research = build.open_agent("research_agent.run", root, _text(rng, 700, 1_300))
    for _ in range(rng.randint(1, 3)):
        tool = rng.choice(TOOLS)
        build.leaf("tool", f"tool.{tool}", research, tool=tool)
    build.leaf("llm", "llm.reflect", research)
    build.close_agent(research)
    build.leaf("llm", "llm.draft", root)
    build.leaf("tool", "tool.check_policy", root, tool="check_policy")
    build.leaf("llm", "llm.answer", root)
    build.close_agent(root)
    failed = [span for span in trace.spans if span.error]
    if failed and rng.random() < 0.5:
        root.error = "agent run failed after: " + failed[0].name
    return trace


# --- attribute vocabularies --------------------------------------------------------------------

_OPENINFERENCE_KIND = {"agent": "AGENT", "llm": "LLM", "tool": "TOOL", "retriever": "RETRIEVER"}


def _set(span: Span, key: str, value: str | int) -> None:
    kv: KeyValue = span.attributes.add()
    kv.key = key
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value


def _set_list(span: Span, key: str, values: list[str]) -> None:
    kv: KeyValue = span.attributes.add()
    kv.key = key
    for value in values:
        kv.value.array_value.values.add().string_value = value


def _openinference_attributes(span: Span, plan: SpanPlan, trace: TracePlan) -> None:
    _set(span, "openinference.span.kind", _OPENINFERENCE_KIND[plan.kind])
    _set(span, "session.id", trace.session_id)
    _set(span, "user.id", trace.user_id)
    _set(span, "metadata", json.dumps(trace.metadata))
    _set_list(span, "tag.tags", trace.tags)
    if plan.kind == "llm":
        messages = [
            {"role": "system", "content": "You are a helpful support agent."},
            {"role": "user", "content": plan.input_text},
        ]
        _set(span, "input.value", json.dumps({"messages": messages}))
        _set(span, "input.mime_type", "application/json")
        _set(span, "llm.model_name", plan.model)
        _set(span, "llm.provider", PROVIDERS[plan.model])
        _set(span, "llm.token_count.prompt", plan.prompt_tokens)
        _set(span, "llm.token_count.completion", plan.completion_tokens)
        _set(span, "llm.token_count.total", plan.prompt_tokens + plan.completion_tokens)
    else:
        _set(span, "input.value", plan.input_text)
        _set(span, "input.mime_type", "text/plain")
    if plan.kind == "tool":
        _set(span, "tool.name", plan.tool)
    _set(span, "output.value", plan.output_text)
    _set(span, "output.mime_type", "text/plain")


def _genai_messages(role: str, text: str) -> str:
    message: dict[str, object] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if role == "assistant":
        message["finish_reason"] = "stop"
    return json.dumps([message])


def _genai_attributes(span: Span, plan: SpanPlan, trace: TracePlan) -> None:
    _set(span, "gen_ai.conversation.id", trace.session_id)
    if plan.kind == "llm":
        _set(span, "gen_ai.operation.name", "chat")
        _set(span, "gen_ai.provider.name", PROVIDERS[plan.model])
        _set(span, "gen_ai.request.model", plan.model)
        _set(span, "gen_ai.response.model", plan.model)
        _set(span, "gen_ai.usage.input_tokens", plan.prompt_tokens)
        _set(span, "gen_ai.usage.output_tokens", plan.completion_tokens)
        _set(span, "gen_ai.input.messages", _genai_messages("user", plan.input_text))
        _set(span, "gen_ai.output.messages", _genai_messages("assistant", plan.output_text))
    elif plan.kind == "agent":
        _set(span, "gen_ai.operation.name", "invoke_agent")
        _set(span, "gen_ai.agent.name", plan.name.split(".")[0])
        _set(span, "gen_ai.input.messages", _genai_messages("user", plan.input_text))
        _set(span, "gen_ai.output.messages", _genai_messages("assistant", plan.output_text))
    else:
        _set(span, "gen_ai.operation.name", "execute_tool")
        _set(span, "gen_ai.tool.name", plan.tool or "search_knowledge_base")
        _set(span, "gen_ai.tool.type", "datastore" if plan.kind == "retriever" else "function")
        _set(span, "gen_ai.tool.call.arguments", json.dumps({"query": plan.input_text}))
        _set(span, "gen_ai.tool.call.result", plan.output_text)


def _write_span(scope: ScopeSpans, plan: SpanPlan, trace: TracePlan, genai: bool) -> None:
    span: Span = scope.spans.add()
    span.trace_id = trace.trace_id
    span.span_id = plan.span_id
    if plan.parent_id:
        span.parent_span_id = plan.parent_id
    span.name = plan.name
    span.kind = Span.SPAN_KIND_CLIENT if plan.kind == "llm" else Span.SPAN_KIND_INTERNAL
    span.start_time_unix_nano = plan.start_ns
    span.end_time_unix_nano = plan.end_ns
    if genai:
        _genai_attributes(span, plan, trace)
    else:
        _openinference_attributes(span, plan, trace)
    if plan.error:
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = plan.error
        event = span.events.add()
        event.name = "exception"
        event.time_unix_nano = plan.end_ns
        for key, value in (("exception.type", "RuntimeError"), ("exception.message", plan.error)):
            kv = event.attributes.add()
            kv.key = key
            kv.value.string_value = value


# --- batches -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """Values that a query can look for, taken from the last OpenInference trace of a batch."""

    ref_word: str
    session_id: str
    user_id: str


@dataclass(frozen=True)
class Batch:
    body: bytes
    span_count: int
    trace_count: int
    probe: Probe


def _resource_and_scopes(
    request: ExportTraceServiceRequest, project: str
) -> tuple[ScopeSpans, ScopeSpans]:
    resource_spans = request.resource_spans.add()
    for key, value in (
        ("service.name", project),
        ("openinference.project.name", project),
        ("telemetry.sdk.language", "python"),
        ("deployment.environment", "bench"),
    ):
        kv = resource_spans.resource.attributes.add()
        kv.key = key
        kv.value.string_value = value
    openinference = resource_spans.scope_spans.add()
    openinference.scope.name = "openinference.instrumentation.openai"
    openinference.scope.version = "0.1.30"
    genai = resource_spans.scope_spans.add()
    genai.scope.name = "opentelemetry.instrumentation.openai_v2"
    genai.scope.version = "2.1b0"
    return openinference, genai


class PayloadGenerator:
    """Endless, reproducible stream of batches; one instance per independent id space."""

    def __init__(
        self,
        seed: int,
        start_ns: int,
        project: str = DEFAULT_PROJECT,
        traces_per_batch: int = TRACES_PER_BATCH,
    ) -> None:
        self.rng = random.Random(seed)
        self.clock_ns = start_ns
        self.project = project
        self.traces_per_batch = traces_per_batch
        self.trace_index = 0
        self.session_id = ""
        self.user_id = ""

    def _next_session(self) -> None:
        if not self.session_id or self.rng.random() < 0.35:
            self.session_id = "sess_" + self.rng.randbytes(8).hex()
            self.user_id = f"user_{self.rng.randint(1, 5_000):05d}"

    def next_trace(self) -> tuple[TracePlan, bool]:
        self._next_session()
        trace = _plan_trace(self.rng, self.clock_ns, self.session_id, self.user_id)
        self.clock_ns += self.rng.randint(200, 3_000) * 1_000_000
        genai = self.trace_index % 2 == 1
        self.trace_index += 1
        return trace, genai

    def next_batch(self) -> Batch:
        request = ExportTraceServiceRequest()
        openinference, genai_scope = _resource_and_scopes(request, self.project)
        span_count = 0
        probe = None
        for _ in range(self.traces_per_batch):
            trace, genai = self.next_trace()
            for plan in trace.spans:
                _write_span(genai_scope if genai else openinference, plan, trace, genai)
            span_count += len(trace.spans)
            if not genai:
                probe = Probe(trace.ref_word, trace.session_id, trace.user_id)
        assert probe is not None, "a batch needs at least one OpenInference trace"
        return Batch(request.SerializeToString(), span_count, self.traces_per_batch, probe)

    def batches(self) -> Iterator[Batch]:
        while True:
            yield self.next_batch()


def batches_for_spans(generator: PayloadGenerator, spans: int) -> list[Batch]:
    """Whole batches until at least ``spans`` spans are covered."""
    out: list[Batch] = []
    total = 0
    while total < spans:
        batch = generator.next_batch()
        out.append(batch)
        total += batch.span_count
    return out
