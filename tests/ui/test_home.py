"""The projects page, in a real browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span
from tests.ui.conftest import screenshot


def test_projects_page_lists_projects_with_activity(live: LiveServer, page: Page) -> None:
    trace_id = new_trace_id()
    spans = [span(trace_id, new_span_id(), "answer"), span(trace_id, new_span_id(), "lookup")]
    with live.client() as client:
        body = protobuf(spans, resource={"assay.project": "support"})
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    page.goto(live.url + "/")
    row = page.locator("table.grid tbody tr", has_text="support")
    expect(row).to_have_count(1)
    expect(row.locator("td.num").nth(0)).to_have_text("1")
    expect(row.locator("td.num").nth(1)).to_have_text("2")
    screenshot(page, f"projects-{live.runtime.engine.dialect.name}")
    assert page.errors == []  # type: ignore[attr-defined]
