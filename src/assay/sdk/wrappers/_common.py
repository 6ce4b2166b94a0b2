"""What the client wrappers share: one span per model call, and streams that end it.

A wrapper replaces one method on one client *instance* (``client.chat.completions.create``) by a
function that opens a span, calls the original, and reads the result into OpenTelemetry GenAI
attributes (``gen_ai.*``). A streamed result is handed back inside a proxy that reads each item as
the application consumes it and ends the span when the stream is exhausted, closed or dropped.

Instrumentation never hurts the application: reading requests and responses is guarded, and the
original call's result or exception reaches the caller untouched.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from assay.sdk._prompts import PROMPT_NAME, PROMPT_VERSION, prompt_of
from assay.sdk._serialize import to_json
from assay.sdk._spans import _masked
from assay.sdk._state import STATE

log = logging.getLogger("assay.sdk")

WRAPPED = "__assay_wrapped__"
#: Attributes that carry what a user or a model wrote: masked and bounded like ``Span.log``.
CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "assay.input",
        "assay.output",
    }
)
#: Request parameters that map one to one onto ``gen_ai.request.*`` attributes.
NUMERIC_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "dimensions": "gen_ai.embeddings.dimension.count",
}
LARGE_BLOB_CHARS = 1024
MAX_PLAIN_DEPTH = 30
_SENTINELS = frozenset({"NotGiven", "Omit"})


# --- reading SDK objects ---------------------------------------------------------------------


def given(value: Any) -> bool:
    """False for None and for the client libraries' "not given" / "omit" sentinels."""
    return value is not None and type(value).__name__ not in _SENTINELS


def field(obj: Any, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``; None where a step is missing. Reads models and dicts."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return obj if given(obj) else None


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-shaped copy of a request or response value (pydantic models, TypedDicts, lists)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth > MAX_PLAIN_DEPTH:
        return "…[too deep]"
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:
            return repr(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, depth + 1) for k, v in value.items() if given(v)}
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value]
    return value


def as_list(value: Any) -> list[Any] | None:
    """The items of a list or tuple; None for anything else (a generator is never consumed)."""
    return list(value) if isinstance(value, list | tuple) else None


