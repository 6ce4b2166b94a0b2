"""The demo's monitor: the mean of the online judge's "helpful" score over the last day, which
alerts below 0.9, with its webhook pointed at a small receiver in the demo's process (on
loopback, which the demo's egress policy allows) standing in for a Slack channel.

The server's workers evaluate it once a minute; the demo evaluates it once at once, as the
"Evaluate now" button does, and shows what the "channel" received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from assay.demo.online import JUDGE_NAME

MONITOR_NAME = "helpfulness-falls"
#: A strict bar, so that the demo's judged traces (about 0.8) show an alert reaching the channel.
THRESHOLD = 0.9


class DemoChannel:
    """Takes the monitor's webhooks on loopback, as a Slack incoming webhook would."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> DemoChannel:
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/demo-channel"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def set_up_monitor(base_url: str, project: str, webhook_url: str) -> dict[str, Any]:
    """The demo's monitor (made, or its webhook pointed at this run's channel), evaluated once:
    the monitor with its state and its evaluation."""
    body = {
        "name": MONITOR_NAME,
        "metric": "score_mean",
        "params": {"score": JUDGE_NAME, "source": "llm"},
        "window_minutes": 24 * 60,
        "threshold": THRESHOLD,
        "direction": "below",
        "webhook_url": webhook_url,
        "renotify_minutes": 60,
    }
    with httpx.Client(base_url=base_url, timeout=60) as client:
        listed = client.get(f"/api/v1/projects/{project}/monitors").json().get("items", [])
        existing = next((m for m in listed if m["name"] == MONITOR_NAME), None)
        if existing is None:
            made = client.post(f"/api/v1/projects/{project}/monitors", json=body)
            made.raise_for_status()
            monitor_id = int(made.json()["id"])
        else:
            monitor_id = int(existing["id"])
            client.patch(
                f"/api/v1/monitors/{monitor_id}", json={"webhook_url": webhook_url}
            ).raise_for_status()
        evaluated = client.post(f"/api/v1/monitors/{monitor_id}/evaluate")
        evaluated.raise_for_status()
        found: dict[str, Any] = evaluated.json()
        return found
