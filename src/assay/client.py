"""A small client for Assay's REST API, configured like the SDK (ASSAY_URL, ASSAY_API_KEY)."""

from __future__ import annotations

from typing import IO, Any

import httpx

from assay.errors import AssayError, UserError
from assay.settings import setting


class ApiError(AssayError):
    """The server refused a request; the message is the server's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(
        self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = str(setting("url", url)).rstrip("/")
        key = setting("api_key", api_key) or None
        self.api_key = key
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UserError(
                f"cannot reach the Assay server at {self.url} ({exc}); start it with "
                "`assay server` or set ASSAY_URL"
            ) from None
        if response.is_success:
            return response.json() if response.content else None
        try:
            message = response.json()["error"]["message"]
        except Exception:
            message = response.text[:500]
        raise ApiError(response.status_code, f"{message} (HTTP {response.status_code})")

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def download(
        self, path: str, handle: IO[bytes], *, params: dict[str, Any] | None = None
    ) -> httpx.Headers:
        """Stream a GET's body into ``handle`` (a file export); the response's headers."""
        try:
            with self._http.stream("GET", path, params=params) as response:
                if not response.is_success:
                    response.read()
                    try:
                        message = response.json()["error"]["message"]
                    except Exception:
                        message = response.text[:500]
                    raise ApiError(response.status_code, f"{message} (HTTP {response.status_code})")
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                return response.headers
        except httpx.HTTPError as exc:
            raise UserError(
                f"cannot reach the Assay server at {self.url} ({exc}); start it with "
                "`assay server` or set ASSAY_URL"
            ) from None

    def close(self) -> None:
        self._http.close()
