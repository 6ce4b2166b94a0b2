"""Turn anything an application passes (pydantic models, dataclasses, numpy arrays, bytes,
objects with cycles) into bounded JSON text, without ever raising."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
MAX_DEPTH = 20


def _fallback(value: Any) -> Any:
    """orjson's hook for types it does not know."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) > 1024:
            return f"<{len(raw)} bytes>"
        return {"$bytes": base64.b64encode(raw).decode("ascii")}
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays of object dtype
    if callable(tolist):
        return tolist()
    return repr(value)


def _plain(value: Any, depth: int, seen: set[int]) -> Any:
    """A slow, careful copy used only when orjson gives up (cycles, very deep nesting)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if depth > MAX_DEPTH:
        return "…[too deep]"
    marker = id(value)
    if marker in seen:
        return "…[cycle]"
    seen = seen | {marker}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1, seen) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1, seen) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name, None), depth + 1, seen)
            for f in dataclasses.fields(value)
        }
    try:
        converted = _fallback(value)
    except Exception:
        return f"<unserialisable {type(value).__name__}>"
    if isinstance(converted, str) or converted is value:
        return converted
    return _plain(converted, depth + 1, seen)


def to_json(value: Any, limit: int) -> str:
    """JSON text for ``value``; strings pass through as they are. Cut at ``limit`` chars."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=_fallback, option=_OPTIONS).decode()
        except Exception:
            try:
                text = orjson.dumps(_plain(value, 0, set()), option=_OPTIONS).decode()
            except Exception:
                text = f"<unserialisable {type(value).__name__}>"
    if len(text) > limit:
        return f"{text[:limit]}…[truncated {len(text) - limit} chars]"
    return text
