"""The projects page, in a real browser."""

from __future__ import annotations

import time

from playwright.sync_api import Page

from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span
from tests.ui.conftest import expect, page_errors, screenshot


def test_projects_page_lists_projects_with_activity(live: LiveServer, page: Page) -> None:
    old, recent = new_trace_id(), new_trace_id()
    spans = [
        span(old, new_span_id(), "answer"),  # 2023: outside the last 24 hours
        span(recent, new_span_id(), "answer", start=time.time_ns() - 60 * 10**9, error="boom"),
        span(recent, new_span_id(), "lookup", start=time.time_ns() - 60 * 10**9),
    ]
    with live.client() as client:
        body = protobuf(spans, resource={"assay.project": "support"})
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    page.goto(live.url + "/")
    row = page.locator("table.grid tbody tr", has_text="support")
    expect(row).to_have_count(1)
    expect(row.locator("td.num").nth(0)).to_have_text("2")  # traces
    expect(row.locator("td.num").nth(1)).to_have_text("1")  # in the last 24 h
    expect(row.locator("td.num").nth(2)).to_have_text("1")  # failed in the last 24 h
    screenshot(page, f"projects-{live.runtime.engine.dialect.name}")
    row.locator("td.num a.bad").click()
    page.wait_for_url("**/p/support/traces?status=error&range=24h")
    expect(page.locator("table.traces tbody tr[data-trace]")).to_have_count(1)
    assert page_errors(page) == []
