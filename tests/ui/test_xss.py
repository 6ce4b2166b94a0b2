"""Model output is untrusted: script, event-handler, SVG and javascript: payloads in every
field a span can carry render as text, and no script runs — checked in the browser.

The pages' Content-Security-Policy would block inline script anyway, so every page is walked
twice: as served, and with the CSP header stripped, which proves the escaping holds by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Page, Route

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import new_span_id, new_trace_id, span
from tests.ui.conftest import expect, screenshot
from tests.ui.test_traces_ui import send
from tests.ui.xss_payloads import PAYLOADS, PROJECT

INJECTED = (
    "[onerror], [onload], [ontoggle], [onfocus], iframe, script:not([src]), "
    "meta[http-equiv], math, template, style, a[href^='javascript' i], body *[href^='javascript' i]"
)


@dataclass
class Seeded:
    server: LiveServer
    #: (trace id, ids of its three spans) per payload, in PAYLOADS order.
    traces: list[tuple[str, list[str]]]


def _spans_for(payload: str, start: int) -> tuple[list[dict[str, Any]], dict[bytes, Any]]:
    trace, root, llm, failing = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    common = {"session.id": payload, "user.id": payload}
    root_attributes = {
        **common,
        "openinference.span.kind": "AGENT",
        "input.value": payload,
        "output.value": payload,
        payload: payload,
        "tag.tags": [payload],
        "metadata": json.dumps({payload: payload}),
    }
    conversation_in = [
        {"role": "system", "content": payload},
        {"role": payload, "content": [{"type": "text", "text": payload}]},
    ]
    conversation_out = [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": payload},
                {"type": "tool_call", "id": payload, "name": payload, "arguments": {payload: 1}},
            ],
        }
    ]
    llm_attributes = {
        **common,
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": payload,
        "gen_ai.input.messages": json.dumps(conversation_in),
        "gen_ai.output.messages": json.dumps(conversation_out),
    }
    failing_attributes = {**common, "assay.span.type": payload, "input.value": {"k": payload}}
    spans = [
        span(trace, root, payload, start=start, duration_ms=900, attributes=root_attributes),
        span(trace, llm, payload, parent=root, start=start + 10**6, attributes=llm_attributes),
        span(
            trace,
            failing,
            payload,
            parent=root,
            start=start + 5 * 10**7,
            error=payload,
            attributes={
                k: json.dumps(v) if isinstance(v, dict) else v
                for k, v in failing_attributes.items()
            },
        ),
    ]
    events = {
        failing: [
            (
                "exception",
                start + 6 * 10**7,
                {
                    "exception.type": payload,
                    "exception.message": payload,
                    "exception.stacktrace": payload,
                },
            ),
            (payload, start + 7 * 10**7, {payload: payload}),
        ]
    }
    return spans, events


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    home: Path = tmp_path_factory.mktemp("xss")
    server = start_server(Settings(database_url=f"sqlite:///{home}/ui.db", home=home))
    now = time.time_ns()
    traces: list[tuple[str, list[str]]] = []
    try:
        with server.client() as client:
            for index, payload in enumerate(PAYLOADS):
                spans, events = _spans_for(payload, now - (index + 1) * 10**9)
                send(client, spans, PROJECT, events)
                trace_id = spans[0]["trace_id"]
                traces.append((trace_id.hex(), [s["span_id"].hex() for s in spans]))
                score = {
                    "trace_id": trace_id.hex(),
                    "span_id": spans[1]["span_id"].hex(),
                    "name": payload[:200],
                    "label": payload[:200],
                    "rationale": payload,
                    "value": 0.5,
                }
                answer = client.post(
                    f"/api/v1/projects/{quote(PROJECT, safe='')}/scores", json=score
                )
                assert answer.status_code == 201, answer.text
        yield Seeded(server, traces)
    finally:
        server.stop()


def _strip_csp(route: Route) -> None:
    response = route.fetch()
    headers = {
        key: value
        for key, value in response.headers.items()
        if key.lower() != "content-security-policy"
    }
    route.fulfill(response=response, headers=headers)


class Watch:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def inert(self, where: str) -> None:
        """No payload ran, and none became an element."""
        page = self.page
        page.wait_for_load_state("load")
        page.wait_for_timeout(30)  # let onerror/onload handlers fire, were there any
        assert page.evaluate("typeof window.__xss") == "undefined", where
        assert page.evaluate("document.title") != "pwned", where
        assert self.dialogs == [], where
        injected = page.locator(INJECTED).evaluate_all("els => els.map(e => e.outerHTML)")
        assert injected == [], where


def _shown(text: str, limit: int) -> str:
    """What the preview filter makes of a text: whitespace collapsed, cut at ``limit``."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(page: Page) -> str:
    return str(page.evaluate("document.body.textContent"))