def number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def json_value(text: Any) -> Any:
    """Tool-call arguments arrive as JSON text: parse them when they parse."""
    if isinstance(text, str) and text[:1] in ("{", "["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    return plain(text)


# --- OpenTelemetry GenAI message parts -------------------------------------------------------


def text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": json_value(arguments)}


def tool_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": plain(response)}


def reasoning_part(text: Any) -> dict[str, Any]:
    return {"type": "reasoning", "content": text}


def generic_part(value: Any) -> dict[str, Any]:
    """A part of a kind OpenTelemetry does not name: kept as the provider sent it."""
    copied = plain(value)
    return copied if isinstance(copied, dict) else {"type": "unknown", "content": copied}


def blob_part(modality: str, mime_type: Any, data: Any) -> dict[str, Any]:
    """Inline media; large payloads are left out so the messages stay readable JSON."""
    content = data
    if isinstance(data, str) and len(data) > LARGE_BLOB_CHARS:
        content = f"<{len(data)} chars of base64 omitted>"
    return {"type": "blob", "modality": modality, "mime_type": mime_type, "content": content}


def uri_part(modality: str, uri: Any) -> dict[str, Any]:
    if isinstance(uri, str) and uri.startswith("data:"):
        header, _, data = uri.partition(",")
        return blob_part(modality, header[5:].split(";")[0] or None, data)
    return {"type": "uri", "modality": modality, "uri": uri}


def message(role: Any, parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": role, "parts": parts}
    out.update((k, v) for k, v in extra.items() if v is not None)
    return out


def function_definition(name: Any, description: Any, parameters: Any) -> dict[str, Any]:
    definition = {"type": "function", "name": name}
    if description:
        definition["description"] = description
    if parameters is not None:
        definition["parameters"] = plain(parameters)
    return definition


def request_parameters(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``gen_ai.request.*`` from the call's keyword arguments."""
    attributes: dict[str, Any] = {}
    for name, key in NUMERIC_PARAMETERS.items():
        value = number(kwargs.get(name))
        if value is not None:
            attributes[key] = value
    for name in ("stop", "stop_sequences"):
        stop = kwargs.get(name)
        if isinstance(stop, str):
            attributes["gen_ai.request.stop_sequences"] = [stop]
        elif isinstance(stop, list | tuple):
            attributes["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
    return attributes


# --- spans -----------------------------------------------------------------------------------


def _encode_content(value: Any) -> str:
    return to_json(_masked(value), STATE.max_value_chars)


def set_attributes(span: trace.Span, attributes: Mapping[str, Any]) -> None:
    """Set each attribute; content is masked and bounded, other structures become JSON."""
    for key, value in attributes.items():
        if value is None:
            continue
        try:
            if key in CONTENT_KEYS:
                span.set_attribute(key, _encode_content(value))
            elif isinstance(value, str | bool | int | float):
                span.set_attribute(key, value)
            elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                span.set_attribute(key, list(value))
            else:
                span.set_attribute(key, to_json(value, STATE.max_value_chars))
        except Exception:
            log.debug("Assay: could not record attribute %s", key, exc_info=True)


def safe_read(what: str, read: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    try:
        return read()
    except Exception:
        log.debug("Assay: could not read the %s of a model call", what, exc_info=True)
        return {}


class LlmCall:
    """The span of one model call: started before the request, ended exactly once."""

    __slots__ = ("_ended", "_first_output_ns", "_started_ns", "span")

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self._started_ns = time.monotonic_ns()
        self._first_output_ns: int | None = None
        self._ended = False

    @classmethod
    def start(cls, name: str, attributes: Mapping[str, Any]) -> LlmCall | None:
        tracer = STATE.tracer
        if tracer is None:
            return None
        try:
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        except Exception:
            log.debug("Assay: could not start span %r", name, exc_info=True)
            return None
        if not span.is_recording():
            return None
        return cls(span)

    def activate(self) -> object:
        """Make the span current, so spans made during the request nest under it."""
        try:
            return otel_context.attach(trace.set_span_in_context(self.span))
        except Exception:
            log.debug("Assay: context attach failed", exc_info=True)
            return None

    def deactivate(self, token: object) -> None:
        if token is None:
            return
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:
            log.debug("Assay: context detach failed", exc_info=True)

    def output_started(self) -> None:
        if self._first_output_ns is None:
            self._first_output_ns = time.monotonic_ns()

    @property
    def ended(self) -> bool:
        return self._ended

    def end(
        self,
        read: Callable[[], Mapping[str, Any]] | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Record what the call returned (or how it failed) and end the span; once only."""
        if self._ended:
            return
        self._ended = True
        span = self.span
        if read is not None:
            set_attributes(span, safe_read("response", read))
        if self._first_output_ns is not None:
            elapsed_ms = (self._first_output_ns - self._started_ns) / 1e6
            set_attributes(span, {"assay.time_to_first_token_ms": round(elapsed_ms, 3)})
        try:
            if error is not None:
                span.record_exception(error)
                span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(error)[:1000]))
            span.end()
            context = span.get_span_context()
            STATE.remember(context.span_id, context.trace_id)
        except Exception:
            log.debug("Assay: could not end a model call's span", exc_info=True)


# --- operations ------------------------------------------------------------------------------


class StreamRecorder(Protocol):
    """Accumulates a streamed response, item by item."""

    def observe(self, item: Any) -> bool:
        """Take one item; True when it carries generated output (for time to first token)."""
        ...

    def attributes(self) -> Mapping[str, Any]:
        """The response attributes that the items seen so far make."""
        ...


@dataclass(frozen=True, slots=True)
class Operation:
    """One kind of model call: how to name its span and read its request and response."""

    name: str
    provider: str
    span_type: str
    request: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    response: Callable[[Any], Mapping[str, Any]]
    recorder: Callable[[], StreamRecorder] | None = None

    def begin(self, kwargs: Mapping[str, Any]) -> LlmCall | None:
        model = kwargs.get("model")
        attributes: dict[str, Any] = {
            "assay.span.type": self.span_type,
            "gen_ai.operation.name": self.name,
            "gen_ai.provider.name": self.provider,
        }
        if isinstance(model, str):
            attributes["gen_ai.request.model"] = model
        attributes.update(safe_read("prompt", lambda: _prompt_attributes(kwargs)))
        name = f"{self.name} {model}" if isinstance(model, str) else self.name
        call = LlmCall.start(name, attributes)
        if call is not None:  # read the request only for a span that records
            set_attributes(call.span, safe_read("request", lambda: self.request(kwargs)))
        return call

    def settle(self, call: LlmCall, result: Any, kwargs: Mapping[str, Any]) -> Any:
        """The value to hand back: the result itself, or a traced proxy of a stream."""
        try:
            if self.recorder is not None and kwargs.get("stream") is True:
                if hasattr(result, "__anext__"):
                    return TracedAsyncStream(result, call, self.recorder())
                if hasattr(result, "__next__"):
                    return TracedStream(result, call, self.recorder())
            call.end(lambda: self.response(result))
        except Exception:
            log.debug("Assay: could not trace a model call's result", exc_info=True)
            call.end()
        return result


def _prompt_attributes(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The registry prompt the call's messages were rendered from (`assay.prompt`)."""
    found = prompt_of(kwargs)
    if found is None:
        return {}
    return {PROMPT_NAME: found[0], PROMPT_VERSION: found[1]}


def is_async(function: Any) -> bool:
    """True for ``async def`` methods, also behind a sync decorator that kept ``__wrapped__``."""
    try:
        return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            inspect.unwrap(function)
        )
    except Exception:
        return False


def traced_method(original: Callable[..., Any], operation: Operation) -> Callable[..., Any]:
    """``original`` (a bound method, sync or async) with one span per call."""
    if is_async(original):

        @functools.wraps(original)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            if STATE.tracer is None:
                return await original(*args, **kwargs)
            call = operation.begin(kwargs)
            if call is None:
                return await original(*args, **kwargs)
            token = call.activate()
            try:
                result = await original(*args, **kwargs)
            except BaseException as error:
                call.end(error=error)
                raise
            finally:
                call.deactivate(token)
            return operation.settle(call, result, kwargs)

        return traced_async

    @functools.wraps(original)
    def traced_sync(*args: Any, **kwargs: Any) -> Any:
        if STATE.tracer is None:
            return original(*args, **kwargs)
        call = operation.begin(kwargs)
        if call is None:
            return original(*args, **kwargs)
        token = call.activate()
        try:
            result = original(*args, **kwargs)
        except BaseException as error:
            call.end(error=error)
            raise
        finally:
            call.deactivate(token)
        return operation.settle(call, result, kwargs)

    return traced_sync


def instrumenting(operation: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return lambda original: traced_method(original, operation)


def patch(owner: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace ``owner.name`` on this instance by ``make(original)``, once."""
    try:
        original = getattr(owner, name, None)
        if not callable(original) or getattr(original, WRAPPED, False):
            return
        replacement = make(original)
        setattr(replacement, WRAPPED, True)
        setattr(owner, name, replacement)
    except Exception:
        log.debug("Assay: could not instrument %s", name, exc_info=True)


def resource(client: Any, *path: str) -> Any:
    """``client.chat.completions`` and the like; None when this client has no such resource."""
    try:
        return field(client, *path)
    except Exception:
        return None


def rewrapping(wrap: Callable[[Any], Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For ``client.with_options(...)`` / ``client.copy(...)``: the new client is wrapped too."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def copied(*args: Any, **kwargs: Any) -> Any:
            return wrap(original(*args, **kwargs))

        return copied

    return make


# --- streams ---------------------------------------------------------------------------------


class _StreamProxy:
    """What both stream proxies share: attribute passthrough and ending the span once."""

    __slots__ = ("_assay_call", "_assay_recorder", "_assay_stream")

    def __init__(self, stream: Any, call: LlmCall, recorder: StreamRecorder) -> None:
        self._assay_stream = stream
        self._assay_call = call
        self._assay_recorder = recorder

    @property  # type: ignore[misc]
    def __class__(self) -> type[Any]:
        """The wrapped stream's class, so ``isinstance(proxy, openai.Stream)`` still holds."""
        return type(self._assay_stream)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_assay_"):
            raise AttributeError(name)
        return getattr(self._assay_stream, name)

    def __repr__(self) -> str:
        return repr(self._assay_stream)

    def _assay_observe(self, item: Any) -> None:
        try:
            if self._assay_recorder.observe(item):
                self._assay_call.output_started()
        except Exception:
            log.debug("Assay: could not read a streamed item", exc_info=True)

    def _assay_finish(self, error: BaseException | None = None) -> None:
        self._assay_call.end(self._assay_recorder.attributes, error)

    def __del__(self) -> None:
        # A stream dropped half-read still ends its span, with what it had produced.
        try:
            call = self._assay_call
        except AttributeError:
            return
        if not call.ended:
            self._assay_finish()


class TracedStream(_StreamProxy):
    """A synchronous stream that iterates, closes and answers like the one it wraps."""

    __slots__ = ()

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._assay_stream)
        except StopIteration:
            self._assay_finish()
            raise
        except BaseException as error:
            self._assay_finish(error)
            raise
        self._assay_observe(item)
        return item

    def __enter__(self) -> TracedStream:
        enter = getattr(self._assay_stream, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            leave = getattr(self._assay_stream, "__exit__", None)
            return leave(exc_type, exc, tb) if leave is not None else None
        finally:
            self._assay_finish()

    def close(self) -> None:
        try:
            self._assay_stream.close()
        finally:
            self._assay_finish()


class TracedAsyncStream(_StreamProxy):
    """An asynchronous stream that iterates, closes and answers like the one it wraps."""

    __slots__ = ()

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._assay_stream.__anext__()
        except StopAsyncIteration:
            self._assay_finish()
            raise
        except BaseException as error:
            self._assay_finish(error)
            raise
        self._assay_observe(item)
        return item

    async def __aenter__(self) -> TracedAsyncStream:
        enter = getattr(self._assay_stream, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        try:
            leave = getattr(self._assay_stream, "__aexit__", None)
            return await leave(exc_type, exc, tb) if leave is not None else None
        finally:
            self._assay_finish()

    async def close(self) -> None:
        try:
            await self._assay_stream.close()
        finally:
            self._assay_finish()
