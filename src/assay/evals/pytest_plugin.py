"""pytest plugin: run an Eval as a test that fails when a threshold does.

    def test_support_answers(assay_eval):
        result = assay_eval(support_eval)      # fails the test below a threshold
        assert result.summary["exact"].scored > 0

Results stay local unless pytest runs with ``--assay-send`` (then each run is stored as an
experiment on the Assay server).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("assay").addoption(
        "--assay-send",
        action="store_true",
        default=False,
        help="Store eval runs made through the assay_eval fixture as experiments.",
    )


@pytest.fixture
def assay_eval(request: pytest.FixtureRequest) -> Callable[..., Any]:
    send = bool(request.config.getoption("--assay-send"))

    def run(evaluation: Any, **kwargs: Any) -> Any:
        result = evaluation.run(send=send, **kwargs)
        if not result.passed:
            lines = [f"eval {result.name!r} failed its thresholds:"]
            lines += [f"  {failure}" for failure in result.failed_thresholds]
            if result.errored_rows:
                lines.append(f"  ({result.errored_rows} rows errored)")
            pytest.fail("\n".join(lines), pytrace=False)
        return result

    return run
