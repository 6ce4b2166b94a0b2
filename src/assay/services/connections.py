"""Provider connections: how a project's server-side judges reach a model provider.

Editors and administrators create and change them; anyone who may see the project may list
them, never with the key (its last four characters only). A key is sent only to the base URL it
was saved with: changing the URL without giving the key again is refused, so nobody can point a
stored key at a server of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assay.errors import NotFound, UserError
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.services.runtime import Runtime
from assay.services.secrets import last_four
from assay.store import online as online_store
from assay.store.database import Connection
from assay.store.engine import now_ns

#: Provider kinds and where each is reached when the connection names no base URL.
PROVIDERS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "mistral": "https://api.mistral.ai/v1",
    "ollama": "http://localhost:11434/v1",
    "openai-compatible": None,
}
MAX_KEY_CHARS = 1000


@dataclass(frozen=True)
class ModelAccess:
    """What a model call needs from a connection: only for the worker and "try", never shown."""

    connection_id: int
    provider: str
    base_url: str
    api_key: str
    default_model: str | None
    max_concurrency: int
    updated_ns: int


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise UserError(f"provider must be one of {', '.join(PROVIDERS)}; got {provider!r}")


def _base_url(provider: str, base_url: str | None) -> str:
    url = (base_url or "").strip().rstrip("/") or PROVIDERS[provider]
    if not url:
        raise UserError(f"a {provider} connection needs a base_url, e.g. http://host:8000/v1")
    return url


def _check_key(api_key: str | None) -> None:
    if api_key is not None and (len(api_key) > MAX_KEY_CHARS or "\n" in api_key):
        raise UserError("api_key is not a valid key (one line, at most 1000 characters)")


def _connection_of(
    conn: Connection, who: Principal, connection_id: int, role: str
) -> dict[str, Any]:
    found = online_store.public_connection(conn, connection_id)
    if found is None or not who.may_see(found["project"]):
        raise NotFound(f"connection {connection_id} does not exist")
    who.require(found["project"], role)
    return found


def create_connection(
    rt: Runtime,
    who: Principal,
    project: str,
    *,
    name: str,
    provider: str,
    base_url: str | None,
    api_key: str | None,
    default_model: str | None,
    max_concurrency: int = 4,
) -> dict[str, Any]:
    _check_provider(provider)
    _check_key(api_key)
    url = _base_url(provider, base_url)
    rt.egress.check_url(url)
    stamp = now_ns()
    values = {
        "name": name,
        "provider": provider,
        "base_url": url,
        "default_model": default_model,
        "max_concurrency": max_concurrency,
        "key_last4": last_four(api_key) if api_key else None,
        "key_encrypted": rt.secrets.seal(api_key) if api_key else None,
        "created_ns": stamp,
        "updated_ns": stamp,
    }
    with rt.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        if online_store.connection_id_by_name(conn, found, name) is not None:
            raise UserError(f"project {project!r} already has a connection named {name!r}")
        created = online_store.insert_connection(conn, found, values)
        return _connection_of(conn, who, created, "editor")


def list_connections(rt: Runtime, who: Principal, project: str) -> list[dict[str, Any]]:
    with rt.read() as conn:
        return online_store.list_connections(conn, project_id(conn, who, project))


def get_connection(rt: Runtime, who: Principal, connection_id: int) -> dict[str, Any]:
    with rt.read() as conn:
        return _connection_of(conn, who, connection_id, "viewer")


def update_connection(
    rt: Runtime, who: Principal, connection_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a connection. A new base URL (or provider) needs ``api_key`` in the same change:
    the stored key is never sent anywhere but where it was saved for."""
    changes = {k: v for k, v in changes.items() if v is not None}
    with rt.write() as conn:
        current = _connection_of(conn, who, connection_id, "editor")
        provider = changes.get("provider", current["provider"])
        _check_provider(provider)
        url = current["base_url"]
        if "base_url" in changes or "provider" in changes:
            url = _base_url(provider, changes.get("base_url") or current["base_url"])
        api_key = changes.get("api_key")
        _check_key(api_key)
        moved = url != current["base_url"] or provider != current["provider"]
        if moved and current["has_key"] and api_key is None:
            raise UserError(
                "changing a connection's base URL or provider needs its API key again: send "
                "api_key with the new base_url (a stored key is only sent where it was saved for)"
            )
        rt.egress.check_url(url)
        values: dict[str, Any] = {"provider": provider, "base_url": url, "updated_ns": now_ns()}
        for key in ("name", "default_model", "max_concurrency"):
            if key in changes:
                values[key] = changes[key]
        if api_key is not None:
            values["key_last4"] = last_four(api_key) if api_key else None
            values["key_encrypted"] = rt.secrets.seal(api_key) if api_key else None
        online_store.update_connection(conn, connection_id, values)
        return _connection_of(conn, who, connection_id, "editor")


def delete_connection(rt: Runtime, who: Principal, connection_id: int) -> None:
    with rt.write() as conn:
        _connection_of(conn, who, connection_id, "editor")
        online_store.delete_connection(conn, connection_id)


def resolve_connection(conn: Connection, project_id_: int, given: int | str | None) -> int | None:
    """A connection of the project, named by id or name (None: none)."""
    if given is None or given == "":
        return None
    if isinstance(given, int) or (isinstance(given, str) and given.isdigit()):
        found = online_store.connection_secret(conn, int(given))
        if found is not None and found["project_id"] == project_id_:
            return int(given)
        if isinstance(given, int):
            raise UserError(f"connection {given} is not a connection of this project")
    named = online_store.connection_id_by_name(conn, project_id_, str(given))
    if named is None:
        raise UserError(f"this project has no connection {given!r}; create it first")
    return named


def model_access(rt: Runtime, conn: Connection, connection_id: int) -> ModelAccess:
    """The decrypted key and where it may be sent (the worker and "try" only)."""
    found = online_store.connection_secret(conn, connection_id)
    if found is None:
        raise UserError(f"connection {connection_id} was deleted; give the evaluator another")
    sealed = found["key_encrypted"]
    return ModelAccess(
        connection_id=connection_id,
        provider=found["provider"],
        base_url=found["base_url"],
        api_key=rt.secrets.open(sealed) if sealed else "",
        default_model=found["default_model"],
        max_concurrency=int(found["max_concurrency"]),
        updated_ns=int(found["updated_ns"]),
    )