@pytest.fixture(params=["csp", "no-csp"])
def watched(request: pytest.FixtureRequest, page: Page) -> Iterator[tuple[Page, Watch]]:
    if request.param == "no-csp":
        page.route("**/*", _strip_csp)
    watch = Watch(page)
    yield page, watch
    if request.param == "csp":
        # With the CSP on, a payload that became markup would show as a refused inline
        # script or a failed image load. (A page refusing bad filters answers 400 on purpose;
        # the browser logs that status too.)
        errors = [e for e in page.errors if "responded with a status of 400" not in e]  # type: ignore[attr-defined]
        assert errors == []


def test_csp_stripping_really_removes_the_policy(seeded: Seeded, page: Page) -> None:
    """The no-CSP walk proves something only if inline handlers can run there."""
    probe = (
        "document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=\"window.__probe=1\">')"
    )
    project = quote(PROJECT, safe="")
    page.goto(seeded.server.url + f"/p/{project}/traces")
    page.evaluate(probe)
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__probe") == "undefined"  # the CSP blocks it
    page.route("**/*", _strip_csp)
    page.goto(seeded.server.url + f"/p/{project}/traces")
    page.evaluate(probe)
    page.wait_for_function("window.__probe === 1")


def test_lists_render_payloads_as_text(seeded: Seeded, watched: tuple[Page, Watch]) -> None:
    page, watch = watched
    base = seeded.server.url
    project = quote(PROJECT, safe="")
    page.goto(base + "/")
    watch.inert("projects")
    assert PROJECT in _text(page)
    page.goto(base + f"/p/{project}/traces?limit=100")
    watch.inert("traces")
    names = page.locator("table.traces td.name a").evaluate_all("as => as.map(a => a.textContent)")
    assert sorted(names) == sorted(_shown(p, 80) for p in PAYLOADS)
    screenshot(page, "xss-traces")
    page.goto(base + f"/p/{project}/sessions")
    watch.inert("sessions")
    sessions = page.locator("table.sessions tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.session)"
    )
    assert sorted(sessions) == sorted(PAYLOADS)
    for payload in PAYLOADS[:6]:
        page.goto(base + f"/p/{project}/sessions/{quote(payload, safe='')}")
        watch.inert(f"session {payload}")
        expect(page.locator(".turn .bubble.user pre")).to_have_text(payload)


def test_filters_echo_payloads_as_text(seeded: Seeded, watched: tuple[Page, Watch]) -> None:
    """Filter values come back into the page (inputs, error notes): a reflected-XSS check."""
    page, watch = watched
    project = quote(PROJECT, safe="")
    for payload in PAYLOADS:
        query = urlencode(
            [
                ("q", payload),
                ("name", payload),
                ("tag", payload),
                ("tag", payload),
                ("metadata", f"k={payload}"),
                ("since", payload),
                ("min_cost", payload),
                ("cursor", payload),
            ]
        )
        page.goto(seeded.server.url + f"/p/{project}/traces?{query}")
        watch.inert(f"filters {payload}")
        expect(page.locator("#f-name")).to_have_value(payload)
        expect(page.locator(".flash.error")).to_have_count(3)  # since, min_cost, cursor
        if payload.isprintable():  # the notes quote the value, cut (repr escapes the others)
            assert payload[:30] in _text(page)
        page.goto(seeded.server.url + f"/p/{project}/sessions?" + urlencode([("user_id", payload)]))
        watch.inert(f"session filter {payload}")


def test_trace_pages_and_span_details_render_payloads_as_text(
    seeded: Seeded, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    project = quote(PROJECT, safe="")
    for payload, (trace_id, span_ids) in zip(PAYLOADS, seeded.traces, strict=True):
        page.goto(seeded.server.url + f"/p/{project}/traces/{trace_id}")
        watch.inert(f"trace {payload}")
        assert page.locator(".trace-head h1").text_content() == _shown(payload, 120)
        detail = page.locator(".span-detail")
        expect(detail.locator("section.io pre").first).to_have_text(payload)
        kv_keys = detail.locator("table.kv th").evaluate_all("ths => ths.map(t => t.textContent)")
        assert payload in kv_keys  # the attribute key and the metadata key
        # The LLM span: a conversation whose roles, texts and tool call all carry the payload.
        page.locator(f".row[data-span='{span_ids[1]}'] .span-name").click()
        expect(detail).to_have_attribute("data-span", span_ids[1])
        watch.inert(f"llm span {payload}")
        expect(detail.locator(".msg.role-system pre")).to_have_text(payload)
        expect(detail.locator(".msg.role-other pre")).to_have_text(payload)
        expect(detail.locator(".tool-call code")).to_have_text(payload)
        # The failing span: error text, stack trace, event name, and a payload as span type.
        page.locator(f".row[data-span='{span_ids[2]}'] .span-name").click()
        expect(detail).to_have_attribute("data-span", span_ids[2])
        watch.inert(f"error span {payload}")
        expect(detail.locator("pre.stack").first).to_have_text(payload)
        assert payload in _text(page)
    screenshot(page, "xss-trace")
