"""JSON bodies, gzip, traces split over requests, children before parents, re-sent batches."""

from __future__ import annotations

import gzip

import httpx
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.otlp_builders import JSON_HEADERS, PB, new_span_id, new_trace_id, protobuf, span


def _tree_names(node: dict[str, object]) -> object:
    children = node["children"]
    assert isinstance(children, list)
    return {node["name"]: [_tree_names(c) for c in children]}


def test_json_body_is_accepted_and_answered_in_json(client: httpx.Client) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "root",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "input.value", "value": {"stringValue": "hi"}},
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {
                                        "key": "list",
                                        "value": {"arrayValue": {"values": [{"boolValue": True}]}},
                                    },
                                ],
                                "status": {"code": 2, "message": "boom"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = client.post("/v1/traces", content=orjson.dumps(body), headers=JSON_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}
    [item] = client.get("/api/v1/projects/j/spans").json()["items"]
    assert item["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert item["kind"] == 2 and item["status"] == "error" and item["error"] == "boom"
    assert item["attributes"] == {"input.value": "hi", "n": 42, "list": [True]}
    assert item["input"] == "hi"
    assert item["duration_ns"] == 1_000_000_000


def test_gzip_protobuf_body(client: httpx.Client) -> None:
    trace_id = new_trace_id()
    body = gzip.compress(protobuf([span(trace_id, new_span_id(), "zipped")], service="gz"))
    response = client.post("/v1/traces", content=body, headers={**PB, "content-encoding": "gzip"})
    assert response.status_code == 200, response.text
    parsed = ExportTraceServiceResponse.FromString(response.content)
    assert parsed.partial_success.rejected_spans == 0
    assert [i["name"] for i in client.get("/api/v1/projects/gz/spans").json()["items"]] == [
        "zipped"
    ]


def test_split_out_of_order_and_duplicated_batches_make_one_correct_trace(
    client: httpx.Client,
) -> None:
    trace_id = new_trace_id()
    root, child, grandchild = new_span_id(), new_span_id(), new_span_id()
    t0 = 1_700_000_000_000_000_000
    leaf = span(
        trace_id,
        grandchild,
        "leaf",
        parent=child,
        start=t0 + 2_000_000,
        attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10},
    )
    middle = span(
        trace_id,
        child,
        "middle",
        parent=root,
        start=t0 + 1_000_000,
        attributes={"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 5},
    )
    top = span(trace_id, root, "top", start=t0, duration_ms=50, attributes={"input.value": "q"})
    # Children first, in separate requests; then the root; then everything again.
    for batch in ([leaf], [middle], [top], [leaf, middle, top], [top]):
        response = client.post("/v1/traces", content=protobuf(batch, service="split"), headers=PB)
        assert response.status_code == 200, response.text

    listing = client.get("/api/v1/projects/split/traces").json()["items"]
    assert len(listing) == 1
    [row] = listing
    assert row["span_count"] == 3
    assert row["input_tokens"] == 15
    assert row["name"] == "top" and row["input_preview"] == "q"
    assert row["duration_ns"] == 50_000_000
    tree = client.get(f"/api/v1/traces/{trace_id.hex()}").json()
    assert [_tree_names(n) for n in tree["spans"]] == [{"top": [{"middle": [{"leaf": []}]}]}]
    assert len(client.get("/api/v1/projects/split/spans").json()["items"]) == 3


def test_project_header_wins_over_resource(client: httpx.Client) -> None:
    body = protobuf(
        [span(new_trace_id(), new_span_id(), "x")],
        service="from-service",
        resource={"assay.project": "from-resource"},
    )
    assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    assert (
        client.post(
            "/v1/traces", content=body, headers={**PB, "x-assay-project": "from-header"}
        ).status_code
        == 200
    )
    names = {p["name"] for p in client.get("/api/v1/projects").json()["items"]}
    assert names == {"from-resource", "from-header"}


def test_pagination_and_sorting(client: httpx.Client) -> None:
    t0 = 1_700_000_000_000_000_000
    batch = [
        span(
            new_trace_id(),
            new_span_id(),
            f"run-{i}",
            start=t0 + i * 1_000_000_000,
            duration_ms=(i * 7) % 10 + 1,
        )
        for i in range(25)
    ]
    assert client.post("/v1/traces", content=protobuf(batch, service="p"), headers=PB).is_success
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/projects/p/traces", params=params).json()
        seen.extend(item["name"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"run-{i}" for i in reversed(range(25))]

    by_duration = client.get(
        "/api/v1/projects/p/traces", params={"sort": "duration", "order": "asc", "limit": 100}
    ).json()["items"]
    durations = [item["duration_ns"] for item in by_duration]
    assert durations == sorted(durations) and len(durations) == 25

    # Sorting by duration paginates without losing or repeating rows despite ties.
    names: list[str] = []
    cursor = None
    while True:
        params = {"sort": "duration", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/projects/p/spans", params=params).json()
        names.extend(item["name"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(names) == sorted(f"run-{i}" for i in range(25))


def test_scores_attach_and_filter(client: httpx.Client) -> None:
    trace_a, trace_b, span_a = new_trace_id(), new_trace_id(), new_span_id()
    batch = [span(trace_a, span_a, "a"), span(trace_b, new_span_id(), "b")]
    assert client.post("/v1/traces", content=protobuf(batch, service="s"), headers=PB).is_success
    created = client.post(
        "/api/v1/projects/s/scores",
        json=[
            {"trace_id": trace_a.hex(), "name": "thumbs", "value": 1.0, "source": "human"},
            {"trace_id": trace_b.hex(), "name": "thumbs", "value": 0.0, "source": "human"},
            {"trace_id": trace_a.hex(), "span_id": span_a.hex(), "name": "f", "label": "ok"},
        ],
    )
    assert created.status_code == 201, created.text
    good = client.get(
        "/api/v1/projects/s/traces", params={"score": "thumbs", "min_score": 0.5}
    ).json()["items"]
    assert [item["trace_id"] for item in good] == [trace_a.hex()]
    assert {s["name"] for s in good[0]["scores"]} == {"thumbs", "f"}
    tree = client.get(f"/api/v1/traces/{trace_a.hex()}").json()
    assert [s["name"] for s in tree["scores"]] == ["thumbs"]
    assert [s["label"] for s in tree["spans"][0]["scores"]] == ["ok"]
    bad = client.post("/api/v1/projects/s/scores", json={"trace_id": "zz", "name": "x"})
    assert bad.status_code == 422 and "trace_id" in bad.json()["error"]["message"]


def test_project_price_overrides_apply_to_new_spans(client: httpx.Client) -> None:
    llm = {
        "gen_ai.request.model": "house-model",
        "gen_ai.usage.input_tokens": 1_000_000,
        "gen_ai.usage.output_tokens": 0,
    }
    first = protobuf(
        [span(new_trace_id(), new_span_id(), "before", attributes=llm)], service="priced"
    )
    assert client.post("/v1/traces", content=first, headers=PB).is_success
    bad = client.patch(
        "/api/v1/projects/priced", json={"settings": {"prices": {"house-model": {"input": -1}}}}
    )
    assert bad.status_code == 422 and "house-model" in bad.json()["error"]["message"]
    ok = client.patch(
        "/api/v1/projects/priced",
        json={"settings": {"prices": {"house-model": {"input": 3, "output": 1}}}},
    )
    assert ok.status_code == 200, ok.text
    second = protobuf(
        [span(new_trace_id(), new_span_id(), "after", attributes=llm)], service="priced"
    )
    assert client.post("/v1/traces", content=second, headers=PB).is_success
    costs = {
        i["name"]: i["cost"] for i in client.get("/api/v1/projects/priced/spans").json()["items"]
    }
    assert costs == {"before": None, "after": 3.0}


def test_openapi_describes_the_fixed_paths(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/traces",
        "/api/v1/projects",
        "/api/v1/projects/{project}/traces",
        "/api/v1/projects/{project}/spans",
        "/api/v1/traces/{trace_id}",
    ):
        assert path in paths, path
    assert client.get("/docs").status_code == 404  # no page that pulls scripts from a CDN


def test_nested_llm_spans_are_counted_once_in_trace_sums(client: httpx.Client) -> None:
    usage = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 10,
    }
    for split_over_requests in (False, True):
        trace_id, root, outer, inner = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
        batch = [
            span(trace_id, root, "agent"),
            span(trace_id, outer, "wrapper", parent=root, attributes=usage),
            # The client library's own span for the same call, inside the wrapper's.
            span(trace_id, inner, "client", parent=outer, attributes=usage),
            span(trace_id, new_span_id(), "second call", parent=root, attributes=usage),
        ]
        batches = [[b] for b in batch] if split_over_requests else [batch]
        for part in batches:
            sent = client.post("/v1/traces", content=protobuf(part, service="nest"), headers=PB)
            assert sent.status_code == 200
        row = client.get(f"/api/v1/traces/{trace_id.hex()}").json()
        assert (row["input_tokens"], row["output_tokens"]) == (200, 20), split_over_requests
