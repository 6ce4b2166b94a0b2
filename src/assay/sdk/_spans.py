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
        model: str | None = None,
        **attributes: Any,
    ) -> None:
        """Record input, output, metadata, tags, numeric metrics (``input_tokens``,
        ``output_tokens``, ``cost``, ...) or the model on this span; other keyword arguments
        become span attributes."""
        span = self._span
        if span is None:
            return
        if model is not None:
            attributes = {**attributes, "assay.model": model}
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


_NO_SPAN = Span(None)


def _remember(span: trace.Span) -> None:
    context = span.get_span_context()
    STATE.remember(context.span_id, context.trace_id)


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
    """`with assay.span(name, type=...) as span:`; exceptions are recorded and re-raised.

    Starts the span and makes it current by hand (start_span + attach) rather than through
    start_as_current_span's two nested generator context managers: same effect, less work on
    every traced call.
    """

    __slots__ = ("_attributes", "_name", "_otel", "_span", "_token")

    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self._name = name
        self._attributes = attributes
        self._otel: trace.Span | None = None
        self._token: object = None
        self._span = _NO_SPAN

    def __enter__(self) -> Span:
        tracer = STATE.tracer
        if tracer is None:
            return self._span
        try:
            otel = tracer.start_span(self._name, attributes=self._attributes)
            self._token = otel_context.attach(trace.set_span_in_context(otel))
            self._otel = otel
            self._span = Span(otel)
        except Exception:
            log.debug("Assay: could not start span %r", self._name, exc_info=True)
            self._otel = None
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        otel = self._otel
        if otel is None:
            return None
        # Never swallow or replace the application's exception with ours.
        try:
            if exc is not None and otel.is_recording():
                otel.record_exception(exc)
                otel.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:1000]))
        except Exception:
            log.debug("Assay: could not record an error on span %r", self._name, exc_info=True)
        # Ending the span comes before any bookkeeping, so no bookkeeping error can lose it.
        _safe("span.end", otel.end)
        _safe("remember span", lambda: _remember(otel))
        try:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        except Exception:
            log.debug("Assay: context detach failed", exc_info=True)
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
        _safe("span.end", self.span.end)
        _safe("remember span", lambda: _remember(self.span))


# --- @traced ---------------------------------------------------------------------------------


def _input_binder(fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A function from a call's (args, kwargs) to {parameter: value}, made once per function.

    For the common signature (plain positional-or-keyword parameters) it zips names with
    arguments; anything else goes through inspect's full binding.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return lambda args, kwargs: {"args": list(args), "kwargs": kwargs}
    parameters = list(signature.parameters.values())
    skip = 1 if parameters and parameters[0].name in ("self", "cls") else 0
    simple = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
    names = tuple(p.name for p in parameters)

    def fast(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = dict(zip(names[skip:], args[skip:], strict=False))
        if kwargs:
            bound.update(kwargs)
        return bound

    def full(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            arguments = dict(signature.bind_partial(*args, **kwargs).arguments)
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}
        arguments.pop("self", None)
        arguments.pop("cls", None)
        return arguments

    return fast if simple else full


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
    bind_inputs = _input_binder(fn)
    base_attributes = {"assay.span.type": span_type}
    target: Any = fn  # the four shapes below call it in ways one static type cannot express

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _SpanContext:
        context = _SpanContext(span_name, base_attributes)
        return context

    def record_input(handle: Span, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        span = handle.otel_span
        if capture_input and span is not None:
            try:
                value = _masked(bind_inputs(args, kwargs))
                span.set_attribute("assay.input", to_json(value, STATE.max_value_chars))
            except Exception:
                log.debug("Assay: could not record input", exc_info=True)

    def record_output(handle: Span, value: Any) -> None:
        span = handle.otel_span
        if capture_output and span is not None:
            try:
                text = to_json(_masked(value), STATE.max_value_chars)
                span.set_attribute("assay.output", text)
            except Exception:
                log.debug("Assay: could not record output", exc_info=True)

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
