"""Monitors on both engines: the state machine (alert once, remind after the set time, recover,
no data), webhooks to a local receiver (a failing one recorded with its reason and tried again),
two processes evaluating at once notifying once, bad input naming the field, and roles.

The state machine is driven with an injected value function and explicit ``now_ns``; the end to
end test at the bottom measures a real score mean through services/metrics.py.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from assay.errors import Forbidden, UserError
from assay.services import monitors
from assay.services.metrics import WindowValue
from assay.services.principal import Principal
from assay.services.runtime import Runtime
from assay.settings import Settings
from assay.store import keys as key_store
from assay.store import projects as project_store
from assay.store.database import Database
from tests.conftest import LiveServer, start_server
from tests.otlp_builders import PB, new_span_id, new_trace_id, protobuf, span

MINUTE = monitors.MINUTE_NS
T0 = 1_800_000_000 * 1_000_000_000  # a fixed "now" (2027-01-15)
OPERATOR = Principal.operator()


# --- a local webhook receiver -------------------------------------------------------------------


class Receiver:
    """Takes webhooks on loopback; ``fail_with`` makes it answer 500 with that text."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_with: str | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                if owner.fail_with is not None:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(owner.fail_with.encode())
                    return
                owner.received.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[str]:
        return [body["event"] for body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    """The store, with webhooks to loopback allowed (the receiver); no server, no worker."""
    opened = Runtime.open(replace(settings, egress_allow="127.0.0.1"))
    with opened.write() as conn:
        project_store.ensure(conn, "mon")
    try:
        yield opened
    finally:
        opened.close()


# --- an injected metric -------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    value: float | None
    n: int
    low: float | None = None
    high: float | None = None


class Scores:
    """Score values at times: the mean of those inside the window (what score_mean means)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []
        self.asked: list[tuple[str, Mapping[str, Any], int, int]] = []

    def add(self, at_ns: int, *values: float) -> None:
        self.points += [(at_ns, v) for v in values]

    def __call__(
        self,
        db: Database,
        project_id: int,
        metric: str,
        params: Mapping[str, Any],
        since_ns: int,
        until_ns: int,
    ) -> Value:
        self.asked.append((metric, params, since_ns, until_ns))
        inside = [v for t, v in self.points if since_ns <= t < until_ns]
        if not inside:
            return Value(None, 0)
        return Value(sum(inside) / len(inside), len(inside))


def make(rt: Runtime, url: str | None, **changes: Any) -> dict[str, Any]:
    fields = {
        "name": "correctness falls",
        "metric": "score_mean",
        "params": {"score": "correctness"},
        "window_minutes": 60,
        "threshold": 0.7,
        "direction": "below",
        "webhook_url": url,
        "renotify_minutes": 30,
        **changes,
    }
    return monitors.create_monitor(rt, OPERATOR, "mon", fields)


def tick(rt: Runtime, at_ns: int, scores: Scores) -> list[dict[str, Any]]:
    return monitors.evaluate_due(rt, at_ns, value_of=scores)


# --- the state machine --------------------------------------------------------------------------


def test_a_score_mean_monitor_alerts_once_reminds_recovers_and_reports_no_data(
    rt: Runtime, receiver: Receiver
) -> None:
    scores = Scores()
    made = make(rt, receiver.url)
    assert made["state"] == "no_data" and made["evaluated"] is False
    assert (
        made["webhook_url"] == "http://127.0.0.1:" + receiver.url.split(":")[2].split("/")[0] + "/…"
    )

    # An empty window: no data, nothing sent.
    first = tick(rt, T0, scores)
    assert [e["state"] for e in first] == ["no_data"] and first[0]["n"] == 0
    assert receiver.received == []
    metric, params, since, until = scores.asked[-1]
    assert (metric, params, since, until) == (
        "score_mean",
        {"score": "correctness"},
        T0 - 60 * MINUTE,
        T0,
    )

    # Not due again within the minute: nothing evaluated.
    assert tick(rt, T0 + MINUTE // 2, scores) == []

    # Good scores: ok, nothing sent.
    scores.add(T0 + 1, 0.9, 0.8, 1.0)
    assert [e["state"] for e in tick(rt, T0 + MINUTE, scores)] == ["ok"]
    assert receiver.received == []

    # The mean crosses the threshold: one alert ...
    scores.add(T0 + 2 * MINUTE, 0.0, 0.1, 0.0, 0.2, 0.1)  # mean of 8: 0.3875
    alerted = tick(rt, T0 + 3 * MINUTE, scores)
    assert alerted[0]["state"] == "alerting" and alerted[0]["notification"] == "alert"
    assert alerted[0]["delivered"] is True and alerted[0]["delivery"] == "204"
    assert receiver.events() == ["monitor.alert"]
    alert = receiver.received[0]
    assert alert["value"] == pytest.approx((0.9 + 0.8 + 1.0 + 0.4) / 8)
    assert alert["n"] == 8 and alert["threshold"] == 0.7 and alert["state"] == "alerting"
    assert alert["monitor"] == "correctness falls" and alert["metric"] == "score_mean"
    assert alert["window"]["minutes"] == 60
    assert alert["link"] == f"/p/mon/monitors/{made['id']}"
    assert "ALERT" in alert["text"] and "0.3875" in alert["text"]

    # ... and nothing more while it stays below, until renotify_minutes (30) have passed.
    for minute in range(4, 33):
        found = tick(rt, T0 + minute * MINUTE, scores)
        assert found[0]["state"] == "alerting" and found[0]["notification"] is None
    assert receiver.events() == ["monitor.alert"]
    reminded = tick(rt, T0 + 33 * MINUTE, scores)
    assert reminded[0]["notification"] == "reminder"
    assert receiver.events() == ["monitor.alert", "monitor.reminder"]
    assert "STILL ALERTING" in receiver.received[-1]["text"]
    assert tick(rt, T0 + 34 * MINUTE, scores)[0]["notification"] is None

    # It comes back: one recovery.
    scores.add(T0 + 35 * MINUTE, *[1.0] * 20)
    recovered = tick(rt, T0 + 36 * MINUTE, scores)
    assert recovered[0]["state"] == "ok" and recovered[0]["notification"] == "recovery"
    assert receiver.events() == ["monitor.alert", "monitor.reminder", "monitor.recovery"]
    assert receiver.received[-1]["state"] == "ok" and "RECOVERED" in receiver.received[-1]["text"]
    assert tick(rt, T0 + 37 * MINUTE, scores)[0]["notification"] is None

    # The window moves past every score: no data, and nothing sent.
    empty = tick(rt, T0 + 200 * MINUTE, scores)
    assert empty[0]["state"] == "no_data" and empty[0]["value"] is None
    assert len(receiver.received) == 3

    shown = monitors.get_monitor(rt, OPERATOR, made["id"])
    assert shown["state"] == "no_data" and shown["state_since_ns"] == T0 + 200 * MINUTE
    assert shown["last_evaluated_ns"] == T0 + 200 * MINUTE
    assert shown["last_notified_ns"] == T0 + 36 * MINUTE
    assert shown["last_delivery"] == {"ok": True, "detail": "204"}
    history = shown["history"]
    assert history[0]["at_ns"] == T0 + 200 * MINUTE  # newest first
    assert [h["notification"] for h in history if h["notification"]] == [
        "recovery",
        "reminder",
        "alert",
    ]


def test_an_above_monitor_without_a_webhook_keeps_its_state_and_sends_nothing(
    rt: Runtime,
) -> None:
    scores = Scores()
    made = make(
        rt, None, name="errors", metric="error_rate", params={}, threshold=0.1, direction="above"
    )
    scores.add(T0 - 1, 0.5)
    found = tick(rt, T0, scores)
    assert found[0]["state"] == "alerting" and found[0]["notification"] is None
    assert monitors.get_monitor(rt, OPERATOR, made["id"])["last_delivery"] is None


def test_a_failing_webhook_is_recorded_with_its_reason_and_tried_again(
    rt: Runtime, receiver: Receiver
) -> None:
    scores = Scores()
    made = make(rt, receiver.url)
    scores.add(T0 - 1, 0.1)
    receiver.fail_with = "channel_is_archived"
    failed = tick(rt, T0, scores)[0]
    assert failed["notification"] == "alert" and failed["delivered"] is False
    assert failed["delivery"] == "HTTP 500: channel_is_archived"
    shown = monitors.get_monitor(rt, OPERATOR, made["id"])
    assert shown["last_delivery"] == {"ok": False, "detail": "HTTP 500: channel_is_archived"}
    assert shown["failed_deliveries"] == 1 and shown["last_notified_ns"] is None

    # The next evaluation tries the alert again, and it arrives once.
    receiver.fail_with = None
    again = tick(rt, T0 + MINUTE, scores)[0]
    assert again["notification"] == "alert" and again["delivered"] is True
    assert receiver.events() == ["monitor.alert"]
    assert tick(rt, T0 + 2 * MINUTE, scores)[0]["notification"] is None
    shown = monitors.get_monitor(rt, OPERATOR, made["id"])
    assert shown["last_delivery"] == {"ok": True, "detail": "204"}
    assert shown["failed_deliveries"] == 1

    # A receiver that cannot be reached: the reason is the connection's.
    receiver.close()
    scores.add(T0 + 3 * MINUTE, *[1.0] * 10)
    lost = tick(rt, T0 + 4 * MINUTE, scores)[0]
    assert lost["notification"] == "recovery" and lost["delivered"] is False
    assert lost["delivery"].startswith("not sent:")


def test_two_processes_evaluating_at_once_notify_once(rt: Runtime, receiver: Receiver) -> None:
    scores = Scores()
    make(rt, receiver.url)
    scores.add(T0 - 1, 0.0)
    start = threading.Barrier(4)
    results: list[list[dict[str, Any]]] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        start.wait()
        found = monitors.evaluate_due(rt, T0, value_of=scores, owner=f"server-{n}")
        with lock:
            results.append(found)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(found) for found in results) == [0, 0, 0, 1]
    assert receiver.events() == ["monitor.alert"]


def test_evaluate_now_and_a_metric_that_cannot_be_computed(rt: Runtime) -> None:
    made = make(rt, None, enabled=False)
    assert monitors.evaluate_due(rt, T0, value_of=Scores()) == []  # off: not evaluated

    def broken(*_args: Any) -> Value:
        raise RuntimeError("the store went away")

    shown = monitors.evaluate_now(rt, OPERATOR, made["id"], now_ns=T0, value_of=broken)
    assert shown["state"] == "no_data" and shown["evaluated"] is True
    assert "the store went away" in shown["history"][0]["error"]
    scores = Scores()
    scores.add(T0, 0.9)
    shown = monitors.evaluate_now(rt, OPERATOR, made["id"], now_ns=T0 + 1, value_of=scores)
    assert shown["state"] == "ok" and len(shown["history"]) == 2


def test_bad_input_names_the_field(rt: Runtime) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"metric": "happiness"}, "metric"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"window_minutes": -5}, "window_minutes"),
        ({"direction": "sideways"}, "direction"),
        ({"params": {}}, "params.score"),
        ({"params": {"score": "x", "colour": "red"}}, "params"),
        ({"params": {"score": "x", "source": "robot"}}, "params.source"),
        ({"params": {"score": "x", "filter": {"status": "maybe"}}}, "params.filter"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url"),
        ({"webhook_url": "file:///etc/passwd"}, "webhook_url"),
        ({"renotify_minutes": -1}, "renotify_minutes"),
    ]
    for changes, field in cases:
        with pytest.raises(UserError) as refused:
            make(rt, None, **changes)
        assert field in str(refused.value), (changes, str(refused.value))
    made = make(rt, None)
    with pytest.raises(UserError, match="name"):
        make(rt, None)  # the same name again
    with pytest.raises(UserError, match="window_minutes"):
        monitors.update_monitor(rt, OPERATOR, made["id"], {"window_minutes": 0})
    changed = monitors.update_monitor(
        rt, OPERATOR, made["id"], {"threshold": 0.5, "params": {"score": "helpfulness"}}
    )
    assert changed["threshold"] == 0.5 and changed["params"] == {"score": "helpfulness"}
    viewer = Principal.for_key("v", "viewer", "mon")
    assert monitors.list_monitors(rt, viewer, "mon")[0]["id"] == made["id"]
    with pytest.raises(Forbidden):
        monitors.update_monitor(rt, viewer, made["id"], {"threshold": 0.1})
    with pytest.raises(Forbidden):
        monitors.evaluate_now(rt, viewer, made["id"], value_of=Scores())


def test_decide_table() -> None:
    base = {
        "direction": "below",
        "threshold": 0.5,
        "webhook_url": "http://x",
        "notified_state": "ok",
        "renotify_minutes": 10,
        "last_notified_ns": None,
    }
    assert monitors.decide(base, None, T0) == monitors.Decision("no_data", None)
    assert monitors.decide(base, 0.5, T0) == monitors.Decision("ok", None)  # not below
    assert monitors.decide(base, 0.4, T0) == monitors.Decision("alerting", "alert")
    told = {**base, "notified_state": "alerting", "last_notified_ns": T0}
    assert monitors.decide(told, 0.4, T0 + 9 * MINUTE).notify is None
    assert monitors.decide(told, 0.4, T0 + 10 * MINUTE).notify == "reminder"
    assert monitors.decide({**told, "renotify_minutes": 0}, 0.4, T0 + 999 * MINUTE).notify is None
    assert monitors.decide(told, 0.6, T0) == monitors.Decision("ok", "recovery")
    assert monitors.decide(told, None, T0) == monitors.Decision("no_data", None)
    above = {**base, "direction": "above"}
    assert monitors.decide(above, 0.6, T0).state == "alerting"
    assert monitors.decide(above, 0.5, T0).state == "ok"


# --- the API: roles and the fixed surface -------------------------------------------------------


def _key(live: LiveServer, role: str, project: str | None) -> str:
    with live.runtime.engine.begin() as conn:
        secret, _ = key_store.create(conn, name=f"k-{role}", role=role, project=project)
    live.runtime._key_count = None
    return secret


@pytest.fixture
def quiet(settings: Settings) -> Iterator[LiveServer]:
    """A server without its worker (the test says when monitors are evaluated)."""
    server = start_server(replace(settings, egress_allow="127.0.0.1", server_worker=False))
    try:
        yield server
    finally:
        server.stop()


def test_api_roles_and_field_errors(quiet: LiveServer) -> None:
    admin = quiet.client(headers={"Authorization": f"Bearer {_key(quiet, 'admin', None)}"})
    editor = quiet.client(headers={"Authorization": f"Bearer {_key(quiet, 'editor', 'mon')}"})
    viewer = quiet.client(headers={"Authorization": f"Bearer {_key(quiet, 'viewer', 'mon')}"})
    with quiet.runtime.write() as conn:
        project_store.ensure(conn, "mon")
    body = {
        "name": "latency",
        "metric": "latency_p95",
        "params": {"filter": {"tag": "prod"}},
        "window_minutes": 15,
        "threshold": 2000,
        "direction": "above",
        "webhook_url": "http://127.0.0.1:9/hook",
    }
    assert viewer.post("/api/v1/projects/mon/monitors", json=body).status_code == 403
    made = editor.post("/api/v1/projects/mon/monitors", json=body)
    assert made.status_code == 201, made.text
    monitor = made.json()
    assert monitor["state"] == "no_data" and monitor["params"] == {"filter": {"tag": "prod"}}
    got = viewer.get(f"/api/v1/monitors/{monitor['id']}")
    assert got.status_code == 200 and got.json()["history"] == []
    listed = viewer.get("/api/v1/projects/mon/monitors").json()["items"]
    assert [m["name"] for m in listed] == ["latency"]
    path = f"/api/v1/monitors/{monitor['id']}"
    assert viewer.patch(path, json={"threshold": 1}).status_code == 403
    assert viewer.post(f"{path}/evaluate").status_code == 403
    assert viewer.delete(path).status_code == 403
    assert editor.patch(path, json={"enabled": False}).json()["enabled"] is False

    for change, field in (
        ({"metric": "vibes"}, "metric"),
        ({"window_minutes": 0}, "window_minutes"),
        ({"webhook_url": "http://10.1.2.3/hook"}, "webhook_url"),
        ({"direction": "up"}, "direction"),
    ):
        refused = editor.post("/api/v1/projects/mon/monitors", json={**body, "name": "x", **change})
        assert 400 <= refused.status_code < 500 and field in refused.text, refused.text
    assert editor.delete(path).status_code == 204
    assert viewer.get(path).status_code == 404
    assert admin.get("/api/v1/projects/mon/monitors").json()["items"] == []
    for client in (admin, editor, viewer):
        client.close()


def test_the_pages_show_states_and_history(quiet: LiveServer) -> None:
    with quiet.runtime.write() as conn:
        project_store.ensure(conn, "mon")
    made = make(quiet.runtime, None)
    scores = Scores()
    scores.add(T0 - 1, 0.1)
    monitors.evaluate_now(quiet.runtime, OPERATOR, made["id"], now_ns=T0, value_of=scores)
    with httpx.Client(base_url=quiet.url) as browser:
        page = browser.get("/p/mon/monitors")
        assert page.status_code == 200
        assert "correctness falls" in page.text and "alerting" in page.text
        one = browser.get(f"/p/mon/monitors/{made['id']}")
        assert one.status_code == 200 and "0.1" in one.text and "alerting" in one.text


# --- end to end: a real score mean, through ingest, the scores API and services/metrics.py -------


def test_a_real_score_mean_fires_once_reminds_recovers_and_reports_no_data(
    quiet: LiveServer, receiver: Receiver
) -> None:
    rt = quiet.runtime
    base = (time.time_ns() // MINUTE - 600) * MINUTE  # ten hours ago, on a minute
    client = quiet.client()
    traces: list[tuple[str, float]] = []

    def send(at_ns: int, values: list[float]) -> None:
        spans = []
        for value in values:
            trace_id = new_trace_id()
            spans.append(span(trace_id, new_span_id(), "answer", start=at_ns))
            traces.append((trace_id.hex(), value))
        sent = client.post("/v1/traces", content=protobuf(spans, service="mon"), headers=PB)
        assert sent.status_code == 200, sent.text
        wanted = {t for t, _ in traces}
        deadline = time.monotonic() + 20
        while True:
            listed = client.get("/api/v1/projects/mon/traces", params={"limit": 1000})
            if listed.status_code == 200 and wanted <= {
                item["trace_id"] for item in listed.json()["items"]
            }:
                break
            assert time.monotonic() < deadline, "the spans were not stored"
            time.sleep(0.05)
        scored = client.post(
            "/api/v1/projects/mon/scores",
            json=[
                {"trace_id": t, "name": "correctness", "value": v}
                for t, v in traces[-len(values) :]
            ],
        )
        assert scored.status_code < 300, scored.text

    def at(minute: int) -> dict[str, Any]:
        [found] = monitors.evaluate_due(rt, base + minute * MINUTE)
        return found

    send(base - 10 * 60 * MINUTE, [0.0])  # long before any window: the project exists
    made = make(rt, receiver.url)
    # Made now, due now: evaluated once at the test's start (ten hours ago), then due each minute.
    first = monitors.evaluate_now(rt, OPERATOR, made["id"], now_ns=base)
    assert first["state"] == "no_data" and first["history"][0]["n"] == 0
    send(base + 1 * MINUTE, [0.9, 0.8, 1.0])
    assert at(5)["state"] == "ok" and receiver.received == []
    send(base + 10 * MINUTE, [0.0, 0.1, 0.0, 0.2, 0.1])
    alerted = at(15)
    assert alerted["state"] == "alerting" and alerted["n"] == 8
    assert alerted["value"] == pytest.approx(
        statistics.mean([0.9, 0.8, 1.0, 0.0, 0.1, 0.0, 0.2, 0.1])
    )
    assert alerted["low"] is not None and alerted["low"] < alerted["value"] < alerted["high"]
    assert receiver.events() == ["monitor.alert"]
    assert receiver.received[0]["value"] == pytest.approx(alerted["value"])
    assert at(20)["notification"] is None and at(44)["notification"] is None
    assert receiver.events() == ["monitor.alert"]
    assert at(46)["notification"] == "reminder"
    send(base + 50 * MINUTE, [1.0] * 20)
    recovered = at(55)
    assert recovered["state"] == "ok" and recovered["n"] == 28
    assert receiver.events() == ["monitor.alert", "monitor.reminder", "monitor.recovery"]
    assert at(56)["notification"] is None
    assert at(300)["state"] == "no_data"
    assert len(receiver.received) == 3
    shown = client.get(f"/api/v1/monitors/{made['id']}").json()
    assert shown["state"] == "no_data" and len(shown["history"]) == 9
    assert [h["notification"] for h in shown["history"] if h["notification"]] == [
        "recovery",
        "reminder",
        "alert",
    ]
    client.close()


@pytest.mark.parametrize(
    ("public_url", "wanted"),
    [
        ("", "/p/shop%20one/monitors/7"),
        ("https://assay.example.com/", "https://assay.example.com/p/shop%20one/monitors/7"),
    ],
)
def test_a_notification_links_to_the_monitor_under_the_public_url(
    public_url: str, wanted: str
) -> None:
    monitor = {
        "id": 7,
        "project": "shop one",
        "name": "falls",
        "metric": "error_rate",
        "params": {},
        "threshold": 0.1,
        "direction": "above",
        "window_minutes": 60,
    }
    measured = WindowValue(value=0.5, n=10, low=0.2, high=0.8)
    body = monitors.notification(monitor, "alert", measured, 0, 60, public_url)
    assert body["link"] == wanted
    assert body["text"].endswith(f" {wanted}")
