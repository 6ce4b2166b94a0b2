"""Judges checked against people, through the real server on both engines, with judges that
answer from the local fake model server: calibration, disagreements, the gate, the CLI, and
agreement over time with a drift alert and a paused rule."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score  # type: ignore[import-untyped]
from sqlalchemy import update

from assay.services import calibration
from assay.settings import Settings
from assay.store import keys as key_store
from assay.store.tables import scores
from tests.conftest import LiveServer, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

SOURCE = Path(__file__).parent.parent / "src"
PROMPT = "Question: {{input}}\nAnswer: {{output}}\nIs the answer good?"
STRICT_PROMPT = "STRICT. " + PROMPT
WEEK_NS = 7 * 86_400 * 10**9


class ReadingJudge(FakeLLM):
    """Answers what the case's text says the judge version answers: the prompt of version 2
    (edited: it starts "STRICT") reads "v2 says X", the first version "v1 says X"."""

    def _received(self, path: str, body: dict[str, Any]) -> Answer | None:
        super()._received(path, body)
        text = json.dumps(body.get("messages"))
        version = "v2" if "STRICT" in text else "v1"
        found = re.search(rf"{version} says (\w+)", text)
        choice = found.group(1) if found else "bad"
        return Answer(arguments={"reasoning": f"{version} read {choice}", "choice": choice})


@dataclass
class Case:
    truth: str  # the rubric's choice: pass | fail
    v1: str  # the judge's choice: good | bad
    v2: str


def _flip(choice: str) -> str:
    return "bad" if choice == "good" else "good"


def cases(count: int, *, v1_wrong_every: int = 10, v1_at_chance: bool = False) -> list[Case]:
    """Truth alternates pass / fail; v1 agrees except on every tenth case (90%), or answers
    without regard to the truth; v2 answers without regard to it (at chance)."""
    out = []
    for i in range(count):
        truth = "pass" if i % 2 == 0 else "fail"
        right = "good" if truth == "pass" else "bad"
        blind = "good" if i % 4 in (0, 1) else "bad"
        v1 = blind if v1_at_chance else (_flip(right) if i % v1_wrong_every == 5 else right)
        out.append(Case(truth, v1, blind))
    return out


@pytest.fixture
def judge_server() -> Iterator[ReadingJudge]:
    server = ReadingJudge().start()
    assert isinstance(server, ReadingJudge)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def online(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(replace(settings, egress_allow="127.0.0.1", worker_poll_ms=50))
    try:
        yield server
    finally:
        server.stop()


def _key(live: LiveServer, name: str, role: str, project: str | None) -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name=name, role=role, project=project)
    live.runtime._key_count = None
    return secret


@dataclass
class People:
    admin: httpx.Client
    ann: httpx.Client
    bob: httpx.Client

    def close(self) -> None:
        for client in (self.admin, self.ann, self.bob):
            client.close()


@pytest.fixture
def people(online: LiveServer) -> Iterator[People]:
    def client(name: str, role: str, project: str | None) -> httpx.Client:
        secret = _key(online, name, role, project)
        return online.client(headers={"Authorization": f"Bearer {secret}"})

    found = People(
        client("root", "admin", None),
        client("ann", "annotator", "cal"),
        client("bob", "annotator", "cal"),
    )
    try:
        yield found
    finally:
        found.close()


def send_cases(client: httpx.Client, project: str, found: list[Case], tag: str) -> list[str]:
    ids = []
    spans_ = []
    for i, case in enumerate(found):
        trace_id = new_trace_id()
        ids.append(trace_id.hex())
        text = f"{tag} case {i}: v1 says {case.v1}; v2 says {case.v2}"
        spans_.append(
            span(
                trace_id,
                new_span_id(),
                f"{tag}-{i}",
                start=time.time_ns(),
                attributes={"input.value": text, "output.value": f"answer {i}"},
            )
        )
    sent = client.post("/v1/traces", content=protobuf(spans_, service=project), headers=PB)
    assert sent.status_code == 200, sent.text
    return ids


def make_judge(client: httpx.Client, fake: FakeLLM, project: str) -> dict[str, Any]:
    made = client.post(
        f"/api/v1/projects/{project}/connections",
        json={
            "name": "fake",
            "provider": "openai-compatible",
            "base_url": fake.openai_url,
            "api_key": "sk-test-calibration-0000",
            "default_model": "gpt-4o-mini",
        },
    )
    assert made.status_code == 201, made.text
    evaluator = client.post(
        f"/api/v1/projects/{project}/evaluators",
        json={
            "name": "quality",
            "kind": "judge",
            "prompt": PROMPT,
            "choices": {"good": 1.0, "bad": 0.0},
            "model": "gpt-4o-mini",
            "connection": "fake",
        },
    )
    assert evaluator.status_code == 201, evaluator.text
    return dict(evaluator.json())


def make_rubric(client: httpx.Client, project: str) -> dict[str, Any]:
    made = client.post(
        f"/api/v1/projects/{project}/rubrics",
        json={"name": "correct", "kind": "pass_fail", "rationale": "optional"},
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def make_queue(client: httpx.Client, project: str, rubric_id: int, per_item: int, name: str) -> int:
    made = client.post(
        f"/api/v1/projects/{project}/queues",
        json={"name": name, "rubrics": [rubric_id], "reviews_per_item": per_item},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def review_all(
    client: httpx.Client, queue_id: int, rubric_id: int, choose: dict[str, str]
) -> dict[str, int]:
    """Label every item the caller is given with ``choose[trace_id]``; item id per trace."""
    items: dict[str, int] = {}
    first = client.get(f"/api/v1/queues/{queue_id}/next")
    item = first.json() if first.status_code == 200 else None
    while item:
        items[item["trace_id"]] = int(item["item_id"])
        choice = choose[item["trace_id"]]
        done = client.post(
            f"/api/v1/queues/{queue_id}/items/{item['item_id']}/labels",
            json={
                "labels": [
                    {"rubric_id": rubric_id, "choice": choice, "rationale": f"it is {choice}"}
                ]
            },
        )
        assert done.status_code == 201, done.text
        item = done.json()["next"]
    return items


def labelled_set(
    people: People, project: str, rubric_id: int, found: list[Case], trace_ids: list[str]
) -> dict[str, int]:
    """Two reviewers label every case; bob flips cases 0, 1 and 2; an editor settles 0 and 1
    with gold labels (the truth), so case 2 stays unresolved and is left out."""
    queue_id = make_queue(people.admin, project, rubric_id, 2, "calibration set")
    added = people.admin.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": trace_ids})
    assert added.status_code == 201, added.text
    truth = {t: c.truth for t, c in zip(trace_ids, found, strict=True)}
    flipped = {
        t: ("fail" if c.truth == "pass" else "pass") if i < 3 else c.truth
        for i, (t, c) in enumerate(zip(trace_ids, found, strict=True))
    }
    items = review_all(people.ann, queue_id, rubric_id, truth)
    review_all(people.bob, queue_id, rubric_id, flipped)
    for trace_id in trace_ids[:2]:
        gold = people.admin.put(
            f"/api/v1/queues/{queue_id}/items/{items[trace_id]}/gold",
            json={"labels": [{"rubric_id": rubric_id, "choice": truth[trace_id]}]},
        )
        assert gold.status_code == 200, gold.text
    return items


def calibrate(
    client: httpx.Client, evaluator_id: int, rubric_id: int, **extra: Any
) -> dict[str, Any]:
    made = client.post(
        f"/api/v1/evaluators/{evaluator_id}/calibrations", json={"rubric_id": rubric_id, **extra}
    )
    assert made.status_code == 201, made.text
    found = client.get(f"/api/v1/evaluators/{evaluator_id}/calibrations/{made.json()['id']}")
    assert found.status_code == 200, found.text
    return dict(found.json())


def expected_pairs(found: list[Case], version: str) -> tuple[list[str], list[str]]:
    """(people, judge) over the cases a calibration uses: all but case 2 (unresolved)."""
    truth = [c.truth for i, c in enumerate(found) if i != 2]
    said = [getattr(c, version) for i, c in enumerate(found) if i != 2]
    return truth, ["pass" if s == "good" else "fail" for s in said]


def test_calibration_disagreements_gate_and_cli(
    online: LiveServer, people: People, judge_server: ReadingJudge, tmp_path: Path
) -> None:
    admin = people.admin
    found = cases(60)
    trace_ids = send_cases(admin, "cal", found, "cal")
    evaluator = make_judge(admin, judge_server, "cal")
    rubric = make_rubric(admin, "cal")
    labelled_set(people, "cal", rubric["id"], found, trace_ids)

    first = calibrate(admin, evaluator["id"], rubric["id"])
    truth, judged = expected_pairs(found, "v1")
    assert first["n"] == 59 and first["unresolved"] == 1 and first["errors"] == 0
    # The default mapping reads the judge's "good" (1.0) as the rubric's "pass" (1.0).
    assert first["mapping"] == {"good": "pass", "bad": "fail"}
    assert first["accuracy"]["value"] == pytest.approx(accuracy_score(truth, judged))
    assert first["kappa"]["value"] == pytest.approx(cohen_kappa_score(truth, judged))
    for figure in ("accuracy", "kappa", "macro_f1"):
        assert first[figure]["low"] <= first[figure]["value"] <= first[figure]["high"]
    assert set(first["precision"]) == {"pass", "fail"}
    assert first["confusion"]["labels"] == ["pass", "fail"]
    assert sum(map(sum, first["confusion"]["matrix"])) == 59
    # The ceiling: the two reviewers' own agreement (bob differs on 3 of 60).
    assert first["ceiling"]["n"] == 60 and first["ceiling"]["value"] < 1.0
    assert first["ceiling"]["percent_agreement"]["value"] == pytest.approx(57 / 60)

    # Disagreements: exactly the cases where v1 differs from the truth, with both rationales.
    listed = admin.get(
        f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first['id']}/disagreements"
    ).json()["items"]
    wrong = {
        trace_ids[i]
        for i in range(60)
        if i != 2 and found[i].v1 != ("good" if found[i].truth == "pass" else "bad")
    }
    assert {item["trace_id"] for item in listed} == wrong and len(wrong) == 6
    one = listed[0]
    assert one["judge"]["rationale"].startswith("v1 read")
    assert one["people"]["rationale"] and one["trace_url"] == f"/p/cal/traces/{one['trace_id']}"
    added = admin.post(
        f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first['id']}/disagreements/dataset",
        json={"dataset": "quality-regressions"},
    )
    assert added.status_code == 201 and added.json()["added"] == 6, added.text
    records = admin.get("/api/v1/projects/cal/datasets/quality-regressions/records").json()
    assert sorted(r["expected"] for r in records["items"]) == sorted(
        next(c.truth for t, c in zip(trace_ids, found, strict=True) if t == trace_id)
        for trace_id in wrong
    )

    # An edited mapping is read again without calling the judge.
    calls = len(judge_server.requests)
    swapped = admin.put(
        f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first['id']}/mapping",
        json={"mapping": {"good": "fail", "bad": "pass"}},
    )
    assert swapped.status_code == 200, swapped.text
    swapped_judged = ["fail" if j == "pass" else "pass" for j in judged]
    assert swapped.json()["kappa"]["value"] == pytest.approx(
        cohen_kappa_score(truth, swapped_judged)
    )
    assert swapped.json()["kappa"]["value"] < 0
    assert len(judge_server.requests) == calls
    bad_mapping = admin.put(
        f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first['id']}/mapping",
        json={"mapping": {"good": "maybe", "bad": "pass"}},
    )
    assert bad_mapping.status_code == 400 and "'pass', 'fail'" in bad_mapping.text
    restored = admin.put(
        f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first['id']}/mapping",
        json={"mapping": {"good": "pass", "bad": "fail"}},
    )
    assert restored.json()["kappa"]["value"] == pytest.approx(first["kappa"]["value"])

    for unusable in (
        {"calibration_min_kappa": "high"},
        {"calibration_min_items": 0},
        {"judge_alert_webhook": "file:///etc/passwd"},
    ):
        refused_setting = admin.patch("/api/v1/projects/cal", json={"settings": unusable})
        assert refused_setting.status_code == 400, refused_setting.text
    # The gate: on, v1 (kappa ~0.8 on 59 items) may score online.
    settings = admin.patch(
        "/api/v1/projects/cal", json={"settings": {"judges_must_be_calibrated": True}}
    )
    assert settings.status_code == 200, settings.text
    rule = {"evaluators": [evaluator["id"]], "filter": {}, "sample_rate": 1.0, "delay_seconds": 0}
    allowed = admin.post("/api/v1/projects/cal/rules", json={**rule, "name": "calibrated"})
    assert allowed.status_code == 201, allowed.text

    # An edited prompt is a new version, at chance: refused, with its figures.
    edited = admin.patch(f"/api/v1/evaluators/{evaluator['id']}", json={"prompt": STRICT_PROMPT})
    assert edited.status_code == 200 and edited.json()["version"] == 2, edited.text
    untested = admin.post("/api/v1/projects/cal/rules", json={**rule, "name": "untested"})
    assert untested.status_code == 400 and "no calibration" in untested.text
    second = calibrate(admin, evaluator["id"], rubric["id"])
    truth2, judged2 = expected_pairs(found, "v2")
    assert second["version"] == 2
    assert second["kappa"]["value"] == pytest.approx(cohen_kappa_score(truth2, judged2))
    refused = admin.post("/api/v1/projects/cal/rules", json={**rule, "name": "at chance"})
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]["message"]
    assert f"kappa {second['kappa']['value']:.2f}" in message and "on 59 items" in message
    assert "kappa >= 0.6 on at least 30" in message

    # The rule attached while v1 was current now runs v2: the worker's watch pauses it.
    rule_id = allowed.json()["id"]
    assert admin.get(f"/api/v1/rules/{rule_id}").json()["status"]["paused"] is False
    assert calibration.watch(online.runtime) == [rule_id]
    status = admin.get(f"/api/v1/rules/{rule_id}").json()["status"]
    assert (
        status["paused"] is True and "v2 is not calibrated well enough" in status["paused_reason"]
    )
    assert f"kappa {second['kappa']['value']:.2f}" in status["paused_reason"]
    # Turned back on by a person: the gate is asked again, and refuses.
    again = admin.patch(f"/api/v1/rules/{rule_id}", json={"enabled": True})
    assert again.status_code == 400 and "not calibrated well enough" in again.text

    # McNemar between the two versions on the same items.
    compared = admin.get(
        f"/api/v1/evaluators/{evaluator['id']}/calibrations/compare",
        params={"baseline": first["id"], "candidate": second["id"]},
    ).json()
    assert compared["n"] == 59 and compared["regressed"] > compared["improved"]
    assert compared["significant"] and compared["test"].startswith("McNemar")

    # The gate as `assay eval --require-calibrated` asks it.
    gate = admin.get("/api/v1/projects/cal/judges/quality/gate").json()
    assert gate["ok"] is False and "kappa" in gate["message"]

    # The CLI prints the table: metric, value, interval, n, ceiling.
    env = {
        **os.environ,
        "PYTHONPATH": str(SOURCE),
        "ASSAY_URL": online.url,
        "ASSAY_API_KEY": _key(online, "cli", "admin", None),
        "COLUMNS": "200",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay.cli",
            "judges",
            "calibrate",
            "quality",
            "--rubric",
            "correct",
            "--project",
            "cal",
            "--version",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "ceiling (people)" in run.stdout and "kappa" in run.stdout
    assert f"{first['kappa']['value']:.3f}" in run.stdout

    # `assay eval --require-calibrated` refuses to let the edited judge gate a run, with the
    # figures, before any case runs; the first version's hash passes the same gate.
    stored = admin.get(f"/api/v1/evaluators/{evaluator['id']}").json()["versions"]
    definition = next(v["definition"] for v in stored if v["version"] == 2)
    eval_file = tmp_path / "eval_judged.py"
    eval_file.write_text(
        "import assay\n"
        "from assay.services.evaluators import make_judge\n"
        f"quality = make_judge('quality', {definition!r})\n"
        "assay.Eval('judged', data=[{'input': 'x', 'expected': 'x'}],\n"
        "    task=lambda case: (_ for _ in ()).throw(SystemExit('the task ran')),\n"
        "    scores=[quality], thresholds={'quality': 0.5}, project='cal')\n"
    )
    gated = subprocess.run(
        [sys.executable, "-m", "assay.cli", "eval", str(eval_file), "--require-calibrated"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gated.returncode == 1, gated.stdout + gated.stderr
    assert "not calibrated" in gated.stdout and "kappa" in gated.stdout
    assert f"{second['kappa']['value']:.2f}" in gated.stdout
    assert "the task ran" not in gated.stdout + gated.stderr
    v1_hash = next(v["version_hash"] for v in stored if v["version"] == 1)
    passes = admin.get(
        "/api/v1/projects/cal/judges/quality/gate", params={"version_hash": v1_hash}
    ).json()
    assert passes["ok"] is True and passes["calibration"]["version"] == 1


# --- agreement over time ----------------------------------------------------------------------


class Receiver:
    """A local webhook receiver: what it was sent."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_agreement_over_time_flags_the_degraded_week_alerts_once_and_pauses_the_rule(
    online: LiveServer, people: People, judge_server: ReadingJudge
) -> None:
    admin = people.admin
    found = cases(60)
    trace_ids = send_cases(admin, "cal", found, "cal")
    evaluator = make_judge(admin, judge_server, "cal")
    rubric = make_rubric(admin, "cal")
    labelled_set(people, "cal", rubric["id"], found, trace_ids)
    calibrated = calibrate(admin, evaluator["id"], rubric["id"])
    assert calibrated["kappa"]["value"] > 0.7

    receiver = Receiver()
    try:
        admin.patch(
            "/api/v1/projects/cal", json={"settings": {"judge_alert_webhook": receiver.url}}
        )
        rule = admin.post(
            "/api/v1/projects/cal/rules",
            json={
                "name": "production",
                "evaluators": [evaluator["id"]],
                "filter": {},
                "sample_rate": 1.0,
                "delay_seconds": 0,
            },
        )
        assert rule.status_code == 201, rule.text
        # Four weeks of production, 20 traces each; the judge degrades to chance in the last.
        weeks = [cases(20) for _ in range(3)] + [cases(20, v1_at_chance=True)]
        week_ids = [send_cases(admin, "cal", week, f"week{w}") for w, week in enumerate(weeks)]
        every = {t for ids in week_ids for t in ids}

        def scored() -> bool:
            with online.runtime.read() as conn:
                from assay.store import online as online_store

                counts = online_store.score_counts(conn)
            return all(counts.get(t, 0) >= 1 for t in every)

        deadline = time.monotonic() + 60
        while not scored():
            assert time.monotonic() < deadline, "the worker did not score the weeks' traces"
            time.sleep(0.1)

        queue_id = make_queue(admin, "cal", rubric["id"], 1, "production sample")
        added = admin.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": sorted(every)})
        assert added.status_code == 201, added.text
        truth = {
            t: c.truth
            for ids, week in zip(week_ids, weeks, strict=True)
            for t, c in zip(ids, week, strict=True)
        }
        review_all(people.ann, queue_id, rubric["id"], truth)
        # The labels were given over four weeks: move each week's back to its week.
        now = time.time_ns()
        with online.runtime.engine.begin() as conn:
            for w, ids in enumerate(week_ids):
                conn.execute(
                    update(scores)
                    .where(scores.c.trace_id.in_(ids), scores.c.review_id.is_not(None))
                    .values(created_ns=now - (3 - w) * WEEK_NS)
                )

        series = admin.get(f"/api/v1/evaluators/{evaluator['id']}/agreement?window=week")
        assert series.status_code == 200, series.text
        body = series.json()
        windows = body["series"]
        assert [w["n"] for w in windows] == [20, 20, 20, 20]
        assert [w["drift"] for w in windows] == [False, False, False, True]
        last = windows[-1]
        assert last["kappa"]["value"] < 0.3 and "z test" in body["test"]
        assert body["alerted"] is True and body["paused_rules"] == [rule.json()["id"]]
        for w in windows:
            assert set(w) >= {"start", "n", "kappa", "accuracy", "drift"}
            assert set(w["kappa"]) >= {"value", "low", "high"}

        status = admin.get(f"/api/v1/rules/{rule.json()['id']}").json()["status"]
        assert status["paused"] is True and "drifted" in status["paused_reason"]
        assert "kappa" in status["paused_reason"]

        # Asked again: still flagged, no second alert.
        again = admin.get(f"/api/v1/evaluators/{evaluator['id']}/agreement").json()
        assert again["series"][-1]["drift"] is True and again["alerted"] is False
        # The alert sent, and how its delivery went, stay visible on the window.
        assert again["series"][-1]["alert"]["delivery"] == "204"
        assert all(entry["alert"] is None for entry in again["series"][:-1])
        deadline = time.monotonic() + 5
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(receiver.received) == 1
        alert = receiver.received[0]
        assert alert["event"] == "judge.drift" and alert["evaluator"] == "quality"
        assert alert["window"]["kappa"]["value"] == pytest.approx(last["kappa"]["value"])
        assert alert["calibration"]["kappa"]["value"] == pytest.approx(calibrated["kappa"]["value"])
        assert alert["link"] == f"/p/cal/evaluators/{evaluator['id']}"
    finally:
        receiver.close()


