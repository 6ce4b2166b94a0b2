"""Typed errors. Messages tell the user what to do next."""

from __future__ import annotations


class AssayError(Exception):
    """Base class for every error Assay raises on purpose."""


class UserError(AssayError):
    """A mistake the user can fix; the CLI prints the message without a traceback."""


class ConfigError(UserError):
    """A setting is missing or invalid."""


class StorageError(AssayError):
    """The database refused or failed an operation."""


class IngestError(UserError):
    """An OTLP payload could not be accepted; the message names the problem."""

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
