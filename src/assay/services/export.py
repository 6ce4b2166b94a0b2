"""Export: a dataset version, or the traces of a filter that carry a person's label, as
fine-tuning files (OpenAI's chat format, Anthropic's message format) or as records (JSON lines,
CSV).

A record becomes a conversation: its input's chat messages (a plain-text input is one user
message), then its expected answer as the assistant's last turn. Messages are read in the
shapes Assay stores them (OpenAI ``content``/``tool_calls``, Anthropic ``tool_use`` and
``tool_result`` blocks, OpenTelemetry GenAI ``parts``, OpenInference ``contents``). Reasoning
parts are left out (neither format trains on them).

Every line written is checked by this module's validators (:func:`validate_openai_chat`,
:func:`validate_anthropic`): allowed roles, message order, every tool call answered by its
result, no empty content. A record that cannot become a valid line — no expected answer, an
empty one, one that is not text or assistant messages, a bad role order — is skipped and
reported with its id and the reason; nothing is dropped silently. Exports stream: records are
read a page at a time and written a line at a time.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return) are written with a leading apostrophe, and so are cells that start
with an apostrophe, so :func:`csv_value` reads every cell back exactly.

Viewers may export: they can read every record through the API already, so an export shows
them nothing new.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.errors import NotFound, UserError
from assay.services.filters import InvalidFilters, parse_filters
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.store import datasets as dataset_store
from assay.store import export as export_store
from assay.store.database import Database

FORMATS = ("openai-chat", "anthropic", "jsonl", "csv")
CONVERSATION_FORMATS = ("openai-chat", "anthropic")
MEDIA_TYPES = {
    "openai-chat": "application/x-ndjson",
    "anthropic": "application/x-ndjson",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
}
SUFFIXES = {
    "openai-chat": "openai.jsonl",
    "anthropic": "anthropic.jsonl",
    "jsonl": "jsonl",
    "csv": "csv",
}
#: The span of a trace an export reads: the last model call, or the root span.
SPANS = ("llm", "root")
#: Records read per transaction.
PAGE = 500
#: A report lists this many skipped records by id; its counts cover all of them.
REPORT_LISTED = 10_000
#: Columns of a records export (the fields ``assay datasets push`` reads).
RECORD_FIELDS = (
    "record_id",
    "input",
    "expected",
    "metadata",
    "tags",
    "source_trace_id",
    "source_span_id",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}
TEXT_PARTS = ("text", "input_text", "output_text", "refusal")
CALL_PARTS = ("tool_call", "tool_use", "function_call")
RESULT_PARTS = ("tool_call_response", "tool_result", "function_call_output")
REASONING_PARTS = ("reasoning", "thinking", "redacted_thinking")


class Unusable(Exception):
    """A record that cannot become a training example; the message says why."""


# --- conversations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI carries it


@dataclass
class Turn:
    role: str  # system | user | assistant | tool
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    call_id: str = ""


@dataclass
class Conversation:
    turns: list[Turn]
    #: Tools offered: ``name``, ``description``, ``parameters`` (a JSON schema).
    tools: list[dict[str, Any]] = field(default_factory=list)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _message_list(value: Any) -> list[Any] | None:
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list):
            return list(value["messages"])
        if isinstance(value.get("choices"), list):
            return [c.get("message", c) if isinstance(c, dict) else c for c in value["choices"]]
        if "role" in value:
            return [value]
        return None
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(m, dict) and ("role" in m or isinstance(m.get("message"), dict))
            for m in value
        )
    ):
        return value
    return None


def _call(raw: Mapping[str, Any]) -> Call:
    function = raw.get("function") if isinstance(raw.get("function"), dict) else raw
    assert isinstance(function, Mapping)
    arguments = function.get("arguments", function.get("input", raw.get("input")))
    if arguments is None or arguments == "":
        text = "{}"
    elif isinstance(arguments, str):
        text = arguments
    else:
        text = _json_text(arguments)
    name = function.get("name") or raw.get("name") or ""
    call_id = raw.get("id") or raw.get("call_id") or ""
    return Call(str(call_id), str(name), text)


def _result_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in value
    ):
        return "\n".join(str(b.get("text", "")) for b in value)
    return "" if value is None else _json_text(value)


class _Parts:
    """The text, tool calls and tool results of one message's parts."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.texts: list[str] = []
        self.calls: list[Call] = []
        self.results: list[tuple[str, str]] = []

    def take(self, part: Any) -> None:
        if isinstance(part, str):
            self.texts.append(part)
            return
        if not isinstance(part, dict):
            self.texts.append(_json_text(part))
            return
        kind = str(part.get("type") or ("text" if "text" in part else ""))
        if kind in TEXT_PARTS:
            said = part.get("text", part.get("content", part.get("refusal", "")))
            self.texts.append(said if isinstance(said, str) else _json_text(said))
        elif kind in CALL_PARTS:
            self.calls.append(_call(part))
        elif kind in RESULT_PARTS:
            said = part.get("response", part.get("result", part.get("content", part.get("output"))))
            call_id = part.get("id") or part.get("tool_use_id") or part.get("call_id") or ""
            self.results.append((str(call_id), _result_text(said)))
        elif kind not in REASONING_PARTS:
            raise Unusable(f"{self.where}: a part of type {kind or 'unknown'!r} is not text")

    def take_message(self, message: Mapping[str, Any]) -> None:
        parts = next(
            (
                message[key]
                for key in ("parts", "contents", "content")
                if message.get(key) is not None
            ),
            None,
        )
        for part in parts if isinstance(parts, list) else [] if parts is None else [parts]:
            self.take(part)
        for raw in message.get("tool_calls") or []:
            if isinstance(raw, dict):
                self.calls.append(_call(raw))
        if isinstance(message.get("function_call"), dict):
            self.calls.append(_call(message["function_call"]))


