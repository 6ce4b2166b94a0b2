"""Datasets and (later) experiments."""

from assay.evals._datasets import Dataset, dataset

__all__ = ["Dataset", "dataset"]
