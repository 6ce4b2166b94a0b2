"""The datasets room in a real browser: list, records, versions, editing, add to dataset, XSS."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Page

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span
from tests.ui.conftest import expect, login, page_errors, screenshot, seed_user
from tests.ui.test_experiments_ui import XSS


def seed(client: httpx.Client, project: str = "shop") -> None:
    base = f"/api/v1/projects/{project}/datasets"
    client.post(base, json={"name": "qa", "description": "support questions"}).raise_for_status()
    records = [
        {"record_id": "r1", "input": {"q": "How long do returns take?"}, "expected": "30 days"},
        {"record_id": "r2", "input": {"q": "Do you ship to Norway?"}, "expected": "yes"},
        {"record_id": "r3", "input": "plain text question", "tags": ["smoke"]},
    ]
    client.post(f"{base}/qa/changes", json={"insert": records}).raise_for_status()
    client.post(
        f"{base}/qa/changes", json={"update": [{"record_id": "r2", "expected": "Yes, to Norway"}]}
    ).raise_for_status()
    client.post(base, json={"name": "xss"}).raise_for_status()
    hostile = [
        {
            "record_id": f"x{i}",
            "input": {"prompt": payload, payload: "key"},
            "expected": payload,
            "metadata": {"note": payload},
            "tags": [payload[:40]],
        }
        for i, payload in enumerate(XSS)
    ]
    client.post(f"{base}/xss/changes", json={"insert": hostile}).raise_for_status()


def send_trace(client: httpx.Client, project: str = "shop") -> tuple[str, str, str]:
    """A trace whose root span asked a question and a child LLM span answered it."""
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    spans = [
        span(
            trace_id,
            root,
            "support-agent",
            attributes={
                "input.value": json.dumps({"question": "Where is my parcel?"}),
                "output.value": "It is on its way.",
            },
        ),
        span(
            trace_id,
            child,
            "llm",
            parent=root,
            attributes={"input.value": "child input", "output.value": "child output"},
        ),
    ]
    body = protobuf(spans, resource={"assay.project": project})
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    return trace_id.hex(), root.hex(), child.hex()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home: Path = tmp_path_factory.mktemp("datasets-ui")
    live = start_server(Settings(database_url=f"sqlite:///{home}/ui.db", home=home))
    with live.client() as client:
        seed(client)
        seed(client, project="other")
    try:
        yield live
    finally:
        live.stop()


def _no_errors(page: Page, *, refused_forms: bool = False) -> None:
    """No page error; a form refused on purpose answers 400, which Chromium logs as an error."""
    errors: list[str] = page_errors(page)
    if refused_forms:
        errors = [e for e in errors if "status of 400 (Bad Request)" not in e]
    assert errors == []


def test_list_and_create_a_dataset_with_inline_errors(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/p/shop/datasets")
    qa = page.locator("table.ds-list tbody tr", has_text="qa")
    expect(qa.locator("td.num").nth(0)).to_have_text("3")
    expect(qa.locator("td.num").nth(1)).to_have_text("v2")
    screenshot(page, "datasets")

    page.click("details.ds-create summary")
    page.fill("#ds-name", "bad/name")
    page.fill("#ds-description", "kept after the error")
    page.click("details.ds-create button[type=submit]")
    expect(page.locator(".field-error")).to_contain_text("cannot contain '/'")
    expect(page.locator("#ds-description")).to_have_value("kept after the error")

    page.fill("#ds-name", "regressions")
    page.click("details.ds-create button[type=submit]")
    expect(page).to_have_url(re.compile("/p/shop/datasets/regressions$"))
    expect(page.locator(".flash")).to_have_text("Created dataset 'regressions'.")
    page.reload()
    expect(page.locator(".flash")).to_have_count(0)  # shown once
    _no_errors(page, refused_forms=True)


def test_records_versions_and_an_old_version_read_only(server: LiveServer, page: Page) -> None:
    page.goto(f"{server.url}/p/shop/datasets/qa")
    rows = page.locator("table.ds-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="r2")).to_contain_text("Yes, to Norway")
    expect(page.locator(".ds-changes")).to_contain_text("updated r2")
    expect(page.locator(".ds-versions li")).to_have_count(2)
    expect(page.get_by_role("link", name="Add record")).to_be_visible()
    screenshot(page, "dataset")

    page.locator(".ds-versions a", has_text="v1").click()
    expect(page).to_have_url(re.compile(r"\?version=1$"))
    expect(page.locator("h1")).to_contain_text("read-only")
    expect(rows.filter(has_text="r2")).to_contain_text("yes")
    expect(page.get_by_role("link", name="Add record")).to_have_count(0)
    # Keyboard: j selects a record, Enter opens it (still at version 1, read-only).
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"record\?id=r1&version=1$"))
    expect(page.locator("form[data-record-form]")).to_have_count(0)
    expect(page.locator("main pre").first).to_contain_text("How long do returns take?")
    _no_errors(page)


def test_edit_keeps_the_text_on_a_bad_value_then_saves_a_version(
    server: LiveServer, page: Page
) -> None:
    page.goto(f"{server.url}/p/shop/datasets/qa/record?id=r1")
    expect(page.locator("#f-input")).to_have_value(re.compile('"q": "How long do returns take\\?"'))
    expect(page.locator("#f-expected")).to_have_value("30 days")  # plain text stays plain

    page.fill("#f-expected", "Within 30 days of delivery.")
    page.fill("#f-metadata", '{"reviewed": true,')
    page.click("form[data-record-form] button[type=submit]")
    expect(page.locator("#f-metadata-error")).to_contain_text("not valid JSON")
    expect(page.locator("#f-expected")).to_have_value("Within 30 days of delivery.")
    expect(page.locator("#f-metadata")).to_have_value('{"reviewed": true,')
    screenshot(page, "dataset-record-error")

    page.fill("#f-metadata", '{"reviewed": true}')
    page.fill("#f-tags", "returns, policy")
    page.fill("#f-message", "clearer expected answer")
    page.click("form[data-record-form] button[type=submit]")
    expect(page.locator(".flash")).to_have_text(re.compile(r"Saved: version \d+\."))
    expect(page.locator("#f-expected")).to_have_value("Within 30 days of delivery.")
    page.goto(f"{server.url}/p/shop/datasets/qa")
    expect(page.locator(".ds-versions li").first).to_contain_text("clearer expected answer")
    expect(page.locator("table.ds-rows tr", has_text="r1")).to_contain_text("reviewed")
    with server.client() as client:
        records = client.get("/api/v1/projects/shop/datasets/qa/records").json()["items"]
    r1 = next(r for r in records if r["record_id"] == "r1")
    assert r1["expected"] == "Within 30 days of delivery."
    assert r1["metadata"] == {"reviewed": True} and r1["tags"] == ["returns", "policy"]
    _no_errors(page, refused_forms=True)


def test_add_and_delete_a_record(server: LiveServer, page: Page) -> None:
    with server.client() as client:
        assert client.get("/p/shop/datasets/no-such-dataset").status_code == 404
        client.post("/api/v1/projects/shop/datasets", json={"name": "scratch"})
    page.goto(f"{server.url}/p/shop/datasets/scratch")
    page.get_by_role("link", name="Add record").first.click()
    page.fill("#f-input", "")
    page.fill("#f-expected", "[1, 2")
    page.click("form[data-record-form] button[type=submit]")
    expect(page.locator("#f-input-error")).to_have_text("input is required")
    expect(page.locator("#f-expected-error")).to_contain_text("not valid JSON")
    page.fill("#f-input", '{"q": "new question"}')
    page.fill("#f-expected", "42")
    page.fill("#f-record_id", "n1")
    page.click("form[data-record-form] button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Added a record")
    expect(page.locator("table.ds-rows tbody tr")).to_have_count(1)

    page.locator("table.ds-rows a", has_text="n1").click()
    page.click("details.ds-delete summary")
    page.click("details.ds-delete button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Deleted record 'n1'")
    expect(page.locator("table.ds-rows")).to_have_count(0)
    page.goto(f"{server.url}/p/shop/datasets/scratch?version=1")
    expect(page.locator("table.ds-rows tbody tr")).to_have_count(1)  # history keeps it
    _no_errors(page, refused_forms=True)


def _post_from_browser(page: Page, action: str, fields: dict[str, str]) -> None:
    """Submit a form built in the page, with the page's CSRF token, as the partial would."""
    page.evaluate(
        """([action, fields]) => {
            const form = document.createElement("form");
            form.method = "post"; form.action = action;
            const token = document.querySelector("meta[name=csrf-token]").content;
            for (const [name, value] of Object.entries({...fields, csrf_token: token})) {
                const input = document.createElement("input");
                input.type = "hidden"; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }""",
        [action, fields],
    )


