"""The dashboard in a real browser: charts drawn from Assay alone, a point opens its traces."""

from __future__ import annotations

import time

from playwright.sync_api import Page, Request

from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span
from tests.ui.conftest import expect, page_errors, screenshot

HOUR = 3_600 * 10**9


def test_dashboard_charts_load_only_from_assay_and_a_point_opens_its_traces(
    ui_live: LiveServer, page: Page
) -> None:
    now = time.time_ns()
    spans = [
        span(
            new_trace_id(),
            new_span_id(),
            "answer",
            start=now - (i % 20 + 1) * HOUR,
            duration_ms=40.0 + 13 * i,
            attributes={"gen_ai.request.model": "gpt-4o" if i % 3 else "claude-sonnet-4-5"},
            error="boom" if i % 7 == 0 else None,
        )
        for i in range(60)
    ]
    with ui_live.client() as client:
        body = protobuf(spans, resource={"assay.project": "shop"})
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    requested: list[str] = []

    def seen(request: Request) -> None:
        requested.append(request.url)

    page.on("request", seen)
    page.goto(ui_live.url + "/p/shop/dashboard?range=24h&group_by=model")
    frames = page.locator("iframe.chart-frame")
    expect(frames).to_have_count(7)
    count_chart = page.frame_locator("iframe.chart-frame").first
    expect(count_chart.locator("g.legends text", has_text="gpt-4o")).to_be_visible()
    # Every chart's document arrived, and nothing came from anywhere but Assay.
    deadline = time.monotonic() + 20
    while sum("chart.svg" in url for url in requested) < 7 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert sum("chart.svg" in url for url in requested) == 7
    assert all(url.startswith(ui_live.url) for url in requested), requested
    screenshot(page, "dashboard")
    # A point of the count chart opens the traces page for its hour and model.
    # (From the keyboard: the page's sticky header may cover the chart's top dots.)
    point = count_chart.locator("a").first
    point.focus()
    point.press("Enter")
    page.wait_for_url("**/p/shop/traces?**")
    assert "model=" in page.url and "since=" in page.url and "until=" in page.url
    rows = page.locator("table.traces tbody tr[data-trace]")
    expect(rows.first).to_be_visible()
    assert page_errors(page) == []
