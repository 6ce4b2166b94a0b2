"""`Model`: one interface for chat completions and embeddings over any provider, with the
limits, retries, cache, cost and tracing every call gets."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Protocol

from assay.errors import UserError
from assay.models._cache import ResponseCache, request_key, wants_cache
from assay.models._retry import RetryPolicy, limiter_for
from assay.models._trace import CallRecord, llm_span, request_attributes, usage_attributes
from assay.models._types import (
    Message,
    Request,
    Response,
    Tool,
    Usage,
    as_messages,
    as_tools,
)
from assay.semconv.prices import DEFAULT_PRICES

Prompt = str | Sequence[Message | Mapping[str, Any]]


class InFlight:
    """Identical cacheable requests made at the same moment (a judge scoring the same answer in
    several trials at once): the first goes out, the others wait for its answer and get it as a
    cache hit would give it, so it is paid for once. A failed first call lets each waiter make
    its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Response | None]] = {}

    def claim(
        self, key: str | None
    ) -> tuple[Future[Response | None] | None, Future[Response | None] | None]:
        """``(lead, other)``: the future to settle when the caller's call is the one that goes
        out, or another caller's to wait for. Both None for an uncacheable request."""
        if key is None:
            return None, None
        with self._lock:
            other = self._pending.get(key)
            if other is not None:
                return None, other
            lead: Future[Response | None] = Future()
            self._pending[key] = lead
            return lead, None

    def settle(
        self, key: str | None, lead: Future[Response | None] | None, answer: Response | None
    ) -> None:
        if key is None or lead is None:
            return
        with self._lock:
            self._pending.pop(key, None)
        lead.set_result(answer)


IN_FLIGHT = InFlight()


class Provider(Protocol):
    """What a provider implements: one chat call and one embeddings call, sync and async,
    each a single attempt that raises `ModelError` on failure (retries are the model's job)."""

    #: The provider's name as spans and prices know it: ``openai``, ``anthropic``, ...
    name: str
    #: Where its calls go (a base URL); part of the cache key and of the concurrency cap's key.
    endpoint: str

    def complete(self, request: Request, timeout: float) -> Response: ...

    async def acomplete(self, request: Request, timeout: float) -> Response: ...

    def embed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]: ...

    async def aembed(
        self, model: str, texts: Sequence[str], timeout: float
    ) -> tuple[list[list[float]], Usage]: ...


def priced(response: Response, request: Request) -> Response:
    """The response with its cost from the price table (None for an unknown model), unless
    the provider knew its cost already."""
    usage = response.usage
    if usage.cost is not None:
        return response
    cost = DEFAULT_PRICES.cost(
        response.model or request.model,
        response.provider,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_tokens,
    )
    if cost is None and usage.total_tokens == 0:
        cost = 0.0
    return dataclasses.replace(response, usage=dataclasses.replace(usage, cost=cost))


