"""Old home of `assay.evals.comparison`; kept until the server imports the public module."""

from assay.evals.comparison import TOLERANCE, compare

__all__ = ["TOLERANCE", "compare"]
