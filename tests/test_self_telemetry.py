"""The server under a global OpenTelemetry tracer provider (the demo's process, an embedding,
``opentelemetry-instrument``): FastAPI's own request spans leave out the OTLP receivers, so a
process exporting to its own Assay makes no spans about receiving spans (each export would
cause the next one). Run in a subprocess: the global provider is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import fastapi
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from starlette.testclient import TestClient

    from assay.server.app import create_app
    from assay.settings import Settings

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    trace.set_tracer_provider(provider)
    settings = Settings(database_url=f"sqlite:///{sys.argv[1]}/assay.db", home=sys.argv[1])
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8600") as client:
        assert client.get("/healthz").status_code == 200
        sent = client.post("/v1/traces", json={"resourceSpans": []})
        assert sent.status_code == 200, sent.text
    print(json.dumps([
        {"name": s.name, "route": s.attributes.get("http.route"),
         "target": s.attributes.get("url.path") or s.attributes.get("http.target")}
        for s in exported.get_finished_spans()
    ]))
    """
)


@pytest.mark.skipif(
    "telemetry" not in fastapi.FastAPI.__init__.__code__.co_varnames,
    reason="this FastAPI has no native telemetry",
)
def test_fastapi_request_spans_leave_out_the_otlp_receivers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = json.loads(done.stdout.strip().splitlines()[-1])
    described = json.dumps(spans)
    # Requests elsewhere are traced (the exclusion is not "everything off")...
    assert "/healthz" in described, spans
    # ...the OTLP receiver is not.
    assert "/v1/traces" not in described, spans
