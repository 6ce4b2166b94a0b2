"""Built-in scorers. Each name here is a factory that returns an `assay.evals.Scorer`, ready for
``assay.Eval(scores=[...])``; its version hashes its definition and parameters, so a change in
either is a new version. Conventions shared by all (None expected skips the case; a bad output
scores 0.0 with the reason; a bad expected raises; bad configuration raises UserError at
construction) are in `assay.scorers._base`."""

from assay.scorers._embeddings import embedding_similarity
from assay.scorers._heuristic import (
    contains,
    edit_similarity,
    exact_match,
    levenshtein,
    numeric_close,
    regex,
)
from assay.scorers._json import json_diff, json_schema, json_valid
from assay.scorers._lists import list_overlap
from assay.scorers._spans import TraceSpan, read_trace
from assay.scorers._trajectory import (
    cost_budget,
    final_answer,
    final_span,
    latency_budget,
    no_errors,
    step_budget,
    tool_args,
    tool_called,
    tool_not_called,
    tool_order,
)
from assay.scorers.judges import (
    BUILTIN_JUDGES,
    Judge,
    answer_relevance,
    context_relevance,
    factuality,
    faithfulness,
    harmlessness,
    helpfulness,
    judge,
    pairwise,
    tone,
)

__all__ = [
    # text and numbers
    "contains",
    "edit_similarity",
    "exact_match",
    "levenshtein",
    "numeric_close",
    "regex",
    # JSON
    "json_diff",
    "json_schema",
    "json_valid",
    # lists
    "list_overlap",
    # meaning
    "embedding_similarity",
    # trajectory: what the agent did, from its trace
    "cost_budget",
    "final_answer",
    "latency_budget",
    "no_errors",
    "step_budget",
    "tool_args",
    "tool_called",
    "tool_not_called",
    "tool_order",
    # LLM judges
    "BUILTIN_JUDGES",
    "Judge",
    "answer_relevance",
    "context_relevance",
    "factuality",
    "faithfulness",
    "harmlessness",
    "helpfulness",
    "judge",
    "pairwise",
    "tone",
    # reading traces, for scorers of your own
    "TraceSpan",
    "final_span",
    "read_trace",
]
