"""Assay: trace, evaluate and annotate LLM agents, and check the judges.

The public API. Everything else is internal and may change.
"""

# Imported after the names above: scorers and models import from assay.evals and assay.sdk.
from assay import models, scorers
from assay._version import __version__
from assay.errors import AssayError, ConfigError, UserError
from assay.evals import Case, Dataset, Eval, Score, dataset, scorer
from assay.scorers.judges import judge
from assay.sdk import (
    Span,
    current_span,
    flush,
    init,
    log_feedback,
    propagation,
    shutdown,
    span,
    stats,
    traced,
)
from assay.sdk.wrappers import wrap_anthropic, wrap_openai

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
    "Span",
    "UserError",
    "__version__",
    "current_span",
    "flush",
    "init",
    "judge",
    "log_feedback",
    "models",
    "propagation",
    "shutdown",
    "span",
    "stats",
    "traced",
    "wrap_anthropic",
    "wrap_openai",
]
