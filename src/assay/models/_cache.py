"""An on-disk cache of model answers, keyed by a hash of the full request.

A judge re-run over the same data then asks the provider nothing: it is reproducible and free.
One JSON file per answer, written to a temporary file and renamed into place, so a reader never
sees half an answer and concurrent writers (threads or processes) of one key simply race to
write the same content.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from assay.errors import ConfigError
from assay.models._types import Request, Response
from assay.settings import cache_root, setting

log = logging.getLogger("assay.models")

#: Part of every key: bump it when the meaning of a cached answer changes.
CACHE_FORMAT = 1
CACHE_MODES = ("auto", "on", "off")


def default_cache_dir() -> Path:
    """``$ASSAY_CACHE_DIR/models``; by default ``~/.cache/assay/models`` (XDG_CACHE_HOME
    honoured)."""
    return cache_root() / "models"


def cache_mode() -> str:
    """ASSAY_MODEL_CACHE: ``auto`` (default: cache calls at temperature 0), ``on`` or ``off``;
    a model's or a call's own ``cache=`` wins over it."""
    mode = str(setting("model_cache")).strip().lower()
    if mode not in CACHE_MODES:
        raise ConfigError(f"ASSAY_MODEL_CACHE={mode!r}: use one of {', '.join(CACHE_MODES)}")
    return mode


def wants_cache(request: Request, choice: bool | None) -> bool:
    if choice is not None:
        return choice
    mode = cache_mode()
    if mode != "auto":
        return mode == "on"
    return request.temperature == 0


def request_key(provider: str, endpoint: str, request: Request) -> str:
    """A hash of everything that shapes the answer: provider, endpoint, model, messages, tools,
    tool choice, temperature, token limit, response format and seed."""
    material: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "provider": provider,
        "endpoint": endpoint,
        "request": request.as_dict(),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """Answers by request key, under ``directory``."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Response | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Response.from_dict(data["response"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged entry is a miss; the next answer overwrites it.
            log.warning("Assay: ignoring an unreadable model cache entry %s", path)
            return None

    def put(self, key: str, response: Response) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"key": key, "response": response.as_dict()}, ensure_ascii=False)
            handle, temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp"
            )
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            # The cache only saves money: failing to write it must not fail the call.
            log.warning("Assay: could not write the model cache under %s", self.directory)
