"""(d) Langfuse's ``@observe``, its OTLP exporter pointed at the benchmark's loopback sink.

Runs in ``bench/.venvs/langfuse``. Dummy keys; the client's base URL is the sink, so spans
go out as they would to a Langfuse server (OTLP over HTTP, in a background thread).
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

PUBLIC_KEY = "pk-lf-sdk-bench"
SECRET_KEY = "sk-lf-sdk-bench"


def setup(options: Options) -> tuple[Answer, Flush, Stats]:
    # The decorator finds its client through these, so set them before importing langfuse.
    os.environ["LANGFUSE_PUBLIC_KEY"] = PUBLIC_KEY
    os.environ["LANGFUSE_SECRET_KEY"] = SECRET_KEY
    os.environ["LANGFUSE_BASE_URL"] = options.sink_url
    os.environ["LANGFUSE_HOST"] = options.sink_url

    from langfuse import Langfuse, get_client, observe

    Langfuse(public_key=PUBLIC_KEY, secret_key=SECRET_KEY, base_url=options.sink_url)
    client = get_client()
    answer: Answer = observe()(make_answer())

    def flush() -> bool:
        client.flush()
        return True

    return answer, flush, no_stats


if __name__ == "__main__":
    guard = NetworkGuard()
    guard.install()
    serve("langfuse", parse_options(), guard, setup)