def test_add_from_trace_copies_the_span_and_links_the_trace(server: LiveServer, page: Page) -> None:
    with server.client() as client:
        trace_id, root, child = send_trace(client)
    page.goto(f"{server.url}/p/shop/datasets")
    action = "/p/shop/datasets/add-from-trace"
    # The root span (no span_id), into a new dataset, expected edited.
    _post_from_browser(
        page, action, {"trace_id": trace_id, "dataset": "from-traces", "expected": "On its way."}
    )
    expect(page).to_have_url(re.compile("/p/shop/datasets/from-traces$"))
    expect(page.locator(".flash")).to_contain_text("Added the span to 'from-traces'")
    row = page.locator("table.ds-rows tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Where is my parcel?")
    expect(row).to_contain_text("On its way.")
    expect(row.get_by_role("link", name=re.compile("^trace"))).to_have_attribute(
        "href", f"/p/shop/traces/{trace_id}?span={root}"
    )
    # A child span, expected left blank: the span's output is taken.
    _post_from_browser(
        page,
        action,
        {"trace_id": trace_id, "span_id": child, "dataset": "from-traces", "expected": ""},
    )
    expect(page.locator(".flash")).to_contain_text("version 2")
    expect(page.locator("table.ds-rows tbody tr", has_text="child input")).to_contain_text(
        "child output"
    )
    # Bad JSON in expected: the form comes back with the text and the error, nothing stored.
    _post_from_browser(
        page, action, {"trace_id": trace_id, "dataset": "from-traces", "expected": '{"a": '}
    )
    expect(page.locator("#f-expected-error")).to_contain_text("not valid JSON")
    expect(page.locator("#f-expected")).to_have_value('{"a": ')
    expect(page.locator("#f-dataset")).to_have_value("from-traces")
    screenshot(page, "add-from-trace-error")
    # A trace of another project is not found from this one.
    with server.client() as client:
        other_trace, _, _ = send_trace(client, project="other")
    _post_from_browser(page, action, {"trace_id": other_trace, "dataset": "from-traces"})
    expect(page.locator(".flash.error")).to_contain_text("not in this project")
    with server.client() as client:
        items = client.get("/api/v1/projects/shop/datasets/from-traces/records").json()["items"]
    assert [(r["source_trace_id"], r["source_span_id"]) for r in items] == [
        (trace_id, root),
        (trace_id, child),
    ]
    assert items[0]["input"] == {"question": "Where is my parcel?"}
    _no_errors(page, refused_forms=True)


