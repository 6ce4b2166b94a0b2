"""Heuristic scorers on text and numbers: exact match, contains, regex, edit similarity,
numeric closeness. See `_base` for the conventions they share (None expected skips the case,
non-string values are read as canonical JSON)."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Sequence
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers._base import (
    as_text,
    build,
    canonical,
    check_choice,
    check_tolerance,
    kind_of,
    normalizer,
    shorten,
)


def first_difference(got: str, want: str, context: int = 20) -> str:
    """Where two texts part, shown with a little context from each."""
    if not got:
        return f"output is empty; expected {shorten(want)}"
    index = next(
        (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
        min(len(got), len(want)),
    )
    start = max(0, index - context)
    return (
        f"output differs from expected at character {index}: "
        f"{got[start : index + context]!r} vs {want[start : index + context]!r}"
    )


def exact_match(*, normalize: str | Iterable[str] = (), name: str = "exact_match") -> Scorer:
    """1.0 when the output equals ``expected`` after the ``normalize`` steps (any of
    "unicode", "case", "punctuation", "articles", "whitespace"), else 0.0. Strict by default.
    Non-string values compare as canonical JSON, so ``{"a": 1}`` equals ``{"a": 1.0}`` and
    ``4`` equals ``"4"``."""
    steps, apply = normalizer(normalize)

    def score(output: Any, expected: Any) -> Score | None:
        if expected is None:
            return None
        got, want = apply(as_text(output)), apply(as_text(expected))
        if got == want:
            return Score(name, 1.0)
        return Score(name, 0.0, rationale=first_difference(got, want))

    return build(
        score,
        name=name,
        definition=(exact_match, first_difference, as_text, canonical),
        params={"normalize": steps},
    )


def contains(
    text: str | Sequence[str] | None = None,
    *,
    mode: str = "all",
    normalize: str | Iterable[str] = (),
    name: str = "contains",
) -> Scorer:
    """1.0 when the output contains ``text`` (one string or several: ``mode="all"`` needs every
    one, ``mode="any"`` at least one), else 0.0; the missing ones are in the rationale. Without
    ``text``, the case's ``expected`` (a string or a list of strings) is looked for."""
    check_choice("contains mode", mode, ("all", "any"))
    steps, apply = normalizer(normalize)
    fixed: list[str] | None = None
    if text is not None:
        fixed = [text] if isinstance(text, str) else [str(item) for item in text]
        if not fixed or any(item == "" for item in fixed):
            raise UserError("contains() needs non-empty text to look for")

    def score(output: Any, expected: Any) -> Score | None:
        wanted = fixed
        if wanted is None:
            if expected is None:
                return None
            items = [expected] if isinstance(expected, str) else expected
            if not isinstance(items, list | tuple) or not items:
                raise ValueError(
                    f"contains() reads expected as a string or a non-empty list of strings; got "
                    f"{shorten(expected)}"
                )
            wanted = [as_text(item) for item in items]
        haystack = apply(as_text(output))
        found = [item for item in wanted if apply(item) in haystack]
        missing = [item for item in wanted if item not in found]
        passed = not missing if mode == "all" else bool(found)
        metadata = {"found": found, "missing": missing}
        if passed:
            return Score(name, 1.0, metadata=metadata)
        reason = "output is empty" if not haystack else f"output lacks {missing!r}"
        return Score(name, 0.0, rationale=reason, metadata=metadata)

    return build(
        score,
        name=name,
        definition=(contains, as_text, canonical),
        params={"text": fixed, "mode": mode, "normalize": steps},
    )


def regex(
    pattern: str | re.Pattern[str],
    *,
    mode: str = "search",
    flags: int = 0,
    name: str = "regex",
) -> Scorer:
    """1.0 when ``pattern`` matches the output (``mode="search"``: anywhere; ``"fullmatch"``:
    the whole output), else 0.0. The matched text is in the metadata."""
    check_choice("regex mode", mode, ("search", "fullmatch"))
    try:
        compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
    except re.error as error:
        raise UserError(f"invalid regex {pattern!r}: {error}") from None
    if not isinstance(compiled, re.Pattern):
        raise UserError(f"regex() needs a pattern string; got {pattern!r}")
    find = compiled.search if mode == "search" else compiled.fullmatch

    def score(output: Any) -> Score:
        text = as_text(output)
        found = find(text)
        if found is None:
            verb = "match" if mode == "search" else "fully match"
            subject = "the empty output" if not text else f"output {shorten(text)}"
            return Score(name, 0.0, rationale=f"/{compiled.pattern}/ does not {verb} {subject}")
        return Score(name, 1.0, metadata={"match": found.group(0), "span": list(found.span())})

    return build(
        score,
        name=name,
        definition=(regex, as_text, canonical),
        params={"pattern": compiled.pattern, "flags": int(compiled.flags), "mode": mode},
    )


