"""The command line: the demo, db upgrade, keys, and durability across a hard kill."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from assay.services import metrics
from assay.services.export import validate_openai_chat
from assay.services.principal import Principal
from assay.store import projects as project_store
from assay.store import traces as trace_store
from assay.store.database import Database
from assay.store.engine import make_engine
from assay.store.listing import Filters
from assay.store.tables import prompt_label_moves, scores, spans, traces
from tests.conftest import free_port
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span


def _run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _demo(home: Path, runs: int) -> subprocess.CompletedProcess[str]:
    return _run(
        "demo",
        "--no-serve",
        "--port",
        str(free_port()),
        "--runs",
        str(runs),
        # No key: the demo's judge must be the offline one, whatever this machine has set.
        env={
            "ASSAY_HOME": str(home),
            "COLUMNS": "200",
            "OPENAI_API_KEY": "",
            "ANTHROPIC_API_KEY": "",
            "ASSAY_JUDGE_MODEL": "",
        },
    )


def test_demo_fills_the_default_store(tmp_path: Path) -> None:
    result = _demo(tmp_path, 12)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed:" not in result.stdout and "skipped:" not in result.stdout
    # Grouped by room, the links last.
    rooms = ["Traces", "Evals", "Prompts, playground", "Review and", "Online scoring", "Export"]
    starts = [result.stdout.index(f"\n{room}") for room in rooms + ["Open in a browser"]]
    assert starts == sorted(starts), result.stdout
    assert result.stdout.index("  monitor ") > result.stdout.index("Open in a browser")
    assert "project demo now holds" in result.stdout
    # The eval part: two stored runs, the second compared with the first, on built-in,
    # trajectory and judge scores (the offline judge, as no key is set here).
    assert "eval support-answers, baseline -> improved (judge: mock/demo-judge" in result.stdout
    assert "assay[openai]" in result.stdout  # printed as written, not read as markup
    assert re.search(r"contains_expected +0\.50 -> 0\.88", result.stdout)
    assert re.search(r"one_lookup +0\.00 -> 1\.00", result.stdout)
    assert re.search(r"resolves +0\.56 -> 0\.88", result.stdout)
    # The real agent, run with the first version while production is on the second.
    assert "ran with support-agent v1 while production is v2: " in result.stdout
    assert "(error:" not in result.stdout
    assert "/p/demo/experiments/1/compare/2" in result.stdout
    assert "prompt support-agent: two versions, production moved to v2" in result.stdout
    # The playground comparison: each version over the same dataset, v2 answering more.
    assert "v1 -> v2 over the dataset support-prompt-cases: contains 0.50 -> 0.88" in result.stdout
    assert re.search(r"/p/demo/experiments/\d+/compare/\d+ +\(both versions", result.stdout)
    # The export part: the dataset as OpenAI chat fine-tuning JSONL in a temp file.
    exported = re.search(
        r"fine-tuning export \(OpenAI chat JSONL\): (\d+) examples, "
        r"(\d+) records skipped.* -> (\S+)",
        result.stdout,
    )
    assert exported, result.stdout
    lines = Path(exported.group(3)).read_text().splitlines()
    assert len(lines) == int(exported.group(1)) > 0 and exported.group(2) == "0"
    assert all(validate_openai_chat(json.loads(line)) == [] for line in lines)
    assert (tmp_path / "assay.db").exists()
    engine = make_engine(f"sqlite:///{tmp_path / 'assay.db'}")
    with engine.connect() as conn:
        moves = conn.execute(prompt_label_moves.select()).mappings().all()
        assert [(m["from_version"], m["to_version"]) for m in moves] == [(None, 1), (1, 2)]
        rows = conn.execute(spans.select()).mappings().all()
        feedback = conn.execute(scores.select()).mappings().all()
        found = trace_store.list_traces(conn, 1, Filters(q="damaged")).items
    engine.dispose()
    # The SDK part of the demo left end-user feedback, and the printed search finds something.
    labels = [s for s in feedback if s["review_id"] is not None]
    human = [s for s in feedback if s["source"] == "human" and s["review_id"] is None]
    assert human and {s["name"] for s in human} == {"thumbs_up"}
    # Two reviewers labelled the demo's review queue, and the review room is among the links.
    assert {s["author"] for s in labels} == {"maria", "tom"}
    assert {s["name"] for s in labels} == {"answer quality", "reply helps"}
    assert all(s["source"] == "human" and s["rationale"] for s in labels)
    assert "/p/demo/review/1/adjudicate" in result.stdout
    # The dashboard and the quality page are among the links, and have the demo's traces.
    assert re.search(r"dashboard +http://127\.0\.0\.1:\d+/p/demo/dashboard\?", result.stdout)
    assert re.search(r"quality +http://127\.0\.0\.1:\d+/p/demo/quality", result.stdout)
    # ... which count the demo's traces: those of the last 7 days, read here from the store.
    store = make_engine(f"sqlite:///{tmp_path / 'assay.db'}")
    week = metrics.parse_query([("metric", "count"), ("range", "7d")])
    with store.connect() as conn:
        demo_id = project_store.get_id(conn, "demo")
        recent = conn.execute(
            select(func.count())
            .select_from(traces)
            .where(
                traces.c.project_id == demo_id,
                traces.c.start_ns >= week.since_ns,
                traces.c.start_ns < week.until_ns,
            )
        ).scalar_one()
    charted = metrics.series(Database(engine=store, updates=store), Principal.local(), "demo", week)
    store.dispose()
    assert sum(point.n for point in charted.series[0].points) == recent > 0
    # The daily sampling automation ran once: 20 of the day's traces (or all, if fewer).
    sampled = re.search(r"/automations/1 .*first run added (\d+) of (\d+)", result.stdout)
    assert sampled, result.stdout
    assert int(sampled.group(1)) == min(20, int(sampled.group(2))) > 0
    # The online rule judged a sample of the support agent's runs on the server, through the
    # offline stand-in model, with nothing failed; the page is printed.
    online = re.search(r"rule helpfulness-sample .*: (\d+) scored, 0 failed", result.stdout)
    assert online and int(online.group(1)) > 0, result.stdout
    judged = [s for s in feedback if s["source"] == "llm" and s["name"] == "helpful"]
    # Only the support agent's runs (its filter is its tag): not the evals', not the judges'
    # own calls; and the server, in the demo's process, did not trace itself into the project.
    support = {row["trace_id"] for row in rows if row["name"] == "support-agent"}
    assert {s["trace_id"] for s in judged} <= support
    assert not [row["name"] for row in rows if (row["scope"] or {}).get("name") == "fastapi"]
    # (at least: the rule keeps scoring while the demo goes on)
    assert len(judged) >= int(online.group(1))
    assert all(s["metadata"]["evaluator_version"] == 1 and s["rationale"] for s in judged)
    assert re.search(r"online rule +http://127\.0\.0\.1:\d+/p/demo/rules/1", result.stdout)
    assert found
    # The monitor on the judge's mean was evaluated once, on the judged traces: a value and
    # a state; an alert (below 0.9) reached the demo's channel and is printed.
    watched = re.search(
        r"monitor helpfulness-falls: .* (\d\.\d\d) against 0\.9 -> (\w+)", result.stdout
    )
    assert watched, result.stdout
    mean = statistics.mean(float(s["value"]) for s in judged)
    assert float(watched.group(1)) == pytest.approx(mean, abs=0.006)
    assert watched.group(2) == ("alerting" if mean < 0.9 else "ok")
    if mean < 0.9:
        assert "demo channel received: [ALERT]" in result.stdout
    assert re.search(r"monitor +http://127\.0\.0\.1:\d+/p/demo/monitors/1", result.stdout)
    # A judge checked against people: calibrated on three weeks, the fourth flagged as drift,
    # its rule paused; what its rule routed to people was labelled by two of them.
    calibrated = re.search(
        r"judge reply-helpful calibrated against people: kappa (\S+)", result.stdout
    )
    assert calibrated and float(calibrated.group(1)) > 0.6, result.stdout
    weeks = re.findall(r"\d{4}-\d\d-\d\d kappa \S+( DRIFT)?", result.stdout)
    assert [bool(w) for w in weeks] == [False, False, False, True], result.stdout
    assert "rule judge-check paused: judge 'reply-helpful' v1 drifted" in result.stdout
    assert re.search(r"disagreements +http://\S+/calibrations/1/disagreements", result.stdout)
    reply_labels = [s for s in labels if s["name"] == "reply helps"]
    assert len(reply_labels) == 2 * 48
    # Both eval runs stored their cases' traces beside the experiments (8 cases x 2 runs).
    assert sum(1 for row in rows if row["name"] == "eval support-answers") == 16
    types = {row["type"] for row in rows}
    assert {"agent", "llm", "tool", "retrieval"} <= types
    assert any(row["is_error"] for row in rows)
    # The supervisor and its sub-agent (another service) share one trace.
    services: dict[str, set[str]] = {}
    for row in rows:
        services.setdefault(row["trace_id"], set()).add(row["resource"]["service.name"])
    assert any(s == {"research-supervisor", "web-researcher"} for s in services.values())

    # A second run on the same database (a newcomer runs `make demo` twice) works too: it
    # reuses what the first made, and tells the judge's four weeks anew under new names.
    again = _demo(tmp_path, 6)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "failed:" not in again.stdout and "skipped:" not in again.stdout
    assert "prompt support-agent (made by an earlier demo run): production is on v2" in (
        again.stdout
    )
    assert "ran with support-agent v1 while production is v2: " in again.stdout
    assert re.search(r"automation daily review sample \(ran again\): added \d+ of", again.stdout)
    assert re.search(r"rule helpfulness-sample .*: \d+ scored, 0 failed", again.stdout)
    assert re.search(r"judge reply-helpful-2 calibrated against people: kappa 0\.", again.stdout)
    weeks = re.findall(r"\d{4}-\d\d-\d\d kappa \S+( DRIFT)?", again.stdout)
    assert [bool(w) for w in weeks] == [False, False, False, True], again.stdout
    assert re.search(r"monitor helpfulness-falls: .* -> (alerting|ok)", again.stdout)


def test_db_upgrade_and_keys(tmp_path: Path) -> None:
    env = {"ASSAY_HOME": str(tmp_path)}
    assert _run("db", "upgrade", env=env).returncode == 0
    bad = _run("keys", "create", "--role", "king", env=env)
    assert bad.returncode == 1 and "--role must be one of" in bad.stderr
    assert "Traceback" not in bad.stderr
    created = _run("keys", "create", "--project", "p", "--name", "ci", env=env)
    assert created.returncode == 0
    listing = _run("keys", "list", env=env)
    assert "ci" in listing.stdout and "p" in listing.stdout
    assert created.stdout.strip().splitlines()[-1] not in listing.stdout
    missing = _run("keys", "revoke", "nope", env=env)
    assert missing.returncode == 1 and "no active key" in missing.stderr


def test_acknowledged_spans_survive_a_hard_kill(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "assay.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assay.cli",
            "server",
            "--port",
            str(port),
            "--db",
            f"sqlite:///{db}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        sent = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(20):
                batch = [span(new_trace_id(), new_span_id(), "s") for _ in range(50)]
                response = client.post("/v1/traces", content=protobuf(batch), headers=PB)
                assert response.status_code == 200
                sent += len(batch)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = len(conn.execute(spans.select()).all())
    engine.dispose()
    assert stored == sent


def _serving(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> bool:
    """Whether the server answers at ``url`` before it exits or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            time.sleep(0.1)
    return False


def test_server_binds_where_assay_host_and_assay_port_say(tmp_path: Path) -> None:
    env_port, flag_port = free_port(), free_port()
    env = {
        **os.environ,
        "ASSAY_HOST": "127.0.0.2",  # loopback too, but not the --host default
        "ASSAY_PORT": str(env_port),
        "ASSAY_DATABASE_URL": f"sqlite:///{tmp_path}/assay.db",
        "ASSAY_GRPC_PORT": "0",  # 4317 may be another server's on this machine
    }
    for flags, url in (
        ((), f"http://127.0.0.2:{env_port}"),
        (("--port", str(flag_port)), f"http://127.0.0.2:{flag_port}"),  # a flag wins
    ):
        proc = subprocess.Popen(
            [sys.executable, "-m", "assay.cli", "server", *flags],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert proc.stderr is not None
            assert _serving(url, proc), proc.stderr.read() if proc.poll() is not None else url
            with pytest.raises(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{url.rsplit(':', 1)[1]}/healthz", timeout=2)
        finally:
            proc.terminate()
            proc.wait(15)
