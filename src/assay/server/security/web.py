"""Web UI callers: a signed-in user (session cookie), or the single local user of the open mode.

The contract every page uses:

- ``web_principal(request)`` (a FastAPI dependency) returns the
  :class:`~assay.services.principal.Principal`, or raises :class:`LoginRequired` (the UI
  answers with a redirect to ``/login``). The services check its roles; the templates see it
  as ``viewer``.
- ``csrf_protect(request)`` (a dependency on every state-changing UI route) refuses a request
  whose form field ``csrf_token`` or header ``X-CSRF-Token`` does not match the caller's token.

Signed-in mode: the ``assay_session`` cookie holds a random token; the store keeps its SHA-256
with the user, a per-session CSRF token, and idle and absolute expiry. The cookie is HttpOnly
and SameSite=Lax: Lax, not Strict, so that a link to a trace pasted in a chat opens signed in;
Lax already keeps the cookie off cross-site POSTs, and every state-changing route also checks
the CSRF token and the Origin (or Referer) header.

The open mode (loopback bind, no users and no API keys) has one local user with every role.
It matches the API's open mode, which also ends with the first API key: once a key or a user
exists, the UI asks for a sign-in, and the login page says to run
``assay users create NAME --admin`` when nobody can sign in yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from assay.errors import Forbidden
from assay.server.state import runtime_of
from assay.services import accounts
from assay.services.principal import Principal

CSRF_COOKIE = "assay_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "assay_session"


class LoginRequired(Exception):
    """No signed-in user, and the open mode does not apply."""


def cookies_secure(request: Request) -> bool:
    """Whether our cookies carry Secure: on HTTPS, or behind a TLS-terminating proxy when
    ASSAY_SECURE_COOKIES says so."""
    return request.url.scheme == "https" or runtime_of(request).settings.secure_cookies


def _csrf_cookie(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token  # set on the response by the UI middleware
    return token


def login_csrf_token(request: Request) -> str:
    """The token for forms shown before anyone is signed in (the login form): the same
    double-submit cookie as the open mode's."""
    return _csrf_cookie(request)


def web_principal(request: Request) -> Principal:
    """FastAPI dependency (sync: it may read the store, so FastAPI runs it in a thread)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    found = accounts.principal_for_session(runtime, token) if token else None
    if found is None:
        if not runtime.open_mode():
            raise LoginRequired()
        found = Principal.local(csrf_token=_csrf_cookie(request))
    request.state.principal = found
    return found


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from one of our own pages.

    Browsers send Origin on every cross-site POST (and Referer, with our same-origin referrer
    policy, only to ourselves); a request with neither is not a browser's cross-site one, and
    must still carry the token."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source == "null":
        return False
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(source).netloc.lower() == host.lower()


async def sent_csrf_token(request: Request) -> str:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    return sent


def tokens_match(sent: str, expected: str) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(sent, expected)


async def csrf_protect(request: Request) -> None:
    """The token in the form (or header) must equal the viewer's, and the request must come
    from our own origin."""
    cached = getattr(request.state, "principal", None)
    current = (
        cached if isinstance(cached, Principal) else await run_in_threadpool(web_principal, request)
    )
    if not same_origin(request):
        raise Forbidden("this request came from another site and was refused")
    if not tokens_match(await sent_csrf_token(request), current.csrf_token):
        raise Forbidden("the form's security token is missing or stale; reload the page and retry")


# --- sign-in throttling ---------------------------------------------------------------------

DEVICE_COOKIE = "assay_device"


class SignInThrottle:
    """Failed sign-ins, remembered in memory (a restart forgets), in the way OWASP's "device
    cookies" recommend:

    - A *client* is an address (as a trusted proxy reports it, see ASSAY_TRUSTED_PROXIES) and a
      browser (its pre-login cookie). ``per_client`` failures for one account lock that pair
      out for the window; any other client, even behind the same NAT, is not affected.
    - A browser in which the account signed in before carries a *device cookie* for it; it is
      trusted: only its own failures count against it.
    - Untrusted clients share a per-account budget: past ``account_free`` failures in the
      window, the account's password is checked for them at most once per
      ``account_interval`` seconds, whoever asks. An attempt waits for its turn (up to
      ``max_wait``), so a correct password from a fresh browser still gets in, only slower;
      guessing is bounded per account however many addresses or cookies an attacker rotates.
    """

    def __init__(
        self,
        *,
        per_client: int = 5,
        account_free: int = 20,
        account_interval: float = 1.0,
        max_wait: float = 5.0,
        window: float = 900.0,
    ) -> None:
        self.per_client = per_client
        self.account_free = account_free
        self.account_interval = account_interval
        self.max_wait = max_wait
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._next_turn: dict[str, float] = {}
        self._secret = secrets.token_bytes(32)
        self._lock = threading.Lock()

    # --- who is asking

    def device_token(self, name: str) -> str:
        """The device cookie's value for ``name``: set after a successful sign-in."""
        return hmac.new(self._secret, name.lower().encode(), hashlib.sha256).hexdigest()

    def trusted(self, name: str, device: str) -> bool:
        return bool(device) and hmac.compare_digest(device, self.device_token(name))

    @staticmethod
    def client(address: str, browser: str, device: str) -> str:
        return f"{address}|{device or browser}"

    # --- counting

    def _recent(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and times[0] < now - self.window:
            times.popleft()
        return len(times)

    def blocked(self, name: str, client: str) -> bool:
        """Whether this client has used up its failures for this account."""
        with self._lock:
            return self._recent(f"c:{name.lower()}|{client}", time.monotonic()) >= self.per_client

    async def turn(self, name: str, trusted: bool) -> bool:
        """Wait for this attempt's turn at the account's budget; False when the queue is
        longer than ``max_wait`` (the caller answers 429 and the client retries later)."""
        if trusted:
            return True
        account = name.lower()
        with self._lock:
            now = time.monotonic()
            if self._recent(f"a:{account}", now) < self.account_free:
                return True
            slot = max(now, self._next_turn.get(account, now))
            if slot - now > self.max_wait:
                return False
            self._next_turn[account] = slot + self.account_interval
        await asyncio.sleep(slot - now)
        return True

    def failed(self, name: str, client: str, trusted: bool) -> None:
        now = time.monotonic()
        keys = [f"c:{name.lower()}|{client}"] + ([] if trusted else [f"a:{name.lower()}"])
        with self._lock:
            if len(self._failures) > 50_000:  # bound memory under a spray of names
                self._failures.clear()
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str, client: str) -> None:
        with self._lock:
            self._failures.pop(f"c:{name.lower()}|{client}", None)