def _turns_of(message: Any, where: str) -> list[Turn]:
    """One stored message as turns: an Anthropic user message of tool results is one tool turn
    per result (then a user turn for any text)."""
    if not isinstance(message, dict):
        raise Unusable(f"{where} is not a message object")
    if "role" not in message and isinstance(message.get("message"), dict):
        message = message["message"]
    given = message.get("role")
    role = ROLES.get(given.lower()) if isinstance(given, str) else None
    if role is None:
        raise Unusable(f"{where}: role {given!r} is not one of system, user, assistant, tool")
    parts = _Parts(where)
    parts.take_message(message)
    text = "\n".join(parts.texts)
    results = [Turn("tool", said, call_id=call_id) for call_id, said in parts.results]
    if role == "tool":
        call_id = message.get("tool_call_id") or message.get("id") or ""
        return results or [Turn("tool", text, call_id=str(call_id))]
    if parts.calls and role != "assistant":
        raise Unusable(f"{where}: a {role} message calls tools; only the assistant may")
    if role == "user" and results and not text:
        return results
    return [*results, Turn(role, text, parts.calls)]


def _tools_of(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    tools = []
    for raw in value:
        if not isinstance(raw, dict):
            continue
        function = raw.get("function") if isinstance(raw.get("function"), dict) else raw
        assert isinstance(function, dict)
        if not function.get("name"):
            continue
        schema = function.get("parameters", function.get("input_schema"))
        tools.append(
            {
                "name": str(function["name"]),
                "description": str(function.get("description") or ""),
                "parameters": schema
                if isinstance(schema, dict)
                else {"type": "object", "properties": {}},
            }
        )
    return tools


def _input_turns(value: Any) -> tuple[list[Turn], list[dict[str, Any]]]:
    if isinstance(value, str):
        if not value.strip():
            raise Unusable("the input is empty")
        return [Turn("user", value)], []
    messages = _message_list(value)
    if messages is None:
        raise Unusable(
            "the input is neither text nor chat messages (give a text, a list of messages, "
            'or {"messages": [...]})'
        )
    turns: list[Turn] = []
    if isinstance(value, dict) and isinstance(value.get("system"), str | list):
        system = value["system"]
        turns.append(Turn("system", system if isinstance(system, str) else _result_text(system)))
    for i, message in enumerate(messages):
        turns.extend(_turns_of(message, f"input message {i + 1}"))
    return turns, _tools_of(value.get("tools") if isinstance(value, dict) else None)


def _expected_turns(value: Any) -> list[Turn]:
    if value is None:
        raise Unusable("no expected answer")
    if isinstance(value, str):
        if not value.strip():
            raise Unusable("the expected answer is empty")
        return [Turn("assistant", value)]
    if isinstance(value, bool | int | float):
        return [Turn("assistant", _json_text(value))]
    messages = _message_list(value)
    if messages is None:
        raise Unusable(
            "the expected answer is a JSON value, not text or assistant messages; "
            "store the answer's text as expected"
        )
    turns: list[Turn] = []
    for i, message in enumerate(messages):
        turns.extend(_turns_of(message, f"expected message {i + 1}"))
    wrong = next((t.role for t in turns if t.role in ("system", "user")), None)
    if wrong is not None:
        raise Unusable(f"the expected answer holds a {wrong} message; only the assistant's")
    return turns


def conversation_of(record: Mapping[str, Any]) -> Conversation:
    """A record as a conversation: its input's messages, then its expected answer as the
    assistant's turn(s); :class:`Unusable` naming why it cannot be one."""
    turns, tools = _input_turns(record.get("input"))
    return Conversation([*turns, *_expected_turns(record.get("expected"))], tools)


# --- OpenAI's chat format ---------------------------------------------------------------------


def openai_chat_line(conversation: Conversation) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for turn in conversation.turns:
        if turn.role == "tool":
            messages.append({"role": "tool", "tool_call_id": turn.call_id, "content": turn.text})
        elif turn.role == "assistant":
            message: dict[str, Any] = {"role": "assistant"}
            if turn.text or not turn.calls:
                message["content"] = turn.text
            if turn.calls:
                message["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in turn.calls
                ]
            messages.append(message)
        else:
            messages.append({"role": turn.role, "content": turn.text})
    line: dict[str, Any] = {"messages": messages}
    if conversation.tools:
        line["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool["description"],
                    "parameters": tool["parameters"],
                },
            }
            for tool in conversation.tools
        ]
    return line


