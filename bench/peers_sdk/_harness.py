"""What every SDK runner shares: the workload, the clocks, the network guard, the protocol.

Standard library only: the runners live in different virtual environments (the project's own,
and one per peer SDK under ``bench/.venvs/``), and each imports this file from its own folder.

A runner sets its SDK up, warms up, flushes, says ``ready`` and then waits on stdin. For each
``round`` line it times ``calls`` back-to-back calls with the collector off, flushes (untimed
for the calling thread), and answers with one JSON line; ``stop`` ends it. The benchmark
drives every runner this way, one round each in turn, so a change in the machine's load falls
on all of them alike.

Clocks, per round:

* ``thread_time_ns`` — CPU spent on the calling thread: what tracing costs the application
  itself. Exporter threads encode and send in the background and are not counted here.
* ``perf_counter_ns`` — wall time of the same calls: it also shows the calling thread waiting
  for the GIL while a background exporter works.
* ``process_time_ns`` over the calls *and* the flush after them — CPU of every thread, so the
  background encoding and sending of that round's spans is paid for too.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import ipaddress
import json
import platform
import pstats
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

QUESTION = "What is the capital of France?"
TOP_K = 3
PREFIX = "@@sdk-bench "  # marks protocol lines among whatever an SDK prints

Answer = Callable[[str, int], dict[str, Any]]
Flush = Callable[[], bool]
Stats = Callable[[], dict[str, Any]]
Setup = Callable[["Options"], tuple[Answer, Flush, Stats]]


def make_answer() -> Answer:
    """A fresh copy of the function under test: two arguments in, a small dict out."""

    def answer(question: str, k: int) -> dict[str, Any]:
        return {"answer": "Paris", "k": k, "sources": ["wiki/Paris"]}

    answer.__qualname__ = "answer"
    return answer


def no_stats() -> dict[str, Any]:
    return {}


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    port: int
    calls: int
    warmup: int
    profile: str | None
    profile_calls: int
    variant: str

    @property
    def sink_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="loopback port of the sink")
    parser.add_argument("--calls", type=int, default=2_000, help="calls per round")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed calls first")
    parser.add_argument("--profile", help="no rounds: cProfile the calls, write stats here")
    parser.add_argument("--profile-calls", type=int, default=40_000)
    parser.add_argument("--variant", default="", help="a runner's own variant, if it has any")
    args = parser.parse_args(argv)
    return Options(
        args.port, args.calls, args.warmup, args.profile, args.profile_calls, args.variant
    )


# --- loopback only -----------------------------------------------------------------------------

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class NetworkGuard:
    """Refuses (and records) any connection or name lookup that is not for a loopback host."""

    blocked: list[str] = field(default_factory=list)

    def install(self) -> None:
        guard = self
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo

        def check(what: str, host: object) -> None:
            if not _is_loopback(host):
                guard.blocked.append(f"{what} {host!r}")
                raise ConnectionRefusedError(f"sdk bench: loopback only, refused {host!r}")

        def connect(sock: socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                check("connect", address[0])
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                check("connect", address[0])
            return real_connect_ex(sock, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None:
                check("lookup", host)
            return real_getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = getaddrinfo


# --- measuring ---------------------------------------------------------------------------------


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _say(event: str, **values: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"event": event, **values}) + "\n")
    sys.stdout.flush()


def _one_round(answer: Answer, flush: Flush, calls: int) -> dict[str, Any]:
    repeat = range(calls)
    gc.collect()
    gc.disable()
    try:
        process_start = time.process_time_ns()
        cpu_start = time.thread_time_ns()
        wall_start = time.perf_counter_ns()
        for _ in repeat:
            answer(QUESTION, TOP_K)
        wall_end = time.perf_counter_ns()
        cpu_end = time.thread_time_ns()
        flush_start = time.perf_counter()
        flushed = flush()
        flush_seconds = time.perf_counter() - flush_start
        process_end = time.process_time_ns()
    finally:
        gc.enable()
    return {
        "thread_cpu_us": (cpu_end - cpu_start) / calls / 1_000,
        "wall_us": (wall_end - wall_start) / calls / 1_000,
        "process_cpu_us": (process_end - process_start) / calls / 1_000,
        "flush_seconds": flush_seconds,
        "flushed": bool(flushed),
    }


def _profile(answer: Answer, flush: Flush, options: Options, path: str) -> None:
    """The calls under cProfile; statistics go to ``path`` (pstats) and ``path``.txt."""
    profiler = cProfile.Profile()
    gc.collect()
    gc.disable()
    try:
        for start in range(0, options.profile_calls, options.calls):
            profiler.enable()
            for _ in range(min(options.calls, options.profile_calls - start)):
                answer(QUESTION, TOP_K)
            profiler.disable()
            flush()
    finally:
        gc.enable()
    profiler.dump_stats(path)
    with open(f"{path}.txt", "w", encoding="utf-8") as out:
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)


def serve(
    sdk: str, options: Options, guard: NetworkGuard, setup: Setup, notes: list[str] | None = None
) -> None:
    """Set the SDK up and warm it up, then run rounds as the benchmark asks for them."""
    answer, flush, stats = setup(options)
    result = answer(QUESTION, TOP_K)
    if result.get("answer") != "Paris":
        raise RuntimeError(f"the traced function returned {result!r}")
    for _ in range(max(0, options.warmup - 1)):
        answer(QUESTION, TOP_K)
    flush()
    if options.profile:
        _profile(answer, flush, options, options.profile)
        _say("profiled", path=options.profile)
        return
    _say(
        "ready",
        sdk=sdk,
        sdk_version=version_of(sdk),
        python=platform.python_version(),
        warmup_calls=max(1, options.warmup),
    )
    for line in sys.stdin:
        command = line.strip()
        if command == "round":
            _say("round", **_one_round(answer, flush, options.calls))
        elif command == "stop":
            break
    try:
        sdk_stats = stats()
    except Exception as error:  # the figures matter more than an SDK's own counters
        sdk_stats = {"error": repr(error)}
    _say("done", notes=list(notes or []), blocked_connections=guard.blocked, sdk_stats=sdk_stats)
