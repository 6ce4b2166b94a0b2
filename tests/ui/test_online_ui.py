"""Judges, rules and connections in a real browser: a judge written, tried on a trace, saved
and edited into version 2; its scores on the trace page; a rule page that shows failures with
the provider's message, pause and a backfill preview; a viewer who cannot edit; and model or
user text that renders as text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page

from assay.services.online import OnlineWorker
from assay.settings import Settings
from assay.store import online as online_store
from tests.conftest import LiveServer, start_server
from tests.fake_llm import Answer, FakeLLM
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span
from tests.ui.conftest import expect, login, screenshot, seed_user
from tests.ui.test_xss import INJECTED

SECRET = "sk-ui-0123456789abcdefWXYZ"
RATIONALE = "It answers the question directly."
VERDICT = Answer(arguments={"reasoning": RATIONALE, "choice": "good"})
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        server.always(VERDICT)
        yield server


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return replace(
        Settings(database_url=f"sqlite:///{tmp_path}/ui.db", home=tmp_path),
        egress_allow="127.0.0.1",
        worker_poll_ms=100,
        **changes,
    )


@pytest.fixture
def scoring(tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose own worker scores quickly and may call the fake model on loopback."""
    server = start_server(_settings(tmp_path))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def quiet(tmp_path: Path) -> Iterator[LiveServer]:
    """A server without its own worker: the test drives one on an injected clock."""
    server = start_server(_settings(tmp_path, server_worker=False))
    try:
        yield server
    finally:
        server.stop()


def send_trace(client: httpx.Client, project: str, question: str = "What is 2+2?") -> str:
    trace_id = new_trace_id()
    root = span(
        trace_id,
        new_span_id(),
        "agent",
        start=time.time_ns(),
        attributes={"input.value": question, "output.value": "4"},
    )
    sent = client.post(
        "/v1/traces", content=protobuf([root]), headers={**PB, "x-assay-project": project}
    )
    assert sent.status_code == 200, sent.text
    return trace_id.hex()


def api_setup(
    client: httpx.Client, fake: FakeLLM, project: str, *, name: str = "quality", **rule: Any
) -> tuple[int, int]:
    """A connection, a judge and a rule through the API: (evaluator id, rule id)."""
    client.post(
        f"/api/v1/projects/{project}/connections",
        json={
            "name": "fake",
            "provider": "openai-compatible",
            "base_url": fake.openai_url,
            "api_key": SECRET,
            "default_model": "gpt-4o-mini",
        },
    ).raise_for_status()
    evaluator = client.post(
        f"/api/v1/projects/{project}/evaluators",
        json={
            "name": name,
            "kind": "judge",
            "prompt": "Question: {{input}}\nAnswer: {{output}}\nIs it good?",
            "choices": {"good": 1.0, "bad": 0.0},
            "connection": "fake",
        },
    )
    evaluator.raise_for_status()
    made = client.post(
        f"/api/v1/projects/{project}/rules",
        json={
            "name": "all",
            "evaluators": [evaluator.json()["id"]],
            "sample_rate": 1.0,
            "delay_seconds": 0,
            **rule,
        },
    )
    made.raise_for_status()
    return int(evaluator.json()["id"]), int(made.json()["id"])


def wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- a judge from the browser ---------------------------------------------------------------------