def _nonempty_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list) and value:  # content parts
        return all(
            isinstance(p, dict) and p.get("type") == "text" and _nonempty_text(p.get("text"))
            for p in value
        )
    return False


def _openai_call_problems(call: Any, where: str) -> list[str]:
    if not isinstance(call, dict):
        return [f"{where} is not an object"]
    problems = []
    if not isinstance(call.get("id"), str) or not call["id"]:
        problems.append(f"{where} has no id")
    if call.get("type") != "function":
        problems.append(f"{where}: type must be 'function'")
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        return [*problems, f"{where} names no function"]
    if not function["name"]:
        problems.append(f"{where}: the function's name is empty")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        problems.append(f"{where}: arguments must be JSON text")
    else:
        try:
            json.loads(arguments)
        except ValueError:
            problems.append(f"{where}: arguments are not valid JSON")
    return problems


def _openai_tools_problems(tools: Any) -> list[str]:
    if not isinstance(tools, list):
        return ["tools must be a list"]
    problems = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            problems.append(f"tools[{i}] is not an object")
            continue
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict):
            problems.append(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}")
        elif not isinstance(function.get("name"), str) or not function["name"]:
            problems.append(f"tools[{i}] has no name")
        elif not isinstance(function.get("parameters", {}), dict):
            problems.append(f"tools[{i}]: parameters must be a JSON schema object")
    return problems


@dataclass
class _OpenAIState:
    started: bool = False
    #: Calls of the last assistant message not answered yet.
    open_calls: set[str] = field(default_factory=set)
    seen_calls: set[str] = field(default_factory=set)


