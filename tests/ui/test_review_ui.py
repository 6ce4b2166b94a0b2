"""The review room in Chromium: a reviewer labels a queue with the keyboard alone, items swap in
without a page load, drafts survive a reload, editors build rubrics and queues and adjudicate,
traces are added from the traces list, and nothing in a rubric or an item runs as markup."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page

from assay.services.principal import Principal
from assay.store import keys as key_store
from tests.conftest import LiveServer
from tests.otlp_builders import new_span_id, new_trace_id, span
from tests.ui.conftest import expect, login, screenshot, seed_user
from tests.ui.test_traces_ui import send
from tests.ui.test_xss import INJECTED, _strip_csp
from tests.ui.xss_payloads import PAYLOADS

PROJECT = "shop"


def _traces(client: httpx.Client, project: str, count: int, word: str = "question") -> list[str]:
    now = time.time_ns()
    spans: list[dict[str, Any]] = []
    ids = []
    for i in range(count):
        trace_id, root, tool = new_trace_id(), new_span_id(), new_span_id()
        ids.append(trace_id.hex())
        messages = [{"role": "user", "content": f"{word} {i}: where is my order?"}]
        spans.append(
            span(
                trace_id,
                root,
                f"support-{i}",
                start=now - (count - i) * 10**9,
                attributes={
                    "openinference.span.kind": "AGENT",
                    "input.value": json.dumps(messages),
                    "output.value": f"answer {i}: it ships tomorrow",
                },
            )
        )
        spans.append(
            span(
                trace_id,
                tool,
                "lookup_order",
                parent=root,
                start=now - (count - i) * 10**9 + 10**6,
                attributes={
                    "openinference.span.kind": "TOOL",
                    "input.value": json.dumps({"order": i}),
                    "output.value": json.dumps({"status": "packed"}),
                },
            )
        )
    send(client, spans, project)
    return ids


def _admin_key(live: LiveServer) -> str:
    with live.runtime.updates.begin() as conn:
        secret, _ = key_store.create(conn, name="test-admin", role="admin", project=None)
    live.runtime._key_count = None  # no waiting for the cached "no keys yet"
    live.runtime.forget_users()
    return secret


def _api(live: LiveServer, key: str) -> httpx.Client:
    return live.client(headers={"Authorization": f"Bearer {key}"})


def _setup_queue(
    live: LiveServer, client: httpx.Client, trace_ids: list[str], **queue: Any
) -> tuple[int, int]:
    rubric = client.post(
        f"/api/v1/projects/{PROJECT}/rubrics",
        json={
            "name": "helpful",
            "kind": "categorical",
            "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
            "rationale": "required",
            "instructions": "Is the answer **helpful**?\n\n- says when\n- polite",
            "may_correct_expected": True,
        },
    )
    assert rubric.status_code == 201, rubric.text
    created = client.post(
        f"/api/v1/projects/{PROJECT}/queues",
        json={"name": "support", "rubrics": [rubric.json()["id"]], **queue},
    )
    assert created.status_code == 201, created.text
    queue_id = int(created.json()["id"])
    added = client.post(f"/api/v1/queues/{queue_id}/items", json={"trace_ids": trace_ids})
    assert added.status_code == 201, added.text
    return queue_id, int(rubric.json()["id"])


@pytest.fixture
def reviewed(live: LiveServer) -> tuple[LiveServer, int, int, str]:
    """A queue of 21 traces in project "shop", with users ann (annotator), ed (editor) and zed
    (annotator of another project); an admin API key."""
    key = _admin_key(live)
    with _api(live, key) as client:
        ids = _traces(client, PROJECT, 21)
        queue_id, rubric_id = _setup_queue(live, client, ids)
    seed_user(live, "ann", roles={PROJECT: "annotator"})
    seed_user(live, "ed", roles={PROJECT: "editor"})
    seed_user(live, "zed", roles={"other": "annotator"})
    return live, queue_id, rubric_id, key


def _item(page: Page) -> str:
    return str(page.locator("#rv-stage .rv-item").get_attribute("data-item"))


def test_a_reviewer_labels_twenty_items_with_the_keyboard_alone(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, queue_id, rubric_id, key = reviewed
    login(page, live.url, "ann")
    page.goto(f"{live.url}/p/{PROJECT}/review/{queue_id}")
    expect(page.locator(".rv-instructions strong").first).to_have_text("helpful")
    expect(page.locator(".rv-input .rv-msg.role-user")).to_contain_text("where is my order?")
    expect(page.locator(".rv-output")).to_contain_text("it ships tomorrow")
    screenshot(page, "review-reviewer-view")
    # Survives only while the page is not reloaded or left.
    page.evaluate("window.__sameDocument = 'yes'")
    seen = []
    for n in range(20):
        item = _item(page)
        seen.append(item)
        page.locator("body").press("1" if n % 3 else "2")
        page.keyboard.press("r")
        page.keyboard.type(f"because {n}")
        page.keyboard.press("Control+Enter")
        expect(page.locator("#rv-stage .rv-item")).not_to_have_attribute("data-item", item)
        expect(page.locator(".rv-mine strong")).to_have_text(str(n + 1))
    assert page.evaluate("window.__sameDocument") == "yes"  # no full page load between items
    assert len(set(seen)) == 20
    assert page.errors == []  # type: ignore[attr-defined]

    with _api(live, key) as client:
        labels = client.get(f"/api/v1/queues/{queue_id}/labels").json()["items"]
    assert len(labels) == 20
    assert {str(label["item_id"]) for label in labels} == set(seen)
    for label in labels:
        assert label["reviewer"] == "ann"
        assert label["rubric_id"] == rubric_id and label["rubric_version"] == 1
        assert label["rationale"].startswith("because ")
    by_item = {str(label["item_id"]): label for label in labels}
    assert by_item[seen[0]]["label"] == "no" and by_item[seen[1]]["label"] == "yes"

    # Undo takes the last one back as a draft; back shows the one before with its labels.
    page.keyboard.press("u")
    expect(page.locator("#rv-stage .rv-item")).to_have_attribute("data-item", seen[-1])
    expect(page.locator(".rv-rationale")).to_have_value("because 19")
    page.keyboard.press("b")
    expect(page.locator("#rv-stage .rv-item")).to_have_attribute("data-item", seen[-2])
    expect(page.locator(".rv-again")).to_be_visible()
    assert page.evaluate("window.__sameDocument") == "yes"


def test_a_draft_survives_a_reload_and_a_rationale_is_asked_for(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, queue_id, _rubric_id, _key = reviewed
    login(page, live.url, "ann")
    page.goto(f"{live.url}/p/{PROJECT}/review/{queue_id}")
    item = _item(page)
    page.locator("body").press("1")
    page.keyboard.press("Enter")  # no rationale yet: refused in the page, nothing sent
    expect(page.locator("#rv-flash")).to_contain_text("Say why")
    expect(page.locator(".rv-rationale")).to_be_focused()
    page.keyboard.type("half-written thought")
    page.reload()
    expect(page.locator("#rv-stage .rv-item")).to_have_attribute("data-item", item)  # leased
    expect(page.locator(".rv-rationale")).to_have_value("half-written thought")
    expect(page.locator(".rv-choice input").first).to_be_checked()
    # Skip leaves it for later; the next item has no draft.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("s")
    expect(page.locator("#rv-stage .rv-item")).not_to_have_attribute("data-item", item)
    expect(page.locator(".rv-rationale")).to_have_value("")
    page.keyboard.press("?")
    expect(page.locator("#shortcuts")).to_contain_text("undo your last submit")
    screenshot(page, "review-shortcuts")


def test_correct_and_add_to_dataset_keeps_the_trace(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, queue_id, _rubric_id, key = reviewed
    login(page, live.url, "ed")
    page.goto(f"{live.url}/p/{PROJECT}/review/{queue_id}")
    trace_link = page.locator("a.rv-trace").get_attribute("href") or ""
    page.locator("body").press("c")
    page.fill(".rv-correct-form input[name=dataset]", "golden")
    page.fill(".rv-correct-form textarea", "It ships on Monday.")
    page.click(".rv-correct-form button[type=submit]")
    expect(page.locator(".rv-correct-result")).to_contain_text("Added to golden")
    with _api(live, key) as client:
        records = client.get(f"/api/v1/projects/{PROJECT}/datasets/golden/records").json()
    [record] = records["items"]
    assert record["expected"] == "It ships on Monday."
    assert record["source_trace_id"] == trace_link.rsplit("/", 1)[1]


def test_editors_build_rubrics_and_queues_and_add_traces_from_the_list(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, _queue_id, _rubric_id, key = reviewed
    login(page, live.url, "ed")
    page.goto(f"{live.url}/p/{PROJECT}/review")
    expect(page.locator("nav.rooms a[aria-current=page]")).to_have_text("Review")
    page.click("#new-rubric summary")
    page.fill("#r-name", "stars")
    page.select_option("#r-kind", "numeric")
    page.fill("#r-min", "1")
    page.fill("#r-max", "5")
    page.fill("#r-anchors", "1 = useless\n5 = perfect")
    page.select_option("#r-rationale", "off")
    page.click("#new-rubric button[type=submit]")
    expect(page.locator("table.rv-rubrics")).to_contain_text("stars")
    # A bad choice list is refused with the service's message, the form kept.
    page.click("#new-rubric summary")
    page.fill("#r-name", "tone")
    page.fill("#r-choices", "calm\ncalm")
    page.click("#new-rubric button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("choice names must differ")
    expect(page.locator("#r-choices")).to_have_value("calm\ncalm")

    page.click("#new-queue summary")
    page.fill("#q-name", "double")
    page.locator("#new-queue input[name=rubric]").first.check()
    page.locator("#new-queue input[name=rubric]").nth(1).check()
    page.fill("#q-rpi", "2")
    page.click("#new-queue button[type=submit]")
    row = page.locator("table.rv-queues tr", has_text="double")
    expect(row).to_contain_text("anyone with the annotator role")
    screenshot(page, "review-room")

    # Two ticked traces, then a sample of 3 of the filter's matches.
    page.goto(f"{live.url}/p/{PROJECT}/traces")
    page.locator("input.pick-trace").nth(0).check()
    page.locator("input.pick-trace").nth(1).check()
    page.select_option(".add-to-queue select[name=queue_id]", label="double")
    page.click(".add-to-queue button[name=scope][value=picked]")
    expect(page.locator(".flash")).to_contain_text("Added 2 item(s)")
    page.goto(f"{live.url}/p/{PROJECT}/traces?type=tool")
    page.select_option(".add-to-queue select[name=queue_id]", label="double")
    page.check(".add-to-queue input[name=how][value=sample]")
    page.fill(".add-to-queue input[name=sample]", "3")
    page.click(".add-to-queue button[name=scope][value=filter]")
    expect(page.locator(".flash")).to_contain_text("Added")
    with _api(live, key) as client:
        queues = client.get(f"/api/v1/projects/{PROJECT}/queues").json()["items"]
    double = next(q for q in queues if q["name"] == "double")
    assert 3 <= double["items"] <= 5  # the sample may hold the two ticked ones


def test_adjudication_shows_the_ceiling_and_sets_gold(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, _queue_id, rubric_id, _key = reviewed
    rt = live.runtime
    from assay.services import review

    ed = Principal.local(name="ed")
    queue = review.create_queue(
        rt, ed, PROJECT, {"name": "pair", "rubrics": [rubric_id], "reviews_per_item": 2}
    )
    with _api(live, _key) as client:
        ids = _traces(client, PROJECT, 6, word="pair")
    review.add_items(rt, ed, int(queue["id"]), review.ItemsToAdd(trace_ids=ids))
    for name, answers in (("ann", "yyynny"), ("bob", "yynyny")):
        who = Principal.local(name=name)
        item = review.next_item(rt, who, int(queue["id"]))
        for answer in answers:
            assert item is not None
            choice = "yes" if answer == "y" else "no"
            label = {"rubric_id": rubric_id, "choice": choice, "rationale": f"{name} says {choice}"}
            item = review.submit_labels(rt, who, int(queue["id"]), item["item_id"], [label])["next"]
    login(page, live.url, "ed")
    page.goto(f"{live.url}/p/{PROJECT}/review/{queue['id']}/adjudicate")
    expect(page.locator("#agreement h2")).to_contain_text("the ceiling")
    expect(page.locator("table.rv-agreement tr[data-rubric] .rv-percent")).to_contain_text("67%")
    expect(page.locator("tr.rv-pair")).to_contain_text("ann ↔ bob")
    disputes = page.locator("article.rv-dispute")
    expect(disputes).to_have_count(2)
    first = disputes.first
    expect(first.locator(".rv-label[data-reviewer=ann] .rv-why")).to_contain_text("ann says")
    expect(first.locator(".rv-label[data-reviewer=bob] .rv-why")).to_contain_text("bob says")
    screenshot(page, "review-adjudication")
    first.locator("select").select_option("yes")
    first.locator("input[name^=why]").fill("the answer names the day")
    first.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_contain_text("Gold label saved")
    expect(page.locator(".rv-gold").first).to_contain_text("yes")


def test_an_annotator_of_another_project_is_refused(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, queue_id, _rubric_id, _key = reviewed
    login(page, live.url, "zed")
    for path in (
        f"/p/{PROJECT}/review",
        f"/p/{PROJECT}/review/{queue_id}",
        f"/p/{PROJECT}/review/{queue_id}/adjudicate",
        f"/p/{PROJECT}/review/{queue_id}/next",
    ):
        answer = page.goto(live.url + path)
        assert answer is not None and answer.status in (403, 404), path
        assert "where is my order" not in page.content()
    # Their own project's path with this queue's id: not there.
    answer = page.goto(f"{live.url}/p/other/review/{queue_id}")
    assert answer is not None and answer.status == 404


@pytest.mark.parametrize("policy", ["csp", "no-csp"])
def test_xss_payloads_in_rubrics_items_and_rationales_render_as_text(
    live: LiveServer, page: Page, policy: str
) -> None:
    """Served as is, and with the Content-Security-Policy stripped: the escaping holds alone."""
    if policy == "no-csp":
        page.route("**/*", _strip_csp)
    rt = live.runtime
    from assay.services import review, rubrics

    admin = Principal.local(name="admin")
    now = time.time_ns()
    trace_ids = []
    spans = []
    for i, payload in enumerate(PAYLOADS):
        trace_id = new_trace_id()
        trace_ids.append(trace_id.hex())
        spans.append(
            span(
                trace_id,
                new_span_id(),
                payload,
                start=now - i * 10**9,
                attributes={
                    "input.value": json.dumps([{"role": "user", "content": payload}]),
                    "output.value": payload,
                },
            )
        )
    with live.client() as client:
        send(client, spans, PROJECT)
    instructions = (
        "\n\n".join(PAYLOADS) + "\n\n[link](javascript:window.__xss=1) [ok](https://example.com)"
    )
    rubric = rubrics.create_rubric(
        rt,
        admin,
        PROJECT,
        {
            "name": PAYLOADS[0],
            "kind": "categorical",
            "choices": [{"name": p[:100], "description": p} for p in dict.fromkeys(PAYLOADS[:8])],
            "rationale": "optional",
            "instructions": instructions,
        },
    )
    queue = review.create_queue(
        rt,
        admin,
        PROJECT,
        {"name": PAYLOADS[1], "rubrics": [rubric["id"]], "reviews_per_item": 2},
    )
    review.add_items(rt, admin, int(queue["id"]), review.ItemsToAdd(trace_ids=trace_ids))
    for name in ("p1", "p2"):
        who = Principal.local(name=name)
        item = review.next_item(rt, who, int(queue["id"]))
        for n in range(3):
            assert item is not None
            label = {"rubric_id": rubric["id"], "choice": PAYLOADS[(n + len(name)) % 4][:100]}
            label["rationale"] = PAYLOADS[n]
            item = review.submit_labels(rt, who, int(queue["id"]), item["item_id"], [label])["next"]
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    base = f"{live.url}/p/{PROJECT}/review"
    pages = [base, f"{base}/{queue['id']}", f"{base}/{queue['id']}/adjudicate?all=1"]
    for url in pages:
        page.goto(url)
        page.wait_for_timeout(50)
        assert page.evaluate("typeof window.__xss") == "undefined", url
        assert page.evaluate("document.title") != "pwned", url
        injected = page.locator(INJECTED).evaluate_all("els => els.map(e => e.outerHTML)")
        assert injected == [], url
    page.goto(f"{base}/{queue['id']}")
    links = page.locator(".rv-instructions a").evaluate_all("as => as.map(a => a.href)")
    assert links == ["https://example.com/"]
    expect(page.locator(".rv-rubric legend")).to_contain_text(PAYLOADS[0])
    # Items swapped in by fetch are as inert as the first.
    for _ in range(3):
        shown = _item(page)
        page.locator("body").press("1")
        page.keyboard.press("Enter")
        expect(page.locator("#rv-stage .rv-item")).not_to_have_attribute("data-item", shown)
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert page.locator(INJECTED).count() == 0
    assert dialogs == []
    if policy == "csp":  # a payload turned markup would show as a refused script or image
        assert page.errors == []  # type: ignore[attr-defined]
    screenshot(page, f"review-xss-{policy}")


def test_a_personal_key_from_the_settings_page_labels_as_its_user(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, queue_id, rubric_id, _key = reviewed
    login(page, live.url, "ann")
    page.goto(f"{live.url}/settings")
    page.select_option("#pk-project", PROJECT)
    page.click("#personal-key-form button[type=submit]")
    secret = page.locator("#new-secret").text_content() or ""
    assert secret.startswith("assay_")
    expect(page.locator("#personal-key-table")).to_contain_text(PROJECT)
    with _api(live, secret) as client:
        item = client.get(f"/api/v1/queues/{queue_id}/next").json()
        label = {"rubric_id": rubric_id, "choice": "yes", "rationale": "from my script"}
        sent = client.post(
            f"/api/v1/queues/{queue_id}/items/{item['item_id']}/labels", json={"labels": [label]}
        )
        assert sent.status_code == 201, sent.text
        mine = client.get(f"/api/v1/queues/{queue_id}/labels").json()["items"]
    assert [(m["reviewer"], m["rationale"]) for m in mine] == [("ann", "from my script")]
    # The key is limited to the project it was made for, and revocable by its owner.
    page.goto(f"{live.url}/settings")
    page.click("#personal-key-table button.danger")
    expect(page.locator("#personal-key-table")).to_contain_text("revoked")


def test_experiment_rows_and_dataset_records_are_added_from_their_lists(
    reviewed: tuple[LiveServer, int, int, str], page: Page
) -> None:
    live, queue_id, _rubric_id, key = reviewed
    with _api(live, key) as client:
        experiment = client.post(
            f"/api/v1/projects/{PROJECT}/experiments", json={"eval_name": "qa", "name": "run-1"}
        ).json()
        rows = [{"case_key": f"c{i}", "input": f"case {i}", "output": "ok"} for i in range(3)]
        client.post(f"/api/v1/experiments/{experiment['id']}/rows", json=rows)
        client.post(f"/api/v1/projects/{PROJECT}/datasets", json={"name": "qa"})
        records = [{"record_id": f"r{i}", "input": f"record {i}"} for i in range(3)]
        client.post(f"/api/v1/projects/{PROJECT}/datasets/qa/changes", json={"insert": records})
    login(page, live.url, "ann")
    page.goto(f"{live.url}/p/{PROJECT}/experiments/{experiment['id']}")
    page.locator("input.pick-row").nth(0).check()
    page.locator("input.pick-row").nth(2).check()
    page.click(".add-to-queue button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Added 2 item(s)")
    page.goto(f"{live.url}/p/{PROJECT}/datasets/qa")
    page.locator("input.pick-record").nth(1).check()
    page.click(".add-to-queue button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Added 1 item(s)")
    with _api(live, key) as client:
        items = client.get(f"/api/v1/queues/{queue_id}/items", params={"limit": 100}).json()
    kinds = [item["kind"] for item in items["items"]]
    assert kinds.count("experiment_row") == 2 and kinds.count("dataset_record") == 1
