"""Run by tests/test_evals.py in a process of its own, then killed with SIGKILL mid-run."""

import sys
import time

import assay


def slow(x: int) -> int:
    time.sleep(0.05)
    return x


if __name__ == "__main__":
    assay.Eval(
        "killable",
        [{"input": x, "expected": x} for x in range(200)],
        slow,
        [lambda output, expected: output == expected],
        project="kill",
        max_concurrency=1,
    ).run(send=True)
    sys.exit(0)
