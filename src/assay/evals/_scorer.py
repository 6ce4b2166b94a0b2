"""Scorers: `@assay.scorer`, `assay.Score`, and turning whatever a scorer returns into scores."""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assay.errors import UserError

SCORER_ARGUMENTS = ("input", "output", "expected", "metadata", "trace")


@dataclass(frozen=True)
class Score:
    """A judgement: a value in [0, 1] and/or a categorical label, with its reasons."""

    name: str
    value: float | None = None
    label: str | None = None
    rationale: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Scorer:
    """A scoring function with its name, version (a hash of its source) and the arguments it
    asks for (a subset of input, output, expected, metadata, trace)."""

    fn: Callable[..., Any]
    name: str
    version: str
    wants: tuple[str, ...]
    is_async: bool

    def arguments(self, context: Mapping[str, Any]) -> dict[str, Any]:
        return {name: context.get(name) for name in self.wants}


def _version_of(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        source = getattr(fn, "__qualname__", repr(fn))
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def as_scorer(
    fn: Callable[..., Any] | Scorer, name: str | None = None, version: str | None = None
) -> Scorer:
    """Check a scoring function's signature now, not when the first case runs. ``version``
    replaces the hash of the function's source (for scorers defined by data, such as judges)."""
    if isinstance(fn, Scorer):
        return fn
    if not callable(fn):
        raise UserError(f"a scorer must be callable; got {fn!r}")
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        raise UserError(f"cannot read the signature of scorer {fn!r}") from None
    wants = []
    for parameter in parameters.values():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if parameter.name not in SCORER_ARGUMENTS:
            if parameter.default is inspect.Parameter.empty:
                raise UserError(
                    f"scorer {getattr(fn, '__name__', fn)!r} asks for {parameter.name!r}; a "
                    f"scorer may ask for {', '.join(SCORER_ARGUMENTS)}"
                )
            continue
        wants.append(parameter.name)
    return Scorer(
        fn=fn,
        name=str(name or getattr(fn, "__name__", type(fn).__name__)),
        version=version or _version_of(fn),
        wants=tuple(wants),
        is_async=inspect.iscoroutinefunction(fn),
    )


def scorer(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, version: str | None = None
) -> Any:
    """Register a scoring function: ``@assay.scorer`` or ``@assay.scorer(name="exact")``;
    ``version=`` names its version instead of the hash of its source."""
    if fn is None:
        return lambda inner: as_scorer(inner, name, version)
    return as_scorer(fn, name, version)


def to_scores(scorer_: Scorer, result: Any) -> list[Score]:
    """Whatever a scorer returned, as scores: a float in [0, 1], a bool, None (skipped), a
    Score, a list of them, or a dict of name to value."""
    if result is None:
        return []
    if isinstance(result, Score):
        return [result]
    if isinstance(result, bool):
        return [Score(scorer_.name, 1.0 if result else 0.0)]
    if isinstance(result, int | float):
        value = float(result)
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"scorer {scorer_.name!r} returned {result!r}; need a value in [0, 1]")
        return [Score(scorer_.name, value)]
    if isinstance(result, list | tuple):
        scores: list[Score] = []
        for item in result:
            scores.extend(to_scores(scorer_, item))
        return scores
    if isinstance(result, Mapping):
        return [
            score
            for key, value in result.items()
            for score in to_scores(Scorer(scorer_.fn, str(key), scorer_.version, (), False), value)
        ]
    raise TypeError(
        f"scorer {scorer_.name!r} returned {type(result).__name__}; return a number in [0, 1], "
        "a bool, None, an assay.Score, a list of them or a dict"
    )
