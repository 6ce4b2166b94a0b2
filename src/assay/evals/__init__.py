"""Datasets, scorers and evals; experiment rows, their summaries and comparisons."""

from assay.evals._datasets import Dataset, dataset
from assay.evals._eval import Case, Eval, EvalResult, Hooks
from assay.evals._scorer import Score, Scorer, scorer
from assay.evals.comparison import compare
from assay.evals.rows import ExperimentRow, Row, RowScore
from assay.evals.summary import ErrorCount, ScoreSummary, summarise, summary_dict

__all__ = [
    "Case",
    "Dataset",
    "ErrorCount",
    "Eval",
    "EvalResult",
    "ExperimentRow",
    "Hooks",
    "Row",
    "RowScore",
    "Score",
    "ScoreSummary",
    "Scorer",
    "compare",
    "dataset",
    "scorer",
    "summarise",
    "summary_dict",
]
