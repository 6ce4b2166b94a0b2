"""The README documents every setting, and its command lines match the code."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

from assay.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    for field in fields(Settings):
        assert f"`ASSAY_{field.name.upper()}`" in README, field.name


def test_the_two_commands_exist() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    assert "make demo" in README and "make test" in README
    assert "\ndemo:" in makefile and "\ntest:" in makefile
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "make test" in ci


def test_the_readme_sdk_example_runs(live: object, client: object) -> None:
    import os
    import re
    import subprocess
    import sys

    import httpx

    from tests.conftest import LiveServer

    assert isinstance(live, LiveServer) and isinstance(client, httpx.Client)
    example = re.search(r"```python\n(import assay\n.*?)```", README, re.S)
    assert example is not None
    done = subprocess.run(
        [sys.executable, "-c", example.group(1)],
        env={**os.environ, "ASSAY_URL": live.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    spans = client.get("/api/v1/projects/my-agent/spans").json()["items"]
    names = {s["name"].rsplit(".", 1)[-1]: s for s in spans}
    assert set(names) == {"conversation turn", "support_agent", "lookup_order", "draft answer"}
    assert names["draft answer"]["input_tokens"] == 812
    trace = client.get(f"/api/v1/traces/{names['conversation turn']['trace_id']}").json()
    [root] = trace["spans"]
    assert [s["name"] for s in root["scores"]] == ["thumbs_up"]
    assert root["scores"][0]["author"] == "end-user-17"


def test_every_scorer_the_readme_names_exists() -> None:
    import re

    from assay import scorers

    section = README.split("## Scorers, judges and models", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    named = {
        match.group(1)
        for line in table
        for match in re.finditer(r"`([a-z_]+)(?:\(|`)", line.split("|")[2])
    }
    assert len(named) > 25
    missing = sorted(name for name in named if not hasattr(scorers, name))
    assert missing == []
    # ...and every public scorer is in the table.
    unlisted = sorted(
        name
        for name in scorers.__all__
        if name[0].islower() and name not in {"read_trace", "final_span"} and name not in named
    )
    assert unlisted == []


def _table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(ASSAY_[A-Z0-9_]+)` \|", section, re.M))


def test_the_configuration_table_is_the_settings_table() -> None:
    settings = {f"ASSAY_{field.name.upper()}" for field in fields(Settings)}
    assert _table_variables() == settings


def _reads_of_assay_variables(tree: ast.AST) -> list[int]:
    """Lines that read or write an ASSAY_* variable: a literal name given to os.environ or
    os.getenv (also as an f-string), or such a name standing alone as a string."""

    def names_assay_variable(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return re.fullmatch(r"ASSAY_[A-Z0-9_]+", node.value) is not None
        if isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            return (
                isinstance(head, ast.Constant)
                and isinstance(head.value, str)
                and head.value.startswith("ASSAY_")
            )
        return False

    def is_environment(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")) or (
            isinstance(node, ast.Name) and node.id in ("environ", "getenv")
        )

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and names_assay_variable(node):
            lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and is_environment(node.value):
            if names_assay_variable(node.slice):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args and names_assay_variable(node.args[0]):
            target = node.func
            if is_environment(target) or (
                isinstance(target, ast.Attribute) and is_environment(target.value)
            ):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_only_the_settings_module_reads_assay_variables() -> None:
    source = Path(__file__).parent.parent / "src" / "assay"
    found = {
        str(path.relative_to(source)): lines
        for path in sorted(source.rglob("*.py"))
        if path.name != "settings.py" or path.parent != source
        if (lines := _reads_of_assay_variables(ast.parse(path.read_text())))
    }
    assert found == {}
    # The check finds what it looks for.
    planted = ast.parse(
        'import os\nos.environ.get("ASSAY_URL")\nos.getenv(f"ASSAY_{x}")\n'
        'os.environ["ASSAY_PORT"] = "1"\nenviron.setdefault("ASSAY_HOME", "")\n'
    )
    assert _reads_of_assay_variables(planted) == [2, 3, 4, 5]
