"""Datasets, scorers and evals."""

from assay.evals._datasets import Dataset, dataset
from assay.evals._eval import Case, Eval, EvalResult, Hooks, Row, ScoreSummary
from assay.evals._scorer import Score, Scorer, scorer

__all__ = [
    "Case",
    "Dataset",
    "Eval",
    "EvalResult",
    "Hooks",
    "Row",
    "Score",
    "ScoreSummary",
    "Scorer",
    "dataset",
    "scorer",
]
