"""Charts as standalone SVG documents, drawn by pygal (a maintained library; nothing copied).

pygal puts a ``<style>`` and a configuration ``<script>`` inside every SVG, and its tooltips are
JavaScript it would load from a CDN. So a chart is never inlined into a page: it is served as
its own ``image/svg+xml`` response with :data:`SVG_HEADERS` (styles inside that document only,
no script at all, nothing loaded from anywhere) and shown in an ``<iframe>`` of the same
origin. Points link to ``target="_top"``; each point carries a ``<title>`` the browser shows
on hover instead of pygal's script tooltips. Text such as group names is escaped by pygal's
XML serialiser.

API: :func:`line_chart` over :class:`ChartLine` s of :class:`ChartPoint` s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygal
from pygal.etree import etree
from pygal.style import Style

#: The chart document's own policy: its inline style may apply; no script, no fetches; only
#: an Assay page may frame it.
SVG_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'none'; img-src 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
SVG_HEADERS = {
    "Content-Security-Policy": SVG_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
SVG_MEDIA_TYPE = "image/svg+xml"

#: Colours that stay apart for the common kinds of colour blindness (Okabe-Ito), then more.
COLOURS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#999999",
    "#7f3b08",
    "#2d004b",
    "#b35806",
)
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#888",
    colors=COLOURS,
    font_family="system-ui, -apple-system, 'Segoe UI', sans-serif",
    title_font_size=15,
    legend_font_size=12,
    label_font_size=11,
    major_label_font_size=11,
    stroke_width=2,
    opacity=".9",
)


@dataclass(frozen=True)
class ChartPoint:
    """One x position: its label, the value (None: no data, the line breaks), an optional
    interval and the number of items behind it."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class ChartLine:
    name: str
    points: Sequence[ChartPoint]


def _plain(value: float) -> str:
    return f"{value:.4g}"


def line_chart(
    lines: Sequence[ChartLine],
    *,
    title: str,
    y_format: Callable[[float], str] = _plain,
    link_for_point: Callable[[int, int], str | None] | None = None,
    width: int = 760,
    height: int = 300,
    margin_right: int = 12,
) -> str:
    """An SVG document: one line per :class:`ChartLine` over the first line's x labels, with
    interval bars where a point has both ends; ``link_for_point(line_index, point_index)``
    gives the URL a point links to (None: no link)."""
    chart = pygal.Line(
        style=STYLE,
        js=[],
        width=width,
        height=height,
        title=title,
        allow_interruptions=True,
        show_legend=len(lines) > 1 or bool(lines and lines[0].name),
        legend_at_bottom=True,
        legend_at_bottom_columns=4,
        truncate_legend=40,
        truncate_label=-1,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_count=6,
        value_formatter=y_format,
        dots_size=3,
        no_data_text="No data in this range",
        margin=12,
        margin_bottom=24,
        # Room for the last x label, centred on the plot's right edge.
        margin_right=margin_right,
    )
    # pygal names each chart with a random uuid; a chart is a document of its own, so a fixed
    # name keeps equal data giving equal bytes.
    chart.uuid = "assay"
    chart.x_labels = [point.label for point in lines[0].points] if lines else []
    for line_index, line in enumerate(lines):
        values: list[dict[str, object] | None] = []
        for point_index, point in enumerate(line.points):
            if point.value is None:
                values.append(None)
                continue
            entry: dict[str, object] = {"value": point.value}
            if point.low is not None and point.high is not None:
                entry["ci"] = {"low": point.low, "high": point.high}
            link = link_for_point(line_index, point_index) if link_for_point else None
            if link:
                entry["xlink"] = {"href": link, "target": "_top"}
            values.append(entry)
        chart.add(line.name or title, values)
    tree = chart.render_tree()
    _drop_scripts(tree)
    _add_titles(tree, lines, y_format)
    return str(etree.tostring(tree, encoding="unicode"))


def _class_of(element: object) -> str:
    return str(getattr(element, "get", lambda _k, _d=None: "")("class", "") or "")


def _drop_scripts(tree: object) -> None:
    """pygal's configuration script (it could never run: the document's policy forbids
    scripts) and its comments (links to its website) are not sent at all."""
    for parent in list(tree.iter()):  # type: ignore[attr-defined]
        for child in list(parent):
            if child.tag is etree.Comment or str(child.tag).endswith("script"):
                parent.remove(child)


def _add_titles(tree: object, lines: Sequence[ChartLine], y_format: Callable[[float], str]) -> None:
    """A hover text for each point (the browser's own tooltip): the line, x label, value,
    interval and n. pygal draws a ``g.dots`` per non-empty point, line by line, in order."""
    texts: list[str] = []
    for line in lines:
        for point in line.points:
            if point.value is None:
                continue
            text = f"{line.name + ': ' if line.name else ''}{point.label}: {y_format(point.value)}"
            if point.low is not None and point.high is not None:
                text += f" (95% {y_format(point.low)} to {y_format(point.high)})"
            if point.n is not None:
                text += f", n={point.n}"
            texts.append(text)
    dots = [e for e in tree.iter() if _class_of(e) == "dots"]  # type: ignore[attr-defined]
    for element, text in zip(dots, texts, strict=False):
        target = element[0] if len(element) and str(element[0].tag).endswith("a") else element
        title = etree.SubElement(target, "title")
        title.text = text
