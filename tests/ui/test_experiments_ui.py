"""The experiments room in a real browser: list, experiment page, comparison with diffs, XSS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.ui.conftest import expect, page_errors, screenshot

#: Payloads that would run if any of them reached the page as markup.
XSS = [
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 2">',
    '<svg onload="window.__xss = 3"><script>window.__xss = 4</script></svg>',
    '<a href="javascript:window.__xss = 5">click me</a>',
    '"><iframe src="javascript:window.__xss = 6"></iframe>',
    "</pre><script>window.__xss = 7</script>",
    "</textarea><b onmouseover=window.__xss=8>hover</b>",
]


def _row(key: str, text: str, scores: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {
        "case_key": key,
        "input": {"question": f"question {key}"},
        "expected": f"expected {key}",
        "output": text,
        "latency_ms": extra.pop("latency_ms", 100.0),
        "cost": extra.pop("cost", 0.001),
        "input_tokens": 10,
        "output_tokens": 20,
        "scores": [{"name": name, "value": value} for name, value in scores.items()],
        **extra,
    }


def seed(client: httpx.Client, project: str = "shop") -> dict[str, int]:
    """A dataset and two experiments over it: the candidate fixes c1, breaks c2, adds an error."""
    base = f"/api/v1/projects/{project}"
    client.post(f"{base}/datasets", json={"name": "qa"}).raise_for_status()
    records = [{"record_id": f"c{i}", "input": {"question": f"question c{i}"}} for i in range(5)]
    client.post(f"{base}/datasets/qa/changes", json={"insert": records}).raise_for_status()
    ids = {}
    for name in ("baseline", "candidate"):
        created = client.post(
            f"{base}/experiments",
            json={
                "eval_name": "support",
                "name": f"support {name}",
                "dataset": "qa",
                "metadata": {
                    "git": {"commit": "0123456789abcdef", "branch": "main", "dirty": False},
                    "task": "answer",
                    "scorers": [{"name": "exact", "version": "abc123"}],
                },
            },
        )
        created.raise_for_status()
        ids[name] = int(created.json()["id"])
    baseline = [
        _row("c0", "Returns take 30 days.", {"exact": 1, "quality": 0.9}, latency_ms=120),
        _row("c1", "We do not ship abroad.", {"exact": 0, "quality": 0.2}, latency_ms=300),
        _row("c2", "Damaged items are replaced free of charge.", {"exact": 1, "quality": 0.8}),
        _row("c3", "Refunds go to the original card.", {"exact": 1, "quality": 0.7}),
    ]
    candidate = [
        _row("c0", "Returns take 30 days.", {"exact": 1, "quality": 0.9}, latency_ms=110),
        _row("c1", "We ship to the EU and Norway.", {"exact": 1, "quality": 0.95}, latency_ms=90),
        _row("c2", "Damaged items are not covered.", {"exact": 0, "quality": 0.1}),
        _row("c3", "Refunds go to the original card.", {"exact": 1, "quality": 0.7}),
        {**_row("c4", "", {}), "output": None, "error": "TimeoutError: the model took too long"},
    ]
    for name, rows in (("baseline", baseline), ("candidate", candidate)):
        client.post(f"/api/v1/experiments/{ids[name]}/rows", json=rows).raise_for_status()
        client.patch(
            f"/api/v1/experiments/{ids[name]}", json={"status": "complete"}
        ).raise_for_status()
    return ids


def seed_xss(client: httpx.Client, project: str = "shop") -> dict[str, int]:
    """Two experiments whose every text field holds the payloads."""
    ids = {}
    for name in ("xss-a", "xss-b"):
        created = client.post(
            f"/api/v1/projects/{project}/experiments",
            json={"eval_name": "xss", "name": name, "metadata": {"task": XSS[0]}},
        )
        ids[name] = int(created.json()["id"])
        rows = [
            {
                "case_key": f"x{i}",
                "input": {"prompt": payload, payload: "as a key"},
                "expected": payload,
                "output": f"{name} says {payload}",
                "metadata": {"note": payload},
                "error": payload if i == 0 else None,
                "scores": [{"name": "exact", "value": float(i % 2), "rationale": payload}],
            }
            for i, payload in enumerate(XSS)
        ]
        client.post(f"/api/v1/experiments/{ids[name]}/rows", json=rows).raise_for_status()
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home: Path = tmp_path_factory.mktemp("experiments-ui")
    live = start_server(Settings(database_url=f"sqlite:///{home}/ui.db", home=home))
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def seeded(server: LiveServer) -> dict[str, int]:
    with server.client() as client:
        ids = seed(client)
        ids.update(seed_xss(client))
        seed(client, project="other")  # a second project, never visible from "shop"
    return ids


def _no_errors(page: Page) -> None:
    assert page_errors(page) == []


def test_list_shows_experiments_and_filters_by_name_and_dataset(
    server: LiveServer, seeded: dict[str, int], page: Page
) -> None:
    page.goto(f"{server.url}/p/shop/experiments")
    rows = page.locator("table.xp-list tbody tr")
    expect(rows).to_have_count(4)
    candidate = rows.filter(has_text="support candidate")
    expect(candidate.locator("td").nth(2)).to_have_text("qa@1")
    expect(candidate).to_contain_text("exact 0.750")
    expect(candidate.get_by_role("link", name="compare with previous")).to_have_attribute(
        "href", f"/p/shop/experiments/{seeded['baseline']}/compare/{seeded['candidate']}"
    )
    screenshot(page, "experiments-list")

    page.fill("#xp-q", "candidate")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    shared = page.url
    page.goto(f"{server.url}/p/shop/experiments")
    page.goto(shared)
    expect(rows).to_have_count(1)
    expect(page.locator("#xp-q")).to_have_value("candidate")

    page.goto(f"{server.url}/p/shop/experiments?dataset=qa")
    expect(rows).to_have_count(2)  # the xss experiments have no dataset
    _no_errors(page)


def test_experiment_page_summary_filters_sorting_and_keyboard(
    server: LiveServer, seeded: dict[str, int], page: Page
) -> None:
    url = f"{server.url}/p/shop/experiments/{seeded['candidate']}"
    page.goto(url)
    exact = page.locator(".stat[data-score=exact]")
    expect(exact.locator(".stat-value")).to_have_text("75.0%")
    expect(exact).to_contain_text("passed 3 of 4")
    expect(exact.locator(".stat-ci")).to_contain_text("95% CI")
    expect(page.locator(".stat.totals")).to_contain_text("5")
    expect(page.locator(".meta").first).to_contain_text("0123456789")
    rows = page.locator("table.xp-rows tr.xp-row")
    expect(rows).to_have_count(5)
    screenshot(page, "experiment")

    # Filters: a score threshold, errors only, text; the URL reproduces the view.
    page.select_option("#f-score", "quality")
    page.fill("#f-below", "0.5")
    page.click("form.filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("c2")
    page.goto(page.url)
    expect(rows).to_have_count(1)
    page.goto(url + "?errors=1")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("TimeoutError")
    page.goto(url + "?q=norway")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("c1")

    # Sorting by latency, slowest first; rows without a latency go last.
    page.goto(url + "?sort=latency&order=desc")
    first_keys = [rows.nth(i).locator("td").first.inner_text() for i in range(3)]
    assert first_keys[:2] == ["c0", "c2"] or first_keys[0] == "c0"
    page.goto(url + "?sort=quality&order=asc")
    expect(rows.first).to_contain_text("c2")

    # Keyboard: j selects the first row, Enter expands its full detail in place, Esc closes.
    page.goto(url)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    detail = page.locator("tr.detail-row").first
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("question c0")
    expect(detail).to_contain_text("expected c0")
    expect(detail.get_by_role("link", name="open trace")).to_have_count(0)
    screenshot(page, "experiment-row-open")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page.locator("tr.detail-row").nth(1)).to_be_visible()
    _no_errors(page)


def test_compare_lists_regressions_first_with_a_side_by_side_diff(
    server: LiveServer, seeded: dict[str, int], page: Page
) -> None:
    page.goto(f"{server.url}/p/shop/experiments/{seeded['baseline']}/compare/{seeded['candidate']}")
    exact = page.locator(".compare-score[data-score=exact]")
    expect(exact.locator(".stat-value")).to_have_text(re.compile(r"0\.750\s*→\s*0\.750"))
    expect(exact).to_contain_text("mcnemar")
    expect(exact).to_contain_text("1 improved")
    rows = page.locator("table.cmp-rows tbody tr[data-case]")
    expect(rows.first).to_have_attribute("data-case", "c2")
    expect(rows.first.locator(".badge.verdict")).to_have_text("regressed")
    expect(rows.nth(1)).to_have_attribute("data-case", "c1")
    expect(page.locator(".verdicts")).to_contain_text("only in candidate 1")

    rows.first.click()
    detail = page.locator("tr.detail-row").first
    expect(detail).to_be_visible()
    expect(detail.locator(".diff-left del")).to_contain_text(["replaced free of charge"])
    expect(detail.locator(".diff-right ins")).to_contain_text(["not covered"])
    expect(detail.locator(".diff-left")).to_have_text("Damaged items are replaced free of charge.")
    screenshot(page, "compare")

    # Sort by the delta of one score, largest improvement first; filter to improvements.
    page.locator("thead a", has_text="quality").click()
    expect(rows.first).to_have_attribute("data-case", "c2")
    page.locator("thead a", has_text="quality").click()
    expect(rows.first).to_have_attribute("data-case", "c1")
    page.get_by_role("link", name=re.compile("^improved")).click()
    expect(rows).to_have_count(1)

    # The candidate is chosen among the other runs of the eval, through a plain GET form.
    expect(page.locator("#compare-b option")).to_have_count(1)
    page.select_option("#compare-b", str(seeded["candidate"]))
    page.click(".compare-pick button")
    expect(page).to_have_url(
        re.compile(f"/experiments/{seeded['baseline']}/compare/{seeded['candidate']}$")
    )
    _no_errors(page)


def test_xss_payloads_render_as_text_on_experiment_and_compare_pages(
    server: LiveServer, seeded: dict[str, int], page: Page
) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    urls = [
        f"{server.url}/p/shop/experiments",
        f"{server.url}/p/shop/experiments/{seeded['xss-b']}",
        f"{server.url}/p/shop/experiments/{seeded['xss-b']}?case=x3&trial=0",
        f"{server.url}/p/shop/experiments/{seeded['xss-a']}/compare/{seeded['xss-b']}",
    ]
    for url in urls:
        page.goto(url)
        for row in page.locator("tr[data-href][aria-expanded]").all():
            row.click()  # open every detail row and diff so all of it is in the layout
        slots = page.locator(".diff-slot")
        expect(slots.locator(".diff")).to_have_count(slots.count())  # every diff has arrived
        page.mouse.move(200, 400)
        assert page.evaluate("window.__xss") is None, url
        # Escaping, not only the CSP: no payload element exists anywhere in the page.
        assert page.locator("main img, main svg, main iframe, main script").count() == 0, url
        assert page.locator("main a[href^='javascript']").count() == 0, url
    expect(page.locator(".diff-right").first).to_contain_text("xss-b says")
    expect(page.locator("main")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator("main")).to_contain_text('<img src=x onerror="window.__xss = 2">')
    screenshot(page, "compare-xss")
    page.goto(urls[2])
    expect(page.locator("#opened")).to_contain_text("javascript:window.__xss = 5")
    assert dialogs == []
    _no_errors(page)


def test_an_experiment_of_another_project_is_not_found(
    server: LiveServer, seeded: dict[str, int], page: Page
) -> None:
    with server.client() as client:
        other = client.get("/api/v1/projects/other/experiments").json()["items"][0]["id"]
    response = page.goto(f"{server.url}/p/shop/experiments/{other}")
    assert response is not None and response.status == 404
    response = page.goto(f"{server.url}/p/shop/experiments/{seeded['baseline']}/compare/{other}")
    assert response is not None and response.status == 404
    page.goto(f"{server.url}/p/shop/experiments")
    expect(page.locator("table.xp-list")).not_to_contain_text("other")


def test_pages_load_on_both_engines(live: LiveServer, page: Page) -> None:
    with live.client() as client:
        ids = seed(client)
    for path in (
        "/p/shop/experiments",
        f"/p/shop/experiments/{ids['candidate']}?sort=exact&order=desc",
        f"/p/shop/experiments/{ids['baseline']}/compare/{ids['candidate']}?show=changed",
    ):
        response = page.goto(live.url + path)
        assert response is not None and response.status == 200, path
        expect(page.locator("table.grid tbody tr").first).to_be_visible()
    expect(page.locator("table.cmp-rows tr[data-case]")).to_have_count(2)
    _no_errors(page)