def test_a_judge_is_written_tried_saved_and_edited_into_version_two(
    page: Page, scoring: LiveServer, fake: FakeLLM
) -> None:
    base = f"{scoring.url}/p/shop"
    with scoring.client() as client:
        trace_id = send_trace(client, "shop", question="What is the capital of France?")

    # The connection: the key typed once, only its last four shown afterwards.
    page.goto(f"{base}/connections")
    page.fill("#n-name", "fake")
    page.select_option("#n-provider", "openai-compatible")
    page.fill("#n-model", "gpt-4o-mini")
    page.fill("#n-url", fake.openai_url)
    page.fill("#n-key", SECRET)
    page.click("text=Save connection")
    expect(page.locator("[data-connection=fake] [data-last4]")).to_have_text("…WXYZ")
    assert SECRET not in page.content()
    # Another URL without the key again is refused: a stored key goes only where it was saved.
    row = page.locator("[data-connection=fake]")
    row.locator("summary").click()
    row.locator("input[name=base_url]").fill(fake.url + "/elsewhere")
    row.locator("button[type=submit]").click()
    expect(page.locator("[data-error]")).to_contain_text("API key again")
    expect(page.locator("[data-connection=fake] code").first).to_have_text(fake.openai_url)

    # The nav leads to the judges; a new judge is tried before it is saved.
    page.click("nav.rooms >> text=Judges")
    expect(page.locator("h1")).to_have_text("Judges")
    page.fill("#j-name", "quality")
    page.fill("#j-prompt", "Q: {{input}}\nA: {{output}}\nIs the answer right?")
    page.fill("#j-choices", "good = 1\nbad = 0")
    with scoring.client() as client:
        [connection] = client.get("/api/v1/projects/shop/connections").json()["items"]
    expect(page.locator("#j-connection")).to_contain_text("fake (openai-compatible, gpt-4o-mini)")
    page.select_option("#j-connection", str(connection["id"]))
    page.fill("#j-trace", trace_id)
    page.click("[data-try]")
    tried = page.locator("[data-tried]")
    expect(tried.locator("[data-rendered]").first).to_contain_text(
        "Q: What is the capital of France?\nA: 4"
    )
    expect(tried.locator("[data-verdict]")).to_contain_text("good = 1.0")
    expect(tried.locator("[data-rationale]")).to_have_text(RATIONALE)
    expect(tried.locator("[data-cost]")).to_contain_text("$0.000127")
    screenshot(page, "online-judge-tried")
    with scoring.client() as client:
        assert client.get("/api/v1/projects/shop/evaluators").json()["items"] == []
    # What was typed is still there, to be saved.
    expect(page.locator("#j-name")).to_have_value("quality")

    page.click("[data-save]")
    expect(page.locator("[data-version]")).to_have_text("v1")
    expect(page.locator("[role=status]")).to_contain_text("version 1")
    page.fill("#j-prompt", "Q: {{input}}\nA: {{output}}\nIs the answer right? Be strict.")
    page.click("[data-save]")
    expect(page.locator("[data-version]")).to_have_text("v2")
    expect(page.locator("[data-versions] tbody tr")).to_have_count(2)
    page.click("[data-save]")  # unchanged: no new version
    expect(page.locator("[role=status]")).to_contain_text("Nothing changed")
    expect(page.locator("[data-versions] tbody tr")).to_have_count(2)
    screenshot(page, "online-judge-v2")
    with scoring.client() as client:
        [listed] = client.get("/api/v1/projects/shop/evaluators").json()["items"]
        assert listed["version"] == 2 and "Be strict." in listed["definition"]["prompt"]


def test_judge_scores_show_on_the_trace_page_with_source_version_and_rationale(
    page: Page, scoring: LiveServer, fake: FakeLLM
) -> None:
    with scoring.client() as client:
        api_setup(client, fake, "shop")
        trace_id = send_trace(client, "shop")

        def scored() -> bool:
            trace = client.get(f"/api/v1/projects/shop/traces/{trace_id}").json()
            return bool(trace["scores"])

        wait_for(scored)
    page.goto(f"{scoring.url}/p/shop/traces/{trace_id}")
    scores = page.locator("[data-trace-scores]")
    scores.locator("summary").click()
    row = scores.locator("[data-score=quality]")
    expect(row).to_contain_text("llm")
    expect(row).to_contain_text("evaluator quality v1")
    expect(row).to_contain_text(RATIONALE)
    row.locator("text=the judge's call").click()
    expect(page).to_have_url(f"{scoring.url}/p/shop.judges/traces/" + page.url.rsplit("/", 1)[1])
    screenshot(page, "online-judge-call")


# --- the rule page ------------------------------------------------------------------------------


