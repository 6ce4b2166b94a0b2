"""`assay.dataset(name)`: read and change a versioned dataset from code."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from assay.client import Client
from assay.settings import setting

Record = dict[str, Any]


class Dataset:
    """A dataset on the server. Iterating reads one version: the pinned one, or the latest at
    the time of the first read (then kept, so a run sees one consistent version)."""

    def __init__(
        self,
        name: str,
        project: str | None = None,
        *,
        version: int | None = None,
        description: str | None = None,
        client: Client | None = None,
    ) -> None:
        self.name = name
        self.project = str(setting("project", project))
        self._client = client or Client()
        self._pinned = version
        base = f"/api/v1/projects/{quote(self.project, safe='')}/datasets"
        self._base = f"{base}/{quote(name, safe='')}"
        info = self._client.post(base, json={"name": name, "description": description})
        self._latest = int(info["version"])

    @property
    def version(self) -> int:
        """The pinned version, else the latest."""
        return self._pinned if self._pinned is not None else self._latest

    def pin(self, version: int | None = None) -> Dataset:
        """Read ``version`` (default: the latest now) from here on."""
        self._pinned = self._refresh() if version is None else version
        return self

    def _refresh(self) -> int:
        self._latest = int(self._client.get(self._base)["version"])
        return self._latest

    def __iter__(self) -> Iterator[Record]:
        if self._pinned is None:
            self.pin()
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"version": self.version, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = self._client.get(f"{self._base}/records", params=params)
            yield from page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _change(self, **changes: Any) -> int:
        entry = self._client.post(f"{self._base}/changes", json=changes)
        self._latest = int(entry["version"])
        return self._latest

    def insert(
        self,
        input: Any,
        expected: Any = None,
        *,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        record_id: str | None = None,
        source_trace_id: str | None = None,
    ) -> int:
        """Add one record; returns the new version."""
        record: Record = {
            "input": input,
            "expected": expected,
            "metadata": metadata or {},
            "tags": tags or [],
        }
        if record_id:
            record["record_id"] = record_id
        if source_trace_id:
            record["source_trace_id"] = source_trace_id
        return self._change(insert=[record])

    def insert_many(self, records: Iterable[Record], message: str | None = None) -> int:
        """Add many records in one version."""
        return self._change(insert=list(records), message=message)

    def update(self, record_id: str, **fields: Any) -> int:
        """Change fields (input, expected, metadata, tags) of one record; a new version."""
        return self._change(update=[{"record_id": record_id, **fields}])

    def delete(self, record_id: str) -> int:
        return self._change(delete=[record_id])

    def versions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._client.get(f"{self._base}/versions")["items"]
        return items


def dataset(
    name: str, project: str | None = None, *, version: int | None = None, **kwargs: Any
) -> Dataset:
    """Open (creating if needed) dataset ``name``; ``version`` pins what iteration reads."""
    return Dataset(name, project, version=version, **kwargs)
