"""Typed errors. Messages tell the user what to do next."""

from __future__ import annotations


class AssayError(Exception):
    """Base class for every error Assay raises on purpose."""


class UserError(AssayError):
    """A mistake the user can fix; the CLI prints the message without a traceback."""


class ConfigError(UserError):
    """A setting is missing or invalid."""


class PromptUnavailable(AssayError):
    """`assay.prompt()` could neither fetch a prompt from the server nor find it in the disk
    cache; the message says which prompt and why."""


class StorageError(AssayError):
    """The database refused or failed an operation."""


class IngestError(UserError):
    """An OTLP payload could not be accepted; the message names the problem."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AccessError(AssayError):
    """A use case refused the caller: the thing is not there for them, or their role is too low.

    Raised by the service layer; the REST API answers 404/403 JSON, the web UI its error page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AccessError):
    """The thing does not exist, or the caller may not see it (the two look alike)."""


class ProjectNotFound(NotFound):
    """A project that does not exist (``hidden`` False) or that the caller may not see
    (``hidden`` True): the API answers 404 for both, so names are not disclosed."""

    def __init__(self, project: str, *, hidden: bool) -> None:
        super().__init__(f"project {project!r} does not exist")
        self.project = project
        self.hidden = hidden


class Forbidden(AccessError):
    """The caller may see the thing but their role does not allow this."""


class Conflict(AccessError):
    """The request clashes with the current state (a name already taken, an item that already
    has its reviews): the API answers 409; the message says what to do instead."""

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message)
        self.code = code


class Ambiguous(Conflict):
    """The request names more than one thing the caller may see (a trace id held by several
    of their projects); the message says how to name just one."""

    def __init__(self, message: str, *, code: str = "ambiguous") -> None:
        super().__init__(message, code=code)
