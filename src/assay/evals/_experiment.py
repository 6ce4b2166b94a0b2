"""Storing an eval run as an experiment on the server, resuming one, comparing with a baseline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from assay.client import Client
from assay.evals.rows import ExperimentRow

ROW_BATCH = 200


def case_key(case_id: str | None, value: Any) -> str:
    """Rows of two experiments are matched on this: the record id, else a hash of the input."""
    if case_id:
        return str(case_id)[:64]
    text = json.dumps(value, sort_keys=True, default=str)
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def git_metadata() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=5, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
    }


class ExperimentRecorder:
    """The server side of one eval run."""

    def __init__(self, client: Client, project: str, experiment: dict[str, Any]) -> None:
        self.client = client
        self.project = project
        self.experiment = experiment
        self.id = int(experiment["id"])

    @classmethod
    def start(
        cls,
        client: Client,
        project: str,
        eval_name: str,
        *,
        name: str | None,
        dataset: str | None,
        dataset_version: int | None,
        metadata: dict[str, Any],
    ) -> ExperimentRecorder:
        body = {
            "eval_name": eval_name,
            "name": name,
            "dataset": dataset,
            "dataset_version": dataset_version,
            "metadata": {**metadata, "git": git_metadata(), "cwd": os.getcwd()},
        }
        experiment = client.post(
            f"/api/v1/projects/{quote(project, safe='')}/experiments", json=body
        )
        return cls(client, project, experiment)

    @classmethod
    def resume(cls, client: Client, project: str, eval_name: str) -> ExperimentRecorder | None:
        """The latest unfinished experiment of this eval, if any."""
        items = client.get(
            f"/api/v1/projects/{quote(project, safe='')}/experiments",
            params={"eval_name": eval_name, "limit": 1},
        )["items"]
        if not items or items[0]["status"] == "complete":
            return None
        return cls(client, project, items[0])

    def done_rows(self) -> set[tuple[str, int]]:
        """(case, trial) pairs already stored without an error."""
        rows = self.client.get(f"/api/v1/experiments/{self.id}/rows")["items"]
        return {(r["case_key"], int(r["trial"])) for r in rows if not r.get("error")}

    def add_rows(self, rows: Sequence[ExperimentRow]) -> None:
        for start in range(0, len(rows), ROW_BATCH):
            batch = [row.model_dump(mode="json") for row in rows[start : start + ROW_BATCH]]
            self.client.post(f"/api/v1/experiments/{self.id}/rows", json=batch)

    def finish(self, status: str, summary: dict[str, Any]) -> None:
        self.client.request(
            "PATCH", f"/api/v1/experiments/{self.id}", json={"status": status, "summary": summary}
        )

    def all_rows(self) -> list[ExperimentRow]:
        items = self.client.get(f"/api/v1/experiments/{self.id}/rows")["items"]
        return [ExperimentRow.model_validate(item) for item in items]

    def baseline_id(self, baseline: str | int | None, eval_name: str) -> int | None:
        if isinstance(baseline, int) or (isinstance(baseline, str) and baseline.isdigit()):
            return int(baseline)
        items = self.client.get(
            f"/api/v1/projects/{quote(self.project, safe='')}/experiments",
            params={"eval_name": eval_name, "limit": 100},
        )["items"]
        for item in items:
            if item["id"] == self.id or item["status"] != "complete":
                continue
            if baseline is None or item["name"] == baseline:
                return int(item["id"])
        return None

    def compare(self, baseline_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.client.get(
            f"/api/v1/experiments/{baseline_id}/compare/{self.id}"
        )
        return result