def test_a_forged_post_without_the_token_is_refused(server: LiveServer, page: Page) -> None:
    with server.client() as client:
        response = client.post("/p/shop/datasets/qa/record/delete", data={"record_id": "r3"})
        assert response.status_code == 403
        records = client.get("/api/v1/projects/shop/datasets/qa/records").json()["items"]
    assert "r3" in {r["record_id"] for r in records}


def test_add_to_dataset_partial_on_the_trace_page(server: LiveServer, page: Page) -> None:
    with server.client() as client:
        trace_id, root, _ = send_trace(client)
    page.goto(f"{server.url}/p/shop/traces/{trace_id}")
    form = page.locator(".add-to-dataset").first
    form.locator("summary").click()
    expect(form.locator("datalist option[value=qa]")).to_have_count(1)  # fetched on open
    screenshot(page, "add-to-dataset")
    form.locator("input[name=dataset]").fill("qa")
    form.locator("textarea[name=expected]").fill("It ships today.")
    form.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile("/p/shop/datasets/qa$"))
    expect(page.locator(".flash")).to_contain_text("Added the span to 'qa'")
    expect(page.locator("table.ds-rows tbody tr", has_text="It ships today.")).to_have_count(1)
    _no_errors(page)


def test_a_span_pane_prefills_expected_with_the_span_output(server: LiveServer, page: Page) -> None:
    with server.client() as client:
        trace_id, _, child = send_trace(client)
    page.goto(f"{server.url}/p/shop/traces/{trace_id}?span={child}")
    form = page.locator(".span-detail .add-to-dataset")
    form.locator("summary").click()
    expect(form.locator("textarea[name=expected]")).to_have_value("child output")
    expect(form.locator("input[name=span_id]")).to_have_value(child)
    _no_errors(page)


def test_xss_payloads_render_as_text_on_dataset_pages(server: LiveServer, page: Page) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    for path in (
        "/p/shop/datasets",
        "/p/shop/datasets/xss",
        "/p/shop/datasets/xss/record?id=x1",
        "/p/shop/datasets/xss/record?id=x3&version=1",
    ):
        page.goto(server.url + path)
        page.mouse.move(300, 300)
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("main img, main svg, main iframe, main script").count() == 0, path
        assert page.locator("main a[href^='javascript']").count() == 0, path
    expect(page.locator("#f-expected")).to_have_value(XSS[3])
    page.goto(server.url + "/p/shop/datasets/xss")
    expect(page.locator("table.ds-rows")).to_contain_text('<img src=x onerror="window.__xss = 2">')
    screenshot(page, "dataset-xss")
    page.goto(server.url + "/p/shop/datasets/xss/record?id=x5")
    expect(page.locator("#f-expected")).to_have_value("</pre><script>window.__xss = 7</script>")
    expect(page.locator("#f-metadata")).to_have_value(re.compile("textarea|script"))
    assert page.evaluate("window.__xss") is None
    assert dialogs == []
    _no_errors(page)


