"""Judge prompts as Jinja2 templates, rendered in Jinja's immutable sandbox.

A prompt may be written by anyone with access to the UI, so it must not reach Python objects or
the file system: the sandbox refuses unsafe attributes (``__class__``, ``mro``, ...) and
mutating methods, there is no loader (no ``include`` / ``import`` / ``extends``), and the values
a template sees are plain JSON data (text, numbers, lists, dicts), never the caller's objects.
Anything that is not text renders as JSON.

The sandbox guards what a template may reach, not what it may cost, so each render is also
bounded: operations that would build a huge number or string (``7 ** 7 ** 9``,
``'{:>999999999}'.format(x)``, ``'x' * 10**9``, ``center``/``indent`` widths, ...) are refused
before they run, every call, filter and namespace value is held under `MAX_RENDER_CHARS`, the
output stops at `MAX_RENDER_CHARS` and a render stops after `MAX_RENDER_SECONDS`.
"""

from __future__ import annotations

import functools
import json
import math
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from assay.errors import UserError
from assay.sdk._serialize import to_json

#: The names a judge prompt may use.
PROMPT_NAMES = ("input", "output", "expected", "metadata", "context")
#: Longest value passed into a template, in characters of JSON.
MAX_VALUE_CHARS = 200_000
#: Longest text (or list) one render may build, output included: room for every value at its
#: longest, far past any model's context.
MAX_RENDER_CHARS = 2_000_000
#: Largest integer a render may compute, in bits (about 3,000 decimal digits).
MAX_INT_BITS = 10_000
#: Longest a render may take; ordinary prompts take well under a millisecond.
MAX_RENDER_SECONDS = 2.0


class RenderLimit(Exception):
    """A render would exceed one of the bounds above."""


def _check_size(value: Any, what: str = "a value") -> Any:
    if isinstance(value, str | list | tuple | bytes | dict) and len(value) > MAX_RENDER_CHARS:
        raise RenderLimit(f"{what} of {len(value):,} items, past the limit of {MAX_RENDER_CHARS:,}")
    if isinstance(value, int) and abs(value).bit_length() > MAX_INT_BITS:
        raise RenderLimit(f"a number of {abs(value).bit_length():,} bits")
    return value


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_RENDER_CHARS:
        raise RenderLimit(f"{what} {width:,}, past the limit of {MAX_RENDER_CHARS:,}")


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | bytes) else 0


_PRINTF_WIDTHS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")


def _check_printf(template: str, args: Any) -> None:
    """Widths and precisions of ``template % args`` (or the ``format`` filter)."""
    starred = False
    for match in _PRINTF_WIDTHS.finditer(template):
        for number in match.groups():
            if number == "*":
                starred = True
            elif number is not None:
                _check_width(int(number), "a format width of")
    if starred:
        for arg in args if isinstance(args, tuple) else (args,):
            _check_width(arg, "a format width of")


def _check_format(template: str, args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    """Widths and precisions of ``template.format(...)``, nested ones (``{:{w}}``) included."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # format() itself will say what is wrong
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        for number in re.findall(r"\d+", spec):
            _check_width(int(number), "a format width of")
        if "{" in spec:
            for value in [*args, *kwargs.values()]:
                _check_width(value, "a format width of")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        bits = right * math.log2(abs(left)) if abs(left) > 1 else 0
        if bits > MAX_INT_BITS:
            raise RenderLimit(f"a number of about {bits:,.0f} bits")
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS + 1:
                raise RenderLimit("a number past the size limit")
        else:
            count = right if isinstance(left, str | list | tuple) else left
            sized = left if isinstance(left, str | list | tuple) else right
            if isinstance(count, int) and _sized(sized) * count > MAX_RENDER_CHARS:
                raise RenderLimit(f"a value of {_sized(sized) * count:,} items")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right)


def _check_str_method(method: Any, args: tuple[Any, ...]) -> None:
    """The str methods that build a string far larger than their inputs."""
    text = getattr(method, "__self__", None)
    if not isinstance(text, str) or not args:
        return
    name = getattr(method, "__name__", "")
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width(args[0], f"{name}() to a width of")
    elif name == "expandtabs" and isinstance(args[0], int):
        _check_width(text.count("\t") * args[0], "tabs expanded to")
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name == "join" and isinstance(args[0], list | tuple):
        _check_width(len(text) * len(args[0]), "a joined text of")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        grows = max(len(new) - len(old), 0)
        _check_width(len(text) + text.count(old) * grows, "a replaced text of")


def _guard_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse a filter call that would build a huge value, and check what any filter makes."""

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        # Filters that take the environment or context get it first; the value comes next.
        given = [a for a in args if not isinstance(a, ImmutableSandboxedEnvironment | Context)]
        if name in ("center", "indent") and len(given) >= 2:
            lines = str(given[0]).count("\n") + 1 if name == "indent" else 1
            width = given[1] if isinstance(given[1], int) else _sized(given[1])
            _check_width(width * lines, f"{name} to a width of")
        elif name == "format" and given and isinstance(given[0], str):
            _check_printf(given[0], tuple(given[1:]))
        elif name == "replace" and len(given) >= 3:
            _check_replace(given[0], given[1], given[2])
        return _check_size(original(*args, **kwargs), f"the {name} filter made a value")

    return guarded


class _BoundedNamespace(Namespace):
    """``namespace()``, whose values may not outgrow the render's limit either (a loop that
    doubles ``ns.text`` would otherwise reach gigabytes without one call or filter)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _check_size(value, f"namespace value {name!r}"))


def _bounded_join(parts: Iterable[Any]) -> str:
    texts = [part if isinstance(part, str) else str(part) for part in parts]
    _check_width(sum(map(len, texts)), "a joined text of")
    return "".join(texts)


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a joint that checks the size first: ``{% set x = x ~ x %}``
    written thirty times would otherwise double its way to gigabytes."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_join((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*", "%"})
    code_generator_class = _BoundedCodeGenerator
    # Joins what blocks ({% set %}...{% endset %}, {% filter %}, macro bodies) captured.
    concat = staticmethod(_bounded_join)
    bounded_join = staticmethod(_bounded_join)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_str_method(__obj, args)
        for arg in (*args, *kwargs.values()):
            _check_size(arg, "an argument")
        result = super().call(__context, __obj, *args, **kwargs)
        return _check_size(result, "a call made a value")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__
        format_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            mapping = args[0] if format_map and args and isinstance(args[0], Mapping) else kwargs
            _check_format(template, () if format_map else args, mapping)
            return str(_check_size(wrapped(*args, **kwargs), "a formatted text"))

        return functools.update_wrapper(checked, value)


class _Deadline:
    """A trace function that stops the render's Python code once its time is up: loops that
    build nothing (``{% for i in range(99999) %}{% for j in range(99999) %}``) would otherwise
    run for hours. It is installed only around a render, on the rendering thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.lines = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        self.lines += 1
        if self.lines & 0xFF == 0 and time.monotonic() > self.ends:
            raise RenderLimit(f"it took longer than {self.seconds:g} s")
        return self


class _Undefined(Undefined):
    """A missing value renders as nothing, as before; but what the sandbox refused to reach
    (``range.__self__``, ``'{0.__class__}'.format(x)``) fails the render with the reason,
    instead of quietly rendering as nothing."""

    def __str__(self) -> str:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()
        return super().__str__()


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | Undefined):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


