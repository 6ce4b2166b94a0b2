"""Two tenants on one real server, for the isolation matrix (tests/test_isolation.py).

Project A is the caller's: API keys and web users of every role are scoped to it. Project B is
the other tenant: everything of B carries secret strings (a marker in its contents, and its
names and ids) that must never reach a caller of A unless the caller sent them. The two share
a trace id (one trace from two services, each reporting to its own project), a session id and
a dataset name, so "the same id" never means "the same thing".
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from assay.services import playground
from assay.services.principal import Principal
from assay.store import keys as key_store
from assay.store import users as user_store
from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

PASSWORD = "isolation test password 1"
#: The roles of project A, lowest first (the order of assay.services.principal.ROLES).
ROLES = ("viewer", "annotator", "editor", "admin")
SESSION_NS = 86_400 * 10**9
SESSION_COOKIE = "assay_session"


@dataclass
class WebUser:
    user_id: int
    name: str
    token: str
    csrf: str


@dataclass
class World:
    """The seeded server: A's and B's ids by path parameter name, and the callers."""

    live: LiveServer
    #: Path parameter name -> value, for each side ("a", "b").
    sides: dict[str, dict[str, str]]
    #: Strings of B that a caller of A must never be shown unless it sent them itself.
    b_secrets: list[str]
    #: API keys: each role of A, "root" (admin of every project) and "b" (an editor of B).
    keys: dict[str, str]
    #: Web users: each role of A, "root" (administrator of every project) and "mixed" (a
    #: viewer of A and administrator of B).
    users: dict[str, WebUser]
    api_client: httpx.Client = field(repr=False)
    #: The app's routes by "METHOD /path" (filled in by the test module).
    routes: dict[str, Any] = field(default_factory=dict)
    #: Strings no answer may contain, whoever asks (the API keys of provider connections).
    never: list[str] = field(default_factory=list)
    _count: int = 0

    @property
    def a(self) -> dict[str, str]:
        return self.sides["a"]

    @property
    def b(self) -> dict[str, str]:
        return self.sides["b"]

    def fresh(self, prefix: str = "iso") -> str:
        """A name never used before in this world (for what write requests create)."""
        self._count += 1
        return f"{prefix}-{self._count}-{secrets.token_hex(3)}"

    # --- calls made as the administrator of every project -----------------------------------

    def root(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(headers or {}), "Authorization": f"Bearer {self.keys['root']}"}
        response = self.api_client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response

    def new_experiment(self, side: str) -> int:
        project = self.sides[side]["project"]
        body = {"eval_name": "iso-eval", "name": self.fresh(f"{side}-exp")}
        created = self.root("POST", f"/api/v1/projects/{project}/experiments", json=body)
        return int(created.json()["id"])

    def new_record(self, side: str) -> str:
        """A new record in the side's dataset ``golden`` (for a delete to remove)."""
        project, record_id = self.sides[side]["project"], self.fresh(f"{side}-rec")
        changes = {"insert": [{"record_id": record_id, "input": f"{side} record to delete"}]}
        self.root("POST", f"/api/v1/projects/{project}/datasets/golden/changes", json=changes)
        return record_id

    def new_key(self, side: str) -> int:
        with self.live.runtime.updates.begin() as conn:
            _secret, record = key_store.create(
                conn,
                name=self.fresh(f"{side}-spare-key"),
                role="viewer",
                project=self.sides[side]["project"],
            )
        return int(record["id"])

    def new_connection(self, side: str) -> int:
        """A new provider connection of the side's (for a delete to remove)."""
        project = self.sides[side]["project"]
        api_key = f"sk-{side}-spare-{secrets.token_hex(12)}"
        self.never.append(api_key)
        body = {**CONNECTION, "name": self.fresh(f"{side}-spare-conn"), "api_key": api_key}
        made = self.root("POST", f"/api/v1/projects/{project}/connections", json=body)
        return int(made.json()["id"])

    def new_automation(self, side: str) -> int:
        """A new automation of the side's (for a delete to remove)."""
        project = self.sides[side]["project"]
        body = {
            "name": self.fresh(f"{side}-spare-automation"),
            "schedule": "daily",
            "target": {"queue": int(self.sides[side]["queue_id"])},
            "enabled": False,
        }
        made = self.root("POST", f"/api/v1/projects/{project}/automations", json=body)
        return int(made.json()["id"])

    def new_agent(self, side: str) -> int:
        """A new agent endpoint of the side's (for a delete to remove)."""
        project = self.sides[side]["project"]
        body = {"name": self.fresh(f"{side}-spare-agent"), "url": AGENT_URL}
        return int(self.root("POST", f"/api/v1/projects/{project}/agents", json=body).json()["id"])

    def new_monitor(self, side: str) -> int:
        """A new monitor of the side's (for a delete to remove)."""
        project = self.sides[side]["project"]
        body = monitor_body(self.fresh(f"{side}-spare-monitor"))
        made = self.root("POST", f"/api/v1/projects/{project}/monitors", json=body)
        return int(made.json()["id"])

    def lease_everyone(self, queue_id: str) -> None:
        """Each API caller of A takes its next item of the queue (to have one to skip)."""
        for who in ("annotator", "editor", "admin", "root"):
            taken = self.api_client.get(
                f"/api/v1/queues/{queue_id}/next",
                headers={"Authorization": f"Bearer {self.keys[who]}"},
            )
            assert taken.status_code == 200, taken.text

    def new_user(self) -> int:
        with self.live.runtime.updates.begin() as conn:
            return user_store.create_user(conn, self.fresh("spare-user"), PASSWORD)

    def new_session(self, role: str) -> WebUser:
        """Another sign-in of a user (for a request that ends its session)."""
        user = self.users[role]
        with self.live.runtime.updates.begin() as conn:
            token, csrf = user_store.start_session(conn, user.user_id, max_age_ns=SESSION_NS)
        return WebUser(user.user_id, user.name, token, csrf)

    # --- what B holds ---------------------------------------------------------------------

    def b_state(self) -> dict[str, Any]:
        """Everything of B the API shows its administrator, to see that a refused request
        changed nothing; and whether B's own key still works."""
        project = self.b["project"]
        base = f"/api/v1/projects/{project}"
        state: dict[str, Any] = {}
        # A control's playground run of B's (started by an administrator, a background job)
        # ends before B is looked at: its rows are not a refused request's doing.
        assert playground.wait_for_all_runs(60), "a playground run did not end in 60 s"
        listed = self.root("GET", "/api/v1/projects", params={"limit": 1000}).json()["items"]
        state["project"] = [p for p in listed if p["name"] == project]
        state["traces"] = self.root("GET", f"{base}/traces", params={"limit": 1000}).json()
        state["spans"] = self.root("GET", f"{base}/spans", params={"limit": 1000}).json()
        for item in state["traces"]["items"]:
            tid = item["trace_id"]
            state[f"trace {tid}"] = self.root("GET", f"{base}/traces/{tid}").json()
        state["datasets"] = self.root("GET", f"{base}/datasets").json()
        for dataset in state["datasets"]["items"]:
            name = dataset["name"]
            state[f"records {name}"] = self.root("GET", f"{base}/datasets/{name}/records").json()
            state[f"versions {name}"] = self.root("GET", f"{base}/datasets/{name}/versions").json()
        state["experiments"] = self.root("GET", f"{base}/experiments").json()
        for experiment in state["experiments"]["items"]:
            eid = experiment["id"]
            state[f"rows {eid}"] = self.root("GET", f"/api/v1/experiments/{eid}/rows").json()
        for kind in (
            "rubrics",
            "queues",
            "connections",
            "evaluators",
            "rules",
            "logs",
            "automations",
            "monitors",
        ):
            state[kind] = self.root("GET", f"{base}/{kind}").json()
        # A rule's status counts move with the server's own worker, not with requests.
        for rule in state["rules"]["items"]:
            for moving in ("status", "updated_ns"):
                rule.pop(moving, None)
        # A monitor's state moves with its evaluations (a control resumes B's; the worker runs).
        for monitor in state["monitors"]["items"]:
            for moving in MONITOR_MOVES:
                monitor.pop(moving, None)
        for rubric in state["rubrics"]["items"]:
            rid = rubric["id"]
            state[f"rubric {rid}"] = self.root("GET", f"/api/v1/rubrics/{rid}/versions").json()
        for queue in state["queues"]["items"]:
            qid = queue["id"]
            for what in ("items", "labels"):
                found = self.root("GET", f"/api/v1/queues/{qid}/{what}").json()
                state[f"queue {qid} {what}"] = found
        for evaluator in state["evaluators"]["items"]:
            eid = evaluator["id"]
            state[f"evaluator {eid}"] = self.root("GET", f"/api/v1/evaluators/{eid}").json()
        state["prompts"] = self.root("GET", f"{base}/prompts").json()
        for found in state["prompts"]["items"]:
            name = found["name"]
            state[f"prompt {name}"] = self.root("GET", f"{base}/prompts/{name}/versions").json()
            state[f"labels {name}"] = self.root("GET", f"{base}/prompts/{name}/labels").json()
        state["agents"] = self.root("GET", f"{base}/agents").json()
        for agent in state["agents"]["items"]:  # its status moves with the clock
            agent.pop("status", None)
        own_key = self.api_client.get(
            f"{base}/datasets", headers={"Authorization": f"Bearer {self.keys['b']}"}
        )
        state["b key answers"] = own_key.status_code
        return state


