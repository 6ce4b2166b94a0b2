"""The service layer on both engines: each use case checks its role rule once, for API keys,
signed-in users and the CLI alike; and nothing under server/ speaks SQL."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import httpx
import pytest

from assay.errors import Forbidden, NotFound, ProjectNotFound, UserError
from assay.services import accounts, datasets, experiments, projects, scores, traces
from assay.services.filters import InvalidFilters, parse_filters, require_filters
from assay.services.principal import Principal
from assay.store.database import Database
from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

SERVER = Path(__file__).resolve().parents[1] / "src" / "assay" / "server"


def _send(client: httpx.Client, project: str, name: str, start: int | None = None) -> str:
    trace_id = new_trace_id()
    body = protobuf([span(trace_id, new_span_id(), name, start=start or 10**18)], service=project)
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    return trace_id.hex()


def test_a_key_scoped_to_one_project_finds_nothing_of_another(
    live: LiveServer, client: httpx.Client
) -> None:
    rt = live.runtime
    _send(client, "a", "step-a")
    trace_b = _send(client, "b", "secret-b")
    viewer_a = Principal.for_key("ci", "viewer", "a")
    everything = require_filters([])
    page = traces.list_traces(rt, viewer_a, "a", everything, limit=10)
    assert [t["name"] for t in page.items] == ["step-a"]
    with pytest.raises(ProjectNotFound) as hidden:
        traces.list_spans(rt, viewer_a, "b", require_filters([]), limit=10)
    assert hidden.value.hidden
    with pytest.raises(NotFound):
        traces.get_trace(rt, viewer_a, trace_b)
    with pytest.raises(NotFound):  # through a project it can see, still not
        traces.trace_view(rt, viewer_a, "a", trace_b)
    assert traces.get_trace(rt, Principal.for_key("root", "admin", None), trace_b)["name"]
    items, _ = projects.list_projects(rt, viewer_a, limit=10, after=None)
    assert [p["name"] for p in items] == ["a"]
    with pytest.raises(ProjectNotFound) as missing:
        traces.list_traces(rt, Principal.local(), "nowhere", require_filters([]), limit=10)
    assert not missing.value.hidden


def test_roles_rise_viewer_annotator_editor_admin(live: LiveServer, client: httpx.Client) -> None:
    rt = live.runtime
    trace_a = _send(client, "a", "step-a")
    viewer = Principal.for_user(1, "vic", is_admin=False, roles={"a": "viewer"})
    annotator = Principal.for_user(2, "ann", is_admin=False, roles={"a": "annotator"})
    editor = Principal.for_key("ed-key", "editor", "a")
    score = {"trace_id": trace_a, "name": "ok", "value": 1.0, "source": "human"}

    with pytest.raises(Forbidden, match="'viewer'; this needs 'annotator'"):
        scores.add_scores(rt, viewer, "a", [score])
    assert len(scores.add_scores(rt, annotator, "a", [score])) == 1
    with pytest.raises(UserError, match="value, a label"):
        scores.add_scores(rt, annotator, "a", [{**score, "value": None}])

    with pytest.raises(Forbidden):
        datasets.create_dataset(rt, annotator, "a", "qa")
    dataset, existed = datasets.create_dataset(rt, editor, "a", "qa")
    assert not existed and dataset["version"] == 0
    assert datasets.create_dataset(rt, editor, "a", "qa")[1]  # the same one again
    # Annotators add spans to a dataset that exists, but may not create one that way.
    assert datasets.add_span(rt, annotator, "a", "qa", trace_a, None) == 1
    with pytest.raises(UserError, match="needs an editor"):
        datasets.add_span(rt, annotator, "a", "new-set", trace_a, None)
    entry = datasets.change_records(
        rt, editor, "a", "qa", datasets.Changes(insert=[{"input": "hi"}], author="forged")
    )
    assert entry["version"] == 2 and entry["author"] == "ed-key"  # the principal is the author
    with pytest.raises(Forbidden, match="API key has role 'editor'; 'admin' is needed"):
        projects.update_settings(rt, editor, "a", {"note": "x"})
    with pytest.raises(ProjectNotFound):
        datasets.get_dataset(rt, viewer, "b", "qa")
    with pytest.raises(NotFound, match="no version 9"):
        datasets.list_records(rt, viewer, "a", "qa", version=9, limit=10, after_id=None)

    experiment = experiments.create_experiment(rt, editor, "a", {"eval_name": "e", "dataset": "qa"})
    assert experiment["dataset_version"] == 2
    with pytest.raises(Forbidden):
        experiments.add_rows(rt, viewer, int(experiment["id"]), [])
    outsider = Principal.for_key("b-key", "admin", "b")
    with pytest.raises(NotFound):
        experiments.get_experiment(rt, outsider, int(experiment["id"]))
    with pytest.raises(NotFound):
        experiments.experiment_view(rt, viewer, "a", 10_000)
    assert experiments.get_experiment(rt, viewer, int(experiment["id"]))["eval_name"] == "e"


def test_accounts_on_both_engines(db_url: str) -> None:
    db = Database.for_commands(db_url)
    operator = Principal.operator()
    try:
        created = accounts.create_user(db, operator, "ada", "a long enough password", is_admin=True)
        assert created.first
        bob = accounts.create_user(
            db, operator, "bob", "another long password", project="a", role="admin"
        )
        assert not bob.first
        as_bob = Principal.for_user(bob.id, "bob", is_admin=False, roles={"a": "admin"})
        with pytest.raises(Forbidden):
            accounts.create_user(db, as_bob, "eve", "yet another password", is_admin=True)
        with pytest.raises(Forbidden, match="every project"):
            accounts.create_key(db, as_bob, name="all", role="viewer", project=None)
        with pytest.raises(ProjectNotFound):
            accounts.create_key(db, as_bob, name="b", role="viewer", project="b")
        with pytest.raises(UserError, match="unknown role"):
            accounts.create_key(db, as_bob, name="a", role="owner", project="a")
        secret, record = accounts.create_key(db, as_bob, name="a", role="viewer", project="a")
        _, other = accounts.create_key(db, operator, name="b", role="editor", project="b")
        assert secret.startswith("assay_")
        assert [k["id"] for k in accounts.list_keys(db, as_bob)] == [record["id"]]
        with pytest.raises(NotFound):  # bob may not see project b's key
            accounts.revoke_key(db, as_bob, int(other["id"]))
        assert accounts.revoke_key(db, as_bob, int(record["id"]))
        assert not accounts.revoke_key(db, as_bob, int(record["id"]))  # already revoked
        assert accounts.revoke_key(db, operator, str(other["prefix"]))
        with pytest.raises(Forbidden, match="open local mode"):
            accounts.create_key(db, Principal.local(), name="x", role="viewer", project="a")
        ada = Principal.for_user(created.id, "ada", is_admin=True, roles={})
        with pytest.raises(UserError, match="cannot disable yourself"):
            accounts.disable_user(db, ada, created.id)
        assert accounts.disable_user(db, ada, bob.id)
        assert not accounts.disable_user(db, ada, bob.id)
        with pytest.raises(accounts.WrongPassword):
            accounts.change_password(db, ada, "wrong", "a new long password", keep_session="")
        assert accounts.sign_in(
            db, "ada", "a long enough password", old_token="", max_age_ns=10**12
        )
        disabled = accounts.sign_in(db, "bob", "another long password", old_token="", max_age_ns=1)
        assert disabled is None
    finally:
        db.dispose()


def test_one_filter_parser_names_the_field_of_each_problem() -> None:
    found, problems = parse_filters(
        [
            ("range", "1h"),
            ("status", "error"),
            ("tag", "a"),
            ("tag", " "),
            ("metadata", "k=v"),
            ("min_cost", "0.5"),
            ("q", "x" * 600),
            ("sort", "cost"),
        ],
        now_ns=10 * 3600 * 10**9,
    )
    assert problems == []
    assert found.since == 9 * 3600 * 10**9 and found.status == "error"
    assert found.tags == ["a"] and found.metadata == [("k", "v")] and found.min_cost == 0.5
    assert found.q is not None and len(found.q) == 500
    assert parse_filters([("since", "2026-01-31T00:00:00Z")])[0].since == 1769817600 * 10**9
    _, problems = parse_filters(
        [
            ("since", "yesterday"),
            ("range", "2w"),
            ("metadata", "nokey"),
            ("status", "meh"),
            ("min_duration_ms", "-1"),
            ("max_score", "nan"),
        ]
    )
    fields = sorted(p.field for p in problems)
    assert fields == ["max_score", "metadata", "min_duration_ms", "range", "since", "status"]
    with pytest.raises(InvalidFilters, match="since: 'yesterday' is not a time"):
        require_filters([("since", "yesterday")])


def test_the_api_and_the_pages_report_the_same_filter_problem(client: httpx.Client) -> None:
    _send(client, "shop", "old-step")
    _send(client, "shop", "step", start=time.time_ns())
    api = client.get("/api/v1/projects/shop/traces", params={"range": "2w"})
    assert api.status_code == 400 and "range: '2w' is not one of" in api.json()["error"]["message"]
    page = client.get("/p/shop/traces", params={"range": "2w"})
    assert page.status_code == 400 and "range: &#39;2w&#39; is not one of" in page.text
    recent = client.get("/api/v1/projects/shop/traces", params={"range": "1h"}).json()["items"]
    assert [t["name"] for t in recent] == ["step"]


def _sql_in(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"imports {n}" for n in names if n.split(".")[0] == "sqlalchemy"]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("connect", "begin")
            and not node.args
            and not node.keywords
        ):
            found.append(f"calls .{node.func.attr}() at line {node.lineno}")
    return found


def test_nothing_under_server_opens_a_connection_or_imports_sqlalchemy(tmp_path: Path) -> None:
    modules = sorted(SERVER.rglob("*.py"))
    assert len(modules) > 10
    offenders = {str(p.relative_to(SERVER)): _sql_in(p) for p in modules if _sql_in(p)}
    assert offenders == {}
    probe = tmp_path / "probe.py"  # the check itself can fail
    probe.write_text("import sqlalchemy.orm\ndef f(e):\n    with e.connect():\n        e.begin()\n")
    assert len(_sql_in(probe)) == 3