def _openai_order_problems(role: str, where: str, state: _OpenAIState) -> list[str]:
    problems = []
    if state.open_calls and role != "tool":
        problems.append(
            f"{where}: tool call(s) {', '.join(sorted(state.open_calls))} have no tool message "
            "answering them"
        )
        state.open_calls = set()
    if role == "system":
        if state.started:
            problems.append(f"{where}: a system message after the conversation started")
    elif not state.started:
        state.started = True
        if role != "user":
            problems.append(
                f"{where}: the first message after the system prompt must be the user's, "
                f"not the {role}'s"
            )
    return problems


def _openai_assistant_problems(
    message: Mapping[str, Any], where: str, state: _OpenAIState
) -> list[str]:
    problems = []
    content, calls = message.get("content"), message.get("tool_calls")
    if calls is not None and (not isinstance(calls, list) or not calls):
        problems.append(f"{where}: tool_calls must be a non-empty list")
        calls = None
    if content is not None and not isinstance(content, str | list):
        problems.append(f"{where}: content must be text")
    if not _nonempty_text(content) and not calls:
        problems.append(f"{where}: the assistant message has neither text nor tool calls")
    for j, call in enumerate(calls or []):
        found = _openai_call_problems(call, f"{where}.tool_calls[{j}]")
        problems += found
        if not found:
            if call["id"] in state.seen_calls:
                problems.append(f"{where}: tool call id {call['id']!r} is used twice")
            state.seen_calls.add(call["id"])
            state.open_calls.add(call["id"])
    return problems


def _openai_tool_problems(message: Mapping[str, Any], where: str, state: _OpenAIState) -> list[str]:
    problems = []
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        problems.append(f"{where}: a tool message needs a tool_call_id")
    elif call_id not in state.open_calls:
        problems.append(
            f"{where}: tool_call_id {call_id!r} answers no open call of the assistant "
            "message before it"
        )
    else:
        state.open_calls.discard(call_id)
    if not _nonempty_text(message.get("content")):
        problems.append(f"{where}: the tool message has no content")
    return problems


def validate_openai_chat(line: Any) -> list[str]:
    """What is wrong with one line of OpenAI chat fine-tuning JSONL (empty: nothing).

    Roles system, user, assistant, tool; system messages only first; then a user message; an
    assistant's tool calls answered, each once, by the tool messages right after it (only the
    last message may leave its calls open); no empty content; the last message the
    assistant's."""
    if not isinstance(line, dict):
        return ["a line must be a JSON object"]
    problems: list[str] = []
    unknown = set(line) - {"messages", "tools", "parallel_tool_calls"}
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "tools" in line:
        problems += _openai_tools_problems(line["tools"])
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages must be a non-empty list"]
    state = _OpenAIState()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            problems.append(f"{where}: role {role!r} is not system, user, assistant or tool")
            continue
        problems += _openai_order_problems(role, where, state)
        if role == "assistant":
            problems += _openai_assistant_problems(message, where, state)
        elif role == "tool":
            problems += _openai_tool_problems(message, where, state)
        elif not _nonempty_text(message.get("content")):
            problems.append(f"{where}: the {role} message has no text")
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        problems.append("the conversation must end with the assistant's message")
    return problems


