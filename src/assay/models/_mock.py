"""``mock/<anything>``: a model that answers offline, for tests and dry runs.

``get_model("mock/judge", outputs=[...])`` answers with the given outputs in order, then with
its default answer. An output is text, a dict (the arguments of a call of the forced or first
offered tool; the answer's JSON text when there are no tools), a `Response`, or a function of
the `Request` returning one of those. ``respond=`` gives one such function for every call. With
nothing scripted it answers ``"mock answer"``, or calls a forced tool with arguments made from
its schema (the first of an enum, empty text, zero, false).

Its answers are not cached unless ``cache=True`` is asked for: scripts change between runs.
Embeddings are deterministic: a hashed bag of words, so texts sharing words are close.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from assay.models._types import Request, Response, ToolCall, Usage

DEFAULT_TEXT = "mock answer"
EMBEDDING_DIMENSIONS = 64

Output = str | Mapping[str, Any] | Response
Responder = Callable[[Request], Output]


def example_of(schema: Mapping[str, Any]) -> Any:
    """The plainest value a JSON schema allows."""
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: example_of(sub) for name, sub in properties.items()}
    plain: dict[str, Any] = {
        "string": "",
        "integer": 0,
        "number": 0,
        "boolean": False,
        "array": [],
        "null": None,
    }
    return plain.get(str(kind))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def embedding(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    for word in _words(text):
        digest = hashlib.sha256(word.encode()).digest()
        bucket = int.from_bytes(digest[:4], "big") % dimensions
        vector[bucket] += 1.0 if digest[4] % 2 == 0 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


class MockProvider:
    """The offline provider; ``requests`` keeps every request it answered."""

    name = "mock"
    endpoint = "mock"

    def __init__(
        self,
        outputs: Iterable[Output | Responder] = (),
        respond: Responder | None = None,
        dimensions: int = EMBEDDING_DIMENSIONS,
    ) -> None:
        self._outputs = list(outputs)
        self._respond = respond
        self._dimensions = dimensions
        self._lock = threading.Lock()
        self.requests: list[Request] = []

    def _next(self, request: Request) -> Output:
        with self._lock:
            self.requests.append(request)
            scripted = self._outputs.pop(0) if self._outputs else None
        if scripted is None:
            scripted = self._respond if self._respond is not None else _default
        return scripted(request) if callable(scripted) else scripted

    def complete(self, request: Request, timeout: float) -> Response:
        output = self._next(request)
        if isinstance(output, Response):
            return output
        tool = request.forced_tool or (request.tools[0].name if request.tools else None)
        calls: tuple[ToolCall, ...] = ()
        if isinstance(output, Mapping) and tool is not None:
            calls = (ToolCall("mock_call_1", tool, dict(output), json.dumps(output)),)
            text = ""
        else:
            text = output if isinstance(output, str) else json.dumps(output)
        prompt = " ".join(m.content for m in request.messages)
        return Response(
            text=text,
            tool_calls=calls,
            usage=Usage(len(_words(prompt)), len(_words(text + json.dumps(output))), cost=0.0),
            model=request.model,
            provider=self.name,
            finish_reason="tool_calls" if calls else "stop",
            id=f"mock-{len(self.requests)}",
        )

    async def acomplete(self, request: Request, timeout: float) -> Response:
        return self.complete(request, timeout)

    def embed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]:
        tokens = sum(len(_words(text)) for text in texts)
        vectors = [embedding(text, self._dimensions) for text in texts]
        return vectors, Usage(input_tokens=tokens, cost=0.0)

    async def aembed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]:
        return self.embed(model, texts, timeout)


def _default(request: Request) -> Output:
    forced = request.forced_tool
    if forced is None and request.tool_choice == "required" and request.tools:
        forced = request.tools[0].name
    if forced is not None:
        tool = next(t for t in request.tools if t.name == forced)
        found = example_of(tool.parameters)
        return found if isinstance(found, Mapping) else {}
    if request.response_format is not None:
        return json.dumps(example_of(request.response_format))
    return DEFAULT_TEXT
