"""Model strings to providers: ``openai/gpt-4.1-mini``, ``anthropic/claude-sonnet-4-5``,
``mistral/mistral-large-latest``, ``ollama/llama3.2``,
``openai-compatible/<model>`` with ``base_url=``, and ``mock/<anything>``."""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from typing import Any

from assay.errors import ConfigError
from assay.models._anthropic import AnthropicProvider
from assay.models._mock import MockProvider
from assay.models._model import Model, Provider
from assay.models._openai import OpenAIProvider

#: Options every model takes (see `Model`); the rest go to the provider's factory.
MODEL_OPTIONS = frozenset(inspect.signature(Model).parameters) - {"name", "provider"}

ProviderFactory = Callable[..., Provider]

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
MISTRAL_URL = "https://api.mistral.ai/v1"
OLLAMA_URL = "http://localhost:11434/v1"


def _openai(
    base_url: str | None = None, api_key: str | None = None, **client: Any
) -> OpenAIProvider:
    # The SDK reads OPENAI_API_KEY and OPENAI_BASE_URL itself; the endpoint is resolved here
    # only to name it (cache key, concurrency cap).
    endpoint = base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    return OpenAIProvider(
        "openai", endpoint, base_url=base_url, api_key=api_key, client_options=client
    )


def _anthropic(
    base_url: str | None = None, api_key: str | None = None, **client: Any
) -> AnthropicProvider:
    endpoint = base_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL
    return AnthropicProvider(endpoint, base_url=base_url, api_key=api_key, client_options=client)


def _mistral(
    base_url: str | None = None, api_key: str | None = None, **client: Any
) -> OpenAIProvider:
    endpoint = base_url or os.environ.get("MISTRAL_BASE_URL") or MISTRAL_URL
    return OpenAIProvider(
        "mistral",
        endpoint,
        base_url=endpoint,
        api_key=api_key or os.environ.get("MISTRAL_API_KEY"),
        api_key_variable="MISTRAL_API_KEY",
        max_tokens_field="max_tokens",
        client_options=client,
    )


def _ollama(
    base_url: str | None = None, api_key: str | None = None, **client: Any
) -> OpenAIProvider:
    endpoint = base_url or os.environ.get("OLLAMA_BASE_URL") or OLLAMA_URL
    return OpenAIProvider(
        "ollama",
        endpoint,
        base_url=endpoint,
        api_key=api_key or "ollama",  # Ollama ignores the key; the SDK insists on one
        max_tokens_field="max_tokens",
        client_options=client,
    )


def _compatible(
    base_url: str | None = None, api_key: str | None = None, **client: Any
) -> OpenAIProvider:
    if not base_url:
        raise ConfigError(
            "an openai-compatible/ model needs base_url=, e.g. http://localhost:8000/v1 for "
            "vLLM or http://localhost:8080/v1 for llama.cpp server"
        )
    return OpenAIProvider(
        "openai-compatible",
        base_url,
        base_url=base_url,
        # Local servers rarely check the key, but the SDK needs one.
        api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
        max_tokens_field="max_tokens",
        client_options=client,
    )


_PROVIDERS: dict[str, ProviderFactory] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "mistral": _mistral,
    "ollama": _ollama,
    "openai-compatible": _compatible,
    "mock": MockProvider,
}
_LOCK = threading.Lock()


def register_provider(prefix: str, factory: ProviderFactory) -> None:
    """Make ``prefix/<model>`` resolve to ``factory(**provider_options)``, which returns a
    `Provider`."""
    if not prefix or "/" in prefix:
        raise ConfigError(f"a provider prefix is a word without '/'; got {prefix!r}")
    with _LOCK:
        _PROVIDERS[prefix] = factory


def get_model(name: str, **options: Any) -> Model:
    """The model a string names, e.g. ``get_model("openai/gpt-4.1-mini", temperature=0)``.

    ``options`` are the `Model` options (temperature, max_tokens, timeout, retries, backoff,
    max_backoff, max_concurrency, cache, cache_dir) and the provider's: ``base_url`` and
    ``api_key`` for the SDK-backed providers (other keywords go to the SDK client), ``outputs``
    / ``respond`` / ``dimensions`` for ``mock/``. Each provider honours its SDK's environment
    variables (OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL;
    MISTRAL_API_KEY, MISTRAL_BASE_URL; OLLAMA_BASE_URL).
    """
    prefix, slash, model = name.partition("/")
    if not slash or not model:
        raise ConfigError(
            f"model {name!r}: name it as provider/model, e.g. openai/gpt-4.1-mini; providers: "
            f"{', '.join(sorted(_PROVIDERS))}"
        )
    factory = _PROVIDERS.get(prefix)
    if factory is None:
        raise ConfigError(
            f"unknown model provider {prefix!r} in {name!r}; use one of "
            f"{', '.join(sorted(_PROVIDERS))} (or openai-compatible/ with base_url=)"
        )
    model_options = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    if prefix == "mock":
        # Scripted answers change from test to test; a cache would replay yesterday's.
        model_options.setdefault("cache", False)
    provider_options = {k: v for k, v in options.items() if k not in MODEL_OPTIONS}
    try:
        provider = factory(**provider_options)
    except TypeError as error:
        raise ConfigError(f"model {name!r}: {error}") from None
    return Model(name, provider, **model_options)