# --- edit distance -------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, substitute one character) that turn ``a`` into ``b``.

    Hyyrö's bit-parallel form of Myers' algorithm: one column of the dynamic-programming table
    is a pair of bit vectors, here Python ints of any width, so the cost is O(len(a) *
    len(b) / 64) word operations instead of a Python loop over every cell.
    """
    if len(a) < len(b):
        a, b = b, a
    width = len(b)
    if width == 0:
        return len(a)
    positions: dict[str, int] = {}
    for index, char in enumerate(b):
        positions[char] = positions.get(char, 0) | (1 << index)
    full = (1 << width) - 1
    top = 1 << (width - 1)
    plus, minus, distance = full, 0, width
    for char in a:
        equal = positions.get(char, 0)
        vertical = equal | minus
        horizontal = (((equal & plus) + plus) ^ plus) | equal
        plus_h = minus | ~(horizontal | plus)
        minus_h = plus & horizontal
        if plus_h & top:
            distance += 1
        elif minus_h & top:
            distance -= 1
        plus_h = (plus_h << 1) | 1
        minus_h <<= 1
        plus = (minus_h | ~(vertical | plus_h)) & full
        minus = plus_h & vertical & full
    return distance


def edit_similarity(
    *, normalize: str | Iterable[str] = (), name: str = "edit_similarity"
) -> Scorer:
    """1 - Levenshtein distance / length of the longer text, in characters, between the output
    and ``expected`` after ``normalize``; 1.0 when both are empty."""
    steps, apply = normalizer(normalize)

    def score(output: Any, expected: Any) -> Score | None:
        if expected is None:
            return None
        got, want = apply(as_text(output)), apply(as_text(expected))
        longest = max(len(got), len(want))
        distance = levenshtein(got, want)
        value = 1.0 - distance / longest if longest else 1.0
        metadata = {"distance": distance, "length": longest}
        if distance == 0:
            return Score(name, value, metadata=metadata)
        reason = (
            "output is empty"
            if not got
            else f"{distance} character edit(s) from expected over {longest} characters"
        )
        return Score(name, value, rationale=reason, metadata=metadata)

    return build(
        score,
        name=name,
        definition=(edit_similarity, levenshtein, as_text, canonical),
        params={"normalize": steps},
    )


# --- numbers -------------------------------------------------------------------------------------

# A sign only where it cannot be a hyphen inside a word or a date ("2024-05" is not -5);
# thousands separators only in groups of three ("1,234" is 1234; "1,5" is two numbers).
_NUMBER = re.compile(
    r"(?:(?<![\w.])[-+])?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
)


def read_number(value: Any) -> float | None:
    """A number as a float: numbers as they are (not bools), a numeric string, or else the last
    number written in a text ("The total is 1,234.50." -> 1234.5); None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    found = _NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def numeric_close(
    *, rel_tol: float = 1e-9, abs_tol: float = 0.0, name: str = "numeric_close"
) -> Scorer:
    """1.0 when the output's number is within ``rel_tol`` (relative) or ``abs_tol`` (absolute)
    of ``expected``'s, as `math.isclose`, else 0.0. A text output is read for its last number."""
    check_tolerance("rel_tol", rel_tol)
    check_tolerance("abs_tol", abs_tol)

    def score(output: Any, expected: Any) -> Score | None:
        if expected is None:
            return None
        want = read_number(expected)
        if want is None:
            raise ValueError(f"expected {shorten(expected)} is not a number")
        got = read_number(output)
        if got is None:
            reason = f"output {shorten(output)} ({kind_of(output)}) holds no number"
            return Score(name, 0.0, rationale=reason)
        difference = abs(got - want)
        metadata = {"output": got, "expected": want, "difference": difference}
        if math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
            return Score(name, 1.0, metadata=metadata)
        reason = (
            f"{got:g} differs from {want:g} by {difference:g} "
            f"(tolerance: rel {rel_tol:g}, abs {abs_tol:g})"
        )
        return Score(name, 0.0, rationale=reason, metadata=metadata)

    return build(
        score,
        name=name,
        definition=(numeric_close, read_number),
        params={"rel_tol": float(rel_tol), "abs_tol": float(abs_tol)},
    )
