"""Retries with back-off on rate limits and server errors, honouring Retry-After; and a cap on
concurrent calls per provider endpoint.

The SDKs' own retries are turned off (``max_retries=0``) so that the policy is ours, the same
for every provider, and testable.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from assay.models._types import ModelError

T = TypeVar("T")

#: HTTP statuses worth another try: time-out, conflict, rate limit, and any server error.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, else ``retry-after`` in seconds or as
    an HTTP date."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, waiting ``base_delay * 2**attempt`` seconds
    (with jitter, at most ``max_delay``) or what Retry-After asks (also at most ``max_delay``)."""

    retries: int = 4
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, error: ModelError) -> float:
        if error.retry_after is not None:
            return min(error.retry_after, self.max_delay)
        backoff = self.base_delay * 2**attempt
        # Full jitter on the upper half, so parallel callers do not retry in lockstep.
        return float(min(self.max_delay, backoff * (0.5 + random.random() / 2)))

    def should_retry(self, attempt: int, error: ModelError) -> bool:
        return error.retryable and attempt < self.retries

    def call(self, attempt_once: Callable[[], T], on_retry: Callable[[int], None]) -> T:
        attempt = 0
        while True:
            try:
                return attempt_once()
            except ModelError as error:
                if not self.should_retry(attempt, error):
                    raise
                time.sleep(self.delay(attempt, error))
                attempt += 1
                on_retry(attempt)

    async def acall(
        self, attempt_once: Callable[[], Awaitable[T]], on_retry: Callable[[int], None]
    ) -> T:
        attempt = 0
        while True:
            try:
                return await attempt_once()
            except ModelError as error:
                if not self.should_retry(attempt, error):
                    raise
                await asyncio.sleep(self.delay(attempt, error))
                attempt += 1
                on_retry(attempt)


class Limiter:
    """At most ``capacity`` calls in flight: across threads for sync calls, and within each
    event loop for async calls (an asyncio semaphore belongs to one loop)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._threads = threading.BoundedSemaphore(capacity)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._threads:
            yield

    @asynccontextmanager
    async def ahold(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        with self._lock:
            semaphore = self._loops.get(loop)
            if semaphore is None:
                semaphore = self._loops[loop] = asyncio.Semaphore(self.capacity)
        async with semaphore:
            yield


_LIMITERS: dict[Any, Limiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(key: Any, capacity: int) -> Limiter:
    """The limiter shared by every model with the same ``key`` (provider, endpoint and cap), so
    all judges on one endpoint share one cap."""
    with _LIMITERS_LOCK:
        found = _LIMITERS.get(key)
        if found is None:
            found = _LIMITERS[key] = Limiter(capacity)
        return found
