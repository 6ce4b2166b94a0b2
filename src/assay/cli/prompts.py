"""`assay prompts`: push prompt files to the registry, pull a version back, list prompts.

A prompt file is JSON: one prompt, or a list of them, each as the REST API takes it::

    {"name": "triage", "model": "gpt-4o-mini", "params": {"temperature": 0},
     "messages": [{"role": "system", "content": "You triage tickets for {{ company }}."},
                  {"role": "user", "content": "{{ ticket }}"}],
     "message": "what changed"}

Pushing a prompt whose latest version already holds the same content makes no new version,
so a CI job can push on every merge.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console

from assay.errors import UserError
from assay.settings import setting

app = typer.Typer(help="Push, pull and list registry prompts.", no_args_is_help=True)
console = Console()

ProjectOption = typer.Option(None, "--project", "-p", help="Project (default $ASSAY_PROJECT).")
UrlOption = typer.Option(None, "--url", help="Server URL (default $ASSAY_URL).")
#: The fields of a version a prompt file holds (the rest is the server's: author, labels...).
FILE_FIELDS = ("name", "model", "params", "tools", "response_format", "messages")


def _base(project: str | None) -> str:
    return f"/api/v1/projects/{quote(str(setting('project', project)), safe='')}/prompts"


def read_prompt_file(path: Path) -> list[dict[str, Any]]:
    """The prompts of a JSON prompt file; UserError naming what is wrong."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except ValueError as error:
        raise UserError(f"{path} is not JSON: {error}") from None
    found = loaded if isinstance(loaded, list) else [loaded]
    for index, item in enumerate(found):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise UserError(f"{path}: prompt {index} needs a 'name' and 'messages'")
    return found


@app.command("push")
def push(
    file: Path = typer.Argument(..., help="A JSON file: one prompt or a list of them."),
    project: str | None = ProjectOption,
    message: str | None = typer.Option(None, "--message", "-m", help="Commit message."),
    label: str | None = typer.Option(
        None, "--label", "-l", help="Then point this label (e.g. staging) at each version."
    ),
    url: str | None = UrlOption,
) -> None:
    """Save each prompt of FILE as a new version (none when nothing changed)."""
    from assay.client import Client

    client = Client(url)
    base = _base(project)
    for item in read_prompt_file(file):
        body = {**item, "message": message or item.get("message") or f"push {file.name}"}
        saved = client.post(base, json=body)
        state = "new version" if saved["created"] else "unchanged"
        console.print(f"[bold]{saved['name']}[/]: version {saved['version']} ({state})")
        if label:
            path = f"{base}/{quote(saved['name'], safe='')}/labels/{quote(label, safe='')}"
            client.request("PUT", path, json={"version": saved["version"]})
            console.print(f"  {label} -> version {saved['version']}")


@app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Prompt name."),
    label: str | None = typer.Option(None, "--label", "-l", help="Label (default: latest)."),
    version: int | None = typer.Option(None, "--version", help="A pinned version."),
    out: Path | None = typer.Option(None, "--out", "-o", help="File to write (default stdout)."),
    project: str | None = ProjectOption,
    url: str | None = UrlOption,
) -> None:
    """Write one version as a prompt file that `assay prompts push` takes back."""
    from assay.client import Client

    params: dict[str, Any] = {}
    if label is not None:
        params["label"] = label
    if version is not None:
        params["version"] = version
    found = Client(url).get(f"{_base(project)}/{quote(name, safe='')}", params=params)
    document = {key: found[key] for key in FILE_FIELDS if found.get(key) not in (None, {}, [])}
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {name} version {found['version']} to {out}")


@app.command("list")
def list_(project: str | None = ProjectOption, url: str | None = UrlOption) -> None:
    """List a project's prompts with their latest version and labels."""
    from rich.table import Table

    from assay.client import Client

    table = Table("name", "latest", "labels")
    for item in Client(url).get(_base(project))["items"]:
        labels = ", ".join(f"{k}: v{v}" for k, v in item["labels"].items())
        table.add_row(item["name"], str(item["version"]), labels)
    console.print(table)