class Model:
    """A model of one provider, called with ``generate`` (sync) or ``agenerate`` (async).

    Options, fixed per model (``get_model(name, **options)``): ``temperature`` and
    ``max_tokens`` (defaults for every call), ``timeout`` (seconds per attempt, default 60),
    ``retries`` (more attempts on 408/409/429/5xx and connection errors, default 4),
    ``backoff`` / ``max_backoff`` (seconds: the first back-off and the longest wait, Retry-After
    included), ``max_concurrency`` (calls in flight to this provider endpoint, default 8),
    ``cache`` (None: cache calls at temperature 0; True / False: always / never) and
    ``cache_dir``.
    """

    def __init__(
        self,
        name: str,
        provider: Provider,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_concurrency: int = 8,
        cache: bool | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise UserError("max_concurrency must be at least 1")
        if timeout <= 0:
            raise UserError("timeout must be a positive number of seconds")
        self.name = name
        self.model = name.split("/", 1)[1] if "/" in name else name
        self.provider = provider
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retry = RetryPolicy(max(0, retries), backoff, max_backoff)
        self.cache = cache
        self._cache_store = ResponseCache(cache_dir)
        self._limiter = limiter_for(
            (provider.name, provider.endpoint, max_concurrency), max_concurrency
        )

    def __repr__(self) -> str:
        return f"Model({self.name!r})"

    def describe(self) -> dict[str, Any]:
        """What shapes this model's answers (not where they are cached or how fast)."""
        return {
            "name": self.name,
            "endpoint": self.provider.endpoint,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    # --- chat ----------------------------------------------------------------------------

    def request(
        self,
        messages: Prompt,
        *,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_format: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> Request:
        """The normal form of a call, with this model's defaults filled in."""
        return Request(
            model=self.model,
            messages=as_messages(messages),
            tools=as_tools(tools),
            tool_choice=tool_choice,
            temperature=self.temperature if temperature is None else temperature,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
            response_format=response_format,
            seed=seed,
        )

    def generate(self, messages: Prompt, *, cache: bool | None = None, **options: Any) -> Response:
        """Ask the model; ``options`` are those of `request` (tools, tool_choice,
        response_format, temperature, max_tokens, seed). ``tool_choice`` is ``auto``,
        ``none``, ``required`` or the name of the tool the model must call."""
        request = self.request(messages, **options)
        key = self._cache_key(request, cache)
        with self._span(request) as record:
            hit = self._cached(key, record)
            if hit is not None:
                return hit
            lead, other = IN_FLIGHT.claim(key)
            if other is not None:
                try:
                    shared = other.result(timeout=self._longest_wait())
                except FutureTimeout:
                    shared = None
                if shared is not None:
                    return self._shared(shared, record)

            def attempt() -> Response:
                with self._limiter.hold():
                    return self.provider.complete(request, self.timeout)

            response = None
            try:
                response = priced(self.retry.call(attempt, record.retried), request)
                return self._finish(key, response, record)
            finally:
                IN_FLIGHT.settle(key, lead, response)

    async def agenerate(
        self, messages: Prompt, *, cache: bool | None = None, **options: Any
    ) -> Response:
        """`generate`, for async code: calls run concurrently up to the provider's cap."""
        request = self.request(messages, **options)
        key = self._cache_key(request, cache)
        with self._span(request) as record:
            hit = self._cached(key, record)
            if hit is not None:
                return hit
            lead, other = IN_FLIGHT.claim(key)
            if other is not None:
                waiting = asyncio.shield(asyncio.wrap_future(other))
                try:
                    shared = await asyncio.wait_for(waiting, self._longest_wait())
                except TimeoutError:
                    shared = None
                if shared is not None:
                    return self._shared(shared, record)

            async def attempt() -> Response:
                async with self._limiter.ahold():
                    return await self.provider.acomplete(request, self.timeout)

            response = None
            try:
                response = priced(await self.retry.acall(attempt, record.retried), request)
                return self._finish(key, response, record)
            finally:
                IN_FLIGHT.settle(key, lead, response)

    def _cache_key(self, request: Request, choice: bool | None) -> str | None:
        if not wants_cache(request, self.cache if choice is None else choice):
            return None
        return request_key(self.provider.name, self.provider.endpoint, request)

    def _span(self, request: Request) -> Any:
        return llm_span("chat", self.provider.name, self.model, request_attributes(request))

    def _longest_wait(self) -> float:
        """How long a waiter trusts the first call: every attempt timing out, plus back-off."""
        attempts = self.retry.retries + 1
        return attempts * (self.timeout + self.retry.max_delay)

    def _shared(self, answer: Response, record: CallRecord) -> Response:
        hit = answer.from_cache()
        record.answered(hit)
        return hit

    def _cached(self, key: str | None, record: CallRecord) -> Response | None:
        if key is None:
            return None
        found = self._cache_store.get(key)
        if found is None:
            return None
        hit = found.from_cache()
        record.answered(hit)
        return hit

    def _finish(self, key: str | None, response: Response, record: CallRecord) -> Response:
        if key is not None:
            self._cache_store.put(key, response)
        record.answered(response)
        return response

    # --- embeddings ----------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""
        texts = _texts(texts)
        with self._embedding_span(texts) as record:

            def attempt() -> tuple[list[list[float]], Usage]:
                with self._limiter.hold():
                    return self.provider.embed(self.model, texts, self.timeout)

            vectors, usage = self.retry.call(attempt, record.retried)
            record.set(usage_attributes(self._embedding_cost(usage)))
            return vectors

    async def aembed(self, texts: Sequence[str]) -> list[list[float]]:
        texts = _texts(texts)
        with self._embedding_span(texts) as record:

            async def attempt() -> tuple[list[list[float]], Usage]:
                async with self._limiter.ahold():
                    return await self.provider.aembed(self.model, texts, self.timeout)

            vectors, usage = await self.retry.acall(attempt, record.retried)
            record.set(usage_attributes(self._embedding_cost(usage)))
            return vectors

    def _embedding_span(self, texts: Sequence[str]) -> Any:
        return llm_span(
            "embeddings", self.provider.name, self.model, {"assay.input": texts}, "embedding"
        )

    def _embedding_cost(self, usage: Usage) -> Usage:
        if usage.cost is not None:
            return usage
        cost = DEFAULT_PRICES.cost(
            self.model, self.provider.name, usage.input_tokens, usage.output_tokens
        )
        return dataclasses.replace(usage, cost=cost)


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise UserError("embed() takes a list of texts; wrap a single text in a list")
    found = list(texts)
    if not all(isinstance(text, str) for text in found):
        raise UserError("embed() takes texts (str) only")
    return found
