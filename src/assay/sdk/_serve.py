"""`assay agent serve`: the team's agent function over HTTP, for Assay to run with overrides.

The agent is a Python function of one input: ``fn(input)``. It may also take ``overrides`` (the
whole overrides object of the run) or ``params`` (its ``"params"`` part) as keyword arguments,
and may be ``async``. Inside it, ``assay.prompt(name)`` returns the prompt version the run asked
for (see `assay.sdk.prompt_overrides`), so the agent's code needs no change beyond fetching its
prompts through Assay.

The endpoint answers one request, ``POST /run`` with ``{"input": ..., "overrides": {...}}``,
and only with the token the server issued at registration (``Authorization: Bearer ...``,
compared in constant time): without it, or with another, the answer is 401 and the function
is not called. Every run is a trace of its own: a root span of type ``agent`` around the call,
under which the function's own spans (tools, LLM calls, sub-agents) nest; the answer carries
its trace id. The standard library's threading HTTP server is enough: runs are few and long,
and the base install (`pip install assay`) has no ASGI server.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import importlib.util
import inspect
import ipaddress
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

from assay.errors import UserError
from assay.sdk._config import flush
from assay.sdk._prompts import prompt_overrides
from assay.sdk._serialize import to_json
from assay.sdk._spans import span

log = logging.getLogger("assay.sdk")

RUN_PATH = "/run"
#: How often a serving agent tells the server it is up; past three of these unheard, the
#: server shows it as not seen.
HEARTBEAT_SECONDS = 10.0
MAX_REQUEST_BYTES = 10 * 1024 * 1024
#: Longest output (as JSON text) a run answers with; longer ones are cut and marked.
MAX_OUTPUT_CHARS = 1_000_000
#: How long a run waits for its spans to reach the server before answering (so the trace link
#: the caller shows opens a trace that is there).
FLUSH_SECONDS = 5.0

AgentFn = Callable[..., Any]


# --- the target ---------------------------------------------------------------------------------


def _module_of(spec: str) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"{spec}: no such file")
        name = f"assay_agent_{path.stem}"
        loaded = importlib.util.spec_from_file_location(name, path)
        if loaded is None or loaded.loader is None:
            raise UserError(f"{spec} cannot be imported as a Python file")
        module = importlib.util.module_from_spec(loaded)
        sys.modules[name] = module
        sys.path.insert(0, str(path.resolve().parent))
        loaded.loader.exec_module(module)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as error:
        if error.name and spec.startswith(error.name):
            raise UserError(
                f"no module {spec!r} (run from the directory that holds it, or give a "
                "file path: path/to/agent.py:FUNCTION)"
            ) from None
        raise


def load_target(target: str) -> tuple[AgentFn, str]:
    """The function ``target`` names and its name: ``MODULE:FUNCTION``,
    ``path/to/file.py:FUNCTION``, or a module or file alone, whose function is then the one
    named ``agent``, else the only public function the file itself defines."""
    spec, colon, attribute = target.rpartition(":")
    if not colon or not attribute.isidentifier():
        spec, attribute = target, ""
    module = _module_of(spec)
    if attribute:
        found = getattr(module, attribute, None)
        if not callable(found):
            raise UserError(f"{spec} has no function {attribute!r}")
        return found, attribute
    named = getattr(module, "agent", None)
    if callable(named):
        return named, "agent"
    own = [
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    ]
    if len(own) == 1:
        return getattr(module, own[0]), own[0]
    listed = ", ".join(own) or "none"
    raise UserError(
        f"{spec} has no function named 'agent' and not exactly one public function "
        f"({listed}): name it, as {spec}:FUNCTION"
    )


# --- one run ------------------------------------------------------------------------------------


def _call(fn: AgentFn, value: Any, overrides: Mapping[str, Any]) -> Any:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    kwargs: dict[str, Any] = {}
    if "overrides" in parameters:
        kwargs["overrides"] = dict(overrides)
    if "params" in parameters:
        kwargs["params"] = dict(overrides.get("params") or {})
    result = fn(value, **kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return result


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _jsonable(value: Any) -> Any:
    text = to_json(value, MAX_OUTPUT_CHARS)
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_once(
    fn: AgentFn, name: str, value: Any, overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Call the agent once, with ``overrides`` in force, inside a root span of its own: the
    output (as JSON data), the trace id, the error (``Type: message``, or None) and the
    duration in seconds. Never raises for the agent's own failure."""
    overrides = overrides or {}
    started = time.monotonic()
    output: Any = None
    error: str | None = None
    with span(name, type="agent") as root:
        root.log(input=value, metadata={"overrides": dict(overrides)})
        try:
            with prompt_overrides(overrides):
                output = _jsonable(_call(fn, value, overrides))
            root.log(output=output)
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"[:10_000]
            root.set_error(failure)
        trace_id = root.trace_id
    flush(FLUSH_SECONDS)
    return {
        "output": output,
        "trace_id": trace_id,
        "error": error,
        "duration": round(time.monotonic() - started, 6),
    }