def _drain(worker: OnlineWorker) -> None:
    worker.schedule_once()
    while worker.work_once():
        pass


def test_the_rule_page_shows_failures_with_the_providers_message_pause_and_backfill(
    page: Page, quiet: LiveServer, fake: FakeLLM
) -> None:
    fake.always(Answer(status=500))
    clock = [time.time_ns() + 10**9]
    worker = OnlineWorker(quiet.runtime, clock=lambda: clock[0], threads=1)
    with quiet.client() as client:
        old = send_trace(client, "shop")
        _evaluator_id, rule_id = api_setup(client, fake, "shop", daily_budget_usd=1.0)
        send_trace(client, "shop")
        clock[0] = time.time_ns() + 10**9
        _drain(worker)
    url = f"{quiet.url}/p/shop/rules/{rule_id}"
    page.goto(url)
    expect(page.locator("[data-count=retrying] .stat-value")).to_have_text("1")
    expect(page.locator("[data-error-message]").first).to_contain_text("attempt 1 of 5")
    expect(page.locator("[data-error-message]").first).to_contain_text("HTTP 500")
    for _ in range(5):
        clock[0] += 600 * 10**9  # past the longest back-off
        _drain(worker)
    page.goto(url)
    expect(page.locator("[data-count=failed] .stat-value")).to_have_text("1")
    expect(page.locator("[data-count=pending] .stat-value")).to_have_text("0")
    expect(page.locator("[data-count=matched] .stat-value")).to_have_text("1")
    expect(page.locator("[data-error-message]").first).to_contain_text("gave up after 5 attempts")
    screenshot(page, "online-rule-failed")

    # The list shows the same counts.
    page.click(".online-tabs >> text=Rules")
    expect(page.locator("[data-rules] tbody tr")).to_contain_text("all")

    # Pause and resume.
    page.goto(url)
    page.click("[data-pause]")
    expect(page.locator("[data-paused]")).to_have_text("paused: turned off")
    page.click("[data-resume]")
    expect(page.locator("[data-pause]")).to_be_visible()

    # A backfill shows how many and what it would cost before it starts.
    page.click("[data-preview]")
    preview = page.locator("[data-preview-result]")
    expect(preview).to_contain_text("2 of 2 matching traces sampled: 2 judge calls")
    expect(preview).to_contain_text("$")
    page.click("[data-start]")
    expect(page.locator("[role=status]")).to_contain_text("Backfill started")
    with quiet.client() as client:
        status = client.get(f"/api/v1/rules/{rule_id}").json()["status"]
    # The trace sent before the rule existed is queued now; the failed one stays failed.
    assert status["pending"] == 1 and status["failed"] == 1, status
    assert old


# --- roles --------------------------------------------------------------------------------------


