"""Property-based fuzzing of OTLP ingest against a real server, on both engines.

Bodies are OTLP-shaped with any field possibly of the wrong type or out of range (JSON), or
built from random field values and sometimes corrupted (protobuf). For every body: no answer
is 5xx, an error names its problem, the kept-alive connection still serves, and a valid span
sent right after on the same connection is stored.

Each test runs ``ASSAY_TEST_FUZZ_EXAMPLES`` examples per engine (default 120, a few seconds);
set it higher for a longer hunt, e.g. ``ASSAY_TEST_FUZZ_EXAMPLES=5000``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.conftest import LiveServer
from tests.keepalive import KeepAlive
from tests.otlp_builders import (
    JSON_HEADERS,
    PB,
    error_of,
    new_span_id,
    new_trace_id,
    protobuf,
    span,
)

EXAMPLES = int(os.environ.get("ASSAY_TEST_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # One live server serves every example on purpose: state left by one body must not
    # break the next.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CANARY = "fuzz-canary"

# --- values that have broken parsers and columns before ------------------------------------

EDGE_INTEGERS = st.sampled_from(
    [0, -1, 1, 5, 70_000, 2**15, 2**31, 2**40, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70]
)
EDGE_TEXT = st.sampled_from(
    ["", "inf", "-Infinity", "NaN", "nan", "1e400", "0x10", "18446744073709551615", "\x00", "é"]
)
INTEGERS = st.one_of(EDGE_INTEGERS, st.integers(min_value=-(2**70), max_value=2**70))
TEXT = st.one_of(EDGE_TEXT, st.text(max_size=12), st.text(min_size=190, max_size=230))
SCALARS = st.one_of(
    st.none(), st.booleans(), INTEGERS, st.floats(allow_nan=True, allow_infinity=True), TEXT
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def either(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the right type, sometimes anything at all."""
    return st.one_of(right, right, right, ANY_JSON)


def deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def deep_any_value(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "x"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


# --- JSON --------------------------------------------------------------------------------------

JSON_ANY_VALUE = st.recursive(
    st.one_of(
        st.builds(lambda v: {"stringValue": v}, either(TEXT)),
        st.builds(lambda v: {"intValue": v}, either(st.one_of(INTEGERS, INTEGERS.map(str)))),
        st.builds(
            lambda v: {"doubleValue": v},
            either(st.one_of(st.floats(), st.sampled_from(["inf", "NaN", "-Infinity", "x"]))),
        ),
        st.builds(lambda v: {"boolValue": v}, either(st.booleans())),
        st.builds(lambda v: {"bytesValue": v}, either(st.just("AAEC"))),
        st.integers(min_value=60, max_value=130).map(deep_any_value),
        st.integers(min_value=200, max_value=400).map(deep),
        SCALARS,
    ),
    lambda inner: st.one_of(
        st.builds(lambda v: {"arrayValue": {"values": v}}, either(st.lists(inner, max_size=3))),
        st.builds(lambda v: {"arrayValue": v}, ANY_JSON),
        st.builds(
            lambda v: {"kvlistValue": {"values": v}},
            either(st.lists(st.fixed_dictionaries({"key": TEXT, "value": inner}), max_size=3)),
        ),
        st.builds(lambda v: {"kvlistValue": v}, ANY_JSON),
    ),
    max_leaves=6,
)
KEYS = st.sampled_from(
    [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "llm.token_count.total",
        "assay.cost",
        "gen_ai.request.model",
        "input.value",
        "assay.metadata",
        "assay.tags",
        "session.id",
        "llm.input_messages.0.message.content",
    ]
) | st.text(max_size=10)
JSON_ATTRIBUTES = either(
    st.lists(
        either(st.fixed_dictionaries({"key": either(KEYS), "value": JSON_ANY_VALUE})), max_size=4
    )
)
HEX_IDS = st.one_of(
    st.binary(min_size=16, max_size=16).map(bytes.hex), st.sampled_from(["", "0" * 32, "g" * 32])
)
SPAN_IDS = st.one_of(st.binary(min_size=8, max_size=8).map(bytes.hex), st.just("0" * 16))
TIMES = either(st.one_of(INTEGERS, INTEGERS.map(str)))
JSON_EVENT = st.fixed_dictionaries(
    {},
    optional={"name": either(TEXT), "timeUnixNano": TIMES, "attributes": JSON_ATTRIBUTES},
)
JSON_SPAN = st.fixed_dictionaries(
    {"traceId": either(HEX_IDS), "spanId": either(SPAN_IDS)},
    optional={
        "parentSpanId": either(SPAN_IDS),
        "name": either(TEXT),
        "kind": either(st.one_of(INTEGERS, st.sampled_from(["SPAN_KIND_SERVER", "BOGUS"]))),
        "startTimeUnixNano": TIMES,
        "endTimeUnixNano": TIMES,
        "attributes": JSON_ATTRIBUTES,
        "status": either(
            st.fixed_dictionaries(
                {},
                optional={
                    "code": either(st.one_of(INTEGERS, st.just("STATUS_CODE_ERROR"))),
                    "message": either(TEXT),
                },
            )
        ),
        "events": either(st.lists(either(JSON_EVENT), max_size=2)),
        "links": either(
            st.lists(either(st.fixed_dictionaries({"traceId": HEX_IDS, "spanId": SPAN_IDS})))
        ),
    },
)
JSON_RESOURCE = either(
    st.fixed_dictionaries(
        {
            "attributes": either(
                st.lists(
                    st.fixed_dictionaries(
                        {"key": st.just("service.name"), "value": JSON_ANY_VALUE}
                    ),
                    max_size=1,
                )
            )
        }
    )
)
JSON_BODIES = st.fixed_dictionaries(
    {
        "resourceSpans": either(
            st.lists(
                either(
                    st.fixed_dictionaries(
                        {
                            "resource": JSON_RESOURCE,
                            "scopeSpans": either(
                                st.lists(
                                    either(
                                        st.fixed_dictionaries(
                                            {
                                                "scope": either(
                                                    st.fixed_dictionaries(
                                                        {"name": either(TEXT)},
                                                        optional={"version": either(TEXT)},
                                                    )
                                                ),
                                                "spans": either(
                                                    st.lists(either(JSON_SPAN), max_size=3)
                                                ),
                                            }
                                        )
                                    ),
                                    max_size=2,
                                )
                            ),
                        }
                    )
                ),
                max_size=2,
            )
        )
    }
)

# --- protobuf -----------------------------------------------------------------------------------

PB_VALUES = st.one_of(
    TEXT,
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.binary(max_size=8),
    st.lists(st.one_of(TEXT, st.integers(min_value=-(2**63), max_value=2**63 - 1)), max_size=3),
)
PB_KEYS = KEYS.filter(lambda key: isinstance(key, str))
U64 = st.one_of(
    st.sampled_from([0, 2**63 - 1, 2**63, 2**64 - 1]), st.integers(min_value=0, max_value=2**64 - 1)
)
I32 = st.one_of(st.sampled_from([0, 2, 7, 70_000, -1]), st.integers(-(2**31), 2**31 - 1))
PB_SPAN = st.fixed_dictionaries(
    {
        "trace_id": st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20)),
        "span_id": st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10)),
        "name": TEXT,
        "kind": I32,
        "start": U64,
        "end": U64,
        "status": I32,
        "message": TEXT,
        "attributes": st.dictionaries(PB_KEYS, PB_VALUES, max_size=4),
        "event_times": st.lists(U64, max_size=2),
    }
)


