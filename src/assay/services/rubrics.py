"""Rubrics: what reviewers are asked, per project, versioned on every edit.

Kinds: ``categorical`` (single or, with ``multiple``, several choices; each choice a name, an
optional value and a description; ``ordered`` when the choices form a scale), ``pass_fail``,
``numeric`` (min, max, step, labelled anchors) and ``text``. Rationale is ``required``,
``optional`` or ``off``. Anyone in the project reads rubrics; editors create and change them.

A label given against a rubric is checked and normalised here (:func:`normalise_label`), so the
API, the reviewer view and the exports agree on what a label holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from assay.errors import Conflict, NotFound, UserError
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.store import rubrics as rubric_store
from assay.store.database import Connection, Database

KINDS = ("categorical", "pass_fail", "numeric", "text")
RATIONALE = ("required", "optional", "off")
MAX_CHOICES = 50
MAX_TEXT = 100_000
PASS_FAIL = [
    {"name": "pass", "value": 1.0, "description": ""},
    {"name": "fail", "value": 0.0, "description": ""},
]
#: The definition keys stored per kind (besides name and kind).
COMMON = ("rationale", "instructions", "may_correct_expected")


def _text(raw: dict[str, Any], key: str, limit: int, default: str = "") -> str:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise UserError(f"{key!r} must be a string")
    if len(value) > limit:
        raise UserError(f"{key!r} is longer than {limit} characters")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{what} must be a finite number (got {value!r})")
    return float(value)


def _choices(raw: Any, kind: str) -> list[dict[str, Any]]:
    if raw is None and kind == "pass_fail":
        return [dict(choice) for choice in PASS_FAIL]
    if not isinstance(raw, list) or not raw:
        raise UserError('a categorical rubric needs \'choices\': [{"name": ..., "value": ...}]')
    if len(raw) > MAX_CHOICES:
        raise UserError(f"a rubric takes at most {MAX_CHOICES} choices")
    out = []
    for i, choice in enumerate(raw):
        if not isinstance(choice, dict) or not isinstance(choice.get("name"), str):
            raise UserError(f"choices[{i}] needs a 'name' (a string)")
        name = choice["name"].strip()
        if not name or len(name) > 100:
            raise UserError(f"choices[{i}]: a name has 1 to 100 characters")
        value = choice.get("value")
        out.append(
            {
                "name": name,
                "value": None if value is None else _number(value, f"choices[{i}].value"),
                "description": _text(choice, "description", 2_000),
            }
        )
    names = [choice["name"] for choice in out]
    if len(set(names)) != len(names):
        raise UserError("choice names must differ")
    if kind == "pass_fail" and sorted(names) != ["fail", "pass"]:
        raise UserError("a pass_fail rubric's choices are named 'pass' and 'fail'")
    return out


def _scale(raw: dict[str, Any]) -> dict[str, Any]:
    low = _number(raw.get("min", 1), "min")
    high = _number(raw.get("max", 5), "max")
    step = raw.get("step")
    step = None if step is None else _number(step, "step")
    if high <= low:
        raise UserError("a numeric rubric needs min < max")
    if step is not None and step <= 0:
        raise UserError("step must be positive")
    anchors = []
    for i, anchor in enumerate(raw.get("anchors") or []):
        if not isinstance(anchor, dict):
            raise UserError(f"anchors[{i}] must be {{'value': ..., 'label': ...}}")
        value = _number(anchor.get("value"), f"anchors[{i}].value")
        if not low <= value <= high:
            raise UserError(f"anchors[{i}].value {value:g} is outside [{low:g}, {high:g}]")
        anchors.append({"value": value, "label": _text(anchor, "label", 200)})
    return {"min": low, "max": high, "step": step, "anchors": anchors}


def check_definition(raw: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The name, kind and stored definition of a rubric as given to the API; UserError naming
    the field that cannot be used."""
    name = _text(raw, "name", 200).strip()
    if not name:
        raise UserError("a rubric needs a 'name'")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise UserError(f"'kind' must be one of {', '.join(KINDS)} (got {kind!r})")
    rationale = raw.get("rationale") or "optional"
    if rationale not in RATIONALE:
        raise UserError(f"'rationale' must be one of {', '.join(RATIONALE)}")
    definition: dict[str, Any] = {
        "rationale": rationale,
        "instructions": _text(raw, "instructions", MAX_TEXT),
        "may_correct_expected": bool(raw.get("may_correct_expected", False)),
        "description": _text(raw, "description", 2_000),
    }
    if kind in ("categorical", "pass_fail"):
        definition["choices"] = _choices(raw.get("choices"), kind)
        definition["multiple"] = kind == "categorical" and bool(raw.get("multiple", False))
        definition["ordered"] = kind == "categorical" and bool(raw.get("ordered", False))
    elif kind == "numeric":
        definition.update(_scale(raw))
    return name, kind, definition


def _rubric(conn: Connection, who: Principal, rubric_id: int, role: str) -> dict[str, Any]:
    found = rubric_store.get(conn, rubric_id)
    if found is None or not who.may_see(str(found["project"])):
        raise NotFound(f"rubric {rubric_id} does not exist")
    who.require(str(found["project"]), role)
    return found


def create_rubric(
    db: Database, who: Principal, project: str, raw: dict[str, Any]
) -> dict[str, Any]:
    """A new rubric (editors), version 1; :class:`Conflict` when the name is taken."""
    who.require(project, "editor")
    name, kind, definition = check_definition(raw)
    with db.write() as conn:
        found = ensure_project(conn, who, project, "editor")
        if rubric_store.find_by_name(conn, found, name) is not None:
            raise Conflict(f"rubric {name!r} exists in {project!r}; change it with PUT")
        rubric_id = rubric_store.create(conn, found, name, kind, definition, who.author)
        created = rubric_store.get(conn, rubric_id)
    assert created is not None
    return created


