"""Dataset files: JSON Lines and CSV, read whole and checked before anything is sent."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assay.errors import UserError

FIELDS = ("record_id", "input", "expected", "metadata", "tags", "source_trace_id")


def _format_of(path: Path, declared: str | None) -> str:
    kind = (declared or path.suffix.lstrip(".")).lower()
    if kind in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if kind == "csv":
        return "csv"
    raise UserError(f"{path}: cannot tell the format; name it .jsonl or .csv, or pass --format")


def read_records(path: Path, declared_format: str | None = None) -> list[dict[str, Any]]:
    """Every record in the file, or a UserError naming the first bad line and what is wrong."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    kind = _format_of(path, declared_format)
    with path.open(newline="", encoding="utf-8") as handle:
        try:
            return _read_jsonl(path, handle) if kind == "jsonl" else _read_csv(path, handle)
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not UTF-8 text ({exc.reason})") from None


def _check(path: Path, line: int, record: Any) -> dict[str, Any]:
    where = f"{path}:{line}"
    if not isinstance(record, dict):
        raise UserError(f"{where}: each line must be a JSON object with an 'input'")
    if "input" not in record:
        raise UserError(f"{where}: the record has no 'input'")
    unknown = set(record) - set(FIELDS) - {"id"}
    if unknown:
        raise UserError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(FIELDS)}"
        )
    if "metadata" in record and not isinstance(record["metadata"] or {}, dict):
        raise UserError(f"{where}: 'metadata' must be an object")
    tags = record.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise UserError(f"{where}: 'tags' must be a list of strings")
    return record


def _read_jsonl(path: Path, handle: Iterable[str]) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(
                f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        records.append(_check(path, number, record))
    return records


def _cell(text: str) -> Any:
    """CSV cells are text; ones that hold a JSON object or list are read as JSON."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    return text


def _read_csv(path: Path, handle: Iterable[str]) -> list[dict[str, Any]]:
    reader = csv.DictReader(handle)
    if not reader.fieldnames or "input" not in reader.fieldnames:
        raise UserError(f"{path}:1: the header must name an 'input' column")
    records = []
    for row in reader:
        number = reader.line_num
        if None in row:
            raise UserError(f"{path}:{number}: more cells than the header has columns")
        record: dict[str, Any] = {}
        for key, value in row.items():
            if value is None or value == "":
                continue
            if key == "metadata":
                parsed = _cell(value)
                if not isinstance(parsed, dict):
                    raise UserError(f"{path}:{number}: 'metadata' must be a JSON object")
                record[key] = parsed
            elif key == "tags":
                parsed = _cell(value)
                record[key] = (
                    parsed
                    if isinstance(parsed, list)
                    else [tag.strip() for tag in value.split(",") if tag.strip()]
                )
            else:
                record[key] = _cell(value) if key in ("input", "expected") else value
        if "input" not in record:
            raise UserError(f"{path}:{number}: the 'input' cell is empty")
        records.append(_check(path, number, record))
    return records


def write_records(path: Path, records: list[dict[str, Any]], declared_format: str | None) -> None:
    kind = _format_of(path, declared_format)
    with path.open("w", newline="", encoding="utf-8") as handle:
        if kind == "jsonl":
            for record in records:
                handle.write(json.dumps(_portable(record), ensure_ascii=False) + "\n")
            return
        writer = csv.DictWriter(handle, fieldnames=list(FIELDS))
        writer.writeheader()
        for record in records:
            portable = _portable(record)
            writer.writerow(
                {
                    key: (
                        json.dumps(value, ensure_ascii=False)
                        if isinstance(value, dict | list)
                        else value
                    )
                    for key, value in portable.items()
                    if key in FIELDS
                }
            )


def _portable(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in FIELDS if record.get(key) not in (None, [], {})}