def test_a_numeric_rubric_gets_mae_spearman_and_quadratic_kappa(
    online: LiveServer, people: People, judge_server: ReadingJudge
) -> None:
    from scipy.stats import spearmanr  # type: ignore[import-untyped]
    from sklearn.metrics import mean_absolute_error

    admin = people.admin
    words = ["one", "two", "three", "four", "five"]
    truth = [1 + i % 5 for i in range(25)]
    said = [min(5, t + (1 if i % 3 == 0 else 0)) for i, t in enumerate(truth)]
    found = [Case("", words[s - 1], words[s - 1]) for s in said]
    trace_ids = send_cases(admin, "cal", found, "num")
    judged = make_judge(admin, judge_server, "cal")
    changed = admin.patch(
        f"/api/v1/evaluators/{judged['id']}",
        json={"choices": {w: i / 4 for i, w in enumerate(words)}},
    )
    assert changed.status_code == 200, changed.text
    rubric = admin.post(
        "/api/v1/projects/cal/rubrics",
        json={"name": "quality score", "kind": "numeric", "min": 1, "max": 5, "step": 1},
    ).json()
    queue_id = make_queue(admin, "cal", rubric["id"], 1, "numeric")
    admin.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": trace_ids})
    value = dict(zip(trace_ids, truth, strict=True))
    item = people.ann.get(f"/api/v1/queues/{queue_id}/next").json()
    while item:
        done = people.ann.post(
            f"/api/v1/queues/{queue_id}/items/{item['item_id']}/labels",
            json={"labels": [{"rubric_id": rubric["id"], "value": value[item["trace_id"]]}]},
        )
        assert done.status_code == 201, done.text
        item = done.json()["next"]

    # The judge's scores (0 to 1) are not the rubric's scale: the mapping must say.
    unmapped = admin.post(
        f"/api/v1/evaluators/{judged['id']}/calibrations", json={"rubric_id": rubric["id"]}
    )
    assert unmapped.status_code == 400 and "outside [1, 5]" in unmapped.text
    scale = {w: i + 1 for i, w in enumerate(words)}
    result = calibrate(admin, judged["id"], rubric["id"], mapping=scale)
    assert result["n"] == 25 and result["mapping"]["three"] == 3.0
    assert result["kappa_weights"] == "quadratic"
    assert result["kappa"]["value"] == pytest.approx(
        cohen_kappa_score(truth, said, weights="quadratic")
    )
    assert result["mae"]["value"] == pytest.approx(mean_absolute_error(truth, said))
    assert result["spearman"]["value"] == pytest.approx(spearmanr(truth, said).statistic)
    assert result["mae"]["low"] <= result["mae"]["value"] <= result["mae"]["high"]
    # The mapping given is kept for the next calibration against the rubric.
    again = calibrate(admin, judged["id"], rubric["id"])
    assert again["mapping"] == result["mapping"] and again["mae"] == result["mae"]
