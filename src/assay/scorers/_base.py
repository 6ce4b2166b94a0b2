"""What every built-in scorer shares: how it becomes a `Scorer` with a stable name and a version
that changes with its definition and parameters, and how values that are not text are read as
text.

Conventions for every built-in scorer (documented once here, relied on by the tests):

* ``expected`` is None: a scorer that compares with ``expected`` skips the case (returns None,
  so no score is recorded and the mean is not dragged down by cases without a reference).
* The output is what is judged, so a bad output (None, not JSON, not a number, not a list)
  scores 0.0 with the reason in ``rationale``. A bad ``expected`` is a mistake in the dataset:
  the scorer raises, and the runner records an error score naming the problem.
* Text scorers read a non-string value as canonical JSON (keys sorted, ``1.0`` written ``1``),
  so ``{"b": 1, "a": 2}`` and ``{"a": 2, "b": 1.0}`` read the same; None reads as ``""``.
* Bad configuration (an unknown option, an invalid pattern or schema) raises
  `assay.errors.UserError` when the scorer is built, not when the first case runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Scorer, as_scorer


def _describe(value: Any) -> Any:
    """A stable, JSON-able stand-in for a parameter, so equal configurations hash equally."""
    if isinstance(value, Scorer):
        return {"scorer": value.name, "version": value.version}
    if isinstance(value, re.Pattern):
        return {"pattern": value.pattern, "flags": int(value.flags)}
    if isinstance(value, set | frozenset):
        return sorted(_describe(item) for item in value)
    if callable(value):
        try:
            source = inspect.getsource(value)
        except (OSError, TypeError):
            source = ""
        name = getattr(value, "__qualname__", type(value).__qualname__)
        return {"callable": name, "source": hashlib.sha256(source.encode()).hexdigest()[:12]}
    return repr(value)


def build(
    fn: Callable[..., Any],
    *,
    name: str,
    definition: Iterable[Callable[..., Any]],
    params: Mapping[str, Any],
) -> Scorer:
    """A `Scorer` for ``fn`` whose version hashes the source of ``definition`` (the factory and
    the helpers its scoring depends on) and ``params``: a change to either makes a new version,
    so experiments scored with different settings are never compared as if alike."""
    checked = as_scorer(fn, name)
    digest = hashlib.sha256()
    for part in definition:
        digest.update(inspect.getsource(part).encode())
    digest.update(json.dumps(params, sort_keys=True, default=_describe).encode())
    return dataclasses.replace(checked, version=digest.hexdigest()[:12])


# --- values as text ----------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """``value`` with integral floats as ints, tuples as lists and sets sorted, recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((canonical(item) for item in value), key=repr)
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def as_text(value: Any) -> str:
    """What a text scorer reads: a string as it is, None as "", anything else as canonical
    JSON (or ``str()`` when it is not JSON-able)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(canonical(value), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def kind_of(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def shorten(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- normalisation -----------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(?:a|an|the)\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def _no_punctuation(text: str) -> str:
    # Unicode's punctuation classes, plus ASCII symbols such as $ + < = > that string.punctuation
    # counts and Unicode files under symbols.
    return "".join(
        ch
        for ch in text
        if not unicodedata.category(ch).startswith("P") and ch not in string.punctuation
    )


# Applied in this order whatever order they are named in: unicode first so that, e.g., a
# full-width comma is punctuation; whitespace last so removals leave no double spaces.
NORMALIZERS: dict[str, Callable[[str], str]] = {
    "unicode": lambda text: unicodedata.normalize("NFKC", text),
    "case": str.casefold,
    "punctuation": _no_punctuation,
    "articles": lambda text: _ARTICLES.sub(" ", text),
    "whitespace": lambda text: _SPACE.sub(" ", text).strip(),
}


def normalizer(options: str | Iterable[str]) -> tuple[tuple[str, ...], Callable[[str], str]]:
    """Check normalisation options now; the chosen names (in application order) and a function
    applying them."""
    chosen = {options} if isinstance(options, str) else set(options)
    unknown = chosen - set(NORMALIZERS)
    if unknown:
        raise UserError(
            f"unknown normalize option(s) {sorted(unknown)}; choose from {list(NORMALIZERS)}"
        )
    steps = tuple(name for name in NORMALIZERS if name in chosen)
    functions = [NORMALIZERS[name] for name in steps]

    def apply(text: str) -> str:
        for function in functions:
            text = function(text)
        return text

    return steps, apply


def check_choice(what: str, value: str, choices: Iterable[str]) -> None:
    allowed = list(choices)
    if value not in allowed:
        raise UserError(f"{what} must be one of {allowed}; got {value!r}")


def check_tolerance(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise UserError(f"{what} must be a number; got {value!r}")
    if value < 0:
        raise UserError(f"{what} must not be negative; got {value!r}")
