"""Export: datasets and labelled traces as fine-tuning JSONL (OpenAI chat, Anthropic messages)
and as records (JSONL, CSV); the validators; skipped records reported; the CLI; both engines."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.services import export
from assay.services.principal import Principal
from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

#: Records of every kind an export meets: id -> (record, the reason it is skipped or None).
RECORDS: dict[str, tuple[dict[str, Any], str | None]] = {
    "plain": ({"input": "What is 2+2?", "expected": "4"}, None),
    "number": ({"input": "What is 3*3?", "expected": 9}, None),
    "formula": ({"input": '=HYPERLINK("http://x")', "expected": "-1", "tags": ["@x"]}, None),
    "chat-tools": (
        {
            "input": {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Weather in Paris?"},
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
                ],
                "tools": [WEATHER_TOOL],
            },
            "expected": {"role": "assistant", "content": "18C and sunny."},
        },
        None,
    ),
    "genai-parts": (
        {
            "input": [
                {"role": "user", "parts": [{"type": "text", "content": "Look up Rome"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "reasoning", "content": "I should call the tool"},
                        {
                            "type": "tool_call",
                            "id": "c9",
                            "name": "weather",
                            "arguments": {"city": "Rome"},
                        },
                    ],
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "c9", "response": {"t": 25}}],
                },
            ],
            "expected": [
                {"role": "assistant", "parts": [{"type": "text", "content": "25 degrees"}]}
            ],
        },
        None,
    ),
    "anthropic-blocks": (
        {
            "input": {
                "system": "Be kind.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "text", "text": "Checking."},
                            {
                                "type": "tool_use",
                                "id": "tu_1",
                                "name": "weather",
                                "input": {"city": "Oslo"},
                            },
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "tu_1", "content": "-3C"}
                        ],
                    },
                ],
            },
            "expected": "Cold: -3C.",
        },
        None,
    ),
    "no-expected": ({"input": "Hello?"}, "no expected answer"),
    "empty-expected": ({"input": "Hello?", "expected": "  "}, "the expected answer is empty"),
    "object-expected": ({"input": "Hello?", "expected": {"answer": "hi"}}, "not text or assistant"),
    "assistant-first": (
        {"input": [{"role": "assistant", "content": "I speak first"}], "expected": "then me"},
        "must be the user's|roles alternate, user first",
    ),
    "unanswered-call": (
        {
            "input": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "x1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
            ],
            "expected": "done",
        },
        "no tool message answering|has no tool_result",
    ),
    "image-input": (
        {
            "input": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ],
            "expected": "a cat",
        },
        "is not text",
    ),
}


def _seed_dataset(client: httpx.Client, project: str = "exp", name: str = "ft") -> None:
    insert = [{"record_id": rid, **record} for rid, (record, _why) in RECORDS.items()]
    made = client.post(f"/api/v1/projects/{project}/datasets", json={"name": name})
    assert made.status_code == 201, made.text
    changed = client.post(
        f"/api/v1/projects/{project}/datasets/{name}/changes", json={"insert": insert}
    )
    assert changed.status_code == 201, changed.text


def _stored(live: LiveServer) -> dict[str, dict[str, Any]]:
    with httpx.Client(base_url=live.url) as client:
        items = client.get("/api/v1/projects/exp/datasets/ft/records").json()["items"]
    return {item["record_id"]: item for item in items}


# --- validators -------------------------------------------------------------------------------

CALL = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
BAD_OPENAI = {
    "unknown role": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}],
    "ends with user": [{"role": "user", "content": "x"}],
    "empty user": [{"role": "user", "content": ""}, {"role": "assistant", "content": "y"}],
    "late system": [
        {"role": "user", "content": "x"},
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "y"},
    ],
    "result without call": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "a", "content": "r"},
        {"role": "assistant", "content": "y"},
    ],
    "call not answered": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [CALL]},
        {"role": "assistant", "content": "y"},
    ],
    "arguments not json": [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{oops"}}],
        },
    ],
    "assistant says nothing": [{"role": "user", "content": "x"}, {"role": "assistant"}],
}
BAD_ANTHROPIC = {
    "starts with assistant": [{"role": "assistant", "content": "y"}],
    "two users": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "y"},
    ],
    "system role": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "y"}],
    "empty text": [{"role": "user", "content": ""}, {"role": "assistant", "content": "y"}],
    "tool_use unanswered": [
        {"role": "user", "content": "a"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "y"},
    ],
    "result after text": [
        {"role": "user", "content": "a"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "b"},
                {"type": "tool_result", "tool_use_id": "t", "content": "r"},
            ],
        },
        {"role": "assistant", "content": "y"},
    ],
    "tool_use from the user": [
        {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
        {"role": "assistant", "content": "y"},
    ],
}


@pytest.mark.parametrize("case", sorted(BAD_OPENAI))
def test_the_openai_validator_refuses_each_broken_rule(case: str) -> None:
    assert export.validate_openai_chat({"messages": BAD_OPENAI[case]}), case


@pytest.mark.parametrize("case", sorted(BAD_ANTHROPIC))
def test_the_anthropic_validator_refuses_each_broken_rule(case: str) -> None:
    assert export.validate_anthropic({"messages": BAD_ANTHROPIC[case]}), case


def test_validators_accept_tool_calls_paired_with_their_results() -> None:
    good_openai = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [CALL, {**CALL, "id": "b"}]},
            {"role": "tool", "tool_call_id": "b", "content": "rb"},
            {"role": "tool", "tool_call_id": "a", "content": "ra"},
            {"role": "assistant", "content": "y"},
        ],
        "tools": [WEATHER_TOOL],
    }
    assert export.validate_openai_chat(good_openai) == []
    good_anthropic = {
        "system": "s",
        "messages": [
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "r"}],
            },
            {"role": "assistant", "content": "y"},
        ],
    }
    assert export.validate_anthropic(good_anthropic) == []


def test_csv_cells_that_a_spreadsheet_would_run_are_guarded_and_read_back() -> None:
    for text in ("=1+1", "+1", "-5", "@SUM(A1)", "\tx", "'quoted", "plain", "a=b"):
        cell = export.csv_cell(text)
        assert cell[0] not in "=+-@\t" or text[0] not in "=+-@\t"
        assert cell.startswith("'") == text.startswith(("=", "+", "-", "@", "\t", "'"))
        assert export.csv_value(cell, "input") == text


# --- a dataset, on both engines ---------------------------------------------------------------


def _records_of(
    live: LiveServer, fmt: str, version: int | None = None
) -> tuple[list[str], dict[str, Any]]:
    started = export.export_dataset(
        live.runtime, Principal.local(), "exp", "ft", fmt=fmt, version=version
    )
    lines = list(started.lines)
    return lines, started.report.as_dict()


@pytest.mark.parametrize("fmt", ["openai-chat", "anthropic"])
def test_fine_tuning_export_validates_round_trips_and_reports_what_it_skipped(
    live: LiveServer, fmt: str
) -> None:
    with httpx.Client(base_url=live.url) as client:
        _seed_dataset(client)
    stored = _stored(live)
    lines, report = _records_of(live, fmt)
    validate = export.validate_openai_chat if fmt == "openai-chat" else export.validate_anthropic
    read = export.read_openai_chat if fmt == "openai-chat" else export.read_anthropic
    usable = [rid for rid, (_r, why) in RECORDS.items() if why is None]
    assert len(lines) == len(usable) == report["exported"]
    for line, rid in zip(lines, usable, strict=True):
        parsed = json.loads(line)
        assert validate(parsed) == [], (rid, parsed)
        assert read(parsed) == export.conversation_of(stored[rid]), rid
    # The conversations carry their tool calls and results in the provider's own shape.
    by_id = dict(zip(usable, (json.loads(line) for line in lines), strict=True))
    if fmt == "openai-chat":
        tools_line = by_id["chat-tools"]
        assert tools_line["tools"][0]["function"]["name"] == "weather"
        assert (
            tools_line["messages"][2]["tool_calls"][0]["function"]["arguments"]
            == '{"city": "Paris"}'
        )
        assert tools_line["messages"][3] == {
            "role": "tool",
            "tool_call_id": "call_1",
            "content": "18C, sunny",
        }
        assert tools_line["messages"][-1] == {"role": "assistant", "content": "18C and sunny."}
        assert by_id["genai-parts"]["messages"][2]["content"] == '{"t": 25}'
    else:
        oslo = by_id["anthropic-blocks"]
        assert oslo["system"] == "Be kind."
        assert [m["role"] for m in oslo["messages"]] == ["user", "assistant", "user", "assistant"]
        assert oslo["messages"][1]["content"][1] == {
            "type": "tool_use",
            "id": "tu_1",
            "name": "weather",
            "input": {"city": "Oslo"},
        }
        assert oslo["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": "tu_1", "content": "-3C"}
        ]
        assert by_id["chat-tools"]["tools"][0]["input_schema"]["properties"] == {
            "city": {"type": "string"}
        }
    skipped = {item["record_id"]: item["reason"] for item in report["skipped_records"]}
    expected_skips = {rid: why for rid, (_r, why) in RECORDS.items() if why is not None}
    assert set(skipped) == set(expected_skips) and report["skipped"] == len(expected_skips)
    for rid, why in expected_skips.items():
        assert re.search(why, skipped[rid]), (rid, skipped[rid])
    assert sum(report["reasons"].values()) == report["skipped"] and report["finished"]


def test_records_export_as_jsonl_and_csv_round_trips_and_guards_formulas(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        _seed_dataset(client)
        v2 = client.post(
            "/api/v1/projects/exp/datasets/ft/changes", json={"delete": ["plain"]}
        ).json()["version"]
    stored = _stored(live)
    fields = export.RECORD_FIELDS
    lines, report = _records_of(live, "jsonl")
    back = [json.loads(line) for line in lines]
    assert back == [{k: stored[r["record_id"]].get(k) for k in fields} for r in back]
    assert report["exported"] == len(stored) == len(RECORDS) - 1 and report["skipped"] == 0

    chunks, _report = _records_of(live, "csv")
    text = "".join(chunks)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(fields)
    read = [
        {k: export.csv_value(v, k) for k, v in zip(fields, row, strict=True)} for row in rows[1:]
    ]
    for row in read:
        original = stored[row["record_id"]]
        for key in fields:
            want = original.get(key)
            if isinstance(want, int | float):  # a CSV cell is text (JSON reads back)
                want = str(want)
            assert row[key] == want, (row["record_id"], key)
    formula = next(r for r in rows[1:] if r[0] == "formula")
    assert formula[1].startswith("'=HYPERLINK") and formula[2] == "'-1" and formula[4] == '["@x"]'
    # An older version exports as it was.
    old, _ = _records_of(live, "jsonl", version=v2 - 1)
    assert len(old) == len(RECORDS)


def test_the_rest_api_streams_names_its_report_and_refuses_a_bad_format(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        _seed_dataset(client)
        url = "/api/v1/projects/exp/datasets/ft/export"
        got = client.get(url, params={"format": "openai-chat"})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/x-ndjson")
        assert 'filename="ft-v1.openai.jsonl"' in got.headers["content-disposition"]
        report_url = got.headers["x-assay-export-report"]
        report = client.get(report_url).json()
        assert report["exported"] == len(got.text.splitlines()) and report["version"] == 1
        assert report["skipped"] == sum(1 for _r, why in RECORDS.values() if why)
        bad = client.get(url, params={"format": "parquet"})
        assert bad.status_code == 400 and "'parquet'" in bad.text and "openai-chat" in bad.text
        assert client.get(url, params={"format": "csv", "version": 7}).status_code == 404
        assert client.get("/api/v1/projects/exp/datasets/nope/export?format=csv").status_code == 404


# --- labelled traces --------------------------------------------------------------------------


def _llm_trace(question: str, answer: str, tag: str) -> tuple[str, list[Any]]:
    trace_id, root, llm = new_trace_id(), new_span_id(), new_span_id()
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "Answer briefly."}]},
        {"role": "user", "parts": [{"type": "text", "content": question}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "k1", "name": "search", "arguments": {"q": question}}
            ],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "k1", "response": "found it"}],
        },
    ]
    out = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": answer}],
            "finish_reason": "stop",
        }
    ]
    tools = [{"type": "function", "name": "search", "parameters": {"type": "object"}}]
    spans = [
        span(
            trace_id,
            root,
            "agent",
            attributes={
                "input.value": question,
                "output.value": answer,
                "assay.tags": json.dumps([tag]),
            },
        ),
        span(
            trace_id,
            llm,
            "chat model",
            parent=root,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(out),
                "gen_ai.tool.definitions": json.dumps(tools),
            },
        ),
    ]
    return trace_id.hex(), spans


def test_traces_with_a_human_label_export_as_fine_tuning_lines(live: LiveServer) -> None:
    made = [
        _llm_trace(f"question {i}", f"answer {i}", "prod" if i < 4 else "dev") for i in range(5)
    ]
    ids = [trace_id for trace_id, _ in made]
    with httpx.Client(base_url=live.url) as client:
        sent = client.post(
            "/v1/traces",
            content=protobuf([s for _, spans in made for s in spans], service="lab"),
            headers=PB,
        )
        assert sent.status_code == 200, sent.text
        rubric = client.post(
            "/api/v1/projects/lab/rubrics",
            json={
                "name": "correct",
                "kind": "categorical",
                "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
            },
        )
        assert rubric.status_code == 201, rubric.text
        labels = [
            {"trace_id": ids[0], "name": "correct", "label": "yes", "source": "human"},
            {"trace_id": ids[1], "name": "correct", "label": "yes", "source": "human"},
            {"trace_id": ids[2], "name": "correct", "label": "no", "source": "human"},
            {"trace_id": ids[3], "name": "correct", "label": "yes", "source": "llm"},  # a judge's
            {"trace_id": ids[4], "name": "correct", "label": "yes", "source": "human"},  # dev
        ]
        assert client.post("/api/v1/projects/lab/scores", json=labels).status_code == 201
        body = {
            "format": "openai-chat",
            "label": "correct",
            "label_value": "yes",
            "filter": {"tag": "prod"},
        }
        got = client.post("/api/v1/projects/lab/exports", json=body)
        assert got.status_code == 200, got.text
        report = client.post("/api/v1/projects/lab/exports?report=1", json=body).json()
        as_records = client.post(
            "/api/v1/projects/lab/exports", json={**body, "format": "jsonl", "span": "root"}
        )
        bad = client.post("/api/v1/projects/lab/exports", json={**body, "format": "xml"})
        bad_filter = client.post(
            "/api/v1/projects/lab/exports", json={**body, "filter": {"status": "meh"}}
        )
    lines = [json.loads(line) for line in got.text.splitlines()]
    assert report["exported"] == 2 and report["skipped"] == 0 and len(lines) == 2
    questions = sorted(line["messages"][1]["content"] for line in lines)
    assert questions == ["question 0", "question 1"]  # in trace id order
    for line in lines:
        i = int(line["messages"][1]["content"].split()[-1])
        assert export.validate_openai_chat(line) == []
        assert [m["role"] for m in line["messages"]] == [
            "system",
            "user",
            "assistant",
            "tool",
            "assistant",
        ]
        assert line["messages"][2]["tool_calls"][0]["function"]["name"] == "search"
        assert line["messages"][3] == {"role": "tool", "tool_call_id": "k1", "content": "found it"}
        assert line["messages"][-1] == {"role": "assistant", "content": f"answer {i}"}
        assert line["tools"][0]["function"]["name"] == "search"
    records = sorted(
        (json.loads(line) for line in as_records.text.splitlines()), key=lambda r: r["record_id"]
    )
    assert [r["record_id"] for r in records] == sorted(ids[:2])
    assert {r["input"] for r in records} == {"question 0", "question 1"}
    assert bad.status_code == 400 and "'xml'" in bad.text
    assert bad_filter.status_code == 400 and "status" in bad_filter.text


# --- the CLI, against a live server -----------------------------------------------------------


def test_cli_export_writes_the_file_and_prints_the_report(live: LiveServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=live.url) as client:
        _seed_dataset(client)
    out = tmp_path / "ft.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay.cli",
            "datasets",
            "export",
            "ft",
            "--format",
            "anthropic",
            "--output",
            str(out),
            "--project",
            "exp",
            "--url",
            live.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    usable = sum(1 for _r, why in RECORDS.values() if why is None)
    assert len(lines) == usable and all(
        export.validate_anthropic(json.loads(x)) == [] for x in lines
    )
    assert f"exported {usable} records of ft v1" in done.stderr
    assert "no-expected: no expected answer" in done.stderr and "skipped 6" in done.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "assay.cli",
            "datasets",
            "export",
            "ft",
            "--format",
            "yaml",
            "--output",
            str(tmp_path / "x"),
            "--project",
            "exp",
            "--url",
            live.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "'yaml'" in bad.stderr and not (tmp_path / "x").exists()


def test_the_dataset_page_offers_an_export_with_its_report(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url) as client:
        _seed_dataset(client)
        page = client.get("/p/exp/datasets/ft")
        assert page.status_code == 200
        assert (
            'action="/p/exp/datasets/ft/export"' in page.text and 'value="anthropic"' in page.text
        )
        report = client.get(
            "/p/exp/datasets/ft/export", params={"format": "openai-chat", "version": 1}
        )
        assert report.status_code == 200, report.text
        usable = sum(1 for _r, why in RECORDS.values() if why is None)
        assert f"<strong>{usable}</strong> records exported" in report.text
        assert "no-expected" in report.text and "no expected answer" in report.text
        link = re.search(r'id="export-download" href="([^"]+)"', report.text)
        assert link is not None
        got = client.get(link.group(1).replace("&amp;", "&"))
        assert got.status_code == 200 and len(got.text.splitlines()) == usable
        assert "ft-v1.openai.jsonl" in got.headers["content-disposition"]
        bad = client.get("/p/exp/datasets/ft/export", params={"format": "docx"})
        assert bad.status_code == 400 and "docx" in bad.text
