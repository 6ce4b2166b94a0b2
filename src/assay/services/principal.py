"""Who is acting: an API key, a signed-in user, the open mode's local user, or the operator
at the command line — one type, so every use case checks the same rule for all of them.

A principal has a role in every project (administrators, keys for every project, the open
mode), or a role per project (users, keys for one project), or both (a user's grants). Roles
rise in the order of :data:`ROLES`; a higher role may do everything a lower one may.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from assay.errors import Forbidden, ProjectNotFound

ROLES = ("viewer", "annotator", "editor", "admin")

Kind = Literal["key", "user", "local", "operator"]


def _rank(role: str | None) -> int:
    return -1 if role is None else ROLES.index(role)


@dataclass(frozen=True)
class Principal:
    kind: Kind
    #: The key's label or the user's name: the author of what they change. None for the
    #: API's open mode, whose changes have no author.
    name: str | None
    #: The role in every project, if any (administrators, keys for every project).
    every_project: str | None = None
    #: Project name to role (a user's grants, or the one project of a scoped key).
    roles: Mapping[str, str] = field(default_factory=dict)
    user_id: int | None = None
    #: The web session's CSRF token (empty for API callers).
    csrf_token: str = ""

    # --- the ways to be one --------------------------------------------------------------

    @classmethod
    def for_key(cls, name: str, role: str, project: str | None) -> Principal:
        if project is None:
            return cls(kind="key", name=name, every_project=role)
        return cls(kind="key", name=name, roles={project: role})

    @classmethod
    def for_user(
        cls,
        user_id: int,
        name: str,
        *,
        is_admin: bool,
        roles: Mapping[str, str],
        csrf_token: str = "",
    ) -> Principal:
        return cls(
            kind="user",
            name=name,
            every_project="admin" if is_admin else None,
            roles={} if is_admin else dict(roles),
            user_id=user_id,
            csrf_token=csrf_token,
        )

    @classmethod
    def local(cls, *, name: str | None = "local", csrf_token: str = "") -> Principal:
        """The open mode (loopback, no keys, no users): one caller with every role."""
        return cls(kind="local", name=name, every_project="admin", csrf_token=csrf_token)

    @classmethod
    def operator(cls) -> Principal:
        """Whoever runs the CLI on the server's machine: they hold the database itself."""
        return cls(kind="operator", name=None, every_project="admin")

    # --- what it may do ------------------------------------------------------------------

    @property
    def is_admin(self) -> bool:
        return self.every_project == "admin"

    @property
    def open_mode(self) -> bool:
        return self.kind == "local"

    @property
    def author(self) -> str | None:
        return self.name

    @property
    def only_project(self) -> str | None:
        """The single project a scoped API key may touch (None: not such a key)."""
        if self.kind == "key" and self.every_project is None and len(self.roles) == 1:
            return next(iter(self.roles))
        return None

    def role_in(self, project: str) -> str | None:
        mine = self.roles.get(project)
        return self.every_project if _rank(self.every_project) >= _rank(mine) else mine

    def may_see(self, project: str) -> bool:
        return self.role_in(project) is not None

    def can(self, project: str, role: str) -> bool:
        return _rank(self.role_in(project)) >= _rank(role)

    def visible(self, projects: Iterable[str]) -> list[str]:
        return [name for name in projects if self.may_see(name)]

    def require(self, project: str, role: str = "viewer") -> None:
        """Raise unless this principal has ``role`` (or higher) in ``project``.

        A project it may not see raises :class:`ProjectNotFound` (hidden), worded as for a
        project that does not exist; a role too low raises :class:`Forbidden`."""
        if not self.may_see(project):
            raise ProjectNotFound(project, hidden=True)
        if not self.can(project, role):
            raise Forbidden(self._too_low(project, role))

    def require_somewhere(self, role: str) -> None:
        """Raise :class:`Forbidden` unless some project allows ``role`` (ingest, before the
        spans say which projects they are for)."""
        best = max([_rank(self.every_project), *(_rank(r) for r in self.roles.values())])
        if best < _rank(role):
            raise Forbidden(self._too_low(None, role))

    def require_admin(self, message: str = "only administrators may do this") -> None:
        if not self.is_admin:
            raise Forbidden(message)

    def _too_low(self, project: str | None, role: str) -> str:
        if self.kind == "key":
            mine = self.role_in(project) if project else (self.every_project or self._any_role())
            return f"this API key has role {mine!r}; {role!r} is needed"
        if project is None:
            return f"this needs the role {role!r}"
        return f"your role in {project!r} is {self.role_in(project)!r}; this needs {role!r}"

    def _any_role(self) -> str | None:
        return max(self.roles.values(), key=_rank, default=None)
