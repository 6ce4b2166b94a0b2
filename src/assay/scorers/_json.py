"""JSON scorers: is the output JSON, does it conform to a JSON Schema, how much of it matches
the expected JSON leaf by leaf."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers._base import build, kind_of, shorten

_FENCE = re.compile(r"^```[\w-]*[ \t]*\n(.*?)\n?```$", re.DOTALL)
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_PATHS = 50


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(value: Any, *, allow_fences: bool = False) -> tuple[bool, Any, str | None]:
    """(is JSON, the parsed value, why not). A string is parsed (strictly: NaN and Infinity
    are not JSON), optionally inside a Markdown code fence; a dict, list, number, bool is JSON
    already when it serialises."""
    if value is None:
        return False, None, "output is None"
    if isinstance(value, str):
        text = value.strip()
        if allow_fences:
            fenced = _FENCE.match(text)
            text = fenced.group(1) if fenced else text
        if not text:
            return False, None, "output is empty"
        try:
            return True, json.loads(text, parse_constant=_reject_constant), None
        except ValueError as error:
            return False, None, f"output is not valid JSON: {error}"
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        return False, None, f"output ({kind_of(value)}) is not JSON-serialisable: {error}"
    return True, value, None


def json_valid(*, allow_fences: bool = False, name: str = "json_valid") -> Scorer:
    """1.0 when the output is JSON: a string that parses, or a value that serialises (a dict,
    list, number); else 0.0 with the parser's message. ``allow_fences`` accepts JSON inside a
    Markdown code fence, as models often write it."""

    def score(output: Any) -> Score:
        ok, _, reason = read_json(output, allow_fences=allow_fences)
        return Score(name, 1.0) if ok else Score(name, 0.0, rationale=reason)

    return build(
        score,
        name=name,
        definition=(json_valid, read_json),
        params={"allow_fences": allow_fences},
    )


def json_schema(
    schema: Mapping[str, Any] | bool,
    *,
    allow_fences: bool = False,
    check_formats: bool = False,
    name: str = "json_schema",
) -> Scorer:
    """1.0 when the output is JSON that conforms to ``schema`` (any draft jsonschema knows; the
    schema's ``$schema`` picks it, else the latest), else 0.0 with every violation and where it
    is in the metadata. ``check_formats`` also checks ``format`` (date-time, email, ...), which
    JSON Schema treats as an annotation by default."""
    if not isinstance(schema, Mapping | bool):
        raise UserError(f"json_schema() needs a schema dict; got {shorten(schema)}")
    # Imported here: jsonschema takes ~80 ms to import, and `import assay` should stay quick.
    import jsonschema.exceptions
    import jsonschema.validators

    # A plain dict for jsonschema, which validates a copy made now, not one the caller may change.
    document: Any = dict(schema) if isinstance(schema, Mapping) else schema
    validator_class = jsonschema.validators.validator_for(document)
    try:
        validator_class.check_schema(document)
    except jsonschema.exceptions.SchemaError as error:
        where = "/".join(str(part) for part in error.path) or "the top level"
        raise UserError(f"invalid JSON schema at {where}: {error.message}") from None
    format_checker = validator_class.FORMAT_CHECKER if check_formats else None
    validator = validator_class(document, format_checker=format_checker)

    def score(output: Any) -> Score:
        ok, value, reason = read_json(output, allow_fences=allow_fences)
        if not ok:
            return Score(name, 0.0, rationale=reason)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path)))
        if not errors:
            return Score(name, 1.0)
        found = [{"path": error.json_path, "message": error.message} for error in errors]
        shown = "; ".join(f"{item['path']}: {item['message']}" for item in found[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        return Score(name, 0.0, rationale=shown + more, metadata={"errors": found[:MAX_PATHS]})

    return build(
        score,
        name=name,
        definition=(json_schema, read_json),
        params={"schema": document, "allow_fences": allow_fences, "check_formats": check_formats},
    )


# --- diff --------------------------------------------------------------------------------------


def leaves(value: Any, path: str = "$") -> dict[str, Any]:
    """Every leaf of a JSON value by its JSONPath; an empty object or array is a leaf."""
    if isinstance(value, Mapping) and value:
        found: dict[str, Any] = {}
        for key, item in value.items():
            step = f".{key}" if _PLAIN_KEY.match(str(key)) else f"[{json.dumps(str(key))}]"
            found.update(leaves(item, path + step))
        return found
    if isinstance(value, list | tuple) and value:
        found = {}
        for index, item in enumerate(value):
            found.update(leaves(item, f"{path}[{index}]"))
        return found
    return {path: value}


def same_leaf(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, but true is not 1, and [] is not {}."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return not a and not b
    return type(a) is type(b) and bool(a == b)


def json_diff(*, allow_fences: bool = False, name: str = "json_diff") -> Scorer:
    """The fraction of leaf paths (over both sides) whose values match between the output and
    ``expected``, each read as JSON (a string is parsed; one that does not parse is compared as
    a plain string). The paths that differ, are missing from the output or are extra in it are
    in the metadata and the rationale."""

    def score(output: Any, expected: Any) -> Score | None:
        if expected is None:
            return None
        want_ok, want, _ = read_json(expected)
        if not want_ok:
            want = expected
        got_ok, got, reason = read_json(output, allow_fences=allow_fences)
        if not got_ok:
            got = output
        got_leaves, want_leaves = leaves(got), leaves(want)
        paths = list(dict.fromkeys([*want_leaves, *got_leaves]))
        changed = [
            p
            for p in paths
            if p in got_leaves and p in want_leaves and not same_leaf(got_leaves[p], want_leaves[p])
        ]
        missing = [p for p in paths if p not in got_leaves]
        extra = [p for p in paths if p not in want_leaves]
        matched = len(paths) - len(changed) - len(missing) - len(extra)
        metadata = {
            "matched": matched,
            "paths": len(paths),
            "changed": changed[:MAX_PATHS],
            "missing": missing[:MAX_PATHS],
            "extra": extra[:MAX_PATHS],
        }
        if matched == len(paths):
            return Score(name, 1.0, metadata=metadata)
        parts = [f"{matched} of {len(paths)} leaf paths match"]
        if reason is not None and (output is None or isinstance(want, Mapping | list)):
            parts.append(reason)
        for label, items in (("changed", changed), ("missing", missing), ("extra", extra)):
            if items:
                shown = ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")
                parts.append(f"{label}: {shown}")
        return Score(name, matched / len(paths), rationale="; ".join(parts), metadata=metadata)

    return build(
        score,
        name=name,
        definition=(json_diff, read_json, leaves, same_leaf),
        params={"allow_fences": allow_fences},
    )