def any_value(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            any_value(target.array_value.values.add(), item)
    else:
        target.string_value = value


def pb_body(service: str, spans: list[dict[str, Any]], cut: int | None) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    name = resource_spans.resource.attributes.add(key="service.name")
    name.value.string_value = service
    scope = resource_spans.scope_spans.add()
    for fields in spans:
        pb_span = scope.spans.add(
            trace_id=fields["trace_id"],
            span_id=fields["span_id"],
            name=fields["name"],
            kind=fields["kind"],
            start_time_unix_nano=fields["start"],
            end_time_unix_nano=fields["end"],
        )
        pb_span.status.code = fields["status"]
        pb_span.status.message = fields["message"]
        for key, value in fields["attributes"].items():
            any_value(pb_span.attributes.add(key=key).value, value)
        for time in fields["event_times"]:
            pb_span.events.add(name="e", time_unix_nano=time)
    data = bytes(request.SerializeToString())
    return data if cut is None else data[: cut % (len(data) + 1)]


PB_BODIES = st.builds(
    pb_body,
    service=st.one_of(st.just("fuzz"), TEXT.filter(bool)),
    spans=st.lists(PB_SPAN, min_size=1, max_size=3),
    cut=st.one_of(st.none(), st.none(), st.integers(min_value=0)),
)

# --- the property ---------------------------------------------------------------------------------


def _fuzz(
    live: LiveServer, bodies: st.SearchStrategy[bytes], headers: dict[str, str], valid: bytes
) -> None:
    connection = [KeepAlive(live.url)]
    canaries: list[str] = []
    statuses: dict[int, int] = {}

    def send(body: bytes) -> None:
        conn = connection[0]
        try:
            answer = conn.post("/v1/traces", body, headers)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            assert answer.status < 500, answer.body[:500]
            if answer.status >= 400:
                error = error_of(answer.headers.get("content-type", ""), answer.body)
                assert error["message"] and error["code"], answer.body[:500]
            name = f"canary-{len(canaries)}"
            canary = protobuf([span(new_trace_id(), new_span_id(), name)], service=CANARY)
            assert conn.post("/v1/traces", canary, PB).status == 200
            canaries.append(name)
        except BaseException:
            # Give the next example (and Hypothesis's shrinking) a fresh connection.
            conn.__exit__()
            connection[0] = KeepAlive(live.url)
            raise

    # A well-formed body first, so a run always sees both sides even if chance draws none.
    run: Callable[[], None] = FUZZ(example(body=valid)(given(body=bodies)(send)))
    run()
    connection[0].__exit__()
    with live.client() as client:
        stored = client.get(f"/api/v1/projects/{CANARY}/spans", params={"limit": 1000}).json()
    assert {item["name"] for item in stored["items"]} >= set(canaries[-1000:])
    # The fuzzing reached both sides: bodies accepted and bodies refused.
    assert statuses.get(200) and sum(n for s, n in statuses.items() if 400 <= s < 500), statuses


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def test_fuzzed_otlp_json_never_gets_a_5xx(live: LiveServer) -> None:
    valid = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "ab" * 16,
                                "spanId": "cd" * 8,
                                "name": "valid",
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000001000000",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    _fuzz(live, JSON_BODIES.map(_json_bytes), JSON_HEADERS, _json_bytes(valid))


def test_fuzzed_otlp_protobuf_never_gets_a_5xx(live: LiveServer) -> None:
    _fuzz(live, PB_BODIES, PB, protobuf([span(new_trace_id(), new_span_id(), "valid")]))