#: Where the seeded agents are registered: a loopback port nothing listens on (a run there is an
#: answer with an error, "cannot reach the agent").
AGENT_URL = "http://127.0.0.1:9"

#: What of a monitor its evaluations change.
MONITOR_MOVES = (
    "state",
    "state_since_ns",
    "evaluated",
    "last_evaluated_ns",
    "last_notified_ns",
    "last_delivery",
    "failed_deliveries",
)


def monitor_body(name: str) -> dict[str, Any]:
    """A monitor that starts off (no webhook): a score mean over the last hour."""
    return {
        "name": name,
        "metric": "score_mean",
        "params": {"score": "a-score"},
        "window_minutes": 60,
        "threshold": 0.5,
        "direction": "below",
        "enabled": False,
    }


#: A provider connection, saved and never called (the rules are off; "try" runs built-ins).
CONNECTION = {"provider": "openai", "default_model": "iso-model"}


def logs_body(project: str, text: str, resource: dict[str, str] | None = None) -> bytes:
    """An OTLP/JSON log export of one record outside any span, from service ``project``."""
    attributes = {"service.name": project, **(resource or {})}
    record = {"timeUnixNano": "1700000000000000000", "severityText": "INFO"}
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {
                        "attributes": [
                            {"key": k, "value": {"stringValue": v}} for k, v in attributes.items()
                        ]
                    },
                    "scopeLogs": [{"logRecords": [{**record, "body": {"stringValue": text}}]}],
                }
            ]
        }
    ).encode()


