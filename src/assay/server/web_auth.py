"""Who is looking at a page: a signed-in user, or the single local user of the open mode.

The contract every page uses:

- ``viewer(request)`` (a FastAPI dependency) returns the :class:`Viewer`, or raises
  :class:`LoginRequired` (the UI answers with a redirect to ``/login``).
- ``viewer.require(project, role)`` raises :class:`Forbidden` (403 page) when the viewer's role
  in that project is below ``role``; ``viewer.may_see(project)`` filters lists.
- ``csrf_protect(request)`` (a dependency on every state-changing UI route) refuses a request
  whose form field ``csrf_token`` or header ``X-CSRF-Token`` does not match the viewer's token.

The open mode (loopback bind, no users and no API keys) has one local viewer with every role.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import Request

from assay.server.auth import runtime_of
from assay.store.keys import ROLES

CSRF_COOKIE = "assay_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


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


def _csrf_cookie(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token  # set on the response by the UI middleware
    return token


def viewer(request: Request) -> Viewer:
    cached = getattr(request.state, "viewer", None)
    if isinstance(cached, Viewer):
        return cached
    runtime = runtime_of(request)
    if runtime.allow_open and not runtime.keys_exist():
        found = Viewer(
            user_id=None,
            name="local",
            is_admin=True,
            csrf_token=_csrf_cookie(request),
            open_mode=True,
        )
    else:
        raise LoginRequired()
    request.state.viewer = found
    return found


async def csrf_protect(request: Request) -> None:
    """Double-submit check: the token in the form (or header) must equal the viewer's."""
    current = viewer(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    if not sent or not current.csrf_token or not hmac.compare_digest(sent, current.csrf_token):
        raise Forbidden("the form's security token is missing or stale; reload the page and retry")
