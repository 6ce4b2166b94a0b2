"""`assay eval PATH...`: find Evals in files and folders, run them, exit 1 on a failed
threshold."""

from __future__ import annotations

import importlib.util
import json
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.errors import UserError

console = Console()


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*.py")
                    if p.name.startswith("eval") or p.name.endswith("_eval.py")
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    return found


def discover(paths: list[Path]) -> list[Any]:
    """Import each file; every Eval it defines is collected (its tasks do not run yet)."""
    from assay.evals._eval import REGISTRY

    evals = []
    for index, file in enumerate(_files(paths)):
        REGISTRY.clear()
        spec = importlib.util.spec_from_file_location(f"_assay_eval_{index}", file)
        if spec is None or spec.loader is None:
            raise UserError(f"{file}: cannot be imported as Python")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.parent.resolve()))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise UserError(f"{file}: importing it failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.pop(0)
        evals.extend(REGISTRY)
    REGISTRY.clear()
    return evals


#: The table cuts an error message here; ``--json`` has it whole.
ERROR_CHARS = 160


def _error_cell(item: Any) -> str:
    """The count, and the most common message with what to do about it (rich markup escaped)."""
    top = item.top_error
    if top is None:
        return str(item.errors)
    message = top.message if len(top.message) <= ERROR_CHARS else top.message[:ERROR_CHARS] + "…"
    cell = f"{item.errors}: {escape(message)}"
    if top.count != item.errors:
        cell += f" ({top.count}x)"
    hint = top.hint
    if hint and hint not in message:
        cell += f"\n[bold]fix:[/] {escape(hint)}"
    return cell


def _summary_table(result: Any) -> Table:
    table = Table("score", "mean", "95% interval", "n", "errors", title=result.name)
    for name, item in sorted(result.summary.items()):
        estimate = item.estimate
        if estimate is None:
            table.add_row(name, "-", "-", str(item.scored), _error_cell(item))
            continue
        interval = f"[{estimate.low:.3f}, {estimate.high:.3f}]" if estimate.low is not None else "-"
        table.add_row(name, f"{estimate.mean:.3f}", interval, str(item.scored), _error_cell(item))
    return table


def _as_json(result: Any) -> dict[str, Any]:
    from assay.evals.summary import summary_dict

    scores = summary_dict(result.summary)
    keys = ("mean", "low", "high", "n", "errors", "error_messages")
    return {
        "name": result.name,
        "experiment_id": result.experiment_id,
        "comparison": result.comparison,
        "passed": result.passed,
        "failed_thresholds": result.failed_thresholds,
        "rows": len(result.rows),
        "errored_rows": result.errored_rows,
        "scores": {name: {k: item[k] for k in keys} for name, item in scores.items()},
    }


def _junit(results: list[Any], path: Path) -> None:
    suites = ElementTree.Element("testsuites", name="assay eval")
    for result in results:
        cases = [("row " + r.case_id + f"#{r.trial}", r.error) for r in result.rows]
        checks = [(f"threshold {f.split(':')[0]}", f) for f in result.failed_thresholds]
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=result.name,
            tests=str(len(cases) + len(checks)),
            failures=str(len(checks)),
            errors=str(sum(1 for _, e in cases if e)),
        )
        for name, error in cases:
            case = ElementTree.SubElement(suite, "testcase", classname=result.name, name=name)
            if error:
                ElementTree.SubElement(case, "error", message=error)
        for name, failure in checks:
            case = ElementTree.SubElement(suite, "testcase", classname=result.name, name=name)
            ElementTree.SubElement(case, "failure", message=failure)
    ElementTree.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def eval_command(
    paths: list[Path] = typer.Argument(..., help="Eval files or folders (eval*.py, *_eval.py)."),
    list_only: bool = typer.Option(False, "--list", help="List the Evals found; run nothing."),
    name_filter: str | None = typer.Option(
        None, "--filter", help="Run Evals whose name matches this glob."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here (for CI)."),
    send: bool = typer.Option(
        True,
        "--send/--no-send",
        help="Store each run as an experiment on the server (--no-send: local only).",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the latest unfinished experiment of each Eval."
    ),
    fail_on_regression: bool = typer.Option(
        False,
        "--fail-on-regression",
        help="Exit 1 when a score regresses significantly against the baseline.",
    ),
    require_calibrated: bool = typer.Option(
        False,
        "--require-calibrated",
        help="Refuse to run when a judge with a threshold is not calibrated against people "
        "on the server (its version's latest calibration below the project's kappa).",
    ),
) -> None:
    """Run Evals and summarise each score (mean, 95% interval); exit 1 if a threshold fails."""
    evals = discover(paths)
    if name_filter:
        evals = [e for e in evals if fnmatch(e.name, name_filter)]
    if list_only:
        for evaluation in evals:
            print(evaluation.name)
        return
    if not evals:
        raise UserError("no Evals found; define assay.Eval(...) at the top level of the files")
    if require_calibrated:
        _refuse_uncalibrated(evals)
    results = [_run_with_progress(e, send=send, resume=resume, quiet=as_json) for e in evals]
    if as_json:
        print(json.dumps([_as_json(r) for r in results], indent=2))
    else:
        for result in results:
            console.print(_summary_table(result))
            if result.errored_rows:
                console.print(f"[yellow]{result.errored_rows} rows errored[/]")
            for failure in result.failed_thresholds:
                console.print(f"[bold red]threshold failed[/] {failure}")
            if result.comparison:
                console.print(_comparison_table(result.comparison))
    if junit:
        _junit(results, junit)
    regressed = fail_on_regression and any(
        r.comparison and r.comparison.get("significant_regression") for r in results
    )
    if regressed:
        console.print("[bold red]significant regression against the baseline[/]")
    if any(not r.passed for r in results) or regressed:
        raise typer.Exit(1)


def _refuse_uncalibrated(evals: list[Any]) -> None:
    refused = uncalibrated_judges(evals)
    for message in refused:
        console.print(f"[bold red]not calibrated[/] {message}")
    if refused:
        raise typer.Exit(1)


def uncalibrated_judges(evals: list[Any]) -> list[str]:
    """Why each judge that gates an Eval (it has a threshold) may not: the server's answer
    for its version (stored under its name in the Eval's project)."""
    from urllib.parse import quote

    from assay.client import ApiError, Client
    from assay.scorers.judges import Judge
    from assay.settings import setting

    refused: list[str] = []
    client = Client()
    try:
        for evaluation in evals:
            project = str(setting("project", evaluation.project) or "")
            for scorer in evaluation.scorers:
                if not isinstance(scorer, Judge) or scorer.name not in evaluation.thresholds:
                    continue
                if not project:
                    refused.append(f"{evaluation.name}: name a project to check {scorer.name!r}")
                    continue
                try:
                    found = client.get(
                        f"/api/v1/projects/{quote(project, safe='')}/judges/"
                        f"{quote(scorer.name, safe='')}/gate",
                        params={"version_hash": scorer.version},
                    )
                except ApiError as error:
                    if error.status != 404:
                        raise
                    refused.append(f"{evaluation.name}: {error}")
                    continue
                if not found["ok"]:
                    refused.append(f"{evaluation.name}: {found['message']}")
    finally:
        client.close()
    return refused


def _run_with_progress(evaluation: Any, *, send: bool, resume: bool, quiet: bool) -> Any:
    """Run one Eval under a progress bar that shows each score's running mean."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from assay.evals._eval import _cases

    total = len(_cases(evaluation.data)) * evaluation.trials
    sums: dict[str, list[float]] = {}
    progress = Progress(
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[means]}"),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )
    task = progress.add_task("eval", total=total, name=evaluation.name, means="")

    def on_row(row: Any) -> None:
        for score in row.scores:
            if score.value is not None:
                tally = sums.setdefault(score.name, [0.0, 0.0])
                tally[0] += score.value
                tally[1] += 1
        means = "  ".join(f"{name} {s / n:.2f}" for name, (s, n) in sorted(sums.items()))
        progress.update(task, advance=1, means=means)

    with progress:
        return evaluation.run(send=send, resume=resume, on_row=on_row)


def _comparison_table(comparison: dict[str, Any]) -> Table:
    table = Table(
        "score",
        "baseline",
        "candidate",
        "delta",
        "95% interval",
        "p",
        "test",
        "+/-/=",
        title=f"against experiment {comparison.get('baseline')}",
    )
    for name, item in sorted(comparison["scores"].items()):
        low, high = item.get("low"), item.get("high")
        interval = f"[{low:+.3f}, {high:+.3f}]" if low is not None and high is not None else "-"
        p_value = item.get("p_value")
        mark = " *" if item.get("significant") else ""
        table.add_row(
            name,
            f"{item['baseline_mean']:.3f}",
            f"{item['candidate_mean']:.3f}",
            f"{item['delta']:+.3f}{mark}",
            interval,
            "-" if p_value is None else f"{p_value:.3g}",
            item.get("test_method") or item.get("test", ""),
            f"{item['improved']}/{item['regressed']}/{item['unchanged']}",
        )
    return table
