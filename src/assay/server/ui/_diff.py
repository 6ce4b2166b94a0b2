"""A side-by-side word diff of two outputs, computed on the server and rendered escaped.

The result is plain (kind, text) segments: templates wrap them in ``<del>``/``<ins>`` and
autoescape the text, so a diff of model output can never become markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

#: Each side is cut to this many characters before diffing: SequenceMatcher is quadratic in
#: the worst case, and a page of diffs must render in milliseconds.
MAX_CHARS = 20_000
#: Above this many words a side is diffed line by line instead.
MAX_TOKENS = 4_000

_TOKEN = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")

Segment = tuple[str, str]  # ("eq" | "del" | "ins", text)


@dataclass
class Diff:
    left: list[Segment] = field(default_factory=list)
    right: list[Segment] = field(default_factory=list)
    #: True when a side was longer than MAX_CHARS and its tail is not shown.
    truncated: bool = False
    same: bool = False
    added: int = 0
    removed: int = 0


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _tokens(text: str) -> list[str]:
    if len(text) > MAX_TOKENS * 4 or text.count(" ") > MAX_TOKENS:
        return text.splitlines(keepends=True)
    return _TOKEN.findall(text)


def _push(side: list[Segment], kind: str, text: str) -> None:
    if not text:
        return
    if side and side[-1][0] == kind:
        side[-1] = (kind, side[-1][1] + text)
    else:
        side.append((kind, text))


def _joined(opcodes: Sequence[tuple[str, int, int, int, int]], tokens: list[str]) -> list[Any]:
    """Fold a lone space between two changes into them: one change reads better than three."""
    out = list(opcodes)
    for index in range(1, len(out) - 1):
        tag, i1, i2, j1, j2 = out[index]
        between_changes = out[index - 1][0] != "equal" and out[index + 1][0] != "equal"
        if tag == "equal" and between_changes and not "".join(tokens[i1:i2]).strip():
            out[index] = ("replace", i1, i2, j1, j2)
    return out


def diff(before: Any, after: Any) -> Diff:
    """Word-level diff of ``before`` (left) against ``after`` (right)."""
    a_text, b_text = as_text(before), as_text(after)
    result = Diff(truncated=len(a_text) > MAX_CHARS or len(b_text) > MAX_CHARS)
    a_text, b_text = a_text[:MAX_CHARS], b_text[:MAX_CHARS]
    if a_text == b_text:
        result.same = True
        result.left = [("eq", a_text)] if a_text else []
        result.right = [("eq", b_text)] if b_text else []
        return result
    a_tokens, b_tokens = _tokens(a_text), _tokens(b_text)
    matcher = SequenceMatcher(None, a_tokens, b_tokens, autojunk=False)
    for tag, i1, i2, j1, j2 in _joined(matcher.get_opcodes(), a_tokens):
        old, new = "".join(a_tokens[i1:i2]), "".join(b_tokens[j1:j2])
        if tag == "equal":
            _push(result.left, "eq", old)
            _push(result.right, "eq", new)
            continue
        if old:
            _push(result.left, "del", old)
            result.removed += 1
        if new:
            _push(result.right, "ins", new)
            result.added += 1
    return result
