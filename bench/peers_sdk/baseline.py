"""(c) No tracing: the undecorated function, to show what the loop itself costs."""

from __future__ import annotations

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


def setup(options: Options) -> tuple[Answer, Flush, Stats]:
    return make_answer(), lambda: True, no_stats


if __name__ == "__main__":
    guard = NetworkGuard()
    guard.install()
    serve("python", parse_options(), guard, setup)