def update_rubric(
    db: Database, who: Principal, rubric_id: int, raw: dict[str, Any]
) -> dict[str, Any]:
    """A new version of a rubric (editors); labels keep the version they were given against."""
    name, kind, definition = check_definition(raw)
    with db.write() as conn:
        current = _rubric(conn, who, rubric_id, "editor")
        if name != current["name"]:
            taken = rubric_store.find_by_name(conn, int(current["project_id"]), name)
            if taken is not None:
                raise Conflict(f"another rubric is named {name!r}")
        version = int(current["version"]) + 1
        rubric_store.new_version(conn, rubric_id, version, name, kind, definition, who.author)
        updated = rubric_store.get(conn, rubric_id)
    assert updated is not None
    return updated


def get_rubric(db: Database, who: Principal, rubric_id: int) -> dict[str, Any]:
    with db.read() as conn:
        return _rubric(conn, who, rubric_id, "viewer")


def rubric_versions(db: Database, who: Principal, rubric_id: int) -> list[dict[str, Any]]:
    with db.read() as conn:
        _rubric(conn, who, rubric_id, "viewer")
        return rubric_store.versions(conn, rubric_id)


def list_rubrics(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return rubric_store.list_rubrics(conn, project_id(conn, who, project))


# --- labels against a rubric ------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """One label as stored: a score's value and label, the rationale, and extra data."""

    rubric_id: int
    rubric_version: int
    name: str
    value: float | None
    label: str | None
    rationale: str | None
    metadata: dict[str, Any]


def _choice_label(rubric: dict[str, Any], given: dict[str, Any]) -> tuple[float | None, str]:
    choices = {choice["name"]: choice for choice in rubric["choices"]}
    choice = given.get("choice")
    if choice is None and rubric["kind"] == "pass_fail" and "value" in given:
        value = given["value"]
        if value in (True, 1, 1.0, "pass"):
            choice = "pass"
        elif value in (False, 0, 0.0, "fail"):
            choice = "fail"
    if choice is None and isinstance(given.get("value"), str):
        choice = given["value"]
    if not isinstance(choice, str) or choice not in choices:
        names = ", ".join(repr(name) for name in choices)
        raise UserError(f"rubric {rubric['name']!r} takes a 'choice' among {names}")
    return choices[choice]["value"], choice


def _multiple_label(rubric: dict[str, Any], given: dict[str, Any]) -> tuple[list[str], str]:
    order = [choice["name"] for choice in rubric["choices"]]
    picked = given.get("choices", given.get("choice"))
    if isinstance(picked, str):
        picked = [picked]
    if not isinstance(picked, list) or not all(name in order for name in picked):
        names = ", ".join(repr(name) for name in order)
        raise UserError(f"rubric {rubric['name']!r} takes 'choices': a list among {names}")
    chosen = [name for name in order if name in set(picked)]
    return chosen, ", ".join(chosen)


def _numeric_label(rubric: dict[str, Any], given: dict[str, Any]) -> tuple[float, str | None]:
    raw = given.get("value")
    if raw is None:
        raise UserError(f"rubric {rubric['name']!r} takes a numeric 'value'")
    value = _number(raw, f"the value for rubric {rubric['name']!r}")
    low, high, step = rubric["min"], rubric["max"], rubric["step"]
    if not low <= value <= high:
        raise UserError(f"rubric {rubric['name']!r} takes a value in [{low:g}, {high:g}]")
    if step:
        steps = (value - low) / step
        if abs(steps - round(steps)) > 1e-9:
            raise UserError(f"rubric {rubric['name']!r} takes steps of {step:g} from {low:g}")
    anchor = next((a["label"] for a in rubric["anchors"] if a["value"] == value), None)
    return value, anchor or None


def normalise_label(rubric: dict[str, Any], given: dict[str, Any]) -> Label:
    """The label ``given`` ({"value" or "choice"/"choices" or "text", "rationale"}) checked
    against the rubric's current version; UserError saying what the rubric takes."""
    rationale = given.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        raise UserError("'rationale' must be a string")
    rationale = (rationale or "").strip() or None
    rule = rubric["rationale"]
    if rule == "required" and not rationale:
        raise UserError(f"rubric {rubric['name']!r} needs a rationale: say why")
    if rule == "off":
        rationale = None
    if rationale and len(rationale) > MAX_TEXT:
        raise UserError(f"a rationale has at most {MAX_TEXT} characters")
    kind = rubric["kind"]
    metadata: dict[str, Any] = {}
    value: float | None = None
    label: str | None = None
    if kind == "numeric":
        value, label = _numeric_label(rubric, given)
    elif kind == "text":
        text = given.get("text", given.get("value"))
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise UserError(f"rubric {rubric['name']!r} takes a 'text' (1 to {MAX_TEXT} chars)")
        metadata["text"] = text
    elif rubric.get("multiple"):
        chosen, label = _multiple_label(rubric, given)
        metadata["choices"] = chosen
    else:
        value, label = _choice_label(rubric, given)
    if label is not None and len(label) > 200:
        label = label[:200]
    return Label(
        int(rubric["id"]),
        int(rubric["version"]),
        str(rubric["name"]),
        value,
        label,
        rationale,
        metadata,
    )


def agreement_level(rubric: dict[str, Any]) -> str | None:
    """How labels of the rubric are compared: "nominal", "ordinal" or "interval"; None for
    free text, which has no agreement to measure."""
    kind = rubric["kind"]
    if kind == "text":
        return None
    if kind == "numeric":
        return "interval"
    if kind == "categorical" and rubric.get("ordered") and not rubric.get("multiple"):
        return "ordinal"
    return "nominal"
