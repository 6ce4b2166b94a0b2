"""What the API accepts, bounded by what the store can hold.

JSON allows integers of any size, and Python reads them all; the databases hold 64-bit
integers at most (32-bit in some columns), so an unchecked ``2**64`` anywhere in a body fails
inside the store. Every request body model derives from :class:`ApiModel`, which refuses such
values (and non-finite numbers, and NUL characters, which PostgreSQL text cannot hold) naming
the field; integer fields and path ids carry the bounds of their columns.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: An id of a row in a 32-bit id column (experiments, users, keys, datasets).
RowId = Annotated[int, Path(ge=1, le=INT32_MAX)]
#: An id of a row in a 64-bit id column (queue items, spans, scores).
BigRowId = Annotated[int, Path(ge=1, le=INT64_MAX)]
#: A reference to a row of a 32-bit id column inside a request body.
RefId = Annotated[int, Field(ge=1, le=INT32_MAX)]
#: A count or version stored in a 32-bit column.
Count32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
#: A dataset version as a query parameter.
VersionQuery = Annotated[int | None, Query(ge=0, le=INT32_MAX)]

#: Deepest nesting of a JSON value kept (metadata, inputs, outputs, records).
MAX_JSON_DEPTH = 64


def json_problem(value: Any, where: str = "", depth: int = 0) -> str | None:
    """What makes ``value`` impossible to store as JSON, naming where; None when it is fine."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"{where or 'value'}: the integer {str(value)[:30]} does not fit in 64 bits"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where or 'value'}: {value} is not finite"
    if isinstance(value, str):
        return f"{where or 'value'}: text may not contain NUL (\\u0000)" if "\0" in value else None
    if depth >= MAX_JSON_DEPTH:
        return f"{where or 'value'}: nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and "\0" in key:
                return f"{path[:200]!r}: a key may not contain NUL (\\u0000)"
            if problem := json_problem(item, path[:200], depth + 1):
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if problem := json_problem(item, f"{where}[{index}]", depth + 1):
                return problem
    return None


class ApiModel(BaseModel):
    """A request body: every value must be storable (see the module's docstring)."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if problem := json_problem(data):
            raise ValueError(problem)
        return data
