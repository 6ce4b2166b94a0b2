"""The real agent: `assay agent serve` exposes the team's agent function, the server runs it
with prompt overrides on one input or over a dataset (an experiment), each run a trace of the
agent; the endpoint refuses calls without the server's token; roles; the egress rules for
agent endpoints; overrides never leak between concurrent runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import assay
from assay.errors import UserError
from assay.sdk import _prompts
from assay.sdk._serve import AgentServer, load_target, run_once
from assay.services.egress import EgressPolicy, EgressRefused
from assay.store import keys as key_store
from tests.conftest import LiveServer
from tests.fake_llm import CHAT_TEXT, FakeLLM

HERE = Path(__file__).parent
AGENT_FILE = HERE / "agents" / "support_agent.py"
BASE_INSTALL = HERE / "base_install.py"
PROJECT = "support"
PROMPTS = f"/api/v1/projects/{PROJECT}/prompts"
V1_TEXT = "You help customers of {{ company }}."
V2_TEXT = "You help customers of {{ company }}. Answer in one sentence, edited."


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    _prompts.clear_prompt_cache()
    yield
    _prompts.clear_prompt_cache()


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


class Served:
    """`assay agent serve` in a process of its own, on a base install (no server extra)."""

    def __init__(self, live: LiveServer, fake: FakeLLM, tmp_path: Path) -> None:
        self.calls = tmp_path / "calls.txt"
        self.calls.write_text("")
        env = {
            **os.environ,
            "ASSAY_URL": live.url,
            "ASSAY_CACHE_DIR": str(tmp_path / "agent-cache"),
            "FAKE_LLM_URL": fake.openai_url,
            "AGENT_CALLS_FILE": str(self.calls),
            "COLUMNS": "400",
            "PYTHONPATH": os.pathsep.join(
                [str(HERE.parent / "src"), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
            ),
        }
        command = [sys.executable, str(BASE_INSTALL), "-m", "assay.cli", "agent", "serve"]
        self.process = subprocess.Popen(
            [*command, f"{AGENT_FILE}:answer", "--port", "0", "--project", PROJECT],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.banner = self.process.stdout.readline()
        if "Serving agent" not in self.banner:
            self.process.kill()
            pytest.fail(f"agent serve did not start: {self.banner} {self.process.stderr.read()}")  # type: ignore[union-attr]
        self.url = self.banner.split(" at ", 1)[1].split(",", 1)[0]

    def called(self) -> int:
        return len(self.calls.read_text().splitlines())

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        out, _err = self.process.communicate(timeout=30)
        return out


def _prompt_versions(client: httpx.Client) -> None:
    for text in (V1_TEXT, V2_TEXT):
        body = {"name": "support-system", "messages": [{"role": "system", "content": text}]}
        assert client.post(PROMPTS, json=body).status_code == 201
    moved = client.put(f"{PROMPTS}/support-system/labels/production", json={"version": 1})
    assert moved.status_code == 200


@pytest.fixture
def served(
    live: LiveServer, client: httpx.Client, fake: FakeLLM, tmp_path: Path
) -> Iterator[Served]:
    """Prompt v1 and v2 (production: v1), and tests/agents/support_agent.py served."""
    _prompt_versions(client)
    serving = Served(live, fake, tmp_path)
    try:
        yield serving
    finally:
        serving.stop()


def _system_prompts(fake: FakeLLM) -> list[str]:
    return [body["messages"][0]["content"] for _path, body in fake.requests]


def _spans(client: httpx.Client, trace_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        found = client.get(f"/api/v1/projects/{PROJECT}/spans", params={"trace_id": trace_id})
        if found.status_code == 200:
            spans: list[dict[str, Any]] = found.json()["items"]
            if len(spans) >= 3 or time.monotonic() > deadline:
                return spans
        assert time.monotonic() < deadline, found.text
        time.sleep(0.1)


def test_the_served_agent_runs_with_an_edited_prompt_and_a_dataset(
    live: LiveServer, client: httpx.Client, fake: FakeLLM, served: Served
) -> None:
    [agent] = client.get(f"/api/v1/projects/{PROJECT}/agents").json()["items"]
    assert (agent["name"], agent["status"], agent["url"]) == ("answer", "online", served.url)
    assert "token" not in agent and "token_sealed" not in json.dumps(agent)
    runs = f"/api/v1/agents/{agent['id']}/runs"

    # v2 while production points at v1: the model receives the edited system prompt.
    edited = {"prompts": {"support-system": {"version": 2}}}
    ran = client.post(runs, json={"input": "Where is my order?", "overrides": edited})
    assert ran.status_code == 200, ran.text
    result = ran.json()
    assert result["error"] is None, result
    assert result["output"] == {"answer": CHAT_TEXT, "prompt_version": 2}
    assert _system_prompts(fake) == [V2_TEXT.replace("{{ company }}", "Acme")]
    spans = _spans(client, result["trace_id"])
    by_id = {s["span_id"]: s for s in spans}
    [root] = [s for s in spans if s["parent_span_id"] is None]
    [tool] = [s for s in spans if s["name"] == "lookup_order"]
    [llm] = [s for s in spans if s["name"] == "chat"]
    assert (root["name"], root["type"], tool["type"], llm["type"]) == (
        "answer",
        "agent",
        "tool",
        "llm",
    )
    assert by_id[tool["parent_span_id"]] is root and by_id[llm["parent_span_id"]] is root

    # No override: the deployed version (production, v1); params reach the agent.
    plain = client.post(runs, json={"input": "Hi", "overrides": {"params": {"seed": 7}}})
    assert plain.json()["output"]["prompt_version"] == 1
    assert _system_prompts(fake)[-1] == "You help customers of Acme."
    assert fake.requests[-1][1]["seed"] == 7

    # Concurrent runs with different overrides each see their own version.
    def run(version: int) -> int:
        body = {
            "input": f"q{version}",
            "overrides": {"prompts": {"support-system": {"version": version}}},
        }
        with live.client() as own:
            answer = own.post(runs, json=body).json()
        return int(answer["output"]["prompt_version"])

    asked = [1, 2] * 4
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(run, asked)) == asked

    # A dataset run: an experiment with one row per record, traces and scores.
    records = [
        {"record_id": f"r{i}", "input": f"question {i}", "expected": CHAT_TEXT} for i in range(5)
    ]
    made = client.post(f"/api/v1/projects/{PROJECT}/datasets", json={"name": "faq"})
    assert made.status_code in (200, 201), made.text
    changed = client.post(
        f"/api/v1/projects/{PROJECT}/datasets/faq/changes", json={"insert": records}
    )
    assert changed.status_code in (200, 201), changed.text
    started = client.post(
        f"/api/v1/agents/{agent['id']}/dataset-runs",
        json={
            "dataset": "faq",
            "overrides": {"prompts": {"support-system": {"label": "production"}}},
            "scorers": ["exact_match", {"scorer": "contains", "params": {"text": "Paris"}}],
        },
    )
    assert started.status_code == 202, started.text
    experiment_id = started.json()["experiment_id"]
    deadline = time.monotonic() + 60
    while (experiment := client.get(f"/api/v1/experiments/{experiment_id}").json())[
        "status"
    ] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert experiment["status"] == "complete"
    assert experiment["eval_name"] == "agent:answer"
    assert experiment["metadata"]["prompts"] == {"support-system": 1}
    rows = client.get(f"/api/v1/experiments/{experiment_id}/rows").json()["items"]
    assert sorted(r["case_key"] for r in rows) == [f"r{i}" for i in range(5)]
    assert all(r["error"] is None and len(r["trace_id"]) == 32 for r in rows)
    assert {r["output"]["answer"] for r in rows} == {CHAT_TEXT}
    scores = [(s["name"], s["value"]) for r in rows for s in r["scores"]]
    assert sorted(set(scores)) == [("contains", 1.0), ("exact_match", 0.0)]  # a dict output
    assert len(scores) == 10

    # The endpoint itself: no token, a wrong one, another scheme: 401, the function not run.
    before = served.called()
    with httpx.Client(timeout=10) as raw:
        for headers in (
            {},
            {"authorization": "Bearer agt_wrong"},
            {"authorization": "Basic agt_wrong"},
        ):
            refused = raw.post(f"{served.url}/run", json={"input": "x"}, headers=headers)
            assert refused.status_code == 401, refused.text
    assert served.called() == before

    # Ctrl-C: offline on the server; a run then says why it failed.
    out = served.stop()
    assert "offline" in out
    [agent] = client.get(f"/api/v1/projects/{PROJECT}/agents").json()["items"]
    assert agent["status"] == "offline"
    failed = client.post(runs, json={"input": "x"}).json()
    assert failed["output"] is None and "cannot reach the agent" in failed["error"]


def _playground_run(client: httpx.Client, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """A single run through the playground's route, as static/playground.js sends it: the
    answer's last JSON line."""
    ran = client.post(f"/p/{PROJECT}/playground/run", json=body, headers={"X-CSRF-Token": token})
    assert ran.status_code == 200, ran.text
    lines = [json.loads(line) for line in ran.text.splitlines() if line.strip()]
    assert lines[-1]["type"] == "done", lines
    return dict(lines[-1])