def metrics_body(project: str, resource: dict[str, str] | None = None) -> bytes:
    """An OTLP/JSON metric export of one gauge point, from service ``project``."""
    attributes = {"service.name": project, **(resource or {})}
    point = {"timeUnixNano": "1700000000000000000", "asDouble": 1.0}
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [
                            {"key": k, "value": {"stringValue": v}} for k, v in attributes.items()
                        ]
                    },
                    "scopeMetrics": [
                        {"metrics": [{"name": "iso.gauge", "gauge": {"dataPoints": [point]}}]}
                    ],
                }
            ]
        }
    ).encode()


def _review_and_online(
    world: World, side: str, marker: str, trace_id: str, reviewers: tuple[str, str]
) -> dict[str, str]:
    """A side's rubric; two review queues: one labelled by two ``reviewers`` (keys of the
    side) who disagree, one whose item callers take and skip (so that no lease hides the
    labels of the first); provider connections, an evaluator, a rule and a log record, each
    carrying the side's ``marker``. Returns their ids by parameter name."""
    project = world.sides[side]["project"]
    base = f"/api/v1/projects/{project}"
    rubric = {
        "name": f"{side}-rubric-{marker}",
        "kind": "numeric",
        "min": 0,
        "max": 1,
        "instructions": f"rubric instructions {marker}",
    }
    rubric_id = world.root("POST", f"{base}/rubrics", json=rubric).json()["id"]
    ids: dict[str, str] = {"rubric_id": str(rubric_id), "rubric_name": str(rubric["name"])}
    for what in ("queue", "skip_queue"):
        queue = {
            "name": f"{side}-{what}-{marker}",
            "rubrics": [rubric_id],
            "reviews_per_item": 20,
            "lease_seconds": 86_400,
            "description": f"queue about {marker}",
        }
        queue_id = world.root("POST", f"{base}/queues", json=queue).json()["id"]
        world.root("POST", f"/api/v1/queues/{queue_id}/items", json={"trace_ids": [trace_id]})
        items = world.root("GET", f"/api/v1/queues/{queue_id}/items").json()["items"]
        ids[f"{what}_id"] = str(queue_id)
        ids[f"{what}_item_id"] = str(items[0]["id"])
    ids["item_id"] = ids.pop("queue_item_id")
    for value, reviewer in enumerate(reviewers):
        labels = {
            "labels": [
                {"rubric_id": rubric_id, "value": value, "rationale": f"label rationale {marker}"}
            ],
            "next": False,
        }
        given = world.api_client.post(
            f"/api/v1/queues/{ids['queue_id']}/items/{ids['item_id']}/labels",
            json=labels,
            headers={"Authorization": f"Bearer {reviewer}"},
        )
        assert given.status_code == 201, given.text
    # The administrator of every project holds the item to skip (for the controls).
    world.root("GET", f"/api/v1/queues/{ids['skip_queue_id']}/next")
    for what in ("connection", "spare_connection"):
        api_key = f"sk-{side}-{what}-{secrets.token_hex(12)}"
        world.never.append(api_key)
        connection = {
            **CONNECTION,
            "name": f"{side}-{what}-{marker}",
            "api_key": api_key,
            "default_model": f"model-{marker}",
        }
        made = world.root("POST", f"{base}/connections", json=connection).json()
        ids[f"{what}_id"] = str(made["id"])
        ids[f"{what}_name"] = connection["name"]
    evaluator_name = f"{side}-evaluator-{marker}"
    evaluator: dict[str, Any] = {
        "name": evaluator_name,
        "kind": "judge",
        "prompt": f"Is this good ({marker})? {{{{input}}}} {{{{output}}}}",
        "choices": {"good": 1.0, "bad": 0.0},
        "model": "gpt-4o-mini",
        "connection": int(ids["connection_id"]),
    }
    evaluator_id = world.root("POST", f"{base}/evaluators", json=evaluator).json()["id"]
    ids["evaluator_id"] = str(evaluator_id)
    ids["evaluator_name"] = evaluator_name
    # Off: nothing is scored while the matrix runs (no judge is called).
    rule = {"name": f"{side}-rule-{marker}", "evaluators": [evaluator_id], "enabled": False}
    ids["rule_id"] = str(world.root("POST", f"{base}/rules", json=rule).json()["id"])
    # Off: the server's worker leaves it alone (its state would move under the snapshot).
    for what in ("monitor", "spare_monitor"):
        made = world.root("POST", f"{base}/monitors", json=monitor_body(f"{side}-{what}-{marker}"))
        ids[f"{what}_id"] = str(made.json()["id"])
    # Paused: the server's worker never runs them while the matrix runs (runs by hand do).
    for what in ("automation", "spare_automation"):
        automation = {
            "name": f"{side}-{what}-{marker}",
            "filter": {"tag": [f"tag-{marker}"]},
            "sample": 5,
            "schedule": "daily",
            "target": {"queue": int(ids["queue_id"])},
            "enabled": False,
        }
        made = world.root("POST", f"{base}/automations", json=automation).json()
        ids[f"{what}_id"] = str(made["id"])
    logs = logs_body(project, f"log body {marker}")
    world.root("POST", "/v1/logs", content=logs, headers={"content-type": "application/json"})
    return ids


