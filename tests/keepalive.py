"""One HTTP/1.1 connection held open on purpose, to see whether an answer closed it.

httpx reconnects silently when a server drops a keep-alive connection, which hides the harm a
reset does to real exporters; this client never reconnects, so a dropped connection fails the
next request.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson


class ConnectionLost(AssertionError):
    """The server closed (or reset) the connection instead of answering on it."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class KeepAlive:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host = f"{parts.hostname}:{parts.port}"
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.buffer = b""

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        return self.request("POST", path, body, headers)

    def get(self, path: str) -> Answer:
        return self.request("GET", path, b"", {})

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            head = self._read_until(b"\r\n\r\n")
        except OSError as exc:
            raise ConnectionLost(f"{method} {path}: {exc!r}") from None
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        answer_headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        size = int(answer_headers.get("content-length", "0"))
        payload = self._read_exactly(size)
        if answer_headers.get("connection", "").lower() == "close":
            raise ConnectionLost(f"{method} {path} answered {status} and closed the connection")
        return Answer(status, answer_headers, payload)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionLost("the server closed the connection")
        self.buffer += chunk

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data
