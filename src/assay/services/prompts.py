"""The prompt registry: named prompts whose every save is an immutable version, and labels
(``production``, ``staging``, any name) that point at versions.

A version holds chat messages (system, user, assistant) whose contents are templates in the
judges' sandboxed language (``{{ customer }}``), a model and its parameters, tools, a response
format, a commit message and its author. Saving what the latest version already holds makes
no new version (pushing the same file twice is a no-op). Every move of a label is recorded
(who, when, from, to); an undo moves the label back and is recorded too, and undoing again
walks further back. Viewers read; editors save versions and move labels.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from assay.errors import Conflict, NotFound, UserError
from assay.scorers._template import PromptTemplate
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.store import prompts as prompt_store
from assay.store.database import Connection, Database

ROLES = ("system", "user", "assistant")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
MAX_MESSAGES = 200
MAX_CONTENT_CHARS = 200_000
#: Largest model parameters, tools or response format, in characters of JSON.
MAX_JSON_CHARS = 200_000
DEFAULT_LABEL = "production"


def check_name(name: str, what: str = "prompt name") -> str:
    pattern = NAME_PATTERN if what == "prompt name" else LABEL_PATTERN
    if not isinstance(name, str) or not re.match(pattern, name):
        raise UserError(
            f"{what} {name!r} must start with a letter or digit and hold only letters, digits, "
            f"'.', '_' and '-' (at most {200 if what == 'prompt name' else 100} characters)"
        )
    return name


def _json_part(raw: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise UserError(f"{key!r} must be {what}")
    if len(json.dumps(value)) > MAX_JSON_CHARS:
        raise UserError(f"{key!r} is larger than {MAX_JSON_CHARS:,} characters of JSON")
    return value


def check_definition(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The stored definition of a version (messages, model, params, tools, response_format)
    and its variables; UserError naming what cannot be used, template errors included."""
    messages = raw.get("messages")
    if not isinstance(messages, list) or not messages:
        raise UserError('a prompt needs \'messages\': [{"role": "system", "content": "..."}, ...]')
    if len(messages) > MAX_MESSAGES:
        raise UserError(f"a prompt has at most {MAX_MESSAGES} messages")
    checked = []
    variables: set[str] = set()
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UserError(f"messages[{i}] must be {{'role': ..., 'content': ...}}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise UserError(f"messages[{i}].role must be one of {', '.join(ROLES)}")
        if not isinstance(content, str) or len(content) > MAX_CONTENT_CHARS:
            raise UserError(f"messages[{i}].content must be text of at most {MAX_CONTENT_CHARS:,}")
        template = PromptTemplate(
            content, allowed=None, what=f"prompt messages[{i}] ({role})", allow_empty=True
        )
        variables |= template.names
        checked.append({"role": role, "content": content})
    model = raw.get("model")
    if model is not None and (not isinstance(model, str) or len(model) > 200):
        raise UserError("'model' must be a model name of at most 200 characters")
    definition = {
        "messages": checked,
        "model": model or None,
        "params": _json_part(raw, "params", dict, "an object of model parameters") or {},
        "tools": _json_part(raw, "tools", list, "a list of tool definitions"),
        "response_format": _json_part(raw, "response_format", dict, "an object"),
    }
    return definition, sorted(variables)


def _prompt(conn: Connection, who: Principal, project: str, name: str, role: str) -> int:
    pid = project_id(conn, who, project, role)
    if role == "editor":  # a write follows
        prompt_store.lock_prompts(conn, pid)
    found = prompt_store.find(conn, pid, name)
    if found is None:
        raise NotFound(f"prompt {name!r} does not exist in {project!r}")
    return int(found["id"])


def _document(
    conn: Connection, prompt_id: int, name: str, project: str, version: dict[str, Any]
) -> dict[str, Any]:
    labels = prompt_store.labels(conn, prompt_id)
    return {
        "name": name,
        "project": project,
        **version,
        "labels": [item["label"] for item in labels if item["version"] == version["version"]],
    }


def save_version(
    db: Database, who: Principal, project: str, raw: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """A new version of prompt ``raw["name"]`` (created on first save), editors only; with
    ``created`` False when the latest version already holds exactly this definition."""
    who.require(project, "editor")
    name = check_name(raw.get("name"))  # type: ignore[arg-type]
    definition, variables = check_definition(raw)
    definition["variables"] = variables
    message = raw.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 10_000):
        raise UserError("'message' must be text of at most 10,000 characters")
    with db.write() as conn:
        pid = ensure_project(conn, who, project, "editor")
        prompt_store.lock_prompts(conn, pid)
        found = prompt_store.find(conn, pid, name)
        prompt_id = int(found["id"]) if found else prompt_store.create(conn, pid, name)
        latest = int(found["version"]) if found else 0
        if latest:
            current = prompt_store.get_version(conn, prompt_id, latest)
            assert current is not None
            if all(current.get(key) == value for key, value in definition.items()):
                return _document(conn, prompt_id, name, project, current), False
        prompt_store.add_version(conn, prompt_id, latest + 1, definition, message, who.author)
        saved = prompt_store.get_version(conn, prompt_id, latest + 1)
        assert saved is not None
        return _document(conn, prompt_id, name, project, saved), True


def get_prompt(
    db: Database,
    who: Principal,
    project: str,
    name: str,
    *,
    label: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """One version: pinned, or the one ``label`` points at, or else the latest."""
    if label is not None and version is not None:
        raise UserError("ask for a label or a version, not both")
    with db.read() as conn:
        prompt_id = _prompt(conn, who, project, name, "viewer")
        if label is not None:
            version = prompt_store.label_version(conn, prompt_id, label)
            if version is None:
                raise NotFound(f"prompt {name!r} has no label {label!r}")
        if version is None:
            found = prompt_store.versions(conn, prompt_id)[:1]
            chosen = found[0] if found else None
        else:
            chosen = prompt_store.get_version(conn, prompt_id, version)
        if chosen is None:
            raise NotFound(f"prompt {name!r} has no version {version}")
        return _document(conn, prompt_id, name, project, chosen)


def list_prompts(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        items = prompt_store.list_prompts(conn, project_id(conn, who, project))
    for item in items:
        item.pop("id", None)
    return items


def list_versions(db: Database, who: Principal, project: str, name: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        prompt_id = _prompt(conn, who, project, name, "viewer")
        labels = prompt_store.labels(conn, prompt_id)
        items = prompt_store.versions(conn, prompt_id)
    for item in items:
        item["labels"] = [lab["label"] for lab in labels if lab["version"] == item["version"]]
    return items


def label_history(
    db: Database, who: Principal, project: str, name: str, label: str | None = None
) -> dict[str, Any]:
    """The labels as they are, and every move (of one label, or of all), newest first."""
    with db.read() as conn:
        prompt_id = _prompt(conn, who, project, name, "viewer")
        return {
            "labels": prompt_store.labels(conn, prompt_id),
            "history": prompt_store.moves(conn, prompt_id, label),
        }


def move_label(
    db: Database, who: Principal, project: str, name: str, label: str, version: int
) -> dict[str, Any]:
    """Point ``label`` at ``version`` (editors); recorded unless it already points there."""
    check_name(label, "label")
    with db.write() as conn:
        prompt_id = _prompt(conn, who, project, name, "editor")
        if prompt_store.get_version(conn, prompt_id, version) is None:
            raise NotFound(f"prompt {name!r} has no version {version}")
        current = prompt_store.label_version(conn, prompt_id, label)
        if current == version:
            return {"label": label, "version": version, "moved": None}
        move = prompt_store.move_label(conn, prompt_id, label, current, version, who.author)
    return {"label": label, "version": version, "moved": move}


def undo_label(db: Database, who: Principal, project: str, name: str, label: str) -> dict[str, Any]:
    """Undo the latest move of ``label`` not yet undone (editors): the label goes back to
    where that move took it from (removed, if the move created it). Undoing again undoes the
    move before."""
    check_name(label, "label")
    with db.write() as conn:
        prompt_id = _prompt(conn, who, project, name, "editor")
        history = prompt_store.moves(conn, prompt_id, label)
        undone = {int(m["undo_of"]) for m in history if m["undo_of"] is not None}
        last = next(
            (m for m in history if m["undo_of"] is None and int(m["id"]) not in undone), None
        )
        if last is None:
            raise Conflict(f"label {label!r} of prompt {name!r} has no move left to undo")
        current = prompt_store.label_version(conn, prompt_id, label)
        if current != last["to_version"]:
            raise Conflict(f"label {label!r} moved since; move it with PUT instead")
        move = prompt_store.move_label(
            conn,
            prompt_id,
            label,
            current,
            last["from_version"],
            who.author,
            undo_of=int(last["id"]),
        )
    return {"label": label, "version": last["from_version"], "moved": move}


def _as_text(version: dict[str, Any]) -> list[str]:
    lines = []
    for message in version["messages"]:
        lines.append(f"[{message['role']}]")
        lines.extend(message["content"].splitlines() or [""])
    return lines


def diff_versions(
    db: Database, who: Principal, project: str, name: str, old: int, new: int
) -> dict[str, Any]:
    """What changed from version ``old`` to ``new``: the messages as a unified diff, and each
    other field (model, each parameter, tools, response format) that differs."""
    with db.read() as conn:
        prompt_id = _prompt(conn, who, project, name, "viewer")
        found = {v: prompt_store.get_version(conn, prompt_id, v) for v in (old, new)}
    for number, version in found.items():
        if version is None:
            raise NotFound(f"prompt {name!r} has no version {number}")
    before, after = found[old], found[new]
    assert before is not None and after is not None
    changes = []
    for key in ("model", "tools", "response_format"):
        if before.get(key) != after.get(key):
            changes.append({"field": key, "from": before.get(key), "to": after.get(key)})
    old_params, new_params = before.get("params") or {}, after.get("params") or {}
    for key in sorted(set(old_params) | set(new_params)):
        if old_params.get(key) != new_params.get(key):
            changes.append(
                {"field": f"params.{key}", "from": old_params.get(key), "to": new_params.get(key)}
            )
    messages_diff = "\n".join(
        difflib.unified_diff(_as_text(before), _as_text(after), f"v{old}", f"v{new}", lineterm="")
    )
    return {
        "name": name,
        "from": old,
        "to": new,
        "messages_changed": before["messages"] != after["messages"],
        "messages_diff": messages_diff,
        "changes": changes,
    }
