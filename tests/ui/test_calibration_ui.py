"""A judge checked against people in a real browser: "Calibrate" on the judge's page, the
calibration page with its figures and confusion matrix, the disagreements with both
rationales, and one click to make them a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import Page

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.test_calibration import ReadingJudge, cases, make_judge, make_queue, send_cases
from tests.ui.conftest import expect, screenshot


@pytest.fixture
def judging(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/ui.db", home=tmp_path)
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


def test_calibrate_then_read_the_disagreements_and_make_them_a_dataset(
    page: Page, judging: LiveServer, judge_server: ReadingJudge
) -> None:
    found = cases(30)
    with judging.client() as client:
        trace_ids = send_cases(client, "cal", found, "cal")
        evaluator = make_judge(client, judge_server, "cal")
        rubric = client.post(
            "/api/v1/projects/cal/rubrics", json={"name": "correct", "kind": "pass_fail"}
        ).json()
        queue_id = make_queue(client, "cal", rubric["id"], 1, "calibration set")
        client.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": trace_ids})
        truth = {t: c.truth for t, c in zip(trace_ids, found, strict=True)}
        item = client.get(f"/api/v1/queues/{queue_id}/next").json()
        while item:
            choice = truth[item["trace_id"]]
            item = client.post(
                f"/api/v1/queues/{queue_id}/items/{item['item_id']}/labels",
                json={
                    "labels": [{"rubric_id": rubric["id"], "choice": choice, "rationale": "why"}]
                },
            ).json()["next"]
    wrong = sum(
        1 for c in found if c.v1 != ("good" if c.truth == "pass" else "bad")
    )  # v1 is wrong on every tenth case

    page.goto(f"{judging.url}/p/cal/evaluators/{evaluator['id']}")
    page.select_option("#cal-rubric", str(rubric["id"]))
    page.click("[data-calibrate]")
    expect(page.locator("[data-figures] [data-metric=kappa]")).to_contain_text("Cohen's kappa")
    expect(page.locator("[data-confusion]")).to_be_visible()
    expect(page.locator("[data-mapping-form] select").first).to_have_value("pass")
    screenshot(page, "calibration")

    page.click("[data-disagreements-link]")
    expect(page.locator("[data-item]")).to_have_count(wrong)
    listing = page.url
    first = page.locator("[data-item]").first
    expect(first.locator("[data-judge-rationale]")).to_contain_text("v1 read")
    expect(first.locator("[data-people-rationale]")).to_contain_text("why")
    screenshot(page, "calibration-disagreements")
    page.fill("#dis-dataset", "quality-regressions")
    page.click("[data-add-to-dataset]")
    expect(page).to_have_url(f"{judging.url}/p/cal/datasets/quality-regressions")
    expect(page.locator("body")).to_contain_text(f"Added {wrong} disagreements")

    page.goto(listing)
    page.locator("[data-item] [data-trace-link]").first.click()
    expect(page).to_have_url(f"{judging.url}/p/cal/traces/{trace_ids[5]}")
