"""A list page is bounded in bytes whatever `limit` says: spans carry previews of their
payloads (the trace route has the whole values), and a page past ASSAY_MAX_PAGE_BYTES ends
early with a cursor that carries on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from assay.settings import Settings
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

MEGABYTE_TEXT = "word " * 200_000  # 1 MB


@pytest.fixture
def big_spans(settings: Settings) -> Iterator[tuple[LiveServer, str]]:
    server = start_server(replace(settings, max_page_bytes=50_000))
    trace = new_trace_id()
    with server.client() as client:
        for batch in range(4):
            body = protobuf(
                [
                    span(
                        trace,
                        new_span_id(),
                        f"call {batch}-{n}",
                        start=1_700_000_000_000_000_000 + (batch * 10 + n) * 1_000_000,
                        attributes={
                            "input.value": MEGABYTE_TEXT,
                            "output.value": MEGABYTE_TEXT,
                            "note": "x" * 5_000,
                        },
                    )
                    for n in range(5)
                ],
                service="big",
            )
            assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    try:
        yield server, trace.hex()
    finally:
        server.stop()


def test_a_span_list_of_megabyte_spans_stays_small(big_spans: tuple[LiveServer, str]) -> None:
    live, trace = big_spans
    seen: list[str] = []
    with live.client() as client:
        cursor = None
        pages = 0
        while True:
            params = {"limit": "1000"} | ({"cursor": cursor} if cursor else {})
            answer = client.get("/api/v1/projects/big/spans", params=params)
            assert answer.status_code == 200
            assert len(answer.content) < 100_000  # 20 spans of 2 MB each: 40 MB unbounded
            page = answer.json()
            for item in page["items"]:
                assert len(item["input"]) <= 2_000 and len(item["output"]) <= 2_000
                assert {"input", "output", "attributes"} <= set(item["truncated"])
                assert len(item["attributes"]["note"]) <= 500
            seen += [item["span_id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 20 and pages > 1
        # The whole values are one request away.
        full = client.get(f"/api/v1/projects/big/traces/{trace}").json()
        stack = [full]
        inputs = []
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("input"), str):
                    inputs.append(node["input"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        assert len(inputs) == 20 and all(len(text) >= 999_000 for text in inputs)
