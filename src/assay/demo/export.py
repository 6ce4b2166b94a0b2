"""The demo's export: the eval's dataset as OpenAI chat fine-tuning JSONL, written to a temp
file, with the export's report (how many records became examples, how many were skipped and
why) — what `assay datasets export NAME --format openai-chat` prints."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from assay.client import Client


@dataclass
class DemoExport:
    path: Path
    report: dict[str, Any]


def export_demo_dataset(base: str, project: str, dataset: str) -> DemoExport:
    client = Client(base)
    try:
        url = (
            f"/api/v1/projects/{quote(project, safe='')}/datasets/{quote(dataset, safe='')}/export"
        )
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept for the user to open
            "wb", prefix=f"{dataset}-", suffix=".openai.jsonl", delete=False
        )
        with handle:
            headers = client.download(url, handle, params={"format": "openai-chat"})
        report = client.get(headers["x-assay-export-report"])
        return DemoExport(Path(handle.name), report)
    finally:
        client.close()
