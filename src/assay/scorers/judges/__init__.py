"""LLM judges: `judge(...)` makes a scorer that asks a model to choose one of a few declared
options, and the built-in judges written with it.

A judge answers through a forced tool call (or, with ``mode="json"``, structured output) whose
arguments are its reasoning, written first, and its choice, which must be one of the declared
options. The score is the choice's value, the label the choice, the rationale the reasoning. An
answer that does not parse or chooses off the list is an error score carrying the raw answer,
never a silent 0.

Every judge's version is a hash of its definition (prompt, choices, model, options and the way
the verdict is asked for), so a changed prompt shows in the stored scores.

The parts: `_verdict` (how the verdict is asked for and read), `_judge` (the judge),
`_pairwise` (the two-order comparison) and `_prompts` (the built-in judges as data, from which
the factories below are made).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from assay.errors import UserError
from assay.models import Model
from assay.scorers.judges._judge import (
    Classifier,
    Judge,
    _options,
    default_model,
    find_context,
    judge,
)
from assay.scorers.judges._pairwise import (
    PAIRWISE_CHOICES,
    PAIRWISE_NAMES,
    PAIRWISE_PROMPT,
    PairwiseClassifier,
    pairwise,
)
from assay.scorers.judges._prompts import BUILTIN_PROMPTS, BuiltinPrompt
from assay.scorers.judges._verdict import (
    PROTOCOL,
    VERDICT_TOOL,
    Mode,
    Verdict,
    read_verdict,
    verdict_schema,
)
from assay.settings import DEFAULT_JUDGE_MODEL

BuiltIn = Callable[..., Judge]


class BuiltinFactory(Protocol):
    def __call__(
        self, name: str = ..., model: str | Model | None = None, **options: Any
    ) -> Judge: ...


def _built(
    spec: BuiltinPrompt,
    name: str,
    model: str | Model | None,
    options: Mapping[str, Any],
    variables: Mapping[str, Any] | None = None,
) -> Judge:
    settings = _options(options)
    if variables:
        settings["variables"] = {**settings["variables"], **variables}
    return judge(name, spec.prompt, spec.choices, model, settings.pop("use_reasoning"), **settings)


def _factory(key: str) -> BuiltinFactory:
    spec = BUILTIN_PROMPTS[key]

    def make(name: str = key, model: str | Model | None = None, **options: Any) -> Judge:
        return _built(spec, name, model, options)

    make.__name__ = make.__qualname__ = key
    make.__doc__ = spec.document()
    return make


factuality = _factory("factuality")
answer_relevance = _factory("answer_relevance")
faithfulness = _factory("faithfulness")
context_relevance = _factory("context_relevance")
helpfulness = _factory("helpfulness")
harmlessness = _factory("harmlessness")


def tone(
    rubric: str, name: str = "tone", model: str | Model | None = None, **options: Any
) -> Judge:
    if not isinstance(rubric, str) or not rubric.strip():
        raise UserError("tone() needs a rubric: a description of the tone and style wanted")
    return _built(BUILTIN_PROMPTS["tone"], name, model, options, {"rubric": rubric})


tone.__doc__ = BUILTIN_PROMPTS["tone"].document()

BUILTIN_JUDGES: dict[str, BuiltIn] = {
    "factuality": factuality,
    "answer_relevance": answer_relevance,
    "faithfulness": faithfulness,
    "context_relevance": context_relevance,
    "helpfulness": helpfulness,
    "harmlessness": harmlessness,
    "tone": tone,
    "pairwise": pairwise,
}
assert set(BUILTIN_JUDGES) == set(BUILTIN_PROMPTS), "every built-in prompt has its factory"

__all__ = [
    "BUILTIN_JUDGES",
    "BUILTIN_PROMPTS",
    "DEFAULT_JUDGE_MODEL",
    "PAIRWISE_CHOICES",
    "PAIRWISE_NAMES",
    "PAIRWISE_PROMPT",
    "PROTOCOL",
    "VERDICT_TOOL",
    "BuiltIn",
    "BuiltinFactory",
    "BuiltinPrompt",
    "Classifier",
    "Judge",
    "Mode",
    "PairwiseClassifier",
    "Verdict",
    "answer_relevance",
    "context_relevance",
    "default_model",
    "factuality",
    "faithfulness",
    "find_context",
    "harmlessness",
    "helpfulness",
    "judge",
    "pairwise",
    "read_verdict",
    "tone",
    "verdict_schema",
]
