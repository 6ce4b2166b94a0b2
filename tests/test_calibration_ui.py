"""Judges checked against people in the web UI, by HTTP on both engines (the browser walk is in
tests/ui/test_calibration_ui.py): calibrate from the judge's page, the figures and the mapping,
the comparison with the previous calibration, the disagreements and "add to a dataset", the
agreement over time as a table with its drift flag, the gate settings, a rule's routing actions,
and model or user text escaped everywhere."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import update

from assay.settings import Settings
from assay.store import projects as project_store
from assay.store.tables import scores
from tests.conftest import LiveServer, start_server
from tests.test_calibration import (
    STRICT_PROMPT,
    WEEK_NS,
    ReadingJudge,
    cases,
    make_judge,
    make_queue,
    send_cases,
)

TOKEN = "t" * 43  # the open mode's double-submit token: the cookie and the form's field
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture
def open_live(settings: Settings) -> Iterator[LiveServer]:
    server = start_server(replace(settings, egress_allow="127.0.0.1", server_worker=False))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def judge_server() -> Iterator[ReadingJudge]:
    server = ReadingJudge().start()
    assert isinstance(server, ReadingJudge)
    try:
        yield server
    finally:
        server.stop()


def post(client: httpx.Client, path: str, form: dict[str, str]) -> httpx.Response:
    return client.post(path, data={**form, "csrf_token": TOKEN})


def text(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


def stored_settings(live: LiveServer) -> dict[str, Any]:
    with live.runtime.read() as conn:
        return project_store.settings_of(conn, "cal") or {}


def label_all(client: httpx.Client, queue_id: int, rubric_id: int, truth: dict[str, str]) -> None:
    item = client.get(f"/api/v1/queues/{queue_id}/next").json()
    while item:
        done = client.post(
            f"/api/v1/queues/{queue_id}/items/{item['item_id']}/labels",
            json={
                "labels": [
                    {
                        "rubric_id": rubric_id,
                        "choice": truth[item["trace_id"]],
                        "rationale": f"people say {truth[item['trace_id']]} {XSS}",
                    }
                ]
            },
        )
        assert done.status_code == 201, done.text
        item = done.json()["next"]


def test_calibrate_read_remap_compare_disagreements_and_settings(
    open_live: LiveServer, judge_server: ReadingJudge
) -> None:
    with open_live.client(cookies={"assay_csrf": TOKEN}) as client:
        found = cases(40)
        trace_ids = send_cases(client, "cal", found, "cal")
        evaluator = make_judge(client, judge_server, "cal")
        rubric = client.post(
            "/api/v1/projects/cal/rubrics",
            json={"name": f"correct {XSS}", "kind": "pass_fail", "rationale": "optional"},
        ).json()
        queue_id = make_queue(client, "cal", rubric["id"], 1, "calibration set")
        client.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": trace_ids})
        truth = {t: c.truth for t, c in zip(trace_ids, found, strict=True)}
        label_all(client, queue_id, rubric["id"], truth)
        judge_page = f"/p/cal/evaluators/{evaluator['id']}"

        page = client.get(judge_page)
        assert page.status_code == 200 and "data-calibrate-form" in page.text
        assert "Not calibrated yet" in page.text and XSS not in page.text
        refused = post(client, f"{judge_page}/calibrations", {"rubric_id": "999999"})
        assert refused.status_code == 404 or "does not exist" in text(refused)

        made = post(client, f"{judge_page}/calibrations", {"rubric_id": str(rubric["id"])})
        assert made.status_code == 303, made.text
        first_id = int(made.headers["location"].rsplit("/", 1)[1])
        first = client.get(f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first_id}").json()
        page = client.get(made.headers["location"])
        assert page.status_code == 200
        shown = text(page)
        kappa = first["kappa"]
        assert (
            f"{kappa['value']:.2f}" in shown
            and f"{kappa['low']:.2f} – {kappa['high']:.2f}" in shown
        )
        assert "Cohen's kappa" in shown and "Ceiling (people)" in shown
        matrix = re.findall(r'<td class="num (?:agree)?">(\d+)</td>', page.text)
        assert [int(n) for n in matrix] == [v for row in first["confusion"]["matrix"] for v in row]
        assert XSS not in page.text and html.escape(XSS, quote=False) in page.text.replace(
            "&#34;", '"'
        )
        assert "first calibration" in shown

        # The mapping, edited in the form: read again, no judge called.
        calls = len(judge_server.requests)
        swapped = post(
            client,
            f"{judge_page}/calibrations/{first_id}/mapping",
            {"map:good": "fail", "map:bad": "pass"},
        )
        assert swapped.status_code == 303, swapped.text
        after = client.get(f"/api/v1/evaluators/{evaluator['id']}/calibrations/{first_id}").json()
        assert after["mapping"] == {"good": "fail", "bad": "pass"} and after["kappa"]["value"] < 0
        assert len(judge_server.requests) == calls
        wrong = post(client, f"{judge_page}/calibrations/{first_id}/mapping", {"map:good": "maybe"})
        assert wrong.status_code == 400 and "must be one of the rubric" in text(wrong)
        post(
            client,
            f"{judge_page}/calibrations/{first_id}/mapping",
            {"map:good": "pass", "map:bad": "fail"},
        )

        # Version 2 (at chance), calibrated from the form: compared with the first (McNemar).
        client.patch(f"/api/v1/evaluators/{evaluator['id']}", json={"prompt": STRICT_PROMPT})
        made = post(
            client, f"{judge_page}/calibrations", {"rubric_id": str(rubric["id"]), "version": "2"}
        )
        assert made.status_code == 303, made.text
        second_id = int(made.headers["location"].rsplit("/", 1)[1])
        compared = client.get(
            f"/api/v1/evaluators/{evaluator['id']}/calibrations/compare",
            params={"baseline": first_id, "candidate": second_id},
        ).json()
        shown = text(client.get(made.headers["location"]))
        assert "McNemar" in shown and f"{compared['p_value']:.3g}" in shown
        assert f"{compared['regressed']} no longer agree" in shown and "worse" in shown

        # The judge's page: both calibrations with the gate's verdict.
        page = client.get(judge_page)
        rows = re.findall(r'data-calibration="(\d+)".*?data-gate="(\w+)"', page.text, re.S)
        assert dict((int(i), g) for i, g in rows) == {first_id: "pass", second_id: "fail"}

        # Disagreements of v2: the judge's and the people's rationale side by side, the trace
        # one click away, and one click to a dataset.
        listed = client.get(
            f"/api/v1/evaluators/{evaluator['id']}/calibrations/{second_id}/disagreements"
        ).json()["items"]
        page = client.get(f"{judge_page}/calibrations/{second_id}/disagreements")
        assert page.status_code == 200
        assert page.text.count("data-item=") == len(listed) > 0
        assert f'href="/p/cal/traces/{listed[0]["trace_id"]}"' in page.text
        assert "v2 read" in page.text and "people say" in page.text and XSS not in page.text
        added = post(
            client,
            f"{judge_page}/calibrations/{second_id}/disagreements/dataset",
            {"dataset": "quality-regressions"},
        )
        assert added.status_code == 303 and added.headers["location"].endswith(
            "/datasets/quality-regressions"
        )
        records = client.get("/api/v1/projects/cal/datasets/quality-regressions/records").json()
        assert len(records["items"]) == len(listed)

        # The gate and the drift webhook, from the judges' list (the open mode is an admin).
        saved = post(
            client,
            "/p/cal/judge-settings",
            {
                "judges_must_be_calibrated": "on",
                "calibration_min_kappa": "0.7",
                "calibration_min_items": "20",
                "judge_alert_webhook": "https://hooks.example/judges",
            },
        )
        assert saved.status_code == 303
        settings = stored_settings(open_live)
        assert settings["judges_must_be_calibrated"] is True
        assert settings["calibration_min_kappa"] == 0.7 and settings["calibration_min_items"] == 20
        assert settings["judge_alert_webhook"] == "https://hooks.example/judges"
        page = client.get("/p/cal/evaluators")
        assert "data-gate-on" in page.text and "https://hooks.example/judges" in page.text
        bad = post(client, "/p/cal/judge-settings", {"calibration_min_kappa": "2"})
        assert bad.status_code == 303 and "Not%20saved" in bad.headers["set-cookie"]
        assert stored_settings(open_live)["calibration_min_kappa"] == 0.7


def test_agreement_over_time_renders_as_a_table_with_the_drifting_week_flagged(
    open_live: LiveServer, judge_server: ReadingJudge
) -> None:
    with open_live.client(cookies={"assay_csrf": TOKEN}) as client:
        found = cases(40)
        trace_ids = send_cases(client, "cal", found, "cal")
        evaluator = make_judge(client, judge_server, "cal")
        rubric = client.post(
            "/api/v1/projects/cal/rubrics", json={"name": "correct", "kind": "pass_fail"}
        ).json()
        queue_id = make_queue(client, "cal", rubric["id"], 1, "calibration set")
        client.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": trace_ids})
        truth = {t: c.truth for t, c in zip(trace_ids, found, strict=True)}
        label_all(client, queue_id, rubric["id"], truth)
        made = client.post(
            f"/api/v1/evaluators/{evaluator['id']}/calibrations", json={"rubric_id": rubric["id"]}
        )
        assert made.status_code == 201, made.text
        # The judge's online verdicts on four weeks of ten labelled traces; wrong in the last.
        weeks = [trace_ids[w * 10 : (w + 1) * 10] for w in range(4)]
        verdicts = []
        for w, ids in enumerate(weeks):
            for t in ids:
                right = "good" if truth[t] == "pass" else "bad"
                said = right if w < 3 else ("bad" if right == "good" else "good")
                verdicts.append(
                    {
                        "trace_id": t,
                        "name": "quality",
                        "label": said,
                        "value": 1.0 if said == "good" else 0.0,
                        "source": "llm",
                        "metadata": {"evaluator_id": evaluator["id"], "evaluator_version": 1},
                    }
                )
        sent = client.post("/api/v1/projects/cal/scores", json=verdicts)
        assert sent.status_code == 201, sent.text
        now = time.time_ns()
        with open_live.runtime.engine.begin() as conn:
            for w, ids in enumerate(weeks):
                conn.execute(
                    update(scores)
                    .where(scores.c.trace_id.in_(ids), scores.c.review_id.is_not(None))
                    .values(created_ns=now - (3 - w) * WEEK_NS)
                )
        api = client.get(f"/api/v1/evaluators/{evaluator['id']}/agreement").json()
        page = client.get(f"/p/cal/evaluators/{evaluator['id']}")
        assert page.status_code == 200 and "data-agreement" in page.text
        windows = re.findall(r'<tr data-window="([\d-]+)"( class="drifted")?', page.text)
        assert [w for w, _ in windows] == [w["start"][:10] for w in api["series"]]
        assert [bool(d) for _, d in windows] == [w["drift"] for w in api["series"]]
        assert [bool(d) for _, d in windows] == [False, False, False, True]
        assert "z test" in text(page)
        last = api["series"][-1]["kappa"]
        assert f"{last['low']:.2f} – {last['high']:.2f}" in text(page)
        # The same series drawn: an SVG document of its own (no script), a point per window
        # and line, the drifted week named on its axis label, each point's figure on hover.
        assert f"/p/cal/evaluators/{evaluator['id']}/agreement.svg" in page.text
        chart = client.get(f"/p/cal/evaluators/{evaluator['id']}/agreement.svg")
        assert chart.status_code == 200
        assert chart.headers["content-type"].startswith("image/svg+xml")
        assert "script-src 'none'" in chart.headers["content-security-policy"]
        drawn = ElementTree.fromstring(chart.content)
        assert not [e for e in drawn.iter() if e.tag.endswith("script")]
        titles = [e.text or "" for e in drawn.iter() if e.tag.endswith("title")]
        assert f"{api['series'][-1]['start'][:10]} (drift)" in chart.text
        kappas = [w["kappa"]["value"] for w in api["series"]]
        assert sum(1 for t in titles if t.startswith("kappa")) == len(kappas), titles
        assert any(f"{kappas[-1]:.2f}" in t for t in titles if t.startswith("kappa")), titles
        # The project's dashboard draws the calibrated judge's agreement too.
        dashboard = client.get("/p/cal/dashboard")
        assert dashboard.status_code == 200
        assert f'src="/p/cal/evaluators/{evaluator["id"]}/agreement.svg"' in dashboard.text
        assert f"{html.escape(evaluator['name'])}: agreement with people" in dashboard.text


def test_a_rules_routing_actions_are_added_shown_and_removed(open_live: LiveServer) -> None:
    with open_live.client(cookies={"assay_csrf": TOKEN}) as client:
        made = client.post(
            "/api/v1/projects/shop/evaluators",
            json={"name": "ok", "kind": "builtin", "scorer": "no_errors"},
        )
        assert made.status_code == 201, made.text
        rubric = client.post(
            "/api/v1/projects/shop/rubrics", json={"name": "fine", "kind": "pass_fail"}
        ).json()
        queue_id = make_queue(client, "shop", rubric["id"], 1, f"queue {XSS}")
        other = client.post(
            "/api/v1/projects/other/rubrics", json={"name": "x", "kind": "pass_fail"}
        ).json()
        elsewhere = make_queue(client, "other", other["id"], 1, "elsewhere")
        rule = client.post(
            "/api/v1/projects/shop/rules",
            json={"name": "r", "evaluators": [made.json()["id"]], "enabled": False},
        ).json()
        base = f"/p/shop/rules/{rule['id']}"
        page = client.get(base)
        assert "Nothing is routed to people" in page.text and XSS not in page.text
        added = post(
            client,
            f"{base}/actions",
            {"op": "add", "when": "sample", "queue": str(queue_id), "rate_percent": "20"},
        )
        assert added.status_code == 303, added.text
        post(client, f"{base}/actions", {"op": "add", "when": "undecided", "queue": str(queue_id)})
        stored = client.get(f"/api/v1/rules/{rule['id']}").json()
        assert stored["actions"] == [
            {"when": "sample", "queue": queue_id, "rate": 0.2},
            {"when": "undecided", "queue": queue_id},
        ]
        page = client.get(base)
        assert 'data-routed="sample">0<' in page.text and "20%" in text(page)
        assert XSS not in page.text
        refused = post(
            client, f"{base}/actions", {"op": "add", "when": "undecided", "queue": str(elsewhere)}
        )
        assert refused.status_code == 400 and "not a review queue of this project" in text(refused)
        removed = post(client, f"{base}/actions", {"op": "remove", "index": "0"})
        assert removed.status_code == 303
        assert client.get(f"/api/v1/rules/{rule['id']}").json()["actions"] == [
            {"when": "undecided", "queue": queue_id}
        ]
