"""(e) Braintrust's ``@traced`` with a logger whose API URL is the benchmark's loopback sink.

Runs in ``bench/.venvs/braintrust``. Braintrust normally logs in to its app first (to learn
the organisation and API URL) and registers the project; here the SDK's own offline key
(``braintrust.logger.TEST_API_KEY``, which skips the login request) and an explicit project id
avoid both, so the only traffic is the background logger's: ``GET /version`` and
``POST /logs3`` batches to the sink.
"""

from __future__ import annotations

import os

from _harness import (
    Answer,
    Flush,
    NetworkGuard,
    Options,
    Stats,
    make_answer,
    no_stats,
    parse_options,
    serve,
)

NOTES = [
    "logged in with Braintrust's offline test key (no login request, no project registration); "
    "rows are sent by its background logger to the loopback sink"
]


def setup(options: Options) -> tuple[Answer, Flush, Stats]:
    os.environ["BRAINTRUST_APP_URL"] = options.sink_url
    os.environ["BRAINTRUST_API_URL"] = options.sink_url
    os.environ["BRAINTRUST_PROXY_URL"] = options.sink_url

    import braintrust
    from braintrust.logger import TEST_API_KEY

    logger = braintrust.init_logger(
        project="sdk-bench",
        project_id="sdk-bench",
        api_key=TEST_API_KEY,
        app_url=options.sink_url,
    )
    answer: Answer = braintrust.traced(make_answer())

    def flush() -> bool:
        logger.flush()
        return True

    return answer, flush, no_stats


if __name__ == "__main__":
    guard = NetworkGuard()
    guard.install()
    serve("braintrust", parse_options(), guard, setup, NOTES)