def _send(client: httpx.Client, key: str, project: str, spans: list[dict[str, Any]]) -> None:
    """Spans of a service whose service.name is the project (an admin key routes by it)."""
    body = protobuf(spans, service=project)
    sent = client.post("/v1/traces", content=body, headers={**PB, "Authorization": f"Bearer {key}"})
    assert sent.status_code == 200 and "rejected" not in sent.text, sent.text


def _nowhere(value: str, tag: str) -> str:
    """An id like B's ``value`` that no project holds."""
    if value.isdigit():
        return str(900_000 + int(value))
    if re.fullmatch(r"[0-9a-f]{16,32}", value):
        # The same first characters: pages showing an id's beginning show alike.
        return value[:12] + secrets.token_hex((len(value) - 12) // 2)
    return value.replace(tag, f"z{tag[1:]}").replace("b-", "z-").replace("iso-b", "iso-z")


def seed_calibrations(world: World, judge_url: str) -> None:
    """Per side: a judge (answering "good" from the fake model at ``judge_url``), a pass/fail
    rubric whose labels on the side's two traces disagree with the judge once, and one
    calibration of the judge against it."""
    for side in ("a", "b"):
        ids = world.sides[side]
        project, marker = ids["project"], ids["marker"]
        world.root(
            "POST",
            f"/api/v1/projects/{project}/connections",
            json={
                "name": "iso-fake",
                "provider": "openai-compatible",
                "base_url": judge_url,
                "api_key": "sk-iso-0000",
                "default_model": "gpt-4o-mini",
            },
        )
        name = f"judge-{marker}"
        evaluator = world.root(
            "POST",
            f"/api/v1/projects/{project}/evaluators",
            json={
                "name": name,
                "kind": "judge",
                "prompt": "Is {{output}} good?",
                "choices": {"good": 1.0, "bad": 0.0},
                "connection": "iso-fake",
            },
        ).json()
        rubric = world.root(
            "POST",
            f"/api/v1/projects/{project}/rubrics",
            json={"name": f"correct-{marker}", "kind": "pass_fail", "rationale": "optional"},
        ).json()
        queue = world.root(
            "POST",
            f"/api/v1/projects/{project}/queues",
            json={"name": f"iso-cal-{marker}", "rubrics": [rubric["id"]], "reviews_per_item": 1},
        ).json()
        traces = [ids["trace_id"], ids["other_trace_id"]]
        world.root("POST", f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": traces})
        item = world.root("GET", f"/api/v1/queues/{queue['id']}/next").json()
        for choice in ("pass", "fail"):
            done = world.root(
                "POST",
                f"/api/v1/queues/{queue['id']}/items/{item['item_id']}/labels",
                json={"labels": [{"rubric_id": rubric["id"], "choice": choice}]},
            ).json()
            item = done["next"]
        calibration = world.root(
            "POST",
            f"/api/v1/evaluators/{evaluator['id']}/calibrations",
            json={"rubric_id": rubric["id"]},
        ).json()
        ids.update(
            evaluator_id=str(evaluator["id"]),
            evaluator_name=name,
            cal_rubric_id=str(rubric["id"]),
            calibration_id=str(calibration["id"]),
        )
        del ids["other_trace_id"]


def seed_playground_runs(world: World) -> None:
    """Per side: a playground run of the prompt over the dataset named alike (``{name}``),
    through the connection to the fake model; its experiment id is ``playground_run_id``."""
    for side in ("a", "b"):
        ids = world.sides[side]
        run = playground.start_dataset_run(
            world.live.runtime,
            Principal.operator(),
            ids["project"],
            playground.RunRequest(
                draft=None, prompt=ids["name"], version=2, connection="iso-fake", model=None
            ),
            dataset=ids["name"],
            dataset_version=None,
            scorers=["exact_match"],
            wait=True,
        )
        ids["playground_run_id"] = str(run["experiment_id"])


def seed(live: LiveServer, judge_url: str | None = None) -> World:
    """Both tenants, their callers, traces, scores, datasets and experiments (via the API);
    with ``judge_url`` (a fake model server), judges and their calibrations too."""
    tag = secrets.token_hex(4)
    marker_a, marker_b = f"amark{tag}", f"bsecret{tag}"
    project_a, project_b = "iso-a", f"iso-b-{tag}"
    runtime = live.runtime

    users: dict[str, WebUser] = {}
    with runtime.updates.begin() as conn:
        for role in (*ROLES, "root"):
            name = f"a-{role}" if role != "root" else "root"
            user_id = user_store.create_user(conn, name, PASSWORD, is_admin=role == "root")
            if role != "root":
                user_store.grant(conn, user_id, project_a, role)
            token, csrf = user_store.start_session(conn, user_id, max_age_ns=SESSION_NS)
            users[role] = WebUser(user_id, name, token, csrf)
        # A viewer of A who administers B (someone in two teams): on A's things a viewer.
        mixed_id = user_store.create_user(conn, "two-teams", PASSWORD)
        user_store.grant(conn, mixed_id, project_a, "viewer")
        user_store.grant(conn, mixed_id, project_b, "admin")
        token, csrf = user_store.start_session(conn, mixed_id, max_age_ns=SESSION_NS)
        users["mixed"] = WebUser(mixed_id, "two-teams", token, csrf)
        b_user = f"b-user-{tag}"
        b_user_id = user_store.create_user(conn, b_user, PASSWORD)
        user_store.grant(conn, b_user_id, project_b, "editor")
        keys = {
            role: key_store.create(conn, name=f"a-key-{role}", role=role, project=project_a)[0]
            for role in ROLES
        }
        keys["root"], root_key = key_store.create(conn, name="root-key", role="admin", project=None)
        b_key_name = f"b-key-{tag}"
        keys["b"] = key_store.create(conn, name=b_key_name, role="editor", project=project_b)[0]
    runtime.forget_users()

    client = httpx.Client(base_url=live.url, timeout=30)
    world = World(live=live, sides={}, b_secrets=[], keys=keys, users=users, api_client=client)

    # One trace id in both projects (a call across two services), a session id in both, and a
    # trace and a session only B has.
    shared = new_trace_id()
    a_root, a_child, a_only_root = new_span_id(), new_span_id(), new_span_id()
    b_root, b_child, b_only_root = new_span_id(), new_span_id(), new_span_id()
    b_only = new_trace_id()
    a_only = new_trace_id()
    b_session = f"b-session-{tag}"

    def attrs(side_marker: str, session: str, what: str) -> dict[str, Any]:
        return {
            "input.value": f"{what} input {side_marker}",
            "output.value": f"{what} output {side_marker}",
            "session.id": session,
            "user.id": f"user-{side_marker}",
        }

    _send(
        client,
        keys["root"],
        project_a,
        [
            span(shared, a_root, f"a-root-{marker_a}", attributes=attrs(marker_a, "shared", "a")),
            span(
                shared,
                a_child,
                "a-child",
                parent=a_root,
                attributes=attrs(marker_a, "shared", "ac"),
            ),
            span(a_only, a_only_root, "a-only", attributes=attrs(marker_a, "a-session", "a2")),
        ],
    )
    _send(
        client,
        keys["root"],
        project_b,
        [
            span(shared, b_root, f"b-root-{marker_b}", attributes=attrs(marker_b, "shared", "b")),
            span(
                shared,
                b_child,
                f"b-child-{tag}",
                parent=b_root,
                attributes=attrs(marker_b, "shared", "bc"),
            ),
            span(b_only, b_only_root, f"b-only-{tag}", attributes=attrs(marker_b, b_session, "b2")),
        ],
    )
    world.keys = keys
    b_score = f"b-score-{tag}"
    world.root(
        "POST",
        f"/api/v1/projects/{project_a}/scores",
        json=[
            {
                "trace_id": shared.hex(),
                "name": "a-score",
                "value": 1,
                "label": "good",
                "rationale": f"a rationale {marker_a}",
            },
            {"trace_id": shared.hex(), "span_id": a_child.hex(), "name": "a-score", "value": 0.5},
        ],
    )
    world.root(
        "POST",
        f"/api/v1/projects/{project_b}/scores",
        json=[
            {
                "trace_id": shared.hex(),
                "name": b_score,
                "value": 0,
                "label": f"b-label-{tag}",
                "rationale": f"b rationale {marker_b}",
            },
            {"trace_id": shared.hex(), "span_id": b_child.hex(), "name": b_score, "value": 0},
            {"trace_id": b_only.hex(), "name": b_score, "value": 0.25},
        ],
    )

    # A dataset named alike in both, and one only B has.
    b_dataset = f"b-only-{tag}"
    b_record = f"b-rec-{tag}"
    for project, marker, names, record in (
        (project_a, marker_a, ["golden"], "a-rec-1"),
        (project_b, marker_b, ["golden", b_dataset], b_record),
    ):
        for name in names:
            world.root(
                "POST",
                f"/api/v1/projects/{project}/datasets",
                json={"name": name, "description": f"about {marker}"},
            )
            records = [
                {
                    "record_id": record,
                    "input": f"record input {marker}",
                    "expected": f"record expected {marker}",
                },
                # One for a delete to remove.
                {"record_id": f"{record}-spare", "input": f"spare {marker}"},
            ]
            world.root(
                "POST",
                f"/api/v1/projects/{project}/datasets/{name}/changes",
                json={"insert": records, "message": f"seeded {marker}"},
            )

    # A prompt named alike in both (two versions, "production" on the second), one only B has.
    for project, marker, names in (
        (project_a, marker_a, ["golden"]),
        (project_b, marker_b, ["golden", b_dataset]),
    ):
        for name in names:
            for n in (1, 2):
                message = {"role": "system", "content": f"prompt {marker} v{n}"}
                world.root(
                    "POST",
                    f"/api/v1/projects/{project}/prompts",
                    json={"name": name, "messages": [message], "message": f"seeded {marker}"},
                )
            world.root(
                "PUT",
                f"/api/v1/projects/{project}/prompts/{name}/labels/production",
                json={"version": 2},
            )

    # Two finished experiments each, of the same eval over the alike-named dataset.
    experiment_ids: dict[str, list[int]] = {"a": [], "b": []}
    experiment_names: dict[str, list[str]] = {"a": [], "b": []}
    for side, project, marker in (("a", project_a, marker_a), ("b", project_b, marker_b)):
        for n in (1, 2):
            name = f"{side}-exp-{n}" if side == "a" else f"b-exp-{n}-{tag}"
            experiment_names[side].append(name)
            body = {
                "eval_name": "iso-eval",
                "name": name,
                "dataset": "golden",
                "metadata": {"note": marker},
            }
            eid = int(
                world.root("POST", f"/api/v1/projects/{project}/experiments", json=body).json()[
                    "id"
                ]
            )
            rows = [
                {
                    "case_key": key,
                    "input": f"case {key} {marker}",
                    "output": f"answer {marker}",
                    "expected": "x",
                    "latency_ms": 10.0 * n,
                    "scores": [{"name": "exact", "value": float(n == 2)}],
                }
                for key in ("c1", "c2")
            ]
            world.root("POST", f"/api/v1/experiments/{eid}/rows", json=rows)
            world.root("PATCH", f"/api/v1/experiments/{eid}", json={"status": "complete"})
            experiment_ids[side].append(eid)

    def side_ids(
        project: str,
        trace: bytes,
        root: bytes,
        session: str,
        dataset: str,
        record: str,
        marker: str,
        exps: list[int],
    ) -> dict[str, str]:
        first, second = (str(e) for e in exps)
        return {
            "project": project,
            "trace_id": trace.hex(),
            "span_id": root.hex(),
            "session_id": session,
            "name": dataset,
            "record_id": record,
            "experiment_id": first,
            "baseline_id": first,
            "candidate_id": second,
            "a": first,
            "b": second,
            "marker": marker,
        }

    # A's own things: the shared trace (A must see only its side of it) and the shared session.
    world.sides = {
        "a": side_ids(
            project_a, shared, a_root, "shared", "golden", "a-rec-1", marker_a, experiment_ids["a"]
        ),
        # B's things a caller of A might name: ids A does not hold.
        "b": side_ids(
            project_b,
            b_only,
            b_only_root,
            b_session,
            b_dataset,
            b_record,
            marker_b,
            experiment_ids["b"],
        ),
    }
    world.b["span_in_shared"] = b_root.hex()  # B's root span inside the shared trace
    world.b["score"] = b_score
    for side in ("a", "b"):
        world.sides[side]["experiment_name"] = experiment_names[side][0]
    with runtime.updates.begin() as conn:  # a key of B's that an A admin may try to revoke
        _secret, spare = key_store.create(
            conn, name=f"b-spare-{tag}", role="viewer", project=project_b
        )
    world.b["key_id"] = str(spare["id"])
    world.b["root_key_id"] = str(root_key["id"])
    world.b["spare_record_id"] = f"{b_record}-spare"
    for side in ("a", "b"):  # an experiment row (a review item may be one)
        rows = world.root("GET", f"/api/v1/experiments/{experiment_ids[side][0]}/rows").json()
        world.sides[side]["row_id"] = str(rows["items"][0]["id"])
    b_annotator = f"b-annotator-{tag}"
    with runtime.updates.begin() as conn:
        b_reviewer, _record = key_store.create(
            conn, name=b_annotator, role="annotator", project=project_b
        )
    world.a.update(
        _review_and_online(world, "a", marker_a, shared.hex(), (keys["annotator"], keys["editor"]))
    )
    world.b.update(_review_and_online(world, "b", marker_b, b_only.hex(), (keys["b"], b_reviewer)))
    world.sides["a"]["label"] = world.b["label"] = "production"
    _seed_agents(world)
    _seed_review_ui(world)
    if judge_url is not None:  # last: the calibrated evaluator is the one the rows name
        world.a["other_trace_id"] = a_only.hex()
        world.b["other_trace_id"] = shared.hex()
        seed_calibrations(world, judge_url)
        seed_playground_runs(world)
    # Ids of the same kinds that exist in no project.
    world.sides["nowhere"] = {name: _nowhere(value, tag) for name, value in world.b.items()}
    world.b_secrets = [
        marker_b,
        project_b,
        b_only.hex(),
        b_root.hex(),
        b_child.hex(),
        b_only_root.hex(),
        f"b-only-{tag}",  # B's dataset and its only trace's root span name (the same prefix)
        f"b-child-{tag}",
        b_record,
        b_session,
        b_score,
        f"b-label-{tag}",
        b_key_name,
        f"b-spare-{tag}",
        b_user,
        *experiment_names["b"],
        b_annotator,
        # Human review and online scoring: names, instructions, rationales, prompts, logs.
        *(f"b-{what}-{marker_b}" for what in ("rubric", "queue", "skip_queue", "evaluator")),
        *(f"b-{what}-{marker_b}" for what in ("connection", "spare_connection", "rule")),
        *(f"b-{what}-{marker_b}" for what in ("automation", "spare_automation")),
        f"rubric instructions {marker_b}",
        f"label rationale {marker_b}",
        f"log body {marker_b}",
        f"b-agent-{marker_b}",
        f"model-{marker_b}",
        *(key for key in world.never if key.startswith("sk-b-")),
    ]
    return world


def _seed_agents(world: World) -> None:
    """An agent endpoint per side (its name holds the side's marker) at `AGENT_URL`, and a
    spare one each (for a delete to remove): ``agent_id``, ``spare_agent_id``."""
    for side in ("a", "b"):
        ids = world.sides[side]
        body = {"name": f"{side}-agent-{ids['marker']}", "url": AGENT_URL}
        made = world.root("POST", f"/api/v1/projects/{ids['project']}/agents", json=body).json()
        ids["agent_id"] = str(made["id"])
        ids["spare_agent_id"] = str(world.new_agent(side))


def _seed_review_ui(world: World) -> None:
    """For the review room's web routes: a rubric and a queue per side (named with the side's
    marker), A's queue holding A's two traces. Their ids are ``ui_rubric_id``, ``ui_queue_id``
    and ``ui_item_id`` (an item of A's queue: the shared trace), apart from the REST rows'."""
    for side in ("a", "b"):
        ids = world.sides[side]
        project, marker = ids["project"], ids["marker"]
        rubric = world.root(
            "POST",
            f"/api/v1/projects/{project}/rubrics",
            json={
                "name": f"ui-rubric-{marker}",
                "kind": "categorical",
                "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
                "instructions": f"judge {marker}",
                "may_correct_expected": True,
            },
        ).json()
        queue = world.root(
            "POST",
            f"/api/v1/projects/{project}/queues",
            json={"name": f"ui-queue-{marker}", "rubrics": [rubric["id"]], "reviews_per_item": 20},
        ).json()
        traces = [ids["trace_id"]] + ([] if side == "b" else [_only_trace(world, project)])
        world.root("POST", f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": traces})
        items = world.root("GET", f"/api/v1/queues/{queue['id']}/items").json()["items"]
        ids["ui_rubric_id"] = str(rubric["id"])
        ids["ui_queue_id"] = str(queue["id"])
        ids["ui_item_id"] = str(items[0]["id"])


def _only_trace(world: World, project: str) -> str:
    """A's trace that B does not share (its marker is in its input too)."""
    listed = world.root("GET", f"/api/v1/projects/{project}/traces").json()["items"]
    return next(str(t["trace_id"]) for t in listed if t["trace_id"] != world.a["trace_id"])
