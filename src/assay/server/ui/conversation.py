"""Turn a span's input or output into something to read: a conversation, JSON, or text.

LLM spans carry messages in several shapes (OTel GenAI ``parts``, OpenAI ``content`` and
``tool_calls``, Anthropic ``tool_use`` blocks, OpenInference ``contents``, ``choices``
wrappers). They all become :class:`Message` lists here, so the template has one shape to draw.
Everything stays plain data: the template escapes it like any other text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Text past this many characters is cut, with a link to the whole value.
SHOWN_CHARS = 20_000
#: A value longer than this is not parsed for messages unless asked for in full.
PARSED_CHARS = 400_000


@dataclass
class Part:
    kind: str  # text | tool_call | tool_result | data
    text: str = ""
    name: str = ""
    call_id: str = ""


@dataclass
class Message:
    role: str
    parts: list[Part] = field(default_factory=list)
    finish_reason: str = ""


@dataclass
class Shown:
    """A value ready to draw: messages, or text (JSON pretty-printed), and whether it was cut."""

    messages: list[Message] | None
    text: str
    is_json: bool
    size: int
    cut: bool


def _loads(value: str) -> Any:
    stripped = value.strip()
    if stripped[:1] not in ("[", "{"):
        return value
    try:
        return json.loads(stripped)
    except ValueError:
        return value


def pretty(value: Any) -> str:
    if isinstance(value, str):
        parsed = _loads(value)
        if isinstance(parsed, str):
            return parsed
        value = parsed
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _cut(text: str, full: bool) -> str:
    return text if full or len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def show(value: str | None, *, full: bool = False) -> Shown | None:
    """How to draw one input or output column."""
    if value is None or value == "":
        return None
    size = len(value)
    if size > PARSED_CHARS and not full:
        return Shown(None, value[:SHOWN_CHARS] + "…", False, size, True)
    parsed = _loads(value)
    messages = as_messages(parsed, full=full)
    if messages is not None:
        cut = not full and any(len(p.text) > SHOWN_CHARS for m in messages for p in m.parts)
        return Shown(messages, "", False, size, cut)
    if isinstance(parsed, str):
        return Shown(None, _cut(parsed, full), False, size, not full and size > SHOWN_CHARS)
    text = json.dumps(parsed, indent=2, ensure_ascii=False, default=str)
    return Shown(None, _cut(text, full), True, size, not full and len(text) > SHOWN_CHARS)


def _message_list(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            return list(value["messages"])
        if isinstance(value.get("choices"), list):
            return [c.get("message", c) if isinstance(c, dict) else c for c in value["choices"]]
        if "role" in value or isinstance(value.get("message"), dict):
            return [value]
        return None
    if isinstance(value, list) and value:
        return value
    return None


def as_messages(value: Any, *, full: bool = False) -> list[Message] | None:
    """Messages, if ``value`` is a conversation; None for anything else."""
    items = _message_list(value)
    if items is None:
        return None
    out = []
    for item in items:
        if isinstance(item, dict) and "role" not in item and isinstance(item.get("message"), dict):
            item = {**item["message"], "finish_reason": item.get("finish_reason")}
        if isinstance(item, dict) and "role" not in item:
            item = _langchain_message(item)
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return None
        out.append(_message(item, full))
    return out


#: LangChain's message types (``HumanMessage`` is "human", ...) -> the role they stand for.
_LANGCHAIN_ROLES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "function",
    "chat": "user",
    "humanmessage": "user",
    "aimessage": "assistant",
    "aimessagechunk": "assistant",
    "systemmessage": "system",
    "toolmessage": "tool",
    "functionmessage": "function",
}


def _langchain_message(item: dict[str, Any]) -> dict[str, Any]:
    """A LangChain message, in any of the shapes LangChain and LangGraph dump them
    (``{"type": "ai", "content": ...}``, ``{"type": "ai", "data": {...}}``, or serialised:
    ``{"lc": 1, "id": [..., "AIMessage"], "kwargs": {...}}``), as a role message; anything else
    as it is."""
    fields = item
    kind = item.get("type")
    if item.get("lc") is not None and isinstance(item.get("kwargs"), dict):
        fields = item["kwargs"]
        names = item.get("id")
        kind = names[-1] if isinstance(names, list) and names else fields.get("type")
    elif isinstance(item.get("data"), dict):  # messages_to_dict: {"type": "ai", "data": {...}}
        fields = item["data"]
    role = _LANGCHAIN_ROLES.get(str(kind).lower()) if isinstance(kind, str) else None
    if role is None or "content" not in fields:
        return item
    message: dict[str, Any] = {"role": role, "content": fields.get("content")}
    calls = fields.get("tool_calls")
    if isinstance(calls, list) and calls:
        message["tool_calls"] = [
            {"id": c.get("id"), "function": {"name": c.get("name"), "arguments": c.get("args")}}
            for c in calls
            if isinstance(c, dict)
        ]
    if fields.get("tool_call_id"):
        message["tool_call_id"] = fields["tool_call_id"]
    return message


def _text_part(value: Any, full: bool) -> Part:
    if isinstance(value, str):
        return Part("text", _cut(value, full))
    return Part("data", _cut(pretty(value), full))


def _tool_call(call: dict[str, Any], full: bool) -> Part:
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    assert isinstance(function, dict)
    arguments = function.get("arguments", function.get("input", call.get("input")))
    return Part(
        "tool_call",
        _cut(pretty(arguments) if arguments not in (None, "") else "", full),
        name=str(function.get("name") or call.get("name") or "tool"),
        call_id=str(call.get("id") or ""),
    )


def _content_item(item: Any, full: bool) -> Part:
    if not isinstance(item, dict):
        return _text_part(item, full)
    inner = item.get("message_content")  # OpenInference "contents"
    if isinstance(inner, dict):
        item = inner
    kind = str(item.get("type") or "")
    if kind in ("text", "input_text", "output_text") or (not kind and "text" in item):
        return _text_part(item.get("text", item.get("content", "")), full)
    if kind in ("tool_call", "tool_use", "function_call"):
        return _tool_call(item, full)
    if kind in ("tool_call_response", "tool_result", "function_call_output"):
        result = item.get("response", item.get("result", item.get("content", item.get("output"))))
        call_id = item.get("id") or item.get("tool_use_id") or item.get("call_id") or ""
        return Part("tool_result", _cut(pretty(result), full), call_id=str(call_id))
    if kind == "reasoning" or kind == "thinking":
        said = item.get("content") or item.get("thinking") or item.get("text") or ""
        return Part("text", _cut(str(said), full))
    return Part("data", _cut(pretty(item), full))


def _message(item: dict[str, Any], full: bool) -> Message:
    role = str(item["role"])
    message = Message(role=role, finish_reason=str(item.get("finish_reason") or ""))
    parts = message.parts
    for key in ("parts", "contents"):
        if isinstance(item.get(key), list):
            parts.extend(_content_item(p, full) for p in item[key])
    content = item.get("content")
    if isinstance(content, list):
        parts.extend(_content_item(p, full) for p in content)
    elif content not in (None, ""):
        parts.append(_text_part(content, full))
    calls = item.get("tool_calls")
    if isinstance(calls, list):
        parts.extend(_tool_call(c, full) for c in calls if isinstance(c, dict))
    if isinstance(item.get("function_call"), dict):
        parts.append(_tool_call(item["function_call"], full))
    if role == "tool" and parts and item.get("tool_call_id"):
        for part in parts:
            if part.kind in ("text", "data"):
                part.kind = "tool_result"
                part.call_id = str(item["tool_call_id"])
    return message
