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
