"""`assay datasets`: push and pull dataset files (JSON Lines or CSV)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from assay.settings import setting

app = typer.Typer(help="Push, pull and list datasets.", no_args_is_help=True)
console = Console()

ProjectOption = typer.Option(None, "--project", "-p", help="Project (default $ASSAY_PROJECT).")
UrlOption = typer.Option(None, "--url", help="Server URL (default $ASSAY_URL).")
FormatOption = typer.Option(None, "--format", help="jsonl or csv (default: from the suffix).")


@app.command("push")
def push(
    file: Path = typer.Argument(..., help="A .jsonl or .csv file of records."),
    name: str = typer.Option(None, "--name", "-n", help="Dataset name (default: file stem)."),
    project: str | None = ProjectOption,
    message: str | None = typer.Option(None, "--message", "-m", help="Note for this version."),
    file_format: str | None = FormatOption,
    url: str | None = UrlOption,
) -> None:
    """Add the file's records to a dataset, as one new version. A bad line stops the push
    before anything is sent."""
    from assay.client import Client
    from assay.evals._datasets import Dataset
    from assay.evals._files import read_records

    records = read_records(file, file_format)
    dataset = Dataset(name or file.stem, project, client=Client(url))
    version = dataset.insert_many(records, message=message or f"push {file.name}")
    console.print(
        f"pushed {len(records)} records to [bold]{dataset.name}[/] "
        f"({dataset.project}): version {version}"
    )


@app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Dataset name."),
    out: Path = typer.Option(None, "--out", "-o", help="File to write (default NAME.jsonl)."),
    version: int | None = typer.Option(None, "--version", help="Version (default latest)."),
    project: str | None = ProjectOption,
    file_format: str | None = FormatOption,
    url: str | None = UrlOption,
) -> None:
    """Write a dataset (one version) to a .jsonl or .csv file."""
    from assay.client import Client
    from assay.evals._datasets import Dataset
    from assay.evals._files import write_records

    dataset = Dataset(name, project, version=version, client=Client(url))
    records = list(dataset)
    target = out or Path(f"{name}.jsonl")
    write_records(target, records, file_format)
    console.print(f"wrote {len(records)} records (version {dataset.version}) to {target}")


@app.command("list")
def list_(project: str | None = ProjectOption, url: str | None = UrlOption) -> None:
    """List a project's datasets."""
    from urllib.parse import quote

    from assay.client import Client

    project = str(setting("project", project))
    items = Client(url).get(f"/api/v1/projects/{quote(project, safe='')}/datasets")["items"]
    table = Table("name", "version", "records", "description")
    for item in items:
        table.add_row(
            item["name"],
            str(item["version"]),
            str(item["record_count"]),
            item.get("description") or "",
        )
    console.print(table)


#: How many skipped records the CLI names; the report URL has them all.
SHOWN_SKIPS = 20


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Dataset name."),
    export_format: str = typer.Option(
        ..., "--format", help="openai-chat, anthropic (fine-tuning JSONL), jsonl or csv (records)."
    ),
    version: int | None = typer.Option(None, "--version", help="Version (default latest)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (default: standard output)."
    ),
    project: str | None = ProjectOption,
    url: str | None = UrlOption,
) -> None:
    """Export a dataset version as fine-tuning JSONL (OpenAI chat, Anthropic messages) or as
    records (JSONL, CSV). What was exported and what was skipped, and why, goes to stderr."""
    import sys
    from urllib.parse import quote

    from assay.client import Client

    client = Client(url)
    project = str(setting("project", project))
    path = f"/api/v1/projects/{quote(project, safe='')}/datasets/{quote(name, safe='')}/export"
    params: dict[str, str | int] = {"format": export_format}
    if version is not None:
        params["version"] = version
    err = Console(stderr=True)
    if output is None:
        headers = client.download(path, sys.stdout.buffer, params=params)
        sys.stdout.flush()
    else:
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as handle:
                headers = client.download(path, handle, params=params)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
    report_url = headers.get("x-assay-export-report", "")
    report = client.get(report_url)
    where = f" to {output}" if output is not None else ""
    err.print(
        f"exported {report['exported']} records of [bold]{name}[/] v{report['version']} "
        f"({project}) as {export_format}{where}; skipped {report['skipped']}",
        highlight=False,
    )
    for reason, count in report["reasons"].items():
        err.print(f"  {count} skipped: {reason}", highlight=False, markup=False)
    for item in report["skipped_records"][:SHOWN_SKIPS]:
        err.print(f"  - {item['record_id']}: {item['reason']}", highlight=False, markup=False)
    if report["skipped"] > SHOWN_SKIPS:
        err.print(f"  (every skipped record: GET {report_url})", highlight=False, markup=False)
