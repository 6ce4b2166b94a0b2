"""Assay: trace, evaluate and annotate LLM agents, and check the judges.

The public API. Everything else is internal and may change.
"""

from typing import TYPE_CHECKING, Any

from assay._version import __version__
from assay.errors import AssayError, ConfigError, PromptUnavailable, UserError
from assay.evals import Case, Dataset, Eval, Score, dataset, scorer
from assay.sdk import (
    Prompt,
    RenderedPrompt,
    Span,
    current_span,
    flush,
    init,
    log_feedback,
    prompt,
    propagation,
    shutdown,
    span,
    stats,
    traced,
)
from assay.sdk.wrappers import wrap_anthropic, wrap_openai

if TYPE_CHECKING:
    from assay import models, scorers
    from assay.scorers.judges import judge

# Loaded on first use: an application that only traces should not pay ~0.3 s at import for the
# model layer and the scorers.
_LAZY = {"models": "assay.models", "scorers": "assay.scorers", "judge": "assay.scorers.judges"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'assay' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name])
    value = getattr(module, name) if name == "judge" else module
    globals()[name] = value
    return value


__all__ = [
    "Case",
    "Dataset",
    "Eval",
    "Score",
    "dataset",
    "scorer",
    "scorers",
    "AssayError",
    "ConfigError",
    "Prompt",
    "PromptUnavailable",
    "RenderedPrompt",
    "Span",
    "UserError",
    "__version__",
    "current_span",
    "flush",
    "init",
    "judge",
    "log_feedback",
    "models",
    "prompt",
    "propagation",
    "shutdown",
    "span",
    "stats",
    "traced",
    "wrap_anthropic",
    "wrap_openai",
]
