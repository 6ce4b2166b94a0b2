"""The tracing SDK against a live server: decorators, spans, feedback, safety."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

import assay
from assay.sdk._serialize import to_json
from assay.sdk._state import STATE
from tests.conftest import LiveServer


@pytest.fixture
def sdk(live: LiveServer) -> Iterator[LiveServer]:
    provider = TracerProvider()
    assay.init("sdk-tests", url=live.url, tracer_provider=provider)
    try:
        yield live
    finally:
        assay.shutdown()
        provider.shutdown()


def _spans(client: httpx.Client, project: str = "sdk-tests", **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(
        f"/api/v1/projects/{project}/spans", params={"limit": 200, **params}
    ).json()["items"]
    return items


class Query(BaseModel):
    text: str


@dataclasses.dataclass
class Doc:
    id: int
    body: bytes


def test_traced_shapes_nest_and_capture_io(sdk: LiveServer, client: httpx.Client) -> None:
    @assay.traced(type="retrieval")
    def retrieve(query: Query, k: int = 2) -> list[Doc]:
        return [Doc(i, b"\x00\x01") for i in range(k)]

    @assay.traced
    def stream_words(text: str) -> Iterator[str]:
        yield from text.split()

    @assay.traced(name="summarise", type="llm")
    async def summarise(docs: list[Doc]) -> str:
        await asyncio.sleep(0)
        return f"{len(docs)} docs"

    @assay.traced
    async def agen(n: int) -> Any:
        for i in range(n):
            yield i

    @assay.traced(type="agent", capture_input=False)
    def agent(question: str) -> str:
        docs = retrieve(Query(text=question), k=3)
        words = list(stream_words("a b c"))

        async def both() -> tuple[str, list[int]]:
            return await summarise(docs), [i async for i in agen(2)]

        summary, numbers = asyncio.run(both())
        with assay.span("post-process", type="tool") as s:
            s.log(metadata={"words": len(words)}, tags=["t1"], metrics={"input_tokens": 7})
        return summary + str(numbers)

    assert agent("why?") == "3 docs[0, 1]"
    assert assay.flush(10)
    spans = {s["name"]: s for s in _spans(client)}
    root = spans["test_traced_shapes_nest_and_capture_io.<locals>.agent"]
    assert root["type"] == "agent" and root["input"] is None and root["output"] == "3 docs[0, 1]"
    for name in ("summarise", "post-process"):
        assert spans[name]["parent_span_id"] == root["span_id"]
    retrieve_span = next(s for n, s in spans.items() if n.endswith("retrieve"))
    assert retrieve_span["type"] == "retrieval"
    assert json.loads(retrieve_span["input"]) == {"query": {"text": "why?"}, "k": 3}
    assert json.loads(retrieve_span["output"])[0] == {"id": 0, "body": {"$bytes": "AAE="}}
    words = next(s for n, s in spans.items() if n.endswith("stream_words"))
    assert json.loads(words["output"]) == ["a", "b", "c"]
    gen = next(s for n, s in spans.items() if n.endswith("agen"))
    assert json.loads(gen["output"]) == [0, 1] and gen["parent_span_id"] == root["span_id"]
    post = spans["post-process"]
    assert post["metadata"] == {"words": 3} and post["tags"] == ["t1"]
    assert post["input_tokens"] == 7
    assert spans["summarise"]["type"] == "llm"


def test_exceptions_are_recorded_and_reraised_untouched(
    sdk: LiveServer, client: httpx.Client
) -> None:
    class Boom(Exception):
        pass

    error = Boom("bad input")

    @assay.traced
    def fails() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        fails()
    assert caught.value is error
    with pytest.raises(KeyError), assay.span("block"):
        raise KeyError("k")
    assert assay.flush(10)
    by_name = {s["name"].rsplit(".", 1)[-1]: s for s in _spans(client)}
    assert by_name["fails"]["is_error"] and "Boom" in by_name["fails"]["error"]
    assert by_name["block"]["status"] == "error"


def test_without_init_decorators_only_call_through() -> None:
    assert STATE.tracer is None
    calls = []

    @assay.traced
    def f(x: int) -> int:
        calls.append(x)
        return x * 2

    assert f(2) == 4 and calls == [2]
    with assay.span("nothing") as s:
        s.log(input="ignored")
        assert not s.recording
    assert assay.flush() is True
    assert assay.stats() == {"enabled": False}
    assert assay.log_feedback("ab" * 16, "x", value=1) is False


def test_mask_runs_before_anything_leaves(sdk: LiveServer, client: httpx.Client) -> None:
    assay.shutdown()
    provider = TracerProvider()

    def mask(value: Any) -> Any:
        return json.loads(json.dumps(value).replace("4111-1111", "****"))

    assay.init("masked", url=sdk.url, tracer_provider=provider, mask=mask)

    @assay.traced
    def pay(card: str) -> str:
        return f"charged {card}"

    pay("4111-1111")
    assert assay.flush(10)
    [item] = _spans(client, "masked")
    assert "4111" not in item["input"] and "4111" not in item["output"]
    assert "4111" not in json.dumps(item["attributes"])


def test_feedback_by_trace_and_by_span(sdk: LiveServer, client: httpx.Client) -> None:
    with assay.span("answer", type="agent") as s:
        trace_id, span_id = s.trace_id, s.span_id
    assert trace_id and span_id
    assert assay.log_feedback(trace_id, "thumbs", value=True, user="u1", comment="great")
    assert assay.log_feedback(span_id, "accuracy", label="wrong")
    assert not assay.log_feedback("not-an-id", "x", value=1)
    assert assay.flush(10)
    tree = client.get(f"/api/v1/traces/{trace_id}").json()
    [trace_score] = tree["scores"]
    assert trace_score["name"] == "thumbs" and trace_score["value"] == 1.0
    assert trace_score["source"] == "human" and trace_score["author"] == "u1"
    assert trace_score["rationale"] == "great"
    assert [sc["label"] for sc in tree["spans"][0]["scores"]] == ["wrong"]


def test_feedback_on_a_span_still_open_arrives_once_the_span_does(
    sdk: LiveServer, client: httpx.Client
) -> None:
    """The server refuses a score for a span it has not stored (404); the SDK tries again, so
    a thumbs-up given while the request is still being handled is not lost."""
    with assay.span("answer", type="agent") as s:
        assert assay.log_feedback(s, "thumbs", value=True)
        time.sleep(1.5)  # the score is sent (and refused: no such span yet) while it is open
        trace_id = s.trace_id
    assert assay.flush(20)
    tree = client.get(f"/api/v1/traces/{trace_id}").json()
    assert [sc["name"] for sc in tree["spans"][0]["scores"]] == ["thumbs"]
    assert assay.stats()["feedback_sent"] == 1 and assay.stats()["feedback_dropped"] == 0


def test_existing_provider_keeps_its_processors(live: LiveServer, client: httpx.Client) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    theirs = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    assay.init("shared", url=live.url, tracer_provider=provider)
    try:
        # A span from the application's own tracer lands in Assay too, with Assay's spans.
        with provider.get_tracer("app").start_as_current_span("http GET"), assay.span("inner"):
            pass
        assert assay.flush(10)
    finally:
        assay.shutdown()
    names = sorted(s["name"] for s in _spans(client, "shared"))
    assert names == ["http GET", "inner"]
    assert sorted(s.name for s in theirs.get_finished_spans()) == ["http GET", "inner"]
    inner = next(s for s in _spans(client, "shared") if s["name"] == "inner")
    assert inner["parent_span_id"] is not None


def test_serialisation_is_safe_and_bounded() -> None:
    cyclic: dict[str, Any] = {"a": 1}
    cyclic["self"] = cyclic
    assert json.loads(to_json(cyclic, 1000)) == {"a": 1, "self": "…[cycle]"}

    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    assert json.loads(to_json({"o": Odd(), "s": {1}}, 1000)) == {"o": "<odd>", "s": [1]}
    long = to_json("x" * 50, 10)
    assert long == "x" * 10 + "…[truncated 40 chars]"
    assert to_json(b"\x00" * 5000, 1000) == '"<5000 bytes>"'

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "unserialisable" in to_json(Hostile(), 1000)
    numpy = pytest.importorskip("numpy")
    assert json.loads(to_json({"v": numpy.arange(3)}, 1000)) == {"v": [0, 1, 2]}


GLOBAL_SCRIPT = """
import sys, assay
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
assay.init("global", url=sys.argv[1])
assert isinstance(trace.get_tracer_provider(), TracerProvider)
with assay.span("g"):
    pass
"""


def test_global_provider_is_created_when_none_exists(
    live: LiveServer, client: httpx.Client
) -> None:
    # In a process of its own: the global provider can be set only once per process. The spans
    # must arrive through the flush at exit, with no explicit flush.
    done = subprocess.run(
        [sys.executable, "-c", GLOBAL_SCRIPT, live.url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert [s["name"] for s in _spans(client, "global")] == ["g"]


def test_many_spans_from_threads_are_all_exported(sdk: LiveServer, client: httpx.Client) -> None:
    """Past the span-id memory's trim point, from several threads, no span goes missing."""
    import threading

    @assay.traced
    def leaf(i: int) -> int:
        return i

    def work() -> None:
        for i in range(6_000):
            leaf(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert assay.flush(60)
    stats = assay.stats()
    assert stats["spans_sent"] + stats["spans_dropped"] == 24_000
    project = client.get("/api/v1/projects").json()["items"][0]
    assert project["span_count"] == stats["spans_sent"]
