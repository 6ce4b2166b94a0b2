"""(a) ``@assay.traced``, exporting in the background to the benchmark's loopback sink."""

from __future__ import annotations

from _harness import Answer, Flush, NetworkGuard, Options, Stats, make_answer, parse_options, serve


def setup(options: Options) -> tuple[Answer, Flush, Stats]:
    from opentelemetry.sdk.trace import TracerProvider

    import assay

    assay.init("sdk-bench", url=options.sink_url, tracer_provider=TracerProvider())
    answer = assay.traced(make_answer())
    return answer, lambda: assay.flush(60.0), assay.stats


if __name__ == "__main__":
    guard = NetworkGuard()
    guard.install()
    serve("assay", parse_options(), guard, setup)
