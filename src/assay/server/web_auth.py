"""Who is looking at a page: a signed-in user, or the single local user of the open mode.

The contract every page uses:

- ``viewer(request)`` (a FastAPI dependency) returns the :class:`Viewer`, or raises
  :class:`LoginRequired` (the UI answers with a redirect to ``/login``).
- ``viewer.require(project, role)`` raises :class:`Forbidden` (403 page) when the viewer's role
  in that project is below ``role``; ``viewer.may_see(project)`` filters lists.
- ``csrf_protect(request)`` (a dependency on every state-changing UI route) refuses a request
  whose form field ``csrf_token`` or header ``X-CSRF-Token`` does not match the viewer's token.

Signed-in mode: the ``assay_session`` cookie holds a random token; the store keeps its SHA-256
with the user, a per-session CSRF token, and idle and absolute expiry. The cookie is HttpOnly
and SameSite=Lax: Lax, not Strict, so that a link to a trace pasted in a chat opens signed in;
Lax already keeps the cookie off cross-site POSTs, and every state-changing route also checks
the CSRF token and the Origin (or Referer) header.

The open mode (loopback bind, no users and no API keys) has one local viewer with every role.
It matches the API's open mode, which also ends with the first API key: once a key or a user
exists, the UI asks for a sign-in, and the login page says to run
``assay users create NAME --admin`` when nobody can sign in yet.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from assay.server.auth import runtime_of
from assay.server.runtime import Runtime
from assay.store import users as user_store
from assay.store.keys import ROLES

CSRF_COOKIE = "assay_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "assay_session"
#: last_seen is written at most this often per session, not on every page.
TOUCH_EVERY_NS = 60 * 10**9


class LoginRequired(Exception):
    """No signed-in user, and the open mode does not apply."""


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Viewer:
    #: None in the open mode.
    user_id: int | None
    name: str
    is_admin: bool
    #: Project name to role, for users who are not admins.
    roles: Mapping[str, str] = field(default_factory=dict)
    csrf_token: str = ""
    open_mode: bool = False

    def role_in(self, project: str) -> str | None:
        if self.is_admin:
            return "admin"
        return self.roles.get(project)

    def may_see(self, project: str) -> bool:
        return self.role_in(project) is not None

    def can(self, project: str, role: str) -> bool:
        mine = self.role_in(project)
        return mine is not None and ROLES.index(mine) >= ROLES.index(role)

    def require(self, project: str, role: str = "viewer") -> None:
        if not self.may_see(project):
            # The same answer as for a project that does not exist: names are not disclosed.
            raise Forbidden(f"there is no project {project!r} you can see")
        if not self.can(project, role):
            raise Forbidden(
                f"your role in {project!r} is {self.role_in(project)!r}; this needs {role!r}"
            )


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


def session_viewer(runtime: Runtime, token: str) -> Viewer | None:
    """The signed-in user of a session token, or None (unknown, expired, idle, disabled)."""
    idle_ns = runtime.settings.session_idle_hours * 3600 * 10**9
    with runtime.engine.connect() as conn:
        found = user_store.find_session(conn, token, idle_ns=idle_ns)
        if found is None:
            return None
        roles = {} if found["is_admin"] else user_store.roles_of(conn, found["user_id"])
    if time.time_ns() - found["last_seen_ns"] > TOUCH_EVERY_NS:
        with runtime.updates.begin() as conn:
            user_store.touch_session(conn, found["token_hash"])
    return Viewer(
        user_id=found["user_id"],
        name=found["name"],
        is_admin=bool(found["is_admin"]),
        roles=roles,
        csrf_token=found["csrf_token"],
    )


def viewer(request: Request) -> Viewer:
    """FastAPI dependency (sync: it may read the store, so FastAPI runs it in a thread)."""
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    found = session_viewer(runtime, token) if token else None
    if found is None:
        if not runtime.open_mode():
            raise LoginRequired()
        found = Viewer(
            user_id=None,
            name="local",
            is_admin=True,
            csrf_token=_csrf_cookie(request),
            open_mode=True,
        )
    request.state.viewer = found
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
    cached = getattr(request.state, "viewer", None)
    current = cached if isinstance(cached, Viewer) else await run_in_threadpool(viewer, request)
    if not same_origin(request):
        raise Forbidden("this request came from another site and was refused")
    if not tokens_match(await sent_csrf_token(request), current.csrf_token):
        raise Forbidden("the form's security token is missing or stale; reload the page and retry")
