"""ASGI guards around the whole app, outermost first:

- :class:`Nosniff` — every answer says ``X-Content-Type-Options: nosniff``, so a browser never
  reads a JSON or static body as a page or a script.
- :class:`ErrorGuard` — an exception no handler answered becomes a JSON 500 (a page for the
  UI), logged with its traceback, on a connection that stays usable. Starlette's own last
  resort re-raises to the server, and uvicorn then closes the keep-alive connection.
- :class:`HostGuard` — in the open mode only loopback names (and ASSAY_ALLOWED_HOSTS) may be
  in ``Host``: the DNS-rebinding defence, since nothing else guards an open server.
- :class:`ForwardedFor` — ``X-Forwarded-For``/``-Proto`` are believed from the proxies
  ASSAY_TRUSTED_PROXIES names, and from nobody else.
- :class:`RefuseNul` — a URL holding NUL gets a 400 before any route sees it.
- :class:`BodyDeadline` — a request body must arrive within ASSAY_BODY_TIMEOUT_SECONDS, or
  the answer is 408 and the connection closes (uvicorn has no body timeout).
- :class:`RefuseNulForm` — a web form (urlencoded or multipart) whose field name or value
  holds NUL gets a 400 naming the field; inside the body deadline, as it reads the body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from assay.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("assay.server")

#: Host names that only ever mean this machine.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _json_answer(status: int, code: str, message: str, *, close: bool = False) -> list[Message]:
    body = orjson.dumps({"error": {"code": code, "message": message}})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


async def _send_all(send: Send, messages: Iterable[Message]) -> None:
    for message in messages:
        await send(message)


class Nosniff:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_nosniff)


#: Builds the UI's error page for a path outside the API: (status, title, message) -> page.
PageMaker = Callable[[int, str, str], Response]


class ErrorGuard:
    def __init__(self, app: ASGIApp, *, is_api: Callable[[str], bool], page: PageMaker) -> None:
        self.app = app
        self.is_api = is_api
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # nobody is left to answer
        except Exception:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:
                raise  # half an answer is out: only closing the connection ends it cleanly
            message = "the server failed to answer this request; the server log has the cause"
            if self.is_api(scope["path"]):
                await _send_all(send, _json_answer(500, "internal_error", message))
            else:
                await self.page(500, "Something went wrong", message)(scope, receive, send)


def parse_networks(entries: Iterable[str], setting: str) -> list[Network]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            raise ConfigError(
                f"{setting}: {entry!r} is not an address or a network (e.g. 10.0.0.5, "
                "10.0.0.0/8, ::1); fix it or unset the variable"
            ) from None
    return networks


def _in(networks: list[Network], address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def host_name(host_header: str) -> str:
    """``Host`` without its port, lower case: ``[::1]:8600`` -> ``[::1]``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostGuard:
    """Refuses other host names while the server is open (no key, no user, loopback bind)."""

    def __init__(
        self, app: ASGIApp, *, allowed: Iterable[str], open_mode: Callable[[], bool]
    ) -> None:
        self.app = app
        self.allowed = LOOPBACK_HOSTS | {host_name(name) for name in allowed}
        self.open_mode = open_mode

    def _served(self, name: str) -> bool:
        # A loopback address written out (127.0.0.2, say) cannot be rebound: only names can.
        if name in self.allowed:
            return True
        try:
            return ipaddress.ip_address(name.strip("[]")).is_loopback
        except ValueError:
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hosts = [value for key, value in scope.get("headers", []) if key.lower() == b"host"]
            # Two Host headers are a smuggling attempt: the name checked must be the one used.
            host = hosts[0].decode("latin-1") if len(hosts) == 1 else "(several Host headers)"
            if (
                hosts
                and not self._served(host_name(host))
                and await run_in_threadpool(self.open_mode)
            ):
                message = (
                    f"host {host[:100]!r} is not served: without sign-in this server answers "
                    "only to localhost, 127.0.0.1 and [::1] (a defence against DNS rebinding). "
                    "Add the name to ASSAY_ALLOWED_HOSTS, or create a user or an API key."
                )
                await _send_all(send, _json_answer(421, "host_not_allowed", message))
                return
        await self.app(scope, receive, send)


class ForwardedFor:
    """The client's address and scheme as a trusted proxy reports them.

    From a trusted peer, ``X-Forwarded-For`` is read from the right: the first address that is
    not itself a trusted proxy is the client (addresses further left were written by the
    client and could be anything)."""

    def __init__(self, app: ASGIApp, *, proxies: list[Network]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.proxies and client and _in(self.proxies, client[0]):
            forwarded = _header(scope, b"x-forwarded-for")
            if forwarded:
                hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
                for hop in reversed(hops):
                    if not _in(self.proxies, hop):
                        scope["client"] = (hop, 0)
                        break
            proto = _header(scope, b"x-forwarded-proto")
            if proto:
                scheme = proto.split(",")[-1].strip().lower()
                if scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)


class RefuseNul:
    """A URL holding NUL (``%00``) is refused: no name or filter contains one, and PostgreSQL
    cannot even compare text holding it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\0" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            message = "the URL contains a NUL character (%00), which no name or value may hold"
            await _send_all(send, _json_answer(400, "bad_request", message))
            return
        await self.app(scope, receive, send)


#: The bodies of web forms, whose fields become names and text in the store.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


async def _nul_field(scope: Scope, messages: list[Message]) -> str | None:
    """The first form field of the body whose name or value holds NUL (a file's name counts,
    not its content); None when there is none or the form cannot be read (the route says
    why)."""
    pending = iter(messages)

    async def replay() -> Message:
        return next(pending, {"type": "http.disconnect"})

    try:
        form = await Request(scope, replay).form()
    except (MultiPartException, ClientDisconnect, ValueError):
        return None
    try:
        for name, value in form.multi_items():
            text = (value.filename or "") if isinstance(value, UploadFile) else value
            if "\0" in name or "\0" in text:
                return name
        return None
    finally:
        await form.close()


class RefuseNulForm:
    """A web form holding NUL in a field is refused before any route reads it (PostgreSQL text
    cannot hold NUL; SQLite would keep a name no one can type). The body is read once here and
    handed on unchanged; the API's JSON bodies are checked by their models (server/bounds.py)."""

    def __init__(self, app: ASGIApp, *, is_api: Callable[[str], bool], page: PageMaker) -> None:
        self.app = app
        self.is_api = is_api
        self.page = page

    def _is_form(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return False
        media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
        return media in FORM_TYPES and not self.is_api(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._is_form(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        complete = messages[-1]["type"] == "http.request"
        field = await _nul_field(scope, messages) if complete else None
        pending = iter(messages)

        async def replay() -> Message:
            following = next(pending, None)
            return following if following is not None else await receive()

        if field is not None:
            shown = field[:100].replace("\0", "\\x00")
            refusal = f"the form field '{shown}' contains a NUL character, which no value may hold"
            await self.page(400, "Bad request", refusal)(scope, replay, send)
            return
        await self.app(scope, replay, send)


class BodyDeadline:
    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()  # waiting for a disconnect: no deadline
            if timed_out:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out and not started:
                return  # the 408 below answers instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not (timed_out and not started):
                raise
        if timed_out and not started:
            log.info("request body too slow: %s %s", scope["method"], scope["path"])
            message = (
                f"the request body did not arrive within {self.seconds:g} seconds; "
                "send it faster or in smaller requests"
            )
            await _send_all(send, _json_answer(408, "body_timeout", message, close=True))
