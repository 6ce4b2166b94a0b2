"""`@assay.traced`, `assay.span(...)` and the span handle with `.log()`."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from assay.sdk._serialize import to_json
from assay.sdk._state import STATE

log = logging.getLogger("assay.sdk")

P = ParamSpec("P")
R = TypeVar("R")
SPAN_TYPES = ("llm", "tool", "agent", "retrieval", "task", "scorer", "embedding", "chain")
MAX_COLLECTED_ITEMS = 1_000


def _safe(what: str, action: Callable[[], None]) -> None:
    """Run instrumentation code; a bug in it must never reach the application."""
    try:
        action()
    except Exception:
        log.debug("Assay: %s failed", what, exc_info=True)


def _masked(value: Any) -> Any:
    mask = STATE.mask
    if mask is None:
        return value
    try:
        return mask(value)
    except Exception:
        log.debug("Assay: the mask function failed; value withheld", exc_info=True)
        return "<masking failed>"


class Span:
    """A handle on the current span: `.log(...)` what it did. A no-op when tracing is off."""

    __slots__ = ("_span",)

    def __init__(self, span: trace.Span | None) -> None:
        self._span = span if span is not None and span.is_recording() else None

    @property
    def recording(self) -> bool:
        return self._span is not None

    @property
    def trace_id(self) -> str | None:
        return format(self._span.get_span_context().trace_id, "032x") if self._span else None

    @property
    def span_id(self) -> str | None:
        return format(self._span.get_span_context().span_id, "016x") if self._span else None

    @property
    def otel_span(self) -> trace.Span | None:
        return self._span

    def log(
        self,
        *,
        input: Any = None,
        output: Any = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        metrics: Mapping[str, float] | None = None,
        **attributes: Any,
    ) -> None:
        """Record input, output, metadata, tags or numeric metrics on this span."""
        span = self._span
        if span is None:
            return
        _safe("span.log", lambda: _log(span, input, output, metadata, tags, metrics, attributes))

    def set_error(self, error: BaseException | str) -> None:
        span = self._span
        if span is None:
            return

        def record() -> None:
            if isinstance(error, BaseException):
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)[:1000]))

        _safe("span.set_error", record)


def _log(
    span: trace.Span,
    input_value: Any,
    output_value: Any,
    metadata: Mapping[str, Any] | None,
    tags: Sequence[str] | None,
    metrics: Mapping[str, float] | None,
    attributes: Mapping[str, Any],
) -> None:
    limit = STATE.max_value_chars
    if input_value is not None:
        span.set_attribute("assay.input", to_json(_masked(input_value), limit))
    if output_value is not None:
        span.set_attribute("assay.output", to_json(_masked(output_value), limit))
    if metadata:
        span.set_attribute("assay.metadata", to_json(_masked(dict(metadata)), limit))
    if tags:
        span.set_attribute("assay.tags", [str(tag) for tag in tags])
    if metrics:
        for name, value in metrics.items():
            key = f"assay.usage.{name}" if name.endswith("_tokens") else f"assay.metrics.{name}"
            if name == "cost":
                key = "assay.cost"
            span.set_attribute(key, float(value) if not isinstance(value, int) else value)
    for key, value in attributes.items():
        if isinstance(value, str | bool | int | float):
            span.set_attribute(key, value)
        else:
            span.set_attribute(key, to_json(value, limit))


class _SpanContext(AbstractContextManager[Span]):
    """`with assay.span(name, type=...) as span:`; exceptions are recorded and re-raised."""

    __slots__ = ("_attributes", "_cm", "_name", "_span")

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self._name = name
        self._attributes = attributes
        self._cm: AbstractContextManager[trace.Span] | None = None
        self._span = Span(None)

    def __enter__(self) -> Span:
        tracer = STATE.tracer
        if tracer is None:
            return self._span
        try:
            self._cm = tracer.start_as_current_span(
                self._name,
                attributes=self._attributes,
                record_exception=True,
                set_status_on_exception=True,
            )
            self._span = Span(self._cm.__enter__())
        except Exception:
            log.debug("Assay: could not start span %r", self._name, exc_info=True)
            self._cm = None
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        cm = self._cm
        if cm is None:
            return None
        span = self._span
        if span.trace_id and span.span_id:
            STATE.remember(span.span_id, span.trace_id)
        try:
            cm.__exit__(exc_type, exc, tb)
        except Exception:
            # Never swallow or replace the application's exception with ours.
            if exc is None:
                log.debug("Assay: could not end span %r", self._name, exc_info=True)
        return None


def span(name: str, *, type: str = "task", **attributes: Any) -> _SpanContext:
    """A span around a block: ``with assay.span("retrieve", type="retrieval") as s: ...``."""
    return _SpanContext(name, {"assay.span.type": type, **attributes})


def current_span() -> Span:
    """The span currently active (from Assay or any OpenTelemetry instrumentation)."""
    return Span(trace.get_current_span())


class _DetachedRun:
    """A span that is made current only around each step of a generator."""

    __slots__ = ("context", "handle", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.handle = Span(span)
        self.context = trace.set_span_in_context(span)

    @classmethod
    def begin(cls, name: str, attributes: dict[str, Any]) -> _DetachedRun | None:
        tracer = STATE.tracer
        if tracer is None:
            return None
        try:
            return cls(tracer.start_span(name, attributes=attributes))
        except Exception:
            log.debug("Assay: could not start span %r", name, exc_info=True)
            return None

    def enter(self) -> object:
        return otel_context.attach(self.context)

    def leave(self, token: object) -> None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:
            log.debug("Assay: context detach failed", exc_info=True)

    def end(self) -> None:
        handle = self.handle
        if handle.span_id and handle.trace_id:
            STATE.remember(handle.span_id, handle.trace_id)
        _safe("span.end", self.span.end)


# --- @traced ---------------------------------------------------------------------------------


def _inputs(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), "kwargs": kwargs}
    arguments = dict(bound.arguments)
    arguments.pop("self", None)
    arguments.pop("cls", None)
    return arguments


@overload
def traced(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def traced(
    *,
    name: str | None = None,
    type: str = "task",
    capture_input: bool = True,
    capture_output: bool = True,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    type: str = "task",
    capture_input: bool = True,
    capture_output: bool = True,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Trace every call of a function: sync, async, generator or async generator.

    Input is the bound arguments, output the return value (or the items a generator yields),
    both bounded in size. Without `assay.init()` the wrapper only calls through.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        return _wrap(fn, name or fn.__qualname__, type, capture_input, capture_output)

    if func is not None:
        return decorate(func)
    return decorate


def _wrap(  # noqa: C901 - four shapes of callable, one small wrapper each
    fn: Callable[P, R], span_name: str, span_type: str, capture_input: bool, capture_output: bool
) -> Callable[P, R]:
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    base_attributes = {"assay.span.type": span_type}
    target: Any = fn  # the four shapes below call it in ways one static type cannot express

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _SpanContext:
        context = _SpanContext(span_name, base_attributes)
        return context

    def record_input(handle: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if capture_input and handle.recording:
            inputs = _inputs(signature, args, kwargs) if signature else list(args)
            handle.log(input=inputs)

    def record_output(handle: Span, value: Any) -> None:
        if capture_output and handle.recording:
            handle.log(output=value)

    # Generators: the span is current only while the generator runs, never between items,
    # so code that consumes the items does not nest its own spans under the generator's.
    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            run = _DetachedRun.begin(span_name, base_attributes)
            generator = target(*args, **kwargs)
            if run is None:
                async for item in generator:
                    yield item
                return
            record_input(run.handle, args, kwargs)
            items: list[Any] = []
            try:
                while True:
                    token = run.enter()
                    try:
                        item = await generator.__anext__()
                    except StopAsyncIteration:
                        break
                    finally:
                        run.leave(token)
                    if len(items) < MAX_COLLECTED_ITEMS:
                        items.append(item)
                    yield item
                record_output(run.handle, items)
            except GeneratorExit:
                record_output(run.handle, items)
                raise
            except BaseException as error:
                run.handle.set_error(error)
                raise
            finally:
                run.end()

        return async_gen_wrapper  # type: ignore[return-value]

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            run = _DetachedRun.begin(span_name, base_attributes)
            generator = target(*args, **kwargs)
            if run is None:
                return (yield from generator)
            record_input(run.handle, args, kwargs)
            items: list[Any] = []
            try:
                while True:
                    token = run.enter()
                    try:
                        item = next(generator)
                    except StopIteration as stop:
                        record_output(run.handle, items)
                        return stop.value
                    finally:
                        run.leave(token)
                    if len(items) < MAX_COLLECTED_ITEMS:
                        items.append(item)
                    yield item
            except GeneratorExit:
                record_output(run.handle, items)
                raise
            except BaseException as error:
                run.handle.set_error(error)
                raise
            finally:
                run.end()

        return gen_wrapper  # type: ignore[return-value]

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if STATE.tracer is None:
                return await target(*args, **kwargs)
            with start(args, kwargs) as handle:
                record_input(handle, args, kwargs)
                result = await target(*args, **kwargs)
                record_output(handle, result)
                return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if STATE.tracer is None:
            return fn(*args, **kwargs)
        with start(args, kwargs) as handle:
            record_input(handle, args, kwargs)
            result = fn(*args, **kwargs)
            record_output(handle, result)
            return result

    return wrapper
