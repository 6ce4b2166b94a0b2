"""schemathesis over /openapi.json against a real server, with an admin key and in the open
mode, on both engines: no answer >= 500, and every answer conforms to the document (status
codes, content types, headers, bodies).

A few examples per operation keep this to about a minute per engine; set
ASSAY_SCHEMATHESIS_EXAMPLES (e.g. 200) for a longer run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from assay.services import accounts
from assay.services.principal import Principal
from tests.conftest import LiveServer
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

EXAMPLES = int(os.environ.get("ASSAY_SCHEMATHESIS_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(params=["open", "admin-key"])
def api_target(request: pytest.FixtureRequest, live: LiveServer) -> Iterator[dict[str, str]]:
    with live.client() as client:
        body = protobuf([span(new_trace_id(), new_span_id(), "seed")], service="default")
        assert client.post("/v1/traces", content=body, headers=PB).status_code == 200
    headers: dict[str, str] = {}
    if request.param == "admin-key":
        operator = Principal.operator()
        accounts.create_user(live.runtime, operator, "root", "a long password", is_admin=True)
        secret, _ = accounts.create_key(
            live.runtime, operator, name="st", role="admin", project=None
        )
        headers["authorization"] = f"Bearer {secret}"
    yield {"url": live.url, **headers}


def test_every_operation_answers_within_its_document(api_target: dict[str, str]) -> None:
    url = api_target["url"]
    headers = {k: v for k, v in api_target.items() if k != "url"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

        run()
