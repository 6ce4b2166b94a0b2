"""What goes into a model call and what comes back, independent of the provider."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from assay.errors import AssayError, UserError

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
#: ``tool_choice`` values that do not name a tool; any other value forces the tool it names.
TOOL_CHOICE_MODES = ("auto", "none", "required")


class ModelError(AssayError):
    """A model call failed: the provider refused it, or it could not be reached.

    ``status_code`` is the HTTP status when there was one (so the eval runner can tell a rate
    limit from a bad request); ``retry_after`` the wait in seconds the provider asked for.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for. ``arguments`` is None when its JSON did not parse; the text
    the model wrote is always in ``raw_arguments``."""

    id: str
    name: str
    arguments: Mapping[str, Any] | None
    raw_arguments: str

    @classmethod
    def from_text(cls, call_id: str, name: str, text: str) -> ToolCall:
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = None
        return cls(call_id, name, parsed if isinstance(parsed, dict) else None, text)


@dataclass(frozen=True)
class Message:
    """One chat message. An assistant message may carry tool calls; a ``tool`` message answers
    the call named by ``tool_call_id``."""

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def of(cls, value: Message | Mapping[str, Any]) -> Message:
        if isinstance(value, Message):
            return value
        role = value.get("role")
        if role not in ROLES:
            raise UserError(f"a message's role must be one of {', '.join(ROLES)}; got {role!r}")
        content = value.get("content")
        if content is not None and not isinstance(content, str):
            raise UserError("message content must be text; pass images and files as text refs")
        calls = tuple(
            call if isinstance(call, ToolCall) else _tool_call_of(call)
            for call in value.get("tool_calls") or ()
        )
        return cls(role, content or "", calls, value.get("tool_call_id"))


def _tool_call_of(value: Mapping[str, Any]) -> ToolCall:
    arguments = value.get("arguments")
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    return ToolCall.from_text(str(value.get("id") or ""), str(value["name"]), text)


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and a JSON schema of arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass(frozen=True)
class Request:
    """A chat request in normal form: what the cache hashes and every provider translates."""

    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    #: A JSON schema the answer's text must follow (structured output).
    response_format: Mapping[str, Any] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise UserError("a model call needs at least one message")
        choice = self.tool_choice
        offered = {tool.name for tool in self.tools}
        if choice is not None and choice not in TOOL_CHOICE_MODES and choice not in offered:
            raise UserError(
                f"tool_choice {choice!r} names no tool offered; offer it in tools=, or use "
                f"one of {', '.join(TOOL_CHOICE_MODES)}"
            )

    @property
    def forced_tool(self) -> str | None:
        choice = self.tool_choice
        return choice if choice is not None and choice not in TOOL_CHOICE_MODES else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one call. ``input_tokens`` includes ``cached_tokens`` (the OpenAI and
    OpenTelemetry convention); ``cost`` is USD, None when the model's price is unknown."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Response:
    """A model's answer: its text, the tools it called, the tokens it used and what it cost.

    ``cache_hit`` is true when the answer came from the on-disk cache; its usage is then zero,
    since nothing was spent.
    """

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    provider: str = ""
    finish_reason: str | None = None
    id: str | None = None
    cache_hit: bool = False

    def tool_call(self, name: str | None = None) -> ToolCall | None:
        """The first call of tool ``name`` (or of any tool)."""
        return next((c for c in self.tool_calls if name is None or c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Response:
        calls = tuple(ToolCall(**call) for call in data.get("tool_calls") or ())
        return cls(
            text=data.get("text") or "",
            tool_calls=calls,
            usage=Usage(**(data.get("usage") or {})),
            model=data.get("model") or "",
            provider=data.get("provider") or "",
            finish_reason=data.get("finish_reason"),
            id=data.get("id"),
            cache_hit=bool(data.get("cache_hit")),
        )

    def from_cache(self) -> Response:
        return replace(self, usage=Usage(cost=0.0), cache_hit=True)


def as_messages(messages: str | Sequence[Message | Mapping[str, Any]]) -> tuple[Message, ...]:
    """A prompt as messages: text is one user message."""
    if isinstance(messages, str):
        return (Message("user", messages),)
    return tuple(Message.of(m) for m in messages)


def as_tools(tools: Sequence[Tool | Mapping[str, Any]] | None) -> tuple[Tool, ...]:
    found = []
    for tool in tools or ():
        if isinstance(tool, Tool):
            found.append(tool)
            continue
        # Accept the OpenAI Chat shape too: {"type": "function", "function": {...}}.
        spec = tool.get("function", tool)
        found.append(
            Tool(
                str(spec["name"]),
                str(spec.get("description") or ""),
                spec.get("parameters") or spec.get("input_schema") or Tool("x").parameters,
            )
        )
    return tuple(found)
