"""A span the server acknowledged survives SIGKILL, on both engines.

Four clients post while the real `assay server` process is killed (SIGKILL, no shutdown code)
and started again, several times; every span answered 200 must be stored, once. The longer
loop of the same harness is bench/durability.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kill_loop import run_kill_loop

pytestmark = pytest.mark.slow


def test_no_acknowledged_span_is_lost_across_repeated_kills(db_url: str, tmp_path: Path) -> None:
    result = run_kill_loop(db_url, tmp_path, kills=3, clients=4, ingest_seconds=1.5)

    assert result.errors == []
    assert result.lost == 0, f"{result.lost} of {result.acknowledged} acknowledged spans lost"
    # Each kill landed during ingest: spans were acknowledged before every one, and requests
    # in flight or refused while the server was down were sent again.
    assert all(count > 0 for count in result.acknowledged_per_round), result
    assert result.resent >= result.kills
    # A batch re-sent after a kill may already have been stored: it is not stored twice.
    assert result.duplicates == 0
    assert result.stored >= result.acknowledged
    assert result.seconds < 60