def _finished(client: httpx.Client, experiment_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (run := client.get(f"/p/{PROJECT}/playground/runs/{experiment_id}").json())[
        "status"
    ] == "running":
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    return dict(run)


def test_the_playground_runs_the_agent_with_an_edited_draft_a_version_and_a_dataset(
    client: httpx.Client, fake: FakeLLM, served: Served
) -> None:
    [agent] = client.get(f"/api/v1/projects/{PROJECT}/agents").json()["items"]
    page = client.get(f"/p/{PROJECT}/playground", params={"prompt": "support-system"})
    assert page.status_code == 200 and "agent answer (online)" in page.text
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found
    token = found.group(1)

    # An edited draft of v2, never saved: the agent's model gets the edited system prompt.
    edited = "You help customers of {{ company }}. UNSAVED EDIT."
    draft = {"messages": [{"role": "system", "content": edited}], "params": {"seed": 3}}
    body = {
        "prompt": "support-system",
        "version": 2,
        "draft": draft,
        "agent": str(agent["id"]),
        "variables": {"input": "Where is my order?"},
    }
    done = _playground_run(client, token, body)
    assert done["error"] is None, done
    assert done["output"] == {"answer": CHAT_TEXT, "prompt_version": 0}  # 0: unsaved
    assert _system_prompts(fake) == ["You help customers of Acme. UNSAVED EDIT."]
    assert fake.requests[-1][1]["seed"] == 3
    assert "Where is my order? (shipped)" in str(fake.requests[-1][1]["messages"])
    assert done["trace_url"] == f"/p/{PROJECT}/traces/{done['trace_id']}"
    assert client.get(done["trace_url"]).status_code == 200
    spans = _spans(client, done["trace_id"])
    assert {(s["name"], s["type"]) for s in spans} >= {("lookup_order", "tool")}

    # The saved v2 as it is (side by side sends no draft), the agent named: v2 by number.
    saved = {**body, "draft": None, "agent": "answer", "variables": {"input": "Hi"}}
    done = _playground_run(client, token, saved)
    assert done["output"] == {"answer": CHAT_TEXT, "prompt_version": 2}, done
    assert _system_prompts(fake)[-1] == V2_TEXT.replace("{{ company }}", "Acme")
    assert "lookup_order" in {s["name"] for s in _spans(client, done["trace_id"])}

    # Over a dataset: an experiment, one row per record, each with its trace; v2's run is
    # compared with v1's (on the same agent).
    records = [{"id": f"r{i}", "input": f"question {i}", "expected": CHAT_TEXT} for i in range(3)]
    assert client.post(f"/api/v1/projects/{PROJECT}/datasets", json={"name": "faq"})
    changed = client.post(
        f"/api/v1/projects/{PROJECT}/datasets/faq/changes", json={"insert": records}
    )
    assert changed.status_code == 201, changed.text
    fake.reset()
    runs = []
    for version in (1, 2):
        started = client.post(
            f"/p/{PROJECT}/playground/runs",
            json={**saved, "version": version, "dataset": "faq", "scorers": ["contains"]},
            headers={"X-CSRF-Token": token},
        )
        assert started.status_code == 201, started.text
        runs.append(_finished(client, started.json()["experiment_id"]))
    first, second = runs
    assert second["status"] == "complete" and second["done"] == 3 and second["errors"] == 0
    assert second["prompt_version"] == 2 and second["previous"]["id"] == first["experiment_id"]
    assert second["compare_url"].endswith(f"/compare/{second['experiment_id']}"), second
    assert sorted(_system_prompts(fake)) == sorted(
        [text.replace("{{ company }}", "Acme") for text in (V1_TEXT, V2_TEXT) for _ in range(3)]
    )
    experiment = client.get(f"/api/v1/experiments/{second['experiment_id']}").json()
    assert experiment["eval_name"] == "agent:answer"
    assert experiment["metadata"]["target"] == "agent: answer"
    rows = client.get(f"/api/v1/experiments/{second['experiment_id']}/rows").json()["items"]
    assert sorted(r["case_key"] for r in rows) == ["r0", "r1", "r2"]
    assert {r["output"]["prompt_version"] for r in rows} == {2}
    for row in rows:
        assert "lookup_order" in {s["name"] for s in _spans(client, row["trace_id"])}

    # A draft without a prompt name cannot reach the agent: it fetches its prompt by name.
    nameless = client.post(
        f"/p/{PROJECT}/playground/run",
        json={**body, "prompt": None, "version": None},
        headers={"X-CSRF-Token": token},
    )
    assert nameless.status_code == 400 and "fetches its prompt by name" in nameless.text
    # Another project's agent is not this project's target, by id or by name.
    other = client.post(
        "/api/v1/projects/elsewhere/agents", json={"name": "other", "url": "http://127.0.0.1:9"}
    ).json()
    for ref in (str(other["id"]), "other", "99999999999999"):
        refused = client.post(
            f"/p/{PROJECT}/playground/run",
            json={**saved, "agent": ref},
            headers={"X-CSRF-Token": token},
        )
        assert refused.status_code == 404, (ref, refused.text)


def test_roles_bad_overrides_and_unknown_agents(live: LiveServer, client: httpx.Client) -> None:
    _prompt_versions(client)
    keys = {}
    with live.runtime.updates.begin() as conn:
        for role in ("viewer", "annotator", "editor"):
            keys[role], _ = key_store.create(conn, name=role, role=role, project=PROJECT)
    live.runtime._key_count = None  # the open mode ends now, not at the cache's expiry

    def as_(role: str) -> httpx.Client:
        return live.client(headers={"Authorization": f"Bearer {keys[role]}"})

    register = {"name": "bot", "url": "http://127.0.0.1:9"}
    agents = f"/api/v1/projects/{PROJECT}/agents"
    with as_("annotator") as annotator, as_("viewer") as viewer, as_("editor") as editor:
        assert annotator.post(agents, json=register).status_code == 403
        made = editor.post(agents, json=register)
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert token.startswith("agt_") and made.json()["registered_by"] == "editor"
        again = editor.post(agents, json={**register, "url": "http://localhost:9"}).json()
        assert again["id"] == made.json()["id"] and again["token"] != token
        runs = f"/api/v1/agents/{again['id']}/runs"
        assert viewer.post(runs, json={"input": "x"}).status_code == 403
        ran = annotator.post(runs, json={"input": "x"})
        assert ran.status_code == 200 and "cannot reach the agent" in ran.json()["error"]
        assert [a["name"] for a in viewer.get(agents).json()["items"]] == ["bot"]
        assert token not in viewer.get(agents).text

        for overrides, message in (
            ({"prompts": {"nope": {"version": 1}}}, "does not have"),
            ({"prompts": {"support-system": {"version": 9}}}, "has no version 9"),
            ({"prompts": {"support-system": {"label": "staging"}}}, "has no label"),
            ({"prompts": {"support-system": {}}}, "a version or a label"),
        ):
            refused = annotator.post(runs, json={"input": "x", "overrides": overrides})
            assert refused.status_code == 400 and message in refused.text, refused.text

        for url in ("http://169.254.169.254/", "http://10.1.2.3:8700", "ftp://127.0.0.1/"):
            refused = editor.post(agents, json={"name": "bad", "url": url})
            assert refused.status_code == 400, (url, refused.text)
        missing = annotator.post(
            f"/api/v1/agents/{again['id']}/dataset-runs", json={"dataset": "nope"}
        )
        assert missing.status_code == 404
        assert annotator.delete(f"/api/v1/agents/{again['id']}").status_code == 403
        assert editor.delete(f"/api/v1/agents/{again['id']}").status_code == 204
        assert annotator.post(runs, json={"input": "x"}).status_code == 404


def test_the_agent_egress_policy() -> None:
    resolve = {"agents.internal": ["10.0.0.8"], "agent.example.com": ["93.184.216.34"]}
    base = EgressPolicy.from_setting("", resolve=lambda host, _port: resolve[host])
    agents = base.for_agents(loopback=True)
    assert agents.addresses("127.0.0.1", 80) == ["127.0.0.1"]
    assert agents.addresses("agent.example.com", 80) == ["93.184.216.34"]
    for host in ("169.254.169.254", "10.0.0.8", "agents.internal"):
        with pytest.raises(EgressRefused, match="calls to agents"):
            agents.addresses(host, 80)
    with pytest.raises(EgressRefused):
        base.for_agents(loopback=False).addresses("127.0.0.1", 80)
    with pytest.raises(EgressRefused):  # model calls keep their own, narrower rule
        base.addresses("agent.example.com", 80)
    listed = EgressPolicy.from_setting("10.0.0.0/8", resolve=lambda h, _p: resolve[h])
    assert listed.for_agents(loopback=False).addresses("agents.internal", 80) == ["10.0.0.8"]


def test_overrides_stay_in_their_own_run() -> None:
    """Eight runs at once, each with its own edited prompt: each sees its own, none leaks
    out of its run."""
    gate = threading.Barrier(8)

    def agent(question: str) -> str:
        gate.wait(5)
        return assay.prompt("tone").messages[0]["content"]

    def one(n: int) -> Any:
        edit = {"messages": [{"role": "system", "content": f"edit {n}"}]}
        return run_once(agent, "tone-agent", f"q{n}", {"prompts": {"tone": edit}})["output"]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(8))) == [f"edit {n}" for n in range(8)]
    assert _prompts._OVERRIDES.get() is None
    failed = run_once(lambda q: 1 / 0, "broken", "q", None)
    assert failed["output"] is None and failed["error"].startswith("ZeroDivisionError")


