"""Datasets: versions on every change, pinned reads, files in and out, on both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import assay
from assay.client import ApiError, Client
from tests.conftest import LiveServer


@pytest.fixture
def api(live: LiveServer) -> Client:
    return Client(live.url)


def test_every_change_makes_a_version_and_old_versions_stay_readable(api: Client) -> None:
    ds = assay.dataset("qa", "proj", client=api)
    assert ds.version == 0 and list(ds) == []
    v1 = ds.insert_many(
        [
            {"record_id": "r1", "input": {"q": "2+2"}, "expected": "4", "tags": ["math"]},
            {"record_id": "r2", "input": {"q": "capital of France"}, "expected": "Paris"},
        ]
    )
    v2 = ds.update("r1", expected="four", metadata={"reviewed": True})
    v3 = ds.delete("r2")
    v4 = ds.insert({"q": "3*3"}, "9", record_id="r3", source_trace_id="ab" * 16)
    assert (v1, v2, v3, v4) == (1, 2, 3, 4)

    def at(version: int) -> dict[str, object]:
        return {
            r["record_id"]: r["expected"]
            for r in assay.dataset("qa", "proj", version=version, client=api)
        }

    assert at(1) == {"r1": "4", "r2": "Paris"}
    assert at(2) == {"r1": "four", "r2": "Paris"}
    assert at(3) == {"r1": "four"}
    assert at(4) == {"r1": "four", "r3": "9"}
    latest = {r["record_id"]: r for r in assay.dataset("qa", "proj", client=api)}
    assert latest["r1"]["metadata"] == {"reviewed": True} and latest["r1"]["tags"] == ["math"]
    assert latest["r3"]["source_trace_id"] == "ab" * 16
    history = ds.versions()
    assert [(v["version"], v["added"], v["updated"], v["deleted"]) for v in history] == [
        (4, 1, 0, 0),
        (3, 0, 0, 1),
        (2, 0, 1, 0),
        (1, 2, 0, 0),
    ]


def test_a_pinned_reader_is_not_moved_by_later_changes(api: Client) -> None:
    ds = assay.dataset("pin", "proj", client=api)
    ds.insert_many([{"input": i} for i in range(3)])
    reader = assay.dataset("pin", "proj", client=api).pin()
    ds.insert_many([{"input": 99}])
    assert sorted(r["input"] for r in reader) == [0, 1, 2]
    assert len(assay.dataset("pin", "proj", client=api)) == 4


def test_bad_changes_are_refused_whole(api: Client) -> None:
    ds = assay.dataset("strict", "proj", client=api)
    ds.insert({"q": 1}, record_id="a")
    for bad in (
        {"insert": [{"input": 1}, {"expected": 2}]},  # second has no input
        {"insert": [{"input": 1, "record_id": "a"}]},  # exists
        {"update": [{"record_id": "zzz", "expected": 1}]},
        {"delete": ["a", "a"]},
        {"insert": [{"input": 1, "colour": "red"}]},
    ):
        with pytest.raises(ApiError) as error:
            api.post("/api/v1/projects/proj/datasets/strict/changes", json=bad)
        assert error.value.status == 400, bad
    assert ds.versions()[0]["version"] == 1 and len(ds) == 1
    with pytest.raises(ApiError) as missing:
        api.get("/api/v1/projects/proj/datasets/nope/records")
    assert missing.value.status == 404


def _cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay.cli", "datasets", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ASSAY_PROJECT": "files", "COLUMNS": "200"},
    )


def test_push_and_pull_jsonl_and_csv(live: LiveServer, tmp_path: Path) -> None:
    good = tmp_path / "qa.jsonl"
    good.write_text(
        '{"input": {"q": "hi"}, "expected": "hello", "tags": ["greet"]}\n\n'
        '{"input": "plain", "metadata": {"lang": "en"}}\n'
    )
    done = _cli("push", str(good), url=live.url)
    assert done.returncode == 0, done.stderr
    assert "pushed 2 records" in done.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": 1}\n{"input": 2}\n{"input": 3,}\n')
    failed = _cli("push", str(bad), "--name", "qa", url=live.url)
    assert failed.returncode == 1
    assert "bad.jsonl:3: not valid JSON" in failed.stderr and "Traceback" not in failed.stderr

    table = tmp_path / "more.csv"
    table.write_text('input,expected,tags,metadata\n"{""q"": ""x""}",y,"a, b","{""k"": 1}"\n')
    assert _cli("push", str(table), "--name", "qa", url=live.url).returncode == 0
    broken = tmp_path / "broken.csv"
    broken.write_text("input,expected\nfine,ok\n,missing input\n")
    refused = _cli("push", str(broken), "--name", "qa", url=live.url)
    assert refused.returncode == 1 and "broken.csv:3" in refused.stderr

    out = tmp_path / "out.jsonl"
    assert _cli("pull", "qa", "--out", str(out), url=live.url).returncode == 0
    pulled = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in pulled] == [{"q": "hi"}, "plain", {"q": "x"}]
    assert pulled[2]["tags"] == ["a", "b"] and pulled[2]["metadata"] == {"k": 1}
    first = tmp_path / "v1.csv"
    assert _cli("pull", "qa", "--version", "1", "--out", str(first), url=live.url).returncode == 0
    assert first.read_text().count("\n") == 3  # header + the two records of version 1
    with httpx.Client(base_url=live.url) as client:
        versions = client.get("/api/v1/projects/files/datasets/qa/versions").json()["items"]
    assert [v["added"] for v in versions] == [1, 2]