# --- the HTTP endpoint -------------------------------------------------------------------------


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fn: AgentFn, name: str) -> None:
        super().__init__(address, _Handler)
        self.fn = fn
        self.agent_name = name
        #: The token the server issued; None until registered (every call is refused).
        self.token: str | None = None
        self.runs = 0
        self.refused = 0

    def authorized(self, header: str | None) -> bool:
        token = self.token
        if token is None or not header:
            return False
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())


class _Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: Mapping[str, Any], close: bool = False) -> None:
        payload = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != RUN_PATH:
            self._answer(404, {"error": f"only POST {RUN_PATH} is served here"}, close=True)
            return
        if not self.server.authorized(self.headers.get("authorization")):
            self.server.refused += 1
            self._answer(401, {"error": "a run needs the token the Assay server issued"}, True)
            return
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BYTES:
            self._answer(413, {"error": "the request is too large"}, close=True)
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict) or not isinstance(body.get("overrides") or {}, dict):
                raise ValueError("not an object")
        except ValueError:
            self._answer(400, {"error": 'send {"input": ..., "overrides": {...}}'})
            return
        self.server.runs += 1
        result = run_once(
            self.server.fn, self.server.agent_name, body.get("input"), body.get("overrides")
        )
        self._answer(200, result)

    def do_GET(self) -> None:
        self._answer(404, {"error": f"only POST {RUN_PATH} is served here"}, close=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("agent endpoint: " + format, *args)


# --- serving and registering -------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Registration:
    """The agent as the server knows it: its id and the token the server issued."""

    id: int
    name: str
    project: str
    url: str
    token: str


def register(client: Any, project: str, name: str, url: str, target: str) -> Registration:
    """Register (or register again, with a new token) the endpoint with the server."""
    made = client.post(
        f"/api/v1/projects/{quote(project, safe='')}/agents",
        json={"name": name, "url": url, "target": target[:500]},
    )
    return Registration(int(made["id"]), made["name"], project, made["url"], made["token"])


def send_heartbeat(client: Any, agent_id: int, online: bool) -> None:
    client.post(f"/api/v1/agents/{agent_id}/heartbeat", json={"online": online})


class Heartbeat(threading.Thread):
    """Tells the server every `HEARTBEAT_SECONDS` that the agent is up (last seen)."""

    def __init__(self, client: Any, agent_id: int, interval: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(name="assay-agent-heartbeat", daemon=True)
        self.client, self.agent_id, self.interval = client, agent_id, interval
        self.stopped = threading.Event()
        self.failures = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                send_heartbeat(self.client, self.agent_id, True)
                self.failures = 0
            except Exception as error:
                self.failures += 1
                if self.failures == 1:
                    log.warning("Assay: the agent's heartbeat failed (%s); still serving", error)

    def stop(self) -> None:
        self.stopped.set()