def test_targets_and_the_loopback_rule(tmp_path: Path) -> None:
    fn, name = load_target(f"{AGENT_FILE}:answer")
    assert name == "answer" and callable(fn)
    one = tmp_path / "solo.py"
    one.write_text("import json\n\ndef reply(x):\n    return x\n\ndef _helper():\n    pass\n")
    assert load_target(str(one))[1] == "reply"
    two = tmp_path / "two.py"
    two.write_text("def a(x):\n    return x\n\ndef b(x):\n    return x\n")
    with pytest.raises(UserError, match="not exactly one public function"):
        load_target(str(two))
    assert load_target(f"{two}:b")[1] == "b"
    with pytest.raises(UserError, match="has no function 'c'"):
        load_target(f"{two}:c")
    assert load_target("tests.agents.support_agent:answer")[1] == "answer"

    from assay.cli.main import app

    refused = CliRunner().invoke(app, ["agent", "serve", f"{one}", "--host", "0.0.0.0"])
    assert isinstance(refused.exception, UserError)
    assert "--allow-remote" in str(refused.exception)

    server = AgentServer(("127.0.0.1", 0), lambda x: x, "echo")
    assert not server.authorized("Bearer anything")  # not registered yet: nothing passes
    server.token = "agt_right"
    assert server.authorized("Bearer agt_right") and not server.authorized("Bearer agt_righ")
    server.server_close()
