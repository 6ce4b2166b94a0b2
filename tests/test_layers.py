"""Install layers: what the base install (`pip install assay`) must do without the server extra,
and the import rules that keep it so."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import LiveServer

HERE = Path(__file__).parent
SOURCE = HERE.parent / "src" / "assay"
BASE_INSTALL = HERE / "base_install.py"

JUDGED_EVAL = """
import assay
from assay import scorers

assay.Eval(
    "judged",
    data=[{"input": "2 + 2", "expected": "4"}, {"input": "3 + 3", "expected": "6"}],
    task=lambda question: str(eval(question)),
    scores=[scorers.exact_match(), scorers.factuality(model="openai/gpt-4.1-mini")],
)
"""


def _base_install(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BASE_INSTALL), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_the_blocker_blocks() -> None:
    done = _base_install("-c", "import sqlalchemy")
    assert done.returncode == 1 and "No module named 'sqlalchemy'" in done.stderr


def test_import_assay_and_the_client_side_on_a_base_install() -> None:
    done = _base_install(
        "-c",
        "import assay, assay.scorers, assay.models, assay.evals, assay.semconv.attributes\n"
        "import assay.semconv.prices, assay.settings, assay.client, assay.statistics\n"
        "from assay.evals import summarise, compare, ExperimentRow\n"
        "assay.judge\n"
        "print('imported')",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_cli_help_and_a_clear_refusal_for_server_commands() -> None:
    helped = _base_install("-m", "assay.cli", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("eval", "datasets", "server", "users"):
        assert command in helped.stdout
    refused = _base_install("-m", "assay.cli", "server", "--port", "1")
    assert refused.returncode == 1
    assert "needs the server extra" in refused.stderr
    assert "pip install 'assay[server]'" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr


def test_eval_without_a_server_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "eval_judged.py").write_text(JUDGED_EVAL)
    done = _base_install("-m", "assay.cli", "eval", str(tmp_path), "--no-send", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["scores"]["exact_match"]["mean"] == 1.0
    factuality = result["scores"]["factuality"]
    assert factuality["errors"] == 2 and factuality["mean"] is None
    [error] = factuality["error_messages"]
    assert error["count"] == 2 and error["hint"] == "pip install 'assay[openai]'"


def test_eval_stores_its_run_on_a_server_from_a_base_install(
    live: LiveServer, client: httpx.Client
) -> None:
    done = _base_install(
        "-m",
        "assay.cli",
        "eval",
        str(HERE / "eval_files" / "eval_math.py"),
        "--filter",
        "math-ok",
        "--json",
        env={"ASSAY_URL": live.url, "ASSAY_PROJECT": "base-install"},
    )
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)
    assert result["experiment_id"] is not None
    stored = client.get(f"/api/v1/experiments/{result['experiment_id']}").json()
    assert stored["status"] == "complete" and stored["summary"]["exact"]["mean"] == 1.0
    rows = client.get(f"/api/v1/experiments/{result['experiment_id']}/rows").json()["items"]
    assert len(rows) == 2
    listed = client.get("/api/v1/projects/base-install/experiments").json()["items"]
    assert [e["id"] for e in listed] == [result["experiment_id"]]


# --- the import rules -----------------------------------------------------------------------------

#: Client-side packages: what an instrumented agent and `assay eval` load.
CLIENT_SIDE = ("sdk", "evals", "scorers", "models", "statistics", "semconv")
SERVER_SIDE = ("assay.store", "assay.services", "assay.server", "assay.ingest", "assay.cli")
SQLALCHEMY_USERS = ("store",)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    package = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts[:-1])
    return _imports_in(path.read_text(), package)


def _imports_in(code: str, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _package_files(*packages: str) -> list[Path]:
    return [path for name in packages for path in sorted((SOURCE / name).rglob("*.py"))]


def test_client_side_never_imports_the_server_side() -> None:
    offenders = {
        str(path.relative_to(SOURCE)): sorted(
            name
            for name in _imports(path)
            if any(name == side or name.startswith(side + ".") for side in SERVER_SIDE)
        )
        for path in _package_files(*CLIENT_SIDE)
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def _sqlalchemy_importers() -> set[str]:
    return {
        str(path.relative_to(SOURCE))
        for path in sorted(SOURCE.rglob("*.py"))
        if any(name.partition(".")[0] == "sqlalchemy" for name in _imports(path))
    }


def test_only_the_store_imports_sqlalchemy() -> None:
    outside = {p for p in _sqlalchemy_importers() if p.split("/")[0] not in SQLALCHEMY_USERS}
    assert outside == set()


def test_the_import_walk_sees_relative_and_lazy_imports() -> None:
    code = "def later():\n    from ..store import engine\n    import sqlalchemy.orm\n"
    found = _imports_in(code, "assay.evals")
    assert {"assay.store", "assay.store.engine", "sqlalchemy.orm"} <= found
    assert "assay.server.app" in _imports_in("from .app import x", "assay.server")
