"""Judge prompts as Jinja2 templates, rendered in Jinja's immutable sandbox.

A prompt may be written by anyone with access to the UI, so it must not reach Python objects or
the file system: the sandbox refuses unsafe attributes (``__class__``, ``mro``, ...) and
mutating methods, there is no loader (no ``include`` / ``import`` / ``extends``), and the values
a template sees are plain JSON data (text, numbers, lists, dicts), never the caller's objects.
Anything that is not text renders as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assay.errors import UserError
from assay.sdk._serialize import to_json

#: The names a judge prompt may use.
PROMPT_NAMES = ("input", "output", "expected", "metadata", "context")
#: Longest value passed into a template, in characters of JSON.
MAX_VALUE_CHARS = 200_000


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | Undefined):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


_ENVIRONMENT = ImmutableSandboxedEnvironment(
    autoescape=False, finalize=_finalize, keep_trailing_newline=True
)
# Only plain helpers stay reachable; the sandbox guards them, but less surface is less risk.
for _name in list(_ENVIRONMENT.globals):
    if _name not in ("range", "dict", "namespace"):
        del _ENVIRONMENT.globals[_name]
_OTHER_TEMPLATES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def plain_data(value: Any) -> Any:
    """A JSON-shaped copy of ``value``: what a template may see."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    text = to_json(value, MAX_VALUE_CHARS)
    try:
        return json.loads(text)
    except ValueError:
        return text


class PromptTemplate:
    """A checked template: its syntax and the names it uses are verified when it is made."""

    def __init__(self, source: str, allowed: Iterable[str] = PROMPT_NAMES) -> None:
        if not isinstance(source, str) or not source.strip():
            raise UserError("a judge prompt must be non-empty text")
        self.source = source
        try:
            parsed = _ENVIRONMENT.parse(source)
        except TemplateSyntaxError as error:
            raise UserError(f"judge prompt, line {error.lineno}: {error.message}") from None
        if any(True for _ in parsed.find_all(_OTHER_TEMPLATES)):
            raise UserError("a judge prompt cannot include, import or extend other templates")
        self.names = frozenset(meta.find_undeclared_variables(parsed))
        unknown = sorted(self.names - set(allowed))
        if unknown:
            raise UserError(
                f"judge prompt uses {', '.join(unknown)}; a prompt may use "
                f"{', '.join('{{' + name + '}}' for name in allowed)}"
            )
        self._template = _ENVIRONMENT.from_string(source)

    def render(self, values: Mapping[str, Any]) -> str:
        data = {name: plain_data(values.get(name)) for name in self.names}
        try:
            return self._template.render(data)
        except SecurityError as error:
            raise UserError(f"judge prompt tried something unsafe: {error}") from None
        except (TemplateError, ArithmeticError, TypeError, ValueError) as error:
            raise UserError(f"judge prompt could not be rendered: {error}") from None