_ENVIRONMENT = _BoundedSandbox(
    autoescape=False, finalize=_finalize, keep_trailing_newline=True, undefined=_Undefined
)
# Only plain helpers stay reachable; the sandbox guards them, but less surface is less risk.
for _name in list(_ENVIRONMENT.globals):
    if _name not in ("range", "dict", "namespace"):
        del _ENVIRONMENT.globals[_name]
_ENVIRONMENT.globals["namespace"] = _BoundedNamespace
_ENVIRONMENT.filters = {
    name: _guard_filter(name, function) for name, function in _ENVIRONMENT.filters.items()
}
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

    def __init__(
        self,
        source: str,
        allowed: Iterable[str] | None = PROMPT_NAMES,
        *,
        what: str = "judge prompt",
        allow_empty: bool = False,
    ) -> None:
        """``allowed`` None: any variable names (a registry prompt's own variables); ``what``
        names the template in error messages."""
        self.what = what
        if not isinstance(source, str) or not (source.strip() or allow_empty):
            raise UserError(f"a {what} must be non-empty text")
        self.source = source
        try:
            parsed = _ENVIRONMENT.parse(source)
        except TemplateSyntaxError as error:
            raise UserError(f"{what}, line {error.lineno}: {error.message}") from None
        if any(True for _ in parsed.find_all(_OTHER_TEMPLATES)):
            raise UserError(f"a {what} cannot include, import or extend other templates")
        self.names = frozenset(meta.find_undeclared_variables(parsed))
        unknown = sorted(self.names - set(allowed)) if allowed is not None else []
        if allowed is not None and unknown:
            raise UserError(
                f"{what} uses {', '.join(unknown)}; a prompt may use "
                f"{', '.join('{{' + name + '}}' for name in allowed)}"
            )
        self._template = _ENVIRONMENT.from_string(source)

    def render(self, values: Mapping[str, Any]) -> str:
        data = {name: plain_data(values.get(name)) for name in self.names}
        previous = sys.gettrace()
        sys.settrace(_Deadline(MAX_RENDER_SECONDS))
        try:
            parts: list[str] = []
            size = 0
            for part in self._template.generate(data):
                size += len(part)
                if size > MAX_RENDER_CHARS:
                    raise RenderLimit(f"its output passed {MAX_RENDER_CHARS:,} characters")
                parts.append(part)
            return "".join(parts)
        except RenderLimit as error:
            raise UserError(
                f"{self.what} stopped: {error}; simplify the template "
                "(renders are bounded in time, size and number size)"
            ) from None
        except SecurityError as error:
            raise UserError(f"{self.what} tried something unsafe: {error}") from None
        except (TemplateError, ArithmeticError, TypeError, ValueError) as error:
            raise UserError(f"{self.what} could not be rendered: {error}") from None
        except RecursionError:
            raise UserError(f"{self.what} could not be rendered: it recurses too deeply") from None
        finally:
            sys.settrace(previous)
