"""The verdict protocol: how a judge is asked for its answer, and how the answer is read.

A judge answers through a forced tool call (or, with ``mode="json"``, structured output) whose
arguments are its reasoning, written first, and its choice, which must be one of the declared
options. An answer that does not parse or chooses off the list is unusable, and says why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assay.models import Response

VERDICT_TOOL = "give_verdict"
Mode = Literal["tool", "json"]

# How the verdict is asked for. Part of every judge's version: change it, and versions change.
_REASONING_HELP = "Your reasoning, step by step, written before you decide."
_WITH_REASONING = (
    "First think it through step by step in `reasoning`; only then give your decision in "
    "`choice`, which must be exactly one of: {choices}."
)
_WITHOUT_REASONING = "Give your decision in `choice`, which must be exactly one of: {choices}."
_BY_TOOL = "Answer by calling the `{tool}` tool. "
_BY_JSON = "Answer with only a JSON object with the keys {keys}, nothing else. "
PROTOCOL = (_REASONING_HELP, _WITH_REASONING, _WITHOUT_REASONING, _BY_TOOL, _BY_JSON)


def verdict_schema(choices: Sequence[str], use_reasoning: bool) -> dict[str, Any]:
    """Reasoning first (models write properties in order), then the choice, from the list."""
    properties: dict[str, Any] = {}
    if use_reasoning:
        properties["reasoning"] = {"type": "string", "description": _REASONING_HELP}
    properties["choice"] = {"type": "string", "enum": list(choices)}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def instructions(choices: Sequence[str], use_reasoning: bool, mode: Mode) -> str:
    listed = ", ".join(choices)
    decide = (_WITH_REASONING if use_reasoning else _WITHOUT_REASONING).format(choices=listed)
    keys = "`reasoning` and `choice`" if use_reasoning else "`choice`"
    how = _BY_TOOL.format(tool=VERDICT_TOOL) if mode == "tool" else _BY_JSON.format(keys=keys)
    return how + decide


# --- reading the answer ----------------------------------------------------------------------


def _json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (models sometimes wrap it in prose or a code fence)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            found, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(found, dict):
            return found
        start = text.find("{", start + 1)
    return None


def _match_choice(given: Any, choices: Sequence[str]) -> str | None:
    if not isinstance(given, str):
        return None
    cleaned = given.strip().strip("\"'`").strip()
    if cleaned in choices:
        return cleaned
    folded = [c for c in choices if c.casefold() == cleaned.casefold()]
    return folded[0] if len(folded) == 1 else None


@dataclass(frozen=True)
class Verdict:
    """One parsed answer: the choice (None when unusable), the reasoning, the raw answer text
    and, when unusable, why."""

    choice: str | None
    reasoning: str | None
    raw: str
    problem: str | None = None


def read_verdict(response: Response, choices: Sequence[str]) -> Verdict:
    call = response.tool_call(VERDICT_TOOL) or response.tool_call()
    if call is not None:
        raw, data = call.raw_arguments, call.arguments
        if data is None:
            data = _json_object(raw)
    else:
        raw = response.text
        data = _json_object(raw)
    if data is None:
        return Verdict(None, None, raw, "the judge's answer is not the JSON object asked for")
    reasoning = data.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else None
    given = data.get("choice")
    choice = _match_choice(given, choices)
    if choice is None:
        problem = (
            "the judge gave no choice"
            if given is None
            else f"the judge chose {given!r}, which is not one of {', '.join(choices)}"
        )
        return Verdict(None, reasoning, raw, problem)
    return Verdict(choice, reasoning, raw)