def test_pages_load_on_both_engines(live: LiveServer, page: Page) -> None:
    with live.client() as client:
        seed(client)
        trace_id, _, _ = send_trace(client)
    page.goto(f"{live.url}/p/shop/datasets/qa")
    expect(page.locator("table.ds-rows tbody tr")).to_have_count(3)
    page.goto(f"{live.url}/p/shop/datasets/qa?version=1")
    expect(page.locator(".ds-changes")).to_contain_text("added r1")
    _post_from_browser(
        page, "/p/shop/datasets/add-from-trace", {"trace_id": trace_id, "dataset": "qa"}
    )
    expect(page.locator(".flash")).to_contain_text("version 3")
    expect(page.locator("table.ds-rows tbody tr", has_text="It is on its way.")).to_have_count(1)
    _no_errors(page)


@pytest.fixture(scope="module")
def roles_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, tuple[str, str, str]]]:
    """Data seeded while the server is open, then users with roles in "shop": sign-in needed.
    Gives the server and the (trace id, root span id, child span id) of the trace it holds."""
    home: Path = tmp_path_factory.mktemp("datasets-roles")
    live = start_server(Settings(database_url=f"sqlite:///{home}/ui.db", home=home))
    with live.client() as client:
        seed(client)
        seed(client, project="other")
        trace = send_trace(client)
    for name, role in (("vic", "viewer"), ("ann", "annotator"), ("ed", "editor")):
        seed_user(live, name, roles={"shop": role})
    seed_user(live, "otto", roles={"other": "admin"})
    try:
        yield live, trace
    finally:
        live.stop()


def _records(server: LiveServer, dataset: str = "qa") -> dict[str, object]:
    from assay.store import datasets as dataset_store
    from assay.store import projects as project_store

    with server.runtime.engine.connect() as conn:
        project_id = project_store.get_id(conn, "shop")
        assert project_id is not None
        found = dataset_store.get(conn, project_id, dataset)
        if found is None:
            return {}
        items, _ = dataset_store.records(conn, int(found["id"]), int(found["version"]))
    return {str(r["record_id"]): r["expected"] for r in items}


def test_roles_viewer_reads_annotator_adds_from_traces_editor_edits(
    roles_server: tuple[LiveServer, tuple[str, str, str]], page: Page
) -> None:
    server, (trace_id, root, _) = roles_server
    edit = {"record_id": "r1", "input": '{"q": "x"}', "expected": "changed", "metadata": "{}"}

    login(page, server.url, "vic")
    page.goto(f"{server.url}/p/shop/datasets/qa")
    expect(page.locator("table.ds-rows tbody tr")).to_have_count(3)
    expect(page.get_by_role("link", name="Add record")).to_have_count(0)
    page.goto(f"{server.url}/p/shop/datasets/qa/record?id=r1")
    expect(page.locator("form[data-record-form]")).to_have_count(0)
    expect(page.locator("main pre").first).to_contain_text("How long do returns take?")
    _post_from_browser(page, "/p/shop/datasets/qa/record", edit)
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.goto(f"{server.url}/p/shop/datasets/qa")
    _post_from_browser(
        page, "/p/shop/datasets/add-from-trace", {"trace_id": trace_id, "dataset": "qa"}
    )
    expect(page.locator("h1")).to_have_text("Not allowed")
    assert _records(server)["r1"] == "30 days"

    page.context.clear_cookies()
    login(page, server.url, "ann")
    page.goto(f"{server.url}/p/shop/datasets/qa")
    _post_from_browser(page, "/p/shop/datasets/qa/record", edit)
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.goto(f"{server.url}/p/shop/datasets/qa")
    _post_from_browser(
        page, "/p/shop/datasets/add-from-trace", {"trace_id": trace_id, "dataset": "brand-new"}
    )
    expect(page.locator(".flash.error")).to_contain_text("creating one needs an editor")
    _post_from_browser(
        page, "/p/shop/datasets/add-from-trace", {"trace_id": trace_id, "dataset": "qa"}
    )
    expect(page.locator(".flash")).to_contain_text("Added the span to 'qa'")
    assert len(_records(server)) == 4 and _records(server, "brand-new") == {}

    page.context.clear_cookies()
    login(page, server.url, "ed")
    page.goto(f"{server.url}/p/shop/datasets/qa/record?id=r1")
    page.fill("#f-expected", "edited by ed")
    page.click("form[data-record-form] button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Saved")
    assert _records(server)["r1"] == "edited by ed"

    # A user of another project sees nothing of this one.
    page.context.clear_cookies()
    login(page, server.url, "otto")
    for path in ("/p/shop/datasets", "/p/shop/datasets/qa", "/p/shop/experiments"):
        response = page.goto(server.url + path)
        assert response is not None and response.status == 403, path
        expect(page.locator("main")).not_to_contain_text("How long do returns take?")
