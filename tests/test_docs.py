"""The README documents every setting, and its command lines match the code."""

from __future__ import annotations

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
