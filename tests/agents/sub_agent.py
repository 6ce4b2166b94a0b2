"""A sub-agent in a process of its own: an HTTP service that continues the caller's trace.

Run: python -m tests.agents.sub_agent ASSAY_URL PORT
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import assay


@assay.traced(type="tool")
def search(query: str) -> list[str]:
    return [f"result for {query}"]


@assay.traced(type="agent", name="sub-agent")
def research(task: str) -> str:
    return "; ".join(search(task))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with assay.propagation.continue_trace(dict(self.headers)):
            answer = research(body["task"])
        assay.flush(10)
        payload = json.dumps({"answer": answer}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    assay.init("distributed", url=sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    print("ready", flush=True)
    server.serve_forever()
