"""How uvicorn serves Assay: timeouts, a connection cap, and no forwarded headers at that level.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but has no timeout for a
connection that never finishes its request headers, and none for a request body; and its
``limit_concurrency`` answers 503 to requests while the idle connections behind them still
hold their file descriptors. :class:`GuardedHttp` adds the missing pieces to uvicorn's own
protocol: a deadline for each request's headers (from the connection, or from the request's
first byte) and a hard cap on open connections. Bodies get their deadline in the app
(:mod:`assay.server.guards`), where a 408 can be answered.

``assay server`` and the test suite's live server both build their uvicorn config here, so
what is tested is what runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # uvicorn[standard]'s faster parser, when installed; the behaviour is the same.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - httptools is a dependency of the server extra
    _Base = H11Protocol  # type: ignore[assignment,misc]

from assay.settings import Settings


class GuardedHttp(_Base):
    """uvicorn's HTTP/1.1 protocol with a header deadline and a cap on connections."""

    header_timeout: float = 10.0
    max_connections: int = 500

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            # Refused before reading anything: the cheapest answer, and it frees the descriptor.
            self.transport.close()
            return
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers():
            if self._header_timer is None:
                self._arm_header_timer()  # the next request's deadline runs from its first byte
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Between requests uvicorn's keep-alive timeout applies.
        self._cancel_header_timer()

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or bool(self.cycle.response_complete)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and not self.transport.is_closing():
            self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedHttp]:
    """The protocol class carrying this server's limits (uvicorn instantiates it per
    connection, so the limits travel as class attributes)."""
    return type(
        "AssayHttp",
        (GuardedHttp,),
        {
            "header_timeout": float(settings.header_timeout_seconds),
            "max_connections": settings.max_connections,
        },
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run`` besides the app and address."""
    return {
        "http": protocol_for(settings),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections,
        # Forwarded headers are read by the app, from the proxies ASSAY_TRUSTED_PROXIES names
        # only; uvicorn's own reading would believe any local process.
        "proxy_headers": False,
        "server_header": False,
        "h11_max_incomplete_event_size": 64 * 1024,
        "timeout_graceful_shutdown": 10,
    }


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
    options = uvicorn_options(settings) | extra
    return uvicorn.Config(app, host=settings.host, port=settings.port, **options)
