"""An eval file for `assay eval` tests: defined at top level, run by the CLI."""

import assay


def add(case: dict[str, int]) -> int:
    return case["a"] + case["b"]


@assay.scorer
def exact(output: int, expected: int) -> bool:
    return output == expected


assay.Eval(
    "math-ok",
    data=[{"input": {"a": 1, "b": 2}, "expected": 3}, {"input": {"a": 2, "b": 2}, "expected": 4}],
    task=add,
    scores=[exact],
    thresholds={"exact": 0.9},
)

assay.Eval(
    "math-bad",
    data=[{"input": {"a": 1, "b": 2}, "expected": 4}, {"input": {"a": 2, "b": 2}, "expected": 4}],
    task=add,
    scores=[exact],
    thresholds={"exact": 0.9},
)
