"""Two tenants on one real server, for the isolation matrix (tests/test_isolation.py).

Project A is the caller's: API keys and web users of every role are scoped to it. Project B is
the other tenant: everything of B carries secret strings (a marker in its contents, and its
names and ids) that must never reach a caller of A unless the caller sent them. The two share
a trace id (one trace from two services, each reporting to its own project), a session id and
a dataset name, so "the same id" never means "the same thing".
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

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

    def root(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.api_client.request(
            method, path, headers={"Authorization": f"Bearer {self.keys['root']}"}, **kwargs
        )
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
        own_key = self.api_client.get(
            f"{base}/datasets", headers={"Authorization": f"Bearer {self.keys['b']}"}
        )
        state["b key answers"] = own_key.status_code
        return state


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


def seed(live: LiveServer) -> World:
    """Both tenants, their callers, traces, scores, datasets and experiments (via the API)."""
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
    # Online scoring: a connection (to a provider host that is not called), a judge and a
    # rule on each side, named with the side's marker.
    for side, project, marker in (("a", project_a, marker_a), ("b", project_b, marker_b)):
        connection = world.root(
            "POST",
            f"/api/v1/projects/{project}/connections",
            json={
                "name": f"conn-{marker}",
                "provider": "openai",
                "api_key": f"sk-iso-{side}-key-0000",
                "default_model": "gpt-4o-mini",
            },
        ).json()
        evaluator = world.root(
            "POST",
            f"/api/v1/projects/{project}/evaluators",
            json={
                "name": f"judge-{marker}",
                "kind": "judge",
                "prompt": f"{{{{input}}}} {marker}",
                "choices": {"good": 1.0, "bad": 0.0},
                "connection": connection["id"],
            },
        ).json()
        rule = world.root(
            "POST",
            f"/api/v1/projects/{project}/rules",
            json={"name": f"rule-{marker}", "evaluators": [evaluator["id"]], "sample_rate": 0.5},
        ).json()
        world.sides[side]["connection_id"] = str(connection["id"])
        world.sides[side]["evaluator_id"] = str(evaluator["id"])
        world.sides[side]["rule_id"] = str(rule["id"])
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
    ]
    return world