def test_a_viewer_reads_judges_and_rules_but_cannot_edit_them(
    page: Page, quiet: LiveServer, fake: FakeLLM
) -> None:
    with quiet.client() as client:
        evaluator_id, rule_id = api_setup(client, fake, "shop")
        [connection] = client.get("/api/v1/projects/shop/connections").json()["items"]
    seed_user(quiet, "vic", roles={"shop": "viewer"})
    login(page, quiet.url, "vic")
    base = f"{quiet.url}/p/shop"
    page.goto(f"{base}/evaluators/{evaluator_id}")
    expect(page.locator("#j-prompt")).to_have_attribute("readonly", "")
    expect(page.locator("[data-save]")).to_have_count(0)
    expect(page.locator("[data-try]")).to_have_count(0)
    page.goto(f"{base}/evaluators")
    expect(page.locator("[data-evaluators]")).to_contain_text("quality")
    expect(page.locator("#j-name")).to_have_count(0)
    page.goto(f"{base}/rules/{rule_id}")
    expect(page.locator("[data-status]")).to_be_visible()
    expect(page.locator("[data-pause]")).to_have_count(0)
    expect(page.locator("[data-preview]")).to_have_count(0)
    page.goto(f"{base}/connections")
    expect(page.locator("[data-connection=fake] [data-last4]")).to_have_text("…WXYZ")
    expect(page.locator("#n-name")).to_have_count(0)
    assert SECRET not in page.content()
    # Forms sent anyway (with the session's token) are refused.
    token = page.locator("meta[name=csrf-token]").get_attribute("content")
    for path, form in (
        (f"/p/shop/evaluators/{evaluator_id}", {"prompt": "x {{input}}", "choices": "a=1\nb=0"}),
        ("/p/shop/evaluators", {"name": "new", "prompt": "x", "choices": "a=1\nb=0"}),
        (f"/p/shop/rules/{rule_id}/pause", {}),
        (f"/p/shop/rules/{rule_id}/backfill", {"action": "start"}),
        (f"/p/shop/connections/{connection['id']}", {"default_model": "m"}),
        ("/p/shop/connections", {"name": "x", "provider": "openai"}),
    ):
        sent = page.request.post(
            quiet.url + path,
            form={**form, "csrf_token": token or ""},
            headers={"Origin": quiet.url},
            max_redirects=0,
        )
        assert sent.status == 403, (path, sent.status)
    with quiet.runtime.read() as conn:  # the API wants a key now that users exist
        found = online_store.get_evaluator(conn, evaluator_id)
        assert found is not None and found["version"] == 1
        rule = online_store.get_rule(conn, rule_id)
        assert rule is not None and rule["enabled"] is True
        assert [c["default_model"] for c in online_store.list_connections(conn, 1)] == [
            "gpt-4o-mini"
        ]


# --- what a model or a user wrote renders as text -------------------------------------------


def test_xss_in_prompts_rationales_names_and_errors_renders_as_text(
    page: Page, quiet: LiveServer, fake: FakeLLM
) -> None:
    fake.always(Answer(arguments={"reasoning": XSS, "choice": "good"}))
    clock = [time.time_ns() + 10**9]
    worker = OnlineWorker(quiet.runtime, clock=lambda: clock[0], threads=1)
    with quiet.client() as client:
        evaluator_id, rule_id = api_setup(client, fake, "shop", name=XSS)
        client.patch(
            f"/api/v1/evaluators/{evaluator_id}",
            json={"prompt": f"{XSS} Question: {{{{input}}}}"},
        ).raise_for_status()
        trace_id = send_trace(client, "shop", question=XSS)
        clock[0] = time.time_ns() + 10**9
        _drain(worker)
        fake.always(Answer(status=500, arguments={"error": XSS}))
        send_trace(client, "shop")
        clock[0] = time.time_ns() + 10**9
        _drain(worker)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    base = f"{quiet.url}/p/shop"
    for path in (
        "/evaluators",
        f"/evaluators/{evaluator_id}",
        "/rules",
        f"/rules/{rule_id}",
        "/connections",
        f"/traces/{trace_id}",
    ):
        page.goto(base + path)
        assert page.locator(INJECTED).count() == 0, path
        assert page.evaluate("window.__xss") is None, path
    page.goto(f"{base}/evaluators/{evaluator_id}")
    expect(page.locator("h1")).to_contain_text(XSS)
    expect(page.locator("#j-prompt")).to_have_value(f"{XSS} Question: {{{{input}}}}")
    # Trying renders the prompt with the hostile question, and the hostile rationale, as text.
    page.fill("#j-trace", trace_id)
    fake.always(Answer(arguments={"reasoning": XSS, "choice": "good"}))
    page.click("[data-try]")
    expect(page.locator("[data-rationale]")).to_have_text(XSS)
    expect(page.locator("[data-rendered]").first).to_contain_text(f"{XSS} Question: {XSS}")
    assert page.locator(INJECTED).count() == 0
    page.goto(f"{base}/traces/{trace_id}")
    page.locator("[data-trace-scores] summary").click()
    expect(page.locator("[data-trace-scores] tbody")).to_contain_text(XSS)
    assert page.locator(INJECTED).count() == 0
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
