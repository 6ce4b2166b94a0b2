"""The prompt registry (versions, labels, history, undo, diff, roles) and `assay.prompt()`
(in-process TTL cache, background refresh, disk cache for a new process with the server away),
on both engines against a live server."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider

import assay
from assay.errors import PromptUnavailable, UserError
from assay.sdk import _prompts
from assay.store import keys as key_store
from tests.conftest import LiveServer
from tests.fake_llm import FakeLLM

HERE = Path(__file__).parent
BASE = "/api/v1/projects/support/prompts"
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
    "params": {"temperature": 0.2, "max_tokens": 300},
    "message": "shorter answers",
}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(cache))
    _prompts.clear_prompt_cache()
    yield cache
    _prompts.clear_prompt_cache()


def _save(client: httpx.Client, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = client.post(BASE, json=body)
    assert response.status_code == status, response.text
    saved: dict[str, Any] = response.json()
    return saved


def _label(client: httpx.Client, version: int, label: str = "production") -> dict[str, Any]:
    response = client.put(f"{BASE}/triage/labels/{label}", json={"version": version})
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()
    return moved


def test_versions_are_immutable_and_labels_move_with_history_and_undo(
    client: httpx.Client,
) -> None:
    first = _save(client, V1)
    assert (first["version"], first["created"], first["variables"]) == (
        1,
        True,
        ["company", "ticket"],
    )
    assert _save(client, V2)["version"] == 2
    unchanged = _save(client, V2, status=200)
    assert (unchanged["version"], unchanged["created"]) == (2, False)

    old = client.get(f"{BASE}/triage", params={"version": 1}).json()
    assert old["messages"] == V1["messages"] and old["params"] == {"temperature": 0}
    assert old["message"] == "first cut" and old["created_ns"] > 0
    assert client.get(f"{BASE}/triage").json()["version"] == 2  # no label: the latest

    assert client.get(f"{BASE}/triage", params={"label": "production"}).status_code == 404
    assert _label(client, 1)["moved"]["from_version"] is None
    assert _label(client, 2)["moved"]["from_version"] == 1
    assert _label(client, 2)["moved"] is None  # already there: nothing recorded
    got = client.get(f"{BASE}/triage", params={"label": "production"}).json()
    assert (got["version"], got["labels"]) == (2, ["production"])
    _label(client, 1, "staging")

    history = client.get(f"{BASE}/triage/labels", params={"label": "production"}).json()
    assert [(m["from_version"], m["to_version"]) for m in history["history"]] == [
        (1, 2),
        (None, 1),
    ]
    assert all("author" in m and m["created_ns"] > 0 for m in history["history"])

    undone = client.post(f"{BASE}/triage/labels/production/undo").json()
    assert undone["version"] == 1 and undone["moved"]["undo_of"] is not None
    assert client.get(f"{BASE}/triage", params={"label": "production"}).json()["version"] == 1
    assert client.post(f"{BASE}/triage/labels/production/undo").json()["version"] is None
    assert client.get(f"{BASE}/triage", params={"label": "production"}).status_code == 404
    nothing = client.post(f"{BASE}/triage/labels/production/undo")
    assert nothing.status_code == 409 and "no move left" in nothing.json()["error"]["message"]
    assert client.get(f"{BASE}/triage", params={"label": "staging"}).json()["version"] == 1

    listed = client.get(BASE).json()["items"]
    assert [(p["name"], p["version"], p["labels"]) for p in listed] == [
        ("triage", 2, {"staging": 1})
    ]
    versions = client.get(f"{BASE}/triage/versions").json()["items"]
    assert [v["version"] for v in versions] == [2, 1]

    diff = client.get(f"{BASE}/triage/diff", params={"from": 1, "to": 2}).json()
    assert "-You triage tickets for {{ company }}." in diff["messages_diff"]
    assert "+You triage tickets for {{ company }}. Be brief." in diff["messages_diff"]
    assert {c["field"]: (c["from"], c["to"]) for c in diff["changes"]} == {
        "params.temperature": (0, 0.2),
        "params.max_tokens": (None, 300),
    }

    missing = client.put(f"{BASE}/triage/labels/production", json={"version": 9})
    assert missing.status_code == 404
    bad_role = _save(client, {**V1, "messages": [{"role": "tool", "content": "x"}]}, status=400)
    assert "role" in bad_role["error"]["message"]


def test_template_injection_fails_safely(client: httpx.Client, live: LiveServer) -> None:
    refused = client.post(
        BASE, json={**V1, "messages": [{"role": "user", "content": "{% include '/etc/passwd' %}"}]}
    )
    assert refused.status_code == 400
    assert "cannot include" in refused.json()["error"]["message"]
    syntax = client.post(BASE, json={**V1, "messages": [{"role": "user", "content": "{{ x"}]})
    assert syntax.status_code == 400 and "line 1" in syntax.json()["error"]["message"]

    attacks = {
        "internals": "{{ ticket.__class__.__mro__[1].__subclasses__() }}",
        "globals": "{{ ticket.__init__.__globals__['os'].popen('id').read() }}",
        "power": "{{ 7 ** (7 ** 9) }}",
        "width": "{{ '{:>999999999}'.format(ticket) }}",
    }
    for name, text in attacks.items():
        body = {**V1, "name": f"evil-{name}", "messages": [{"role": "user", "content": text}]}
        _save(client, body)
        fetched = assay.prompt(f"evil-{name}", version=1, project="support", url=live.url)
        started = time.monotonic()
        with pytest.raises(UserError) as caught:
            fetched.render(ticket="t", company="c")
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert f"prompt 'evil-{name}' v1" in message
        assert "unsafe" in message or "stopped" in message or "undefined" in message, message


def test_the_sdk_follows_a_moved_label_and_renders_for_both_providers(
    client: httpx.Client,
    live: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ASSAY_PROMPT_TTL_SECONDS", "1")
    _save(client, V1)
    _save(client, V2)
    _label(client, 1)
    first = assay.prompt("triage", label="production", project="support", url=live.url)
    assert (first.version, first.model, first.variables) == (
        1,
        "gpt-4o-mini",
        ["company", "ticket"],
    )
    assert assay.prompt("triage", project="support", url=live.url) is first  # cached

    _label(client, 2)
    deadline = time.monotonic() + 6
    seen = first
    while seen.version == 1 and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = assay.prompt("triage", label="production", project="support", url=live.url)
    assert seen.version == 2  # within the TTL (1 s) and a background fetch, no restart

    rendered = seen.render(company="Acme", ticket="my printer is on fire")
    chat = rendered.openai()
    assert chat["model"] == "gpt-4o-mini" and chat["temperature"] == 0.2
    assert chat["messages"] == [
        {"role": "system", "content": "You triage tickets for Acme. Be brief."},
        {"role": "user", "content": "Ticket: my printer is on fire"},
    ]
    claude = rendered.anthropic(model="claude-sonnet-4-5")
    assert claude["system"] == "You triage tickets for Acme. Be brief."
    assert claude["messages"] == [{"role": "user", "content": "Ticket: my printer is on fire"}]
    assert claude["max_tokens"] == 300 and claude["model"] == "claude-sonnet-4-5"
    assert claude["extra_body"] == {"temperature": 0.2}
    with pytest.raises(UserError, match="needs ticket"):
        seen.render(company="Acme")
    pinned = assay.prompt("triage", version=1, project="support", url=live.url)
    assert pinned.version == 1 and pinned.params == {"temperature": 0}

    # The server goes away: the running application keeps its version and says so once.
    live.stop()
    with caplog.at_level(logging.WARNING, logger="assay.sdk"):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            kept = assay.prompt("triage", label="production", project="support", url=live.url)
            assert kept.version == 2
            time.sleep(0.05)
    said = [r.getMessage() for r in caplog.records if "last known" in r.getMessage()]
    assert len(said) == 1 and "cannot be reached" in said[0]


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A new process on a base install (no server extra, no provider SDKs)."""
    return subprocess.run(
        [sys.executable, str(HERE / "base_install.py"), "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


FETCH = (
    "import assay, json\n"
    "p = assay.prompt('triage', project='support')\n"
    "q = assay.prompt('triage', project='support')\n"
    "print(json.dumps([p.version, p.source, p.render(company='A', ticket='t').openai()]))\n"
)


def test_a_new_process_gets_the_last_version_from_disk_with_the_server_away(
    client: httpx.Client, live: LiveServer, fresh_cache: Path
) -> None:
    _save(client, V1)
    _save(client, V2)
    _label(client, 2)
    env = {"ASSAY_URL": live.url, "ASSAY_CACHE_DIR": str(fresh_cache)}
    online = _run(FETCH, env)
    assert online.returncode == 0, online.stderr
    assert json.loads(online.stdout)[:2] == [2, "server"]

    live.stop()
    offline = _run(FETCH, env)
    assert offline.returncode == 0, offline.stderr
    version, source, chat = json.loads(offline.stdout)
    assert (version, source) == (2, "disk")
    assert chat["messages"][0]["content"] == "You triage tickets for A. Be brief."
    warnings = [line for line in offline.stderr.splitlines() if "last known" in line]
    assert len(warnings) == 1 and "cannot be reached" in warnings[0]

    empty = _run(
        "import assay\n"
        "try:\n"
        "    assay.prompt('triage', project='support')\n"
        "except assay.PromptUnavailable as error:\n"
        "    print('typed:', error)\n",
        {**env, "ASSAY_CACHE_DIR": str(fresh_cache / "elsewhere")},
    )
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("typed: prompt 'triage' (label production")
    assert "no earlier version is cached" in empty.stdout
    with pytest.raises(PromptUnavailable):
        assay.prompt("never-saved", project="support", url=live.url)


def _key(live: LiveServer, project: str | None, role: str) -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name=f"{role}-key", role=role, project=project)
    live.runtime._key_count = None
    return secret


def test_roles_and_projects(live: LiveServer) -> None:
    root, viewer, other = (
        _key(live, None, "admin"),
        _key(live, "support", "viewer"),
        _key(live, "sales", "editor"),
    )

    def as_(key: str) -> httpx.Client:
        return live.client(headers={"Authorization": f"Bearer {key}"})

    with as_(root) as admin, as_(viewer) as reader, as_(other) as outsider:
        assert admin.post(BASE, json=V1).status_code == 201
        assert reader.get(f"{BASE}/triage").json()["author"] == "admin-key"
        assert reader.post(BASE, json=V2).status_code == 403
        put = reader.put(f"{BASE}/triage/labels/production", json={"version": 1})
        assert put.status_code == 403
        assert reader.post(f"{BASE}/triage/labels/production/undo").status_code == 403
        for path in ("", "/triage", "/triage/versions", "/triage/labels"):
            assert outsider.get(BASE + path).status_code == 404, path
        moved = outsider.put(f"{BASE}/triage/labels/production", json={"version": 1})
        assert moved.status_code == 404
        assert outsider.post(BASE, json=V2).status_code == 404
        with pytest.raises(PromptUnavailable, match="404"):
            assay.prompt("triage", version=1, project="support", url=live.url, api_key=other)
        fetched = assay.prompt("triage", version=1, project="support", url=live.url, api_key=viewer)
        assert fetched.version == 1


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


def test_a_traced_call_records_the_prompt_version(
    client: httpx.Client, live: LiveServer, fake: FakeLLM
) -> None:
    _save(client, V1)
    _save(client, V2)
    provider = TracerProvider()
    assay.init("support", url=live.url, tracer_provider=provider)
    try:
        rendered = assay.prompt("triage", version=2).render(company="Acme", ticket="hi")
        gpt = assay.wrap_openai(openai.OpenAI(base_url=fake.openai_url, api_key="t"))
        gpt.chat.completions.create(**rendered.openai())
        claude = assay.wrap_anthropic(anthropic.Anthropic(base_url=fake.anthropic_url, api_key="t"))
        claude.messages.create(**rendered.anthropic(model="claude-sonnet-4-5"))
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
        first = assay.prompt("triage", version=1).render(company="Acme", ticket="hi")
        gpt.chat.completions.create(**first.openai())
        assert assay.flush(10)
    finally:
        assay.shutdown()
        provider.shutdown()
    spans = client.get("/api/v1/projects/support/spans", params={"limit": 50}).json()["items"]
    llm = sorted(
        (s for s in spans if "gen_ai.operation.name" in s["attributes"]),
        key=lambda s: s["start_ns"],
    )
    assert [
        (s["attributes"].get("assay.prompt.name"), s["attributes"].get("assay.prompt.version"))
        for s in llm
    ] == [("triage", 2), ("triage", 2), (None, None), ("triage", 1)]
    sent = [body for _path, body in fake.requests]
    assert sent[0]["messages"][0]["content"] == "You triage tickets for Acme. Be brief."
    assert sent[1]["system"] == "You triage tickets for Acme. Be brief."
    assert sent[1]["temperature"] == 0.2 and sent[1]["max_tokens"] == 300

    def count(kind: str, **query: Any) -> int:
        response = client.get(f"/api/v1/projects/support/{kind}", params=query)
        assert response.status_code == 200, response.text
        return len(response.json()["items"])

    assert count("traces") == 4
    assert count("traces", prompt="triage") == 3
    assert count("traces", prompt="triage", prompt_version=2) == 2
    assert count("traces", prompt="triage", prompt_version=1) == 1
    assert count("traces", prompt="other") == 0
    assert count("spans", prompt="triage", prompt_version=1) == 1
    refused = client.get("/api/v1/projects/support/traces", params={"prompt_version": 2})
    assert refused.status_code == 400 and "prompt=NAME" in refused.json()["error"]["message"]


def test_push_and_pull_a_prompt_file(
    live: LiveServer, client: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from assay.cli.main import app

    monkeypatch.setenv("ASSAY_URL", live.url)
    monkeypatch.setenv("ASSAY_PROJECT", "support")
    file = tmp_path / "triage.json"
    file.write_text(json.dumps([V1]))
    runner = CliRunner()
    pushed = runner.invoke(app, ["prompts", "push", str(file), "--label", "staging"])
    assert pushed.exit_code == 0, pushed.output
    assert "triage: version 1 (new version)" in pushed.output
    again = runner.invoke(app, ["prompts", "push", str(file)])
    assert "triage: version 1 (unchanged)" in again.output
    file.write_text(json.dumps(V2))
    assert "version 2 (new version)" in runner.invoke(app, ["prompts", "push", str(file)]).output

    pulled = runner.invoke(app, ["prompts", "pull", "triage", "--label", "staging"])
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(pulled.output) == {k: v for k, v in V1.items() if k != "message"}
    history = client.get(f"{BASE}/triage/labels").json()["history"]
    assert [(m["label"], m["to_version"]) for m in history] == [("staging", 1)]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    failed = runner.invoke(app, ["prompts", "push", str(broken)])
    assert isinstance(failed.exception, UserError) and "is not JSON" in str(failed.exception)


def test_concurrent_saves_and_moves_each_get_their_own_version(
    client: httpx.Client, live: LiveServer
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def save(n: int) -> int:
        body = {**V1, "messages": [{"role": "user", "content": f"variant {n}"}]}
        with live.client() as own:
            response = own.post(BASE, json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["version"])

    with ThreadPoolExecutor(8) as pool:
        versions = sorted(pool.map(save, range(16)))
    assert versions == list(range(1, 17))

    def move(version: int) -> int:
        with live.client() as own:
            response = own.put(f"{BASE}/triage/labels/production", json={"version": version})
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(move, range(1, 17))) == {200}
    history = client.get(f"{BASE}/triage/labels").json()["history"]
    # Each move starts where the one before it ended: no two read the same "from".
    chain = list(reversed(history))
    assert chain[0]["from_version"] is None
    for before, after in zip(chain, chain[1:], strict=False):
        assert after["from_version"] == before["to_version"]
