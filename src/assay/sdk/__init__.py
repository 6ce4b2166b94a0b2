"""Tracing SDK: init, @traced, span(), feedback, propagation, on OpenTelemetry."""

from assay.sdk import propagation
from assay.sdk._config import flush, init, shutdown, stats
from assay.sdk._feedback import log_feedback
from assay.sdk._prompts import (
    Prompt,
    RenderedPrompt,
    current_overrides,
    prompt,
    prompt_overrides,
)
from assay.sdk._spans import SPAN_TYPES, Span, current_span, span, traced

__all__ = [
    "SPAN_TYPES",
    "Prompt",
    "RenderedPrompt",
    "Span",
    "current_overrides",
    "current_span",
    "flush",
    "init",
    "log_feedback",
    "prompt",
    "prompt_overrides",
    "propagation",
    "shutdown",
    "span",
    "stats",
    "traced",
]