def read_openai_chat(line: Mapping[str, Any]) -> Conversation:
    """A line of OpenAI chat JSONL back as a conversation (the inverse of the export)."""
    turns = []
    for message in line["messages"]:
        calls = [
            Call(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []
        ]
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "\n".join(p["text"] for p in content)
        turns.append(Turn(message["role"], content, calls, message.get("tool_call_id") or ""))
    tools = [
        {
            "name": t["function"]["name"],
            "description": t["function"].get("description", ""),
            "parameters": t["function"].get("parameters", {}),
        }
        for t in line.get("tools") or []
    ]
    return Conversation(turns, tools)


# --- Anthropic's message format ---------------------------------------------------------------


def anthropic_line(conversation: Conversation) -> dict[str, Any]:
    """The conversation as ``{"system", "messages"}`` with alternating user and assistant
    messages: tool results are user messages of ``tool_result`` blocks, consecutive messages
    of one role are joined into one. :class:`Unusable` for a system message inside the
    conversation or tool arguments that are not a JSON object."""
    turns = conversation.turns
    leading = 0
    while leading < len(turns) and turns[leading].role == "system":
        leading += 1
    if any(turn.role == "system" for turn in turns[leading:]):
        raise Unusable("a system message inside the conversation (Anthropic has one system prompt)")
    messages: list[dict[str, Any]] = []
    for turn in turns[leading:]:
        blocks: list[dict[str, Any]] = []
        role = "assistant" if turn.role == "assistant" else "user"
        if turn.role == "tool":
            blocks.append(
                {"type": "tool_result", "tool_use_id": turn.call_id, "content": turn.text}
            )
        elif turn.text or not turn.calls:
            blocks.append({"type": "text", "text": turn.text})
        for call in turn.calls:
            try:
                arguments = json.loads(call.arguments)
            except ValueError:
                arguments = None
            if not isinstance(arguments, dict):
                raise Unusable(f"tool call {call.name!r}: its arguments are not a JSON object")
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}
            )
        previous = messages[-1] if messages else None
        # Join a role's consecutive messages, except after tool calls: those must be answered
        # first (the validator then names the calls left open).
        if (
            previous is not None
            and previous["role"] == role
            and not any(b["type"] == "tool_use" for b in previous["content"])
        ):
            previous["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    for message in messages:  # one text block reads best as a string
        content = message["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            message["content"] = content[0]["text"]
    line: dict[str, Any] = {}
    system = "\n\n".join(turn.text for turn in turns[:leading])
    if leading:
        line["system"] = system
    line["messages"] = messages
    if conversation.tools:
        line["tools"] = [
            {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
            for t in conversation.tools
        ]
    return line


def _anthropic_block_problems(block: Any, role: str, where: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"{where} is not a content block"]
    kind = block.get("type")
    if kind == "text":
        return [] if _nonempty_text(block.get("text")) else [f"{where}: the text block is empty"]
    if kind == "tool_use":
        if role != "assistant":
            return [f"{where}: tool_use in a {role} message (only the assistant calls tools)"]
        problems = []
        for key in ("id", "name"):
            if not isinstance(block.get(key), str) or not block[key]:
                problems.append(f"{where}: tool_use has no {key}")
        if not isinstance(block.get("input"), dict):
            problems.append(f"{where}: tool_use input must be a JSON object")
        return problems
    if kind == "tool_result":
        if role != "user":
            return [f"{where}: tool_result in an {role} message (results are the user's)"]
        problems = []
        if not isinstance(block.get("tool_use_id"), str) or not block["tool_use_id"]:
            problems.append(f"{where}: tool_result has no tool_use_id")
        if not _nonempty_text(block.get("content")):
            problems.append(f"{where}: tool_result has no content")
        return problems
    return [f"{where}: block type {kind!r} is not text, tool_use or tool_result"]


def _anthropic_blocks(content: Any) -> list[Any] | None:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list) and content:
        return content
    return None


def _anthropic_pairing_problems(
    blocks: list[Any], where: str, open_calls: set[str], seen_calls: set[str]
) -> list[str]:
    """Tool results first in a user message, each answering an open call once; tool_use ids
    unique."""
    problems = []
    answered: set[str] = set()
    results_done = False
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        block_where = f"{where}.content[{j}]"
        if block.get("type") == "tool_result":
            call_id = str(block.get("tool_use_id"))
            if results_done:
                problems.append(f"{block_where}: tool results must come before other content")
            if call_id not in open_calls:
                problems.append(
                    f"{block_where}: tool_use_id {call_id!r} answers no tool_use of the "
                    "message before it"
                )
            elif call_id in answered:
                problems.append(f"{block_where}: tool_use {call_id!r} is answered twice")
            answered.add(call_id)
            continue
        results_done = True
        if block.get("type") == "tool_use" and isinstance(block.get("id"), str):
            if block["id"] in seen_calls:
                problems.append(f"{block_where}: tool_use id {block['id']!r} is used twice")
            seen_calls.add(block["id"])
    missing = open_calls - answered
    if missing:
        problems.append(
            f"{where}: tool_use {', '.join(sorted(missing))} of the message before has no "
            "tool_result here"
        )
    return problems


def _anthropic_tools_problems(tools: Any) -> list[str]:
    if isinstance(tools, list) and all(
        isinstance(t, dict)
        and isinstance(t.get("name"), str)
        and t["name"]
        and isinstance(t.get("input_schema"), dict)
        for t in tools
    ):
        return []
    return ["tools must be a list of {name, description, input_schema}"]


def validate_anthropic(line: Any) -> list[str]:
    """What is wrong with one line of Anthropic message-format JSONL (empty: nothing).

    An optional non-empty ``system``; ``messages`` alternating user and assistant, starting
    with the user and ending with the assistant; content a non-empty string or non-empty
    blocks (text, tool_use from the assistant, tool_result from the user); every tool_use
    answered by a tool_result in the next user message, which starts with its results, and
    every tool_result answering a tool_use of the message before it (the last message may
    leave its calls open)."""
    if not isinstance(line, dict):
        return ["a line must be a JSON object"]
    problems: list[str] = []
    unknown = set(line) - {"system", "messages", "tools"}
    if unknown:
        problems.append(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "system" in line and not _nonempty_text(line["system"]):
        problems.append("system must be non-empty text")
    problems += _anthropic_tools_problems(line.get("tools", []))
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages must be a non-empty list"]
    open_calls: set[str] = set()
    seen_calls: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            problems.append(f"{where}: role {role!r} is not user or assistant")
            continue
        if role == "assistant" and open_calls:
            problems.append(
                f"{where}: tool_use {', '.join(sorted(open_calls))} of the message before has "
                "no tool_result before this assistant message"
            )
        wanted = "user" if i % 2 == 0 else "assistant"
        if role != wanted:
            problems.append(f"{where}: expected a {wanted} message (roles alternate, user first)")
        blocks = _anthropic_blocks(message.get("content"))
        if blocks is None:
            problems.append(f"{where}: content must be non-empty text or blocks")
            continue
        for j, block in enumerate(blocks):
            problems += _anthropic_block_problems(block, role, f"{where}.content[{j}]")
        problems += _anthropic_pairing_problems(
            blocks, where, open_calls if role == "user" else set(), seen_calls
        )
        open_calls = (
            {
                b["id"]
                for b in blocks
                if isinstance(b, dict)
                and b.get("type") == "tool_use"
                and isinstance(b.get("id"), str)
            }
            if role == "assistant"
            else set()
        )
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        problems.append("the conversation must end with the assistant's message")
    return problems


def read_anthropic(line: Mapping[str, Any]) -> Conversation:
    """A line of Anthropic JSONL back as a conversation (the inverse of the export, up to
    joining consecutive messages of one role)."""
    turns: list[Turn] = []
    if "system" in line:
        turns.append(Turn("system", line["system"]))
    for message in line["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks:
            if block["type"] == "tool_result":
                said = _result_text(block["content"])
                turns.append(Turn("tool", said, call_id=block["tool_use_id"]))
            elif block["type"] == "tool_use":
                call = Call(block["id"], block["name"], _json_text(block["input"]))
                if turns and turns[-1].role == "assistant" and message["role"] == "assistant":
                    turns[-1].calls.append(call)
                else:
                    turns.append(Turn("assistant", "", [call]))
            else:
                turns.append(Turn(message["role"], block["text"]))
    tools = [
        {
            "name": t["name"],
            "description": t.get("description", ""),
            "parameters": t["input_schema"],
        }
        for t in line.get("tools") or []
    ]
    return Conversation(turns, tools)


# --- records: JSON lines and CSV --------------------------------------------------------------


def record_line(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in RECORD_FIELDS}


def formula_safe(text: str) -> str:
    """A CSV cell a spreadsheet will not run: a leading apostrophe before ``= + - @``, a tab,
    a carriage return or an apostrophe (so :func:`csv_value` can undo it exactly)."""
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else _json_text(value)
    return formula_safe(text)


def csv_value(cell: str, column: str) -> Any:
    """A cell of a CSV export back as the value: the apostrophe guard removed; input, expected,
    metadata and tags that hold a JSON object or list read as JSON; an empty cell as None."""
    if cell.startswith("'") and cell[1:].startswith((*FORMULA_STARTS, "'")):
        cell = cell[1:]
    if cell == "":
        return None
    if column in ("input", "expected", "metadata", "tags") and cell.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(cell)
        except ValueError:
            return cell
    return cell


# --- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    """What an export wrote and what it skipped, filled in as its lines are written."""

    format: str
    source: dict[str, Any]
    exported: int = 0
    skipped: int = 0
    skipped_records: list[dict[str, str]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    finished: bool = False

    def skip(self, record_id: str, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] += 1
        if len(self.skipped_records) < REPORT_LISTED:
            self.skipped_records.append({"record_id": record_id, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            **self.source,
            "exported": self.exported,
            "skipped": self.skipped,
            "reasons": dict(self.reasons.most_common()),
            "skipped_records": self.skipped_records,
            "skipped_records_listed": len(self.skipped_records),
            "finished": self.finished,
        }


@dataclass
class Export:
    """A started export: its lines (a generator: nothing is read until they are consumed) and
    the report they fill in."""

    format: str
    filename: str
    media_type: str
    lines: Iterator[str]
    report: Report


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserError(f"format {fmt[:40]!r} is not one of {', '.join(FORMATS)}")
    return fmt


def _lines(fmt: str, records: Iterable[dict[str, Any]], report: Report) -> Iterator[str]:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(RECORD_FIELDS)
        for record in records:
            writer.writerow([csv_cell(record.get(key)) for key in RECORD_FIELDS])
            report.exported += 1
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if report.exported == 0:
            yield buffer.getvalue()
        report.finished = True
        return
    emit: Callable[[Conversation], dict[str, Any]]
    check: Callable[[Any], list[str]]
    for record in records:
        if fmt == "jsonl":
            report.exported += 1
            yield _json_text(record_line(record)) + "\n"
            continue
        emit, check = (
            (openai_chat_line, validate_openai_chat)
            if fmt == "openai-chat"
            else (anthropic_line, validate_anthropic)
        )
        record_id = str(record.get("record_id"))
        try:
            line = emit(conversation_of(record))
        except Unusable as exc:
            report.skip(record_id, str(exc))
            continue
        problems = check(line)
        if problems:
            report.skip(record_id, "; ".join(problems[:3]))
            continue
        report.exported += 1
        yield _json_text(line) + "\n"
    report.finished = True


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "export"


def export_dataset(
    db: Database,
    who: Principal,
    project: str,
    name: str,
    *,
    fmt: str,
    version: int | None = None,
) -> Export:
    """A dataset at ``version`` (the latest if None) in ``fmt``. Access and the version are
    checked now (a refusal is a clean 404/403 before any byte); records are read as the lines
    are consumed, a page per transaction (a version never changes once made)."""
    check_format(fmt)
    with db.read() as conn:
        dataset = dataset_store.get(conn, project_id(conn, who, project), name)
        if dataset is None:
            raise NotFound(f"dataset {name!r} does not exist in {project!r}")
    latest = int(dataset["version"])
    pinned = latest if version is None else version
    if pinned > latest or pinned < 0:
        raise NotFound(f"dataset {name!r} has no version {pinned} (latest: {latest})")
    dataset_id = int(dataset["id"])

    def records() -> Iterator[dict[str, Any]]:
        after: int | None = None
        while True:
            with db.read() as conn:
                page, after = dataset_store.records(
                    conn, dataset_id, pinned, limit=PAGE, after_id=after
                )
            yield from page
            if after is None:
                return

    report = Report(fmt, {"dataset": name, "version": pinned})
    return Export(
        fmt,
        f"{_safe_name(name)}-v{pinned}.{SUFFIXES[fmt]}",
        MEDIA_TYPES[fmt],
        _lines(fmt, records(), report),
        report,
    )


def _filter_pairs(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in given.items():
        if value is None:
            continue
        if key == "q":
            raise UserError("filter: 'q' (text search) cannot be used in an export")
        if isinstance(value, Mapping):
            pairs.extend((key, f"{k}={v}") for k, v in value.items())
        elif isinstance(value, list | tuple):
            pairs.extend((key, str(item)) for item in value)
        else:
            pairs.append((key, str(value)))
    return pairs


def export_traces(
    db: Database,
    who: Principal,
    project: str,
    *,
    fmt: str,
    label: str,
    label_value: str | None = None,
    score_value: float | None = None,
    filters: Mapping[str, Any] | None = None,
    span: str = "llm",
    limit: int | None = None,
) -> Export:
    """The traces matching ``filters`` (the traces list's filter, as an object) that carry a
    person's label ``label`` (a rubric's or a human score's name) equal to ``label_value``
    (or with value ``score_value``), each as a record: the input of its ``span`` (the last
    model call, or the root span), the span's output as the expected answer, the tools the
    call offered. Record ids are trace ids. Annotators match only their own review labels
    (reviews are blind)."""
    check_format(fmt)
    if span not in SPANS:
        raise UserError(f"span must be one of {', '.join(SPANS)}; got {span[:40]!r}")
    if not label:
        raise UserError("name the label (a rubric or human score name) the traces must carry")
    found, problems = parse_filters(_filter_pairs(filters or {}))
    if problems:
        raise InvalidFilters(problems)
    with db.read() as conn:
        found_project = project_id(conn, who, project)
    only_author = (who.author or "") if who.role_in(project) == "annotator" else None

    def records() -> Iterator[dict[str, Any]]:
        after: str | None = None
        taken = 0
        while limit is None or taken < limit:
            size = PAGE if limit is None else min(PAGE, limit - taken)
            with db.read() as conn:
                ids = export_store.labelled_traces(
                    conn,
                    found_project,
                    found,
                    name=label,
                    label=label_value,
                    value=score_value,
                    only_author=only_author,
                    after=after,
                    limit=size,
                )
                sources = [
                    export_store.conversation_span(conn, found_project, trace_id, span)
                    for trace_id in ids
                ]
            for trace_id, source in zip(ids, sources, strict=True):
                if source is None:
                    continue
                item_input = source["input"]
                if source["tools"] and _message_list(item_input) is not None:
                    if isinstance(item_input, list):
                        item_input = {"messages": item_input}
                    item_input = {**item_input, "tools": source["tools"]}
                yield {
                    "record_id": trace_id,
                    "input": item_input,
                    "expected": source["output"],
                    "metadata": {"span_name": source["name"], "label": label},
                    "tags": [],
                    "source_trace_id": source["trace_id"],
                    "source_span_id": source["span_id"],
                }
            taken += len(ids)
            if len(ids) < size:
                return
            after = ids[-1]

    shown = {"label": label, "label_value": label_value, "score_value": score_value}
    report = Report(fmt, {"traces": {k: v for k, v in shown.items() if v is not None}})
    return Export(
        fmt,
        f"{_safe_name(project)}-{_safe_name(label)}.{SUFFIXES[fmt]}",
        MEDIA_TYPES[fmt],
        _lines(fmt, records(), report),
        report,
    )


def run_report(export: Export) -> dict[str, Any]:
    """Run an export through without keeping its lines; its report."""
    for _line in export.lines:
        pass
    return export.report.as_dict()


__all__ = [
    "FORMATS",
    "Call",
    "Conversation",
    "Export",
    "Report",
    "Turn",
    "Unusable",
    "anthropic_line",
    "check_format",
    "conversation_of",
    "csv_cell",
    "csv_value",
    "export_dataset",
    "export_traces",
    "formula_safe",
    "openai_chat_line",
    "read_anthropic",
    "read_openai_chat",
    "record_line",
    "run_report",
    "validate_anthropic",
    "validate_openai_chat",
]
