"""Acknowledged spans across repeated SIGKILLs: the long form of tests/test_durability.py.

    PYTHONPATH=src .venv/bin/python bench/durability.py [--engine sqlite|postgres|both]
        [--kills N] [--clients K] [--ingest-seconds S] [--workers W]

Starts the real `assay server` on a fresh store, lets K clients post OTLP batches (re-sending
each until it is answered 200, as an exporter does), SIGKILLs the server N times mid-ingest and
starts it again, then compares the spans acknowledged with the spans stored. Exits 1 if any
acknowledged span is missing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_DIR))

from servers import (  # noqa: E402
    POSTGRES_BENCH_DB,
    _drop_postgres_database,
    _reset_postgres_database,
)
from tests.kill_loop import KillLoopResult, run_kill_loop  # noqa: E402


def run(engine: str, args: argparse.Namespace) -> KillLoopResult:
    with tempfile.TemporaryDirectory(prefix=f"assay-durability-{engine}-") as scratch:
        workdir = Path(scratch)
        if engine == "sqlite":
            url = f"sqlite:///{workdir / 'assay.db'}"
            return run_kill_loop(
                url,
                workdir,
                kills=args.kills,
                clients=args.clients,
                ingest_seconds=args.ingest_seconds,
                workers=args.workers,
            )
        _reset_postgres_database(POSTGRES_BENCH_DB)
        try:
            return run_kill_loop(
                f"postgresql+psycopg://postgres@127.0.0.1:5432/{POSTGRES_BENCH_DB}",
                workdir,
                kills=args.kills,
                clients=args.clients,
                ingest_seconds=args.ingest_seconds,
                workers=args.workers,
            )
        finally:
            _drop_postgres_database(POSTGRES_BENCH_DB)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--ingest-seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    engines = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    lost = 0
    print(
        f"{'engine':<9} {'kills':>5} {'acknowledged':>12} {'stored':>8} {'lost':>5} "
        f"{'dupes':>5} {'re-sent':>7} {'restart s (max)':>15} {'seconds':>7}"
    )
    for engine in engines:
        result = run(engine, args)
        lost += result.lost + result.duplicates
        print(
            f"{engine:<9} {result.kills:>5} {result.acknowledged:>12,} {result.stored:>8,} "
            f"{result.lost:>5} {result.duplicates:>5} {result.resent:>7} "
            f"{max(result.restart_seconds, default=0):>15.1f} {result.seconds:>7.0f}"
        )
        for error in result.errors:
            print(f"  {engine}: {error}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
