"""The playground on both engines, its models on the local fake server: a dataset run stored as
an experiment and compared with the previous version's run, a single run streaming in, side by
side, save and promote from the playground, roles, template injection, escaped output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from assay.errors import Forbidden, UserError
from assay.services import playground, prompts
from assay.services.principal import Principal
from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.fake_llm import CHAT_TEXT, Answer, FakeLLM

PROJECT = "support"
V1 = {
    "name": "triage",
    "messages": [
        {"role": "system", "content": "You triage tickets for {{ company }}."},
        {"role": "user", "content": "Ticket: {{ ticket }}"},
    ],
    "model": "gpt-4o-mini",
    "params": {"temperature": 0},
    "message": "first cut",
}
V2 = {
    **V1,
    "messages": [
        {"role": "system", "content": "You triage tickets for {{ company }}. Be brief."},
        {"role": "user", "content": "Ticket: {{ ticket }}"},
    ],
    "message": "shorter answers",
}
EDITOR = Principal.for_key("ed", "editor", PROJECT)
ANNOTATOR = Principal.for_user(2, "ann", is_admin=False, roles={PROJECT: "annotator"})
VIEWER = Principal.for_user(3, "vic", is_admin=False, roles={PROJECT: "viewer"})


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """A live server that may call the fake model on loopback (no online worker)."""
    started = start_server(replace(settings, egress_allow="127.0.0.1", server_worker=False))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def api(server: LiveServer, fake: FakeLLM) -> Iterator[httpx.Client]:
    """The project with a connection to the fake model, prompt v1 and v2, a 20-record dataset
    (half of them expecting exactly the fake's answer)."""
    with server.client() as client:
        made = client.post(
            f"/api/v1/projects/{PROJECT}/connections",
            json={
                "name": "fake",
                "provider": "openai-compatible",
                "base_url": fake.openai_url,
                "api_key": "sk-test-secret",
                "default_model": "gpt-4o-mini",
            },
        )
        assert made.status_code == 201, made.text
        for body in (V1, V2):
            assert client.post(f"/api/v1/projects/{PROJECT}/prompts", json=body).status_code == 201
        assert client.post(f"/api/v1/projects/{PROJECT}/datasets", json={"name": "tickets"})
        records = [
            {
                "id": f"t{i:02d}",
                "input": {"company": "Acme", "ticket": f"ticket number {i}"},
                "expected": CHAT_TEXT if i % 2 == 0 else "something else",
            }
            for i in range(20)
        ]
        changed = client.post(
            f"/api/v1/projects/{PROJECT}/datasets/tickets/changes", json={"insert": records}
        )
        assert changed.status_code == 201, changed.text
        yield client


def _ask(**changes: Any) -> playground.RunRequest:
    base = playground.RunRequest(
        draft=None, prompt="triage", version=1, connection="fake", model=None
    )
    return replace(base, **changes)


def _csrf(client: httpx.Client) -> str:
    page = client.get(f"/p/{PROJECT}/playground?prompt=triage")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    return found.group(1)


def _lines(client: httpx.Client, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream(
        "POST", f"/p/{PROJECT}/playground/run", json=body, headers={"X-CSRF-Token": token}
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        assert response.headers["x-content-type-options"] == "nosniff"
        # Each piece is its own chunk as it arrives (not one body at the end).
        chunks = [chunk for chunk in response.iter_bytes() if chunk]
    text = b"".join(chunks).decode()
    assert len(chunks) > 1
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_dataset_run_is_an_experiment_compared_with_the_previous_versions_run(
    server: LiveServer, api: httpx.Client, fake: FakeLLM
) -> None:
    rt = server.runtime
    first = playground.start_dataset_run(
        rt,
        ANNOTATOR,
        PROJECT,
        _ask(version=1),
        dataset="tickets",
        dataset_version=None,
        scorers=["exact_match", "edit_similarity"],
        wait=True,
    )
    assert first["status"] == "complete" and first["previous"] is None
    assert (first["prompt"], first["prompt_version"]) == ("triage", 1)
    sent = [body for path, body in fake.requests if path == "/v1/chat/completions"]
    assert len(sent) == 20
    systems = {body["messages"][0]["content"] for body in sent}
    assert systems == {"You triage tickets for Acme."}
    tickets = sorted(body["messages"][1]["content"] for body in sent)
    assert tickets[0] == "Ticket: ticket number 0" and len(set(tickets)) == 20

    fake.reset()
    second = playground.start_dataset_run(
        rt,
        EDITOR,
        PROJECT,
        _ask(version=2),
        dataset="tickets",
        dataset_version=None,
        scorers=["exact_match", "edit_similarity"],
        wait=True,
    )
    assert {body["messages"][0]["content"] for _, body in fake.requests} == {
        "You triage tickets for Acme. Be brief."
    }
    assert second["done"] == 20 and second["errors"] == 0 and second["cases"] == 20
    assert second["previous"] == {
        "id": first["experiment_id"],
        "name": first["name"],
        "version": 1,
    }
    assert second["summary"]["exact_match"]["mean"] == pytest.approx(0.5)
    assert second["summary"]["exact_match"]["n"] == 20

    rows = api.get(f"/api/v1/experiments/{second['experiment_id']}/rows").json()["items"]
    assert len(rows) == 20
    assert all(len(row["scores"]) == 2 and row["output"] == CHAT_TEXT for row in rows)
    assert all(row["input_tokens"] and row["latency_ms"] is not None for row in rows)
    compared = api.get(
        f"/api/v1/experiments/{first['experiment_id']}/compare/{second['experiment_id']}"
    )
    assert compared.status_code == 200, compared.text
    cases = compared.json()["cases"]
    assert {case["case_key"] for case in cases} == {row["case_key"] for row in rows}
    assert len(cases) == 40  # 20 cases x 2 scores
    progress = api.get(f"/p/{PROJECT}/playground/runs/{second['experiment_id']}").json()
    page = api.get(progress["compare_url"])
    assert page.status_code == 200 and "triage@v2" in page.text

    # The experiments list, filtered and grouped by prompt version.
    listed = api.get(f"/p/{PROJECT}/experiments", params={"prompt": "triage", "prompt_version": 1})
    assert listed.status_code == 200
    assert "triage@v1 on tickets" in listed.text and "triage@v2 on tickets" not in listed.text
    grouped = api.get(f"/p/{PROJECT}/experiments", params={"group": "prompt"})
    assert "triage v2" in grouped.text and "triage v1" in grouped.text

    # An edited draft of v2 is not v2: it is recorded as a draft of triage.
    edited = {**V2, "messages": [{"role": "user", "content": "{{ ticket }}!"}]}
    draft_run = playground.start_dataset_run(
        rt,
        EDITOR,
        PROJECT,
        _ask(version=2, draft=edited),
        dataset="tickets",
        dataset_version=None,
        wait=True,
    )
    assert draft_run["prompt_version"] is None and draft_run["previous"] is None


def test_a_single_run_streams_and_versions_run_side_by_side(
    api: httpx.Client, fake: FakeLLM
) -> None:
    token = _csrf(api)
    draft = {k: V2[k] for k in ("messages", "model", "params")}
    body = {
        "prompt": "triage",
        "version": 2,
        "draft": draft,
        "connection": "fake",
        "variables": {"company": "Acme", "ticket": "printer on fire"},
    }
    lines = _lines(api, token, body)
    pieces = [line["text"] for line in lines if line["type"] == "text"]
    assert len(pieces) > 1 and "".join(pieces) == CHAT_TEXT
    done = lines[-1]
    assert done["type"] == "done" and done["error"] is None and done["output"] == CHAT_TEXT
    assert done["input_tokens"] == 1200 and done["model"].startswith("gpt-4o-mini")
    sent = fake.requests[-1][1]
    assert sent["stream"] is True and sent["temperature"] == 0
    assert sent["messages"][1]["content"] == "Ticket: printer on fire"

    # Side by side: each saved version on the same variables (no draft sent).
    fake.reset()
    for version in (1, 2):
        side = {**body, "version": version, "draft": None}
        assert "".join(x.get("text", "") for x in _lines(api, token, side)) == CHAT_TEXT
    systems = [b["messages"][0]["content"] for _, b in fake.requests]
    assert systems == ["You triage tickets for Acme.", "You triage tickets for Acme. Be brief."]

    # A variable without a value is a 400 naming it, before any call.
    fake.reset()
    missing = api.post(
        f"/p/{PROJECT}/playground/run",
        json={**body, "variables": {"company": "Acme"}},
        headers={"X-CSRF-Token": token},
    )
    assert missing.status_code == 400 and "no value for ticket" in missing.text
    assert fake.requests == []

    # A model that fails mid-way: the stream ends with the error, the key never shown.
    failing = _lines(api, token, {**body, "model": "fail-mid-stream"})
    assert failing[-1]["type"] == "done" and failing[-1]["error"]
    assert "sk-test-secret" not in json.dumps(failing)


def test_model_html_is_sent_as_data_and_shown_escaped(api: httpx.Client, fake: FakeLLM) -> None:
    token = _csrf(api)
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    fake.always(Answer(text=evil))
    body = {
        "prompt": "triage",
        "version": 1,
        "connection": "fake",
        "variables": {"company": "A", "ticket": "t"},
    }
    lines = _lines(api, token, body)
    assert "".join(x.get("text", "") for x in lines) == evil  # text, inserted as text by JS
    started = api.post(
        f"/p/{PROJECT}/playground/runs",
        json={**body, "dataset": "tickets", "scorers": ["exact_match"]},
        headers={"X-CSRF-Token": token},
    )
    assert started.status_code == 201, started.text
    experiment_id = started.json()["experiment_id"]
    assert playground.wait_for_run(experiment_id, 60)
    page = api.get(f"/p/{PROJECT}/experiments/{experiment_id}")
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "<script>alert" not in page.text
    assert "&lt;img src=x" in page.text


def test_save_and_promote_from_the_playground(api: httpx.Client) -> None:
    token = _csrf(api)
    headers = {"X-CSRF-Token": token}
    draft = {
        "messages": [{"role": "system", "content": "Triage for {{ company }}, in French."}],
        "model": "gpt-4o-mini",
        "params": {"temperature": 0.3},
    }
    saved = api.post(
        f"/p/{PROJECT}/playground/save",
        json={"name": "triage", "draft": draft, "message": "in French"},
        headers=headers,
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["version"] == 3 and saved.json()["created"]
    again = api.post(
        f"/p/{PROJECT}/playground/save",
        json={"name": "triage", "draft": draft, "message": "same"},
        headers=headers,
    )
    assert again.status_code == 200 and not again.json()["created"]
    moved = api.post(
        f"/p/{PROJECT}/playground/promote",
        json={"name": "triage", "label": "production", "version": 3},
        headers=headers,
    )
    assert moved.status_code == 200 and moved.json()["moved"]["to_version"] == 3
    stored = api.get(f"/api/v1/projects/{PROJECT}/prompts/triage?label=production").json()
    assert stored["version"] == 3 and stored["message"] == "in French"
    assert stored["params"] == {"temperature": 0.3}
    # Without the page's token the playground's writes are refused.
    refused = api.post(
        f"/p/{PROJECT}/playground/promote",
        json={"name": "triage", "label": "production", "version": 1},
    )
    assert refused.status_code == 403

    # The prompt's page: versions with messages, labels with history, undo, a diff.
    page = api.get(f"/p/{PROJECT}/prompts/triage", params={"from": 1, "to": 3})
    assert page.status_code == 200
    assert "in French" in page.text and "shorter answers" in page.text
    assert 'data-undo="production"' in page.text
    assert "Triage for {{ company }}, in French." in page.text  # the diff, escaped as text
    undone = api.post(
        f"/p/{PROJECT}/prompts/triage/labels/production/undo",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert undone.status_code == 303
    after = api.get(f"/api/v1/projects/{PROJECT}/prompts/triage/labels").json()
    assert after["labels"] == []  # the move created the label: undoing removes it
    listing = api.get(f"/p/{PROJECT}/prompts")
    assert listing.status_code == 200 and ">triage</a>" in listing.text


def test_roles(server: LiveServer, api: httpx.Client, fake: FakeLLM) -> None:
    rt = server.runtime
    inputs = {"company": "Acme", "ticket": "t"}
    with pytest.raises(Forbidden):
        playground.run_once(rt, VIEWER, PROJECT, _ask(), inputs)
    with pytest.raises(Forbidden):
        playground.start_dataset_run(
            rt, VIEWER, PROJECT, _ask(), dataset="tickets", dataset_version=None
        )
    with pytest.raises(Forbidden):
        playground.dataset_records(rt, VIEWER, PROJECT, "tickets", None)
    assert prompts.list_versions(rt, VIEWER, PROJECT, "triage")[0]["version"] == 2
    assert playground.run_once(rt, ANNOTATOR, PROJECT, _ask(), inputs).output == CHAT_TEXT
    assert len(playground.dataset_records(rt, ANNOTATOR, PROJECT, "tickets", None)["records"])
    with pytest.raises(Forbidden):
        prompts.save_version(rt, ANNOTATOR, PROJECT, {**V1, "message": "annotator"})
    with pytest.raises(Forbidden):
        prompts.move_label(rt, ANNOTATOR, PROJECT, "triage", "production", 1)
    assert prompts.move_label(rt, EDITOR, PROJECT, "triage", "production", 1)["moved"]
    outsider = Principal.for_key("other", "admin", "sales")
    with pytest.raises(Exception, match="support"):
        playground.run_once(rt, outsider, PROJECT, _ask(), inputs)
    assert len(fake.requests) == 1  # the annotator's run only


INJECTIONS = {
    "internals": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "cycler": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "self": "{{ self.__init__.__globals__ }}",
    "range": "{{ range.__init__.__globals__ }}",
    "lipsum": "{{ lipsum.__globals__ }}",
    "namespace": "{{ namespace.__init__.__globals__ }}",
    "format": "{{ '{0.__class__}'.format(ticket) }}",
    "include": "{% include '/etc/passwd' %}",
    "import": "{% import 'os' as os %}{{ os }}",
    "from": "{% from '/etc/passwd' import x %}",
    "extends": "{% extends '/etc/passwd' %}",
}


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_template_injection_in_the_playground_fails_safely(
    server: LiveServer, api: httpx.Client, fake: FakeLLM
) -> None:
    rt = server.runtime
    for name, text in INJECTIONS.items():
        draft = {"messages": [{"role": "user", "content": text}], "model": "gpt-4o-mini"}
        inputs = {"ticket": "t", "cycler": "c"}
        with pytest.raises(UserError) as caught:
            playground.run_once(rt, EDITOR, PROJECT, _ask(draft=draft, version=None), inputs)
        message = str(caught.value)
        assert any(
            hint in message for hint in ("unsafe", "cannot include", "undefined", "no value")
        ), (name, message)
        assert "root:" not in message and "uid=" not in message
    assert fake.requests == []
    # Over a dataset: each row fails with the reason, nothing is called.
    stored = {"messages": [{"role": "user", "content": INJECTIONS["internals"]}]}
    run = playground.start_dataset_run(
        rt,
        EDITOR,
        PROJECT,
        _ask(draft=stored, version=None),
        dataset="tickets",
        dataset_version=None,
        wait=True,
    )
    assert run["errors"] == 20 and fake.requests == []
    rows = api.get(f"/api/v1/experiments/{run['experiment_id']}/rows").json()["items"]
    assert "unsafe" in rows[0]["error"]
