"""Prompts and the playground in a real browser: the registry's pages (versions, a label moved
and its move undone, a diff), and the playground running a version once with the answer
streaming in (model HTML shown as text), side by side, and over a dataset in the background."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import Page

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.fake_llm import CHAT_TEXT, Answer, FakeLLM
from tests.ui.conftest import expect, page_errors, screenshot

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def server(tmp_path: Path, fake: FakeLLM) -> Iterator[LiveServer]:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/ui.db", home=tmp_path)
    started = start_server(replace(settings, egress_allow="127.0.0.1", server_worker=False))
    try:
        with started.client() as client:
            made = client.post(
                "/api/v1/projects/shop/connections",
                json={
                    "name": "fake",
                    "provider": "openai-compatible",
                    "base_url": fake.openai_url,
                    "api_key": "sk-ui-test",
                    "default_model": "gpt-4o-mini",
                },
            )
            assert made.status_code == 201, made.text
            for n, extra in ((1, ""), (2, " Be brief.")):
                body = {
                    "name": "triage",
                    "messages": [
                        {"role": "system", "content": f"You help {{{{ company }}}}.{extra}"},
                        {"role": "user", "content": "{{ ticket }}"},
                    ],
                    "model": "gpt-4o-mini",
                    "message": f"version {n} <b>bold</b>",
                }
                assert client.post("/api/v1/projects/shop/prompts", json=body).status_code == 201
            moved = client.put(
                "/api/v1/projects/shop/prompts/triage/labels/production", json={"version": 1}
            )
            assert moved.status_code == 200
            client.post("/api/v1/projects/shop/datasets", json={"name": "tickets"})
            records = [
                {"id": f"r{i}", "input": {"company": "Acme", "ticket": f"ticket {i}"}}
                for i in range(3)
            ]
            added = client.post(
                "/api/v1/projects/shop/datasets/tickets/changes", json={"insert": records}
            )
            assert added.status_code == 201
        yield started
    finally:
        started.stop()


def test_prompt_pages_and_a_playground_run_streaming_in(
    page: Page, server: LiveServer, fake: FakeLLM
) -> None:
    base = server.url + "/p/shop"
    page.goto(base + "/prompts")
    expect(page.locator("[data-prompts] tbody tr")).to_have_count(1)
    expect(page.locator("[data-prompts]")).to_contain_text("production → v1")
    page.click("text=triage")
    expect(page.locator("[data-versions] tbody tr")).to_have_count(2)
    expect(page.locator("[data-versions]")).to_contain_text("version 2 <b>bold</b>")
    expect(page.locator("[data-messages-diff] .add")).to_contain_text("Be brief.")
    page.select_option("[data-move-label] select[name=version]", "2")
    page.click("[data-move-label] button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("now points at v2")
    expect(page.locator("[data-labels] [data-label=production]")).to_have_text("production → v2")
    page.click("[data-undo=production]")
    expect(page.locator("[data-labels] [data-label=production]")).to_have_text("production → v1")
    screenshot(page, "prompt-page")

    page.goto(base + "/playground?prompt=triage&version=2")
    expect(page.locator("[data-variable]")).to_have_count(2)
    page.fill("[data-variable=company]", "Acme")
    page.fill("[data-variable=ticket]", "printer on fire")
    page.click("[data-run-once]")
    once = page.locator("[data-output-once]")
    expect(once).to_have_attribute("data-state", "done")
    expect(once.locator("[data-text]")).to_have_text(CHAT_TEXT)
    assert int(once.get_attribute("data-chunks") or 0) > 1  # it arrived in pieces
    sent = fake.requests[-1][1]
    assert sent["messages"][0]["content"] == "You help Acme. Be brief." and sent["stream"]

    # Model output with HTML is shown as text.
    fake.always(Answer(text=XSS))
    page.click("[data-run-once]")
    expect(once.locator("[data-text]")).to_have_text(XSS)
    assert once.locator("img, script").count() == 0
    assert page.evaluate("window.__xss") is None
    fake.always(None)

    # An edit shows as such; two versions side by side on the same variables.
    expect(page.locator("[data-edited]")).to_be_hidden()
    page.fill("[data-message]:nth-child(1) [data-content]", "You help {{ company }}, kindly.")
    expect(page.locator("[data-edited]")).to_be_visible()
    page.click("[data-run-side]")
    columns = page.locator("[data-side-columns] .pg-output")
    expect(columns).to_have_count(2)
    for n in range(2):
        expect(columns.nth(n)).to_have_attribute("data-state", "done")
        expect(columns.nth(n).locator("pre")).to_have_text(CHAT_TEXT)

    # Over the dataset, in the background, with its progress on the page.
    page.goto(base + "/playground?prompt=triage&version=2")
    page.click("[data-run-dataset-start]")
    expect(page.locator("[data-progress-text]")).to_contain_text("3 of 3 cases (complete)")
    expect(page.locator("[data-experiment-link]")).to_be_visible()
    screenshot(page, "playground")
    assert page_errors(page) == []
