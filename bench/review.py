"""Review queue speed: submit a label and get the next item, on a queue of 10,000 traces.

    PYTHONPATH=src .venv/bin/python bench/review.py [--items 10000] [--labels 300]
                                                     [--engine sqlite|postgres]

Starts a real server (uvicorn on loopback) on a fresh store, ingests ``--items`` traces through
OTLP, puts them all in a queue with one categorical rubric, then a reviewer labels ``--labels``
items in sequence: each step is one POST of the label that answers with the next item (leased,
with its content and rubric). Reports p50/p95 of

- ``round trip``: the HTTP request as the client sees it (loopback, JSON both ways);
- ``server``: the same use case (``services.review.submit_labels``) called in the server's
  process, without HTTP: the database work and building the next item.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn

from assay.server.app import create_app
from assay.services import review
from assay.services.principal import Principal
from assay.services.runtime import Runtime
from assay.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.otlp_builders import PB, protobuf, span

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _server(settings: Settings) -> tuple[str, Runtime, uvicorn.Server]:
    runtime = Runtime.open(settings)
    config = uvicorn.Config(
        create_app(settings, runtime=runtime), host="127.0.0.1", port=0, log_level="warning"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", runtime, server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="assay-bench-review-"))
    pg_name = None
    if args.engine == "sqlite":
        url = f"sqlite:///{home}/assay.db"
    else:
        import psycopg

        pg_name = f"assay_bench_review_{uuid.uuid4().hex[:8]}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{pg_name}"')
        url = PG + pg_name
    settings = Settings(database_url=url, home=home)
    base, runtime, server = _server(settings)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            trace_ids: list[str] = []
            for start in range(0, args.items, 1000):
                batch = []
                for i in range(start, min(start + 1000, args.items)):
                    trace_id = os.urandom(16)
                    trace_ids.append(trace_id.hex())
                    batch.append(
                        span(
                            trace_id,
                            os.urandom(8),
                            f"turn-{i}",
                            start=1_700_000_000_000_000_000 + i,
                            attributes={
                                "input.value": f"question {i} " * 20,
                                "output.value": f"answer {i} " * 40,
                            },
                        )
                    )
                sent = client.post(
                    "/v1/traces", content=protobuf(batch, service="bench"), headers=PB
                )
                assert sent.status_code == 200, sent.text
            rubric = client.post(
                "/api/v1/projects/bench/rubrics",
                json={
                    "name": "correct",
                    "kind": "categorical",
                    "choices": [{"name": "yes", "value": 1}, {"name": "no", "value": 0}],
                },
            ).json()
            queue = client.post(
                "/api/v1/projects/bench/queues",
                json={"name": "all", "rubrics": [rubric["id"]], "reviews_per_item": 2},
            ).json()
            added = client.post(
                f"/api/v1/queues/{queue['id']}/items", json={"trace_ids": trace_ids}
            )
            assert added.json()["added"] == args.items, added.text
            item = client.get(f"/api/v1/queues/{queue['id']}/next").json()
            round_trips: list[float] = []
            for i in range(args.labels):
                body = {"labels": [{"rubric_id": rubric["id"], "choice": "yes" if i % 3 else "no"}]}
                began = time.perf_counter()
                answer = client.post(
                    f"/api/v1/queues/{queue['id']}/items/{item['item_id']}/labels", json=body
                )
                round_trips.append((time.perf_counter() - began) * 1000)
                assert answer.status_code == 201, answer.text
                item = answer.json()["next"]
        # The same use case in-process, as a second reviewer (reviews_per_item = 2).
        who = Principal.for_key("second", "annotator", "bench")
        current = review.next_item(runtime, who, int(queue["id"]))
        server_times: list[float] = []
        for i in range(args.labels):
            assert current is not None
            labels = [{"rubric_id": rubric["id"], "choice": "no" if i % 4 else "yes"}]
            began = time.perf_counter()
            result = review.submit_labels(
                runtime, who, int(queue["id"]), int(current["item_id"]), labels
            )
            server_times.append((time.perf_counter() - began) * 1000)
            current = result["next"]
    finally:
        server.should_exit = True
        time.sleep(0.3)
        runtime.close()
        if pg_name:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    print(f"engine {args.engine}, queue of {args.items} items, {args.labels} labels each way")
    for name, values in (("round trip (HTTP)", round_trips), ("server (use case)", server_times)):
        print(
            f"  submit + next, {name}: p50 {statistics.median(values):.1f} ms, "
            f"p95 {_percentile(values, 0.95):.1f} ms"
        )


if __name__ == "__main__":
    main()
