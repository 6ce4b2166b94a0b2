"""Rendering pages: one Jinja2 environment (autoescaped), common context, security headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from assay._version import __version__
from assay.server.security.web import CSRF_FIELD, web_principal
from assay.ui import TEMPLATES_DIR

#: Scripts and styles come from Assay itself; no inline script can run, so an escaping slip
#: in a template still cannot execute model output.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages show traces and keys to whoever is signed in: no shared or back-button caches.
    "Cache-Control": "no-store",
}


def _duration(ms: Any) -> str:
    if ms is None:
        return ""
    value = float(ms)
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 1000:
        return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
    return f"{value / 1000:.2f} s"


def _cost(usd: Any) -> str:
    if usd is None or usd == 0:
        return ""
    value = float(usd)
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def _time(ns: Any) -> str:
    if ns is None:
        return ""
    moment = datetime.fromtimestamp(int(ns) / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    """JSON for humans; strings that hold JSON are shown parsed."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "[{":
            try:
                value = json.loads(stripped)
            except ValueError:
                return stripped
        else:
            return stripped
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _preview(value: Any, limit: int = 160) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            items.extend((key, str(v)) for v in value)
        else:
            items.append((key, str(value)))
    return "?" + urlencode(items) if items else "?"


def _csrf_input(request: Request) -> Markup:
    token = web_principal(request).csrf_token
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)


environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    duration=_duration, cost=_cost, time=_time, pretty=_pretty, preview=_preview
)
environment.globals.update(assay_version=__version__)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    current = web_principal(request)
    page = environment.get_template(template).render(
        request=request,
        viewer=current,
        csrf_input=lambda: _csrf_input(request),
        query=lambda **changes: _query(request, **changes),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)


def render_plain(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page for someone not signed in (login, errors before a viewer exists)."""
    page = environment.get_template(template).render(viewer=None, **context)
    return HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)
