"""`assay judges calibrate NAME --rubric RUBRIC`: run a stored judge over the items people
labelled with a rubric and print how well it agrees with them, next to their own agreement."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from assay.errors import UserError
from assay.settings import setting

app = typer.Typer(help="Check stored judges against people's labels.", no_args_is_help=True)
console = Console()


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _interval(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("low") is None:
        return "-"
    return f"[{figure['low']:.3f}, {figure['high']:.3f}]"


def calibration_table(found: dict[str, Any]) -> Table:
    """Metric, value, 95% interval, n and (for kappa and accuracy) the people's own figure."""
    roof = found.get("ceiling") or {}
    table = Table(
        title=(
            f"{found['evaluator']} v{found['version']} against rubric {found['rubric_id']} "
            f"(calibration {found['id']}, {found['n']} items)"
        )
    )
    for column in ("metric", "value", "95% interval", "n", "ceiling (people)"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    people = {
        "kappa": f"{_number(roof.get('value'))} {_interval(roof)}",
        "accuracy": (
            f"{_number((roof.get('percent_agreement') or {}).get('value'))} "
            f"{_interval(roof.get('percent_agreement'))}"
        ),
    }
    weights = f" ({found['kappa_weights']})" if found.get("kappa_weights") else ""
    rows: list[tuple[str, dict[str, Any] | None]] = [
        ("accuracy", found.get("accuracy")),
        ("kappa" + weights, found.get("kappa")),
        ("macro_f1", found.get("macro_f1")),
    ]
    for label in (found.get("confusion") or {}).get("labels", []):
        for metric in ("precision", "recall", "f1"):
            rows.append((f"{metric} {label}", (found.get(metric) or {}).get(label)))
    for metric in ("mae", "spearman"):
        if found.get(metric):
            rows.append((metric, found[metric]))
    for name, figure in rows:
        figure = figure or {}
        table.add_row(
            name,
            _number(figure.get("value")),
            _interval(figure),
            str(figure.get("n", "-")),
            people.get(name.split(" ")[0], ""),
        )
    return table


@app.command("calibrate")
def calibrate(
    name: str = typer.Argument(..., help="The stored judge (evaluator) name."),
    rubric: str = typer.Option(..., "--rubric", "-r", help="The rubric's name or id."),
    project: str | None = typer.Option(
        None, "--project", "-p", help="Project (default $ASSAY_PROJECT)."
    ),
    version: int | None = typer.Option(None, "--version", help="Judge version (default latest)."),
    url: str | None = typer.Option(None, "--url", help="Server URL (default $ASSAY_URL)."),
) -> None:
    """Calibrate a judge version against the rubric's human labels and print the figures."""
    from assay.client import Client

    chosen = str(setting("project", project) or "")
    if not chosen:
        raise UserError("name the project: --project P (or set ASSAY_PROJECT)")
    client = Client(url, timeout=600.0)
    try:
        base = f"/api/v1/projects/{quote(chosen, safe='')}"
        evaluators = client.get(f"{base}/evaluators")["items"]
        found = next((e for e in evaluators if e["name"] == name), None)
        if found is None:
            raise UserError(f"project {chosen!r} has no evaluator named {name!r}")
        rubrics = client.get(f"{base}/rubrics")["items"]
        picked = next(
            (r for r in rubrics if r["name"] == rubric or str(r["id"]) == rubric),
            None,
        )
        if picked is None:
            raise UserError(f"project {chosen!r} has no rubric {rubric!r}")
        body: dict[str, Any] = {"rubric_id": picked["id"]}
        if version is not None:
            body["version"] = version
        made = client.post(f"/api/v1/evaluators/{found['id']}/calibrations", json=body)
    finally:
        client.close()
    console.print(calibration_table(made))
    if made.get("errors"):
        console.print(f"[yellow]{made['errors']} items got no verdict from the judge[/]")
    if made.get("unresolved"):
        console.print(
            f"[yellow]{made['unresolved']} items left out: reviewers disagree and no gold label[/]"
        )
