"""The traces room in a real browser: the filtered list, the trace page, the detail pane.

One SQLite server per module, seeded once through real OTLP; one test also runs on both
engines through the ``live`` fixture.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import PB, new_span_id, new_trace_id, request, span
from tests.ui.conftest import expect, page_errors, screenshot

HOUR = 3600 * 10**9
DAY = 24 * HOUR


def send(
    client: httpx.Client,
    spans: list[dict[str, Any]],
    project: str,
    events: dict[bytes, list[tuple[str, int, dict[str, Any]]]] | None = None,
    resource: dict[str, Any] | None = None,
) -> None:
    """POST spans as OTLP protobuf; ``events`` adds span events (name, time, attributes)."""
    from tests.otlp_builders import any_value

    req = request(spans, resource={"assay.project": project, **(resource or {})})
    for otlp_span in req.resource_spans[0].scope_spans[0].spans:
        for name, at, attributes in (events or {}).get(otlp_span.span_id, []):
            event = otlp_span.events.add(name=name, time_unix_nano=at)
            for key, value in attributes.items():
                attr = event.attributes.add(key=key)
                attr.value.CopyFrom(any_value(value))
    answer = client.post("/v1/traces", content=req.SerializeToString(), headers=PB)
    assert answer.status_code == 200, answer.text


def add_score(client: httpx.Client, project: str, trace_id: bytes, name: str, value: float) -> None:
    body = {"trace_id": trace_id.hex(), "name": name, "value": value, "source": "human"}
    answer = client.post(f"/api/v1/projects/{project}/scores", json=body)
    assert answer.status_code == 201, answer.text


def messages(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"role": r, "parts": [{"type": "text", "content": c}]} for r, c in pairs])


@dataclass
class Seeded:
    server: LiveServer
    ids: dict[str, str] = field(default_factory=dict)
    spans: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.server.url + path


def seed_support_agent(
    client: httpx.Client, project: str, start: int
) -> tuple[bytes, dict[str, bytes]]:
    """An agent run: retrieval, an LLM call asking for a tool, the tool, a final LLM answer."""
    trace, root, retrieve, llm1, tool, llm2 = (new_trace_id(), *[new_span_id() for _ in range(5)])
    common = {"session.id": "sess-a", "user.id": "alice"}
    spans = [
        span(
            trace,
            root,
            "support-agent",
            start=start,
            duration_ms=2000,
            attributes={
                **common,
                "openinference.span.kind": "AGENT",
                "input.value": "Where is my parcel?",
                "output.value": "It ships tomorrow.",
                "tag.tags": ["prod", "vip"],
                "metadata": json.dumps({"channel": "email"}),
            },
        ),
        span(
            trace,
            retrieve,
            "retrieve docs",
            parent=root,
            start=start + 10**6,
            duration_ms=50,
            attributes={**common, "openinference.span.kind": "RETRIEVER", "input.value": "parcel"},
        ),
        span(
            trace,
            llm1,
            "chat gpt-4o",
            parent=root,
            start=start + 60 * 10**6,
            duration_ms=700,
            attributes={
                **common,
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 40,
                "assay.cost": 0.012,
                "gen_ai.input.messages": messages(
                    ("system", "You are a careful support agent."),
                    ("user", "Where is my parcel?"),
                ),
                "gen_ai.output.messages": json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [
                                {
                                    "type": "tool_call",
                                    "id": "call_1",
                                    "name": "lookup_order",
                                    "arguments": {"order": "A-17"},
                                }
                            ],
                            "finish_reason": "tool_calls",
                        }
                    ]
                ),
            },
        ),
        span(
            trace,
            tool,
            "lookup_order",
            parent=root,
            start=start + 800 * 10**6,
            duration_ms=300,
            attributes={
                **common,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.call.arguments": json.dumps({"order": "A-17"}),
                "gen_ai.tool.call.result": json.dumps({"status": "shipped", "eta": "tomorrow"}),
            },
        ),
        span(
            trace,
            llm2,
            "chat gpt-4o",
            parent=root,
            start=start + 1200 * 10**6,
            duration_ms=700,
            attributes={
                **common,
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": messages(("user", "Where is my parcel?")),
                "gen_ai.output.messages": messages(("assistant", "It ships tomorrow.")),
            },
        ),
    ]
    send(client, spans, project)
    return trace, {"root": root, "llm1": llm1, "tool": tool, "llm2": llm2}


def seed_failure(client: httpx.Client, project: str, start: int) -> tuple[bytes, bytes]:
    trace, root, tool = new_trace_id(), new_span_id(), new_span_id()
    common = {"session.id": "sess-a", "user.id": "alice"}
    spans = [
        span(
            trace,
            root,
            "support-agent",
            start=start,
            duration_ms=500,
            attributes={
                **common,
                "openinference.span.kind": "AGENT",
                "input.value": "Refund my order",
                "output.value": "Sorry, something failed.",
            },
        ),
        span(
            trace,
            tool,
            "charge_card",
            parent=root,
            start=start + 10**6,
            duration_ms=200,
            error="card service down",
            attributes={**common, "openinference.span.kind": "TOOL"},
        ),
    ]
    stack = 'Traceback (most recent call last):\n  File "pay.py", line 3\nTimeoutError: card'
    events = {
        tool: [
            (
                "exception",
                start + 150 * 10**6,
                {
                    "exception.type": "TimeoutError",
                    "exception.message": "card service down",
                    "exception.stacktrace": stack,
                },
            )
        ]
    }
    send(client, spans, project, events)
    return trace, tool


def seed_brief(client: httpx.Client, project: str, start: int) -> bytes:
    trace, root, llm = new_trace_id(), new_span_id(), new_span_id()
    common = {"session.id": "sess-b", "user.id": "bob"}
    spans = [
        span(
            trace,
            root,
            "supervisor",
            start=start,
            duration_ms=8000,
            attributes={
                **common,
                "openinference.span.kind": "AGENT",
                "input.value": "Write a brief on quokkas",
                "output.value": "Quokkas are small.",
                "tag.tags": ["beta"],
                "metadata": json.dumps({"channel": "chat"}),
            },
        ),
        span(
            trace,
            llm,
            "chat claude",
            parent=root,
            start=start + 10**6,
            duration_ms=7000,
            attributes={
                **common,
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "assay.cost": 0.25,
            },
        ),
    ]
    send(client, spans, project)
    return trace


def seed_big_trace(client: httpx.Client, project: str, start: int, count: int = 1200) -> bytes:
    """One trace of ``count`` spans: a 30-deep chain and wide fan-outs of tool calls."""
    trace, root = new_trace_id(), new_span_id()
    spans = [
        span(
            trace,
            root,
            "big-agent",
            start=start,
            duration_ms=60_000,
            attributes={"openinference.span.kind": "AGENT", "input.value": "big job"},
        )
    ]
    parent = root
    for depth in range(30):
        child = new_span_id()
        spans.append(
            span(
                trace,
                child,
                f"step-{depth}",
                parent=parent,
                start=start + depth * 10**8,
                duration_ms=500,
            )
        )
        parent = child
    groups = [new_span_id() for _ in range(10)]
    for index, group in enumerate(groups):
        spans.append(
            span(
                trace,
                group,
                f"group-{index}",
                parent=root,
                start=start + index * 5 * 10**9,
                duration_ms=5000,
                attributes={"openinference.span.kind": "CHAIN"},
            )
        )
    while len(spans) < count:
        index = len(spans)
        group = groups[index % len(groups)]
        spans.append(
            span(
                trace,
                new_span_id(),
                f"tool-call-{index}",
                parent=group,
                start=start + (index % 10) * 5 * 10**9 + index * 10**6,
                duration_ms=20,
                attributes={
                    "openinference.span.kind": "TOOL",
                    "input.value": f"input of call {index}",
                },
            )
        )
    for offset in range(0, len(spans), 400):
        send(client, spans[offset : offset + 400], project)
    return trace


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    home: Path = tmp_path_factory.mktemp("traces-ui")
    server = start_server(Settings(database_url=f"sqlite:///{home}/ui.db", home=home))
    now = time.time_ns()
    found = Seeded(server)
    try:
        with server.client() as client:
            # 60 quick traces, older than the interesting ones, to page through.
            for start in range(0, 60, 20):
                batch = []
                for i in range(start, start + 20):
                    trace = new_trace_id()
                    batch.append(
                        span(
                            trace,
                            new_span_id(),
                            "bulk-run",
                            start=now - 3 * HOUR + i * 10**9,
                            duration_ms=5,
                            attributes={"input.value": f"bulk input {i}"},
                        )
                    )
                send(client, batch, "shop")
            old = new_trace_id()
            send(
                client,
                [
                    span(
                        old,
                        new_span_id(),
                        "nightly-batch",
                        start=now - 40 * DAY,
                        attributes={"input.value": "old stuff"},
                    )
                ],
                "shop",
            )
            answer, answer_spans = seed_support_agent(client, "shop", now - 30 * 60 * 10**9)
            failure, failed_tool = seed_failure(client, "shop", now - 20 * 60 * 10**9)
            brief = seed_brief(client, "shop", now - 10 * 60 * 10**9)
            add_score(client, "shop", answer, "thumbs_up", 1.0)
            add_score(client, "shop", brief, "thumbs_up", 0.0)
            other = new_trace_id()
            send(client, [span(other, new_span_id(), "secret-run", start=now)], "other")
            odd = new_trace_id()
            odd_attributes = {"session.id": "team/42 ü?#", "input.value": "odd session"}
            send(client, [span(odd, new_span_id(), "odd", attributes=odd_attributes)], "other")
            big = seed_big_trace(client, "big", now - HOUR)
        found.ids = {
            "answer": answer.hex(),
            "failure": failure.hex(),
            "brief": brief.hex(),
            "old": old.hex(),
            "other": other.hex(),
            "big": big.hex(),
        }
        found.spans = {name: value.hex() for name, value in answer_spans.items()}
        found.spans["failed_tool"] = failed_tool.hex()
        yield found
    finally:
        server.stop()


def listed(page: Page) -> list[str]:
    trace_ids: list[str] = page.locator("table.traces tbody tr[data-trace]").evaluate_all(
        "rows => rows.map(r => r.dataset.trace)"
    )
    return trace_ids


def test_trace_list_shows_columns_of_seeded_traces(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url("/p/shop/traces"))
    rows = page.locator("table.traces tbody tr[data-trace]")
    expect(rows).to_have_count(50)  # the default page size; more follow on scroll
    assert listed(page)[:3] == [seeded.ids["brief"], seeded.ids["failure"], seeded.ids["answer"]]
    brief = page.locator(f"tr[data-trace='{seeded.ids['brief']}']")
    expect(brief).to_contain_text("supervisor")
    expect(brief).to_contain_text("Write a brief on quokkas")
    expect(brief).to_contain_text("Quokkas are small.")
    expect(brief).to_contain_text("8.00 s")
    expect(brief).to_contain_text("$0.2500")
    expect(brief.locator(".chip.score")).to_contain_text("thumbs_up 0.00")
    answer = page.locator(f"tr[data-trace='{seeded.ids['answer']}']")
    expect(answer).to_contain_text("1,240")  # tokens
    expect(answer).to_contain_text("sess-a")
    failure = page.locator(f"tr[data-trace='{seeded.ids['failure']}']")
    expect(failure.locator(".badge.error")).to_have_text("error")
    assert seeded.ids["other"] not in listed(page)
    screenshot(page, "traces")
    assert page_errors(page) == []


FILTERS = {
    "status=error": ["failure"],
    "name=supervisor": ["brief"],
    "type=tool": ["failure", "answer"],
    "model=claude-sonnet-4-5": ["brief"],
    "tag=vip": ["answer"],
    "metadata=channel%3Dchat": ["brief"],
    "session_id=sess-a": ["failure", "answer"],
    "user_id=bob": ["brief"],
    "min_duration_ms=5000": ["brief"],
    "max_duration_ms=600&session_id=sess-a": ["failure"],
    "min_cost=0.1": ["brief"],
    "max_cost=0.05&type=llm": ["answer"],
    "score=thumbs_up&min_score=1": ["answer"],
    "score=thumbs_up&max_score=0": ["brief"],
    "q=quokkas": ["brief"],
    "name=nightly-batch&range=24h": [],
    "name=nightly-batch": ["old"],
}


def test_every_query_filter_changes_the_results(seeded: Seeded, page: Page) -> None:
    until = datetime.fromtimestamp(time.time() - 30 * 86400, tz=UTC).strftime("%Y-%m-%dT%H:%M")
    cases = {**FILTERS, f"until={until}": ["old"]}
    for query, expected in cases.items():
        page.goto(seeded.url(f"/p/shop/traces?{query}"))
        assert listed(page) == [seeded.ids[name] for name in expected], query
    assert page_errors(page) == []


def test_filter_form_builds_a_shareable_url(seeded: Seeded, page: Page, browser: Browser) -> None:
    page.goto(seeded.url("/p/shop/traces"))
    page.fill("#f-q", "parcel")
    page.locator("details.more-filters summary").click()
    page.fill("#f-user", "alice")
    page.click("button[type=submit]")
    page.wait_for_url("**q=parcel**")
    # Empty fields stay out of the link, so it says exactly what is filtered.
    assert page.url.split("?", 1)[1] == "q=parcel&user_id=alice"
    assert listed(page) == [seeded.ids["answer"]]
    page.select_option("#f-status", "error")  # a select applies at once
    page.wait_for_url("**status=error**")
    assert listed(page) == []
    shared = page.url.replace("status=error&", "").replace("&status=error", "")
    other = browser.new_context()
    try:
        visitor = other.new_page()
        visitor.goto(shared)
        assert listed(visitor) == [seeded.ids["answer"]]
        expect(visitor.locator("#f-q")).to_have_value("parcel")
        expect(visitor.locator("#f-user")).to_have_value("alice")
    finally:
        other.close()
    assert page_errors(page) == []


def test_bad_filter_values_are_reported_not_fatal(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url("/p/shop/traces?min_cost=lots&since=yesterday&name=supervisor"))
    expect(page.locator(".flash.error")).to_have_count(2)
    assert listed(page) == [seeded.ids["brief"]]


def test_sorting_by_duration_and_cost(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url("/p/shop/traces"))
    page.click("th a.sort:has-text('Duration')")
    page.wait_for_url("**sort=duration**")
    assert listed(page)[:2] == [seeded.ids["brief"], seeded.ids["answer"]]
    page.click("th a.sort:has-text('Duration')")  # again: ascending
    page.wait_for_url("**order=asc**")
    assert seeded.ids["brief"] not in listed(page)[:5]
    page.goto(seeded.url("/p/shop/traces?sort=cost"))
    assert listed(page)[:2] == [seeded.ids["brief"], seeded.ids["answer"]]


def test_infinite_scroll_and_plain_next_page_links(
    seeded: Seeded, page: Page, browser: Browser
) -> None:
    page.set_viewport_size({"width": 1400, "height": 400})
    page.goto(seeded.url("/p/shop/traces?limit=25"))
    rows = page.locator("table.traces tbody tr[data-trace]")
    expect(rows).to_have_count(25)
    page.locator("a[data-next]").scroll_into_view_if_needed()
    expect(rows).to_have_count(50)
    page.locator("a[data-next]").scroll_into_view_if_needed()
    expect(rows).to_have_count(64)
    expect(page.locator("a[data-next]")).to_have_count(0)
    assert len(set(listed(page))) == 64
    # Without JavaScript the same link is an ordinary next page.
    plain = browser.new_context(java_script_enabled=False)
    try:
        visitor = plain.new_page()
        visitor.goto(seeded.url("/p/shop/traces?limit=25"))
        first = listed(visitor)
        visitor.click("a[data-next]")
        assert "cursor=" in visitor.url
        second = listed(visitor)
        assert len(second) == 25 and not set(first) & set(second)
        assert first + second == listed(page)[:50]
    finally:
        plain.close()
    assert page_errors(page) == []


def test_keyboard_moves_through_the_list_and_opens_a_trace(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url("/p/shop/traces"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("tr.selected")).to_have_attribute("data-trace", seeded.ids["failure"])
    page.keyboard.press("k")
    expect(page.locator("tr.selected")).to_have_attribute("data-trace", seeded.ids["brief"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/traces/{seeded.ids['brief']}")
    expect(page.locator(".trace-head h1")).to_have_text("supervisor")


def test_trace_page_tree_waterfall_and_conversation(seeded: Seeded, page: Page) -> None:
    trace_id = seeded.ids["answer"]
    page.goto(seeded.url(f"/p/shop/traces/{trace_id}"))
    head = page.locator(".trace-head")
    expect(head).to_contain_text("support-agent")
    expect(head).to_contain_text("sess-a")
    expect(head.locator("a", has_text="sess-a")).to_have_attribute(
        "href", "/p/shop/sessions/sess-a"
    )
    rows = page.locator(".tree .row")
    expect(rows).to_have_count(5)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.depth)") == ["0", "1", "1", "1", "1"]
    # The waterfall: the tool starts 800 ms into a 2 s trace.
    tool_bar = page.locator(f".row[data-span='{seeded.spans['tool']}'] svg.bar rect")
    assert float(tool_bar.get_attribute("x") or 0) == pytest.approx(400, abs=1)
    # The root is open at first.
    expect(page.locator(".span-detail h2")).to_have_text("support-agent")
    page.locator(f".row[data-span='{seeded.spans['llm1']}'] .span-name").click()
    detail = page.locator(".span-detail")
    expect(detail).to_have_attribute("data-span", seeded.spans["llm1"])
    expect(page).to_have_url(
        f"{seeded.url('/p/shop/traces/' + trace_id)}?span={seeded.spans['llm1']}"
    )
    expect(detail.locator(".msg.role-system")).to_contain_text("You are a careful support agent.")
    expect(detail.locator(".msg.role-user")).to_contain_text("Where is my parcel?")
    call = detail.locator(".msg.role-assistant .tool-call")
    expect(call).to_contain_text("lookup_order")
    expect(call).to_contain_text('"order": "A-17"')
    expect(detail).to_contain_text("1200 in · 40 out")
    expect(detail).to_contain_text("$0.0120")
    screenshot(page, "trace-llm-span")
    page.locator(f".row[data-span='{seeded.spans['tool']}'] .span-name").click()
    expect(detail.locator("h2")).to_have_text("lookup_order")
    expect(detail.locator("section.io").nth(1)).to_contain_text('"eta": "tomorrow"')
    # Keyboard: j moves down and shows that span; Esc closes the pane.
    page.keyboard.press("j")
    expect(page.locator(".span-detail")).to_have_attribute("data-span", seeded.spans["llm2"])
    page.keyboard.press("Escape")
    expect(page.locator(".trace-layout")).to_have_class("trace-layout detail-closed")
    page.keyboard.press("Enter")
    expect(page.locator(".detail-pane")).to_be_visible()
    # Collapsing the root hides its four children.
    page.locator(".row[data-depth='0'] button.toggle").click()
    expect(page.locator(".tree .row:visible")).to_have_count(1)
    page.click("[data-tree=expand]")
    expect(page.locator(".tree .row:visible")).to_have_count(5)
    assert page_errors(page) == []


def test_a_shared_span_link_opens_that_span(seeded: Seeded, page: Page) -> None:
    trace_id, tool = seeded.ids["answer"], seeded.spans["tool"]
    page.goto(seeded.url(f"/p/shop/traces/{trace_id}?span={tool}"))
    expect(page.locator(".span-detail h2")).to_have_text("lookup_order")
    expect(page.locator(f".row[data-span='{tool}']")).to_have_class("row d1 selected")
    # The fragment URL visited directly leads to the same view.
    page.goto(seeded.url(f"/p/shop/traces/{trace_id}/spans/{tool}"))
    expect(page.locator(".span-detail h2")).to_have_text("lookup_order")


def test_errors_show_with_their_stack_trace(seeded: Seeded, page: Page) -> None:
    page.goto(
        seeded.url(f"/p/shop/traces/{seeded.ids['failure']}?span={seeded.spans['failed_tool']}")
    )
    box = page.locator(".error-box")
    expect(box).to_contain_text("TimeoutError: card service down")
    expect(box.locator("pre.stack")).to_contain_text('File "pay.py", line 3')
    expect(page.locator("ol.events li.exception")).to_contain_text("exception")
    expect(page.locator(".row.failed .span-name")).to_have_text("charge_card")
    screenshot(page, "trace-error")
    # From the root, "Next error" opens the failed span.
    page.goto(seeded.url(f"/p/shop/traces/{seeded.ids['failure']}"))
    expect(page.locator(".span-detail h2")).to_have_text("support-agent")
    page.click("[data-next-error]")
    expect(page.locator(".span-detail h2")).to_have_text("charge_card")
    expect(page.locator(".row.selected .span-name")).to_have_text("charge_card")
    assert page_errors(page) == []


def test_a_1200_span_trace_stays_usable(seeded: Seeded, page: Page) -> None:
    started = time.monotonic()
    page.goto(seeded.url(f"/p/big/traces/{seeded.ids['big']}"))
    rows = page.locator(".tree .row")
    expect(rows).to_have_count(1200)
    loaded = time.monotonic() - started
    # Deep chains are drawn at a capped indent, and every span is reachable.
    expect(page.locator(".row[data-depth='24']").first).to_be_visible()
    page.fill(".tree-filter", "tool-call-1199")
    expect(page.locator(".tree .row:visible")).to_have_count(1)
    page.locator(".tree .row:visible .span-name").click()
    expect(page.locator(".span-detail h2")).to_have_text("tool-call-1199")
    expect(page.locator(".span-detail")).to_contain_text("input of call 1199")
    page.fill(".tree-filter", "")
    page.click("[data-tree=collapse]")
    # The root, the chain head and the 10 groups stay.
    expect(page.locator(".tree .row:visible")).to_have_count(12)
    screenshot(page, "trace-1200-spans")
    print(f"1,200-span trace page loaded in the browser in {loaded:.2f} s")
    assert page_errors(page) == []


def test_a_trace_is_only_shown_under_its_own_project(seeded: Seeded, page: Page) -> None:
    response = page.goto(seeded.url(f"/p/shop/traces/{seeded.ids['other']}"))
    assert response is not None and response.status == 404
    expect(page.locator("body")).not_to_contain_text("secret-run")
    response = page.goto(seeded.url("/p/nowhere/traces"))
    assert response is not None and response.status == 404


def test_traces_pages_on_both_engines(live: LiveServer, page: Page) -> None:
    now = time.time_ns()
    with live.client() as client:
        answer, spans = seed_support_agent(client, "pets", now - 10**9)
        seed_failure(client, "pets", now)
    page.goto(live.url + "/p/pets/traces?status=error")
    expect(page.locator("table.traces tbody tr[data-trace]")).to_have_count(1)
    page.goto(live.url + "/p/pets/traces?q=parcel&user_id=alice")
    expect(page.locator("table.traces tbody tr[data-trace]")).to_have_count(1)
    page.locator("table.traces tbody tr[data-trace] td.preview").first.click()
    page.wait_for_url(f"**/traces/{answer.hex()}")
    page.locator(f".row[data-span='{spans['llm1'].hex()}'] .span-name").click()
    expect(page.locator(".span-detail .tool-call")).to_contain_text("lookup_order")
    screenshot(page, f"trace-{live.runtime.engine.dialect.name}")
    assert page_errors(page) == []


def test_sessions_list_and_a_session_as_a_conversation(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url("/p/shop/sessions"))
    rows = page.locator("table.sessions tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.session)") == ["sess-b", "sess-a"]
    sess_a = page.locator("tr[data-session='sess-a']")
    expect(sess_a.locator("td.num").nth(0)).to_have_text("2")
    expect(sess_a.locator("td.num").nth(3)).to_have_text("1")  # one failed turn
    expect(sess_a).to_contain_text("Where is my parcel?")  # what the session opened with
    screenshot(page, "sessions")
    page.fill("#s-user", "alice")
    page.click("button[type=submit]")
    page.wait_for_url("**user_id=alice")
    expect(rows).to_have_count(1)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url("**/sessions/sess-a")
    turns = page.locator(".turn")
    assert turns.evaluate_all("ts => ts.map(t => t.dataset.trace)") == [
        seeded.ids["answer"],
        seeded.ids["failure"],
    ]
    expect(turns.nth(0).locator(".bubble.user pre")).to_have_text("Where is my parcel?")
    expect(turns.nth(0).locator(".bubble.assistant pre")).to_have_text("It ships tomorrow.")
    expect(turns.nth(0).locator(".chip.score")).to_contain_text("thumbs_up 1.00")
    expect(turns.nth(1).locator(".badge.error")).to_be_visible()
    screenshot(page, "session")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/traces/{seeded.ids['failure']}")
    assert page_errors(page) == []


def test_session_ids_with_reserved_characters_link_correctly(seeded: Seeded, page: Page) -> None:
    page.goto(seeded.url("/p/other/sessions"))
    page.locator("tr[data-session='team/42 ü?#'] a").click()
    expect(page.locator(".turn .bubble.user pre")).to_have_text("odd session")
    expect(page.locator(".trace-head h1")).to_contain_text("team/42 ü?#")
    response = page.goto(seeded.url("/p/shop/sessions/no-such-session"))
    assert response is not None and response.status == 404
