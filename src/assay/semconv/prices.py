"""Model prices, and the cost of one LLM call.

Ingest prices every LLM span from its model name and token counts, and the model layer and the
trajectory scorers price calls that were never ingested, all from this one table. It holds
list prices in USD per 1M tokens for the current (and still widely used earlier) models of
OpenAI, Anthropic, Google (Gemini) and Mistral; a project can override or extend it
(:meth:`PriceTable.with_overrides`, :func:`parse_overrides`).

Matching a model name is forgiving, because the same model reaches us under many spellings:

* case is ignored and surrounding whitespace dropped;
* a path prefix is dropped (``openai/gpt-4o``, ``models/gemini-2.5-flash``,
  ``publishers/google/models/...``, a Bedrock ARN), keeping the last segment;
* a Bedrock vendor prefix is dropped (``anthropic.``, ``us.anthropic.``, ``mistral.``);
* Claude versions written with dots (``claude-3.5-sonnet``) are read as dashes;
* then the exact key is tried, and failing that the *longest* table key that is a prefix of the
  name and ends at a separator (``-``, ``@``, ``:``, ``_``, ``[``). That is how dated and tagged
  ids resolve: ``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini`` (not ``gpt-4o``),
  ``claude-3-5-sonnet@20240620`` -> ``claude-3-5-sonnet``, ``mistral-large-latest`` ->
  ``mistral-large``. Because ``.`` is not a separator, ``gpt-5.9`` never falls back to ``gpt-5``.

A table key may be qualified by a provider, ``"azure/gpt-4o"``: it then applies only when
:meth:`PriceTable.lookup` is given that provider (compared case-insensitively, as sent, e.g. the
span's ``gen_ai.system``), and it wins over an unqualified key matching as much of the name.

Token convention (OpenAI / OTel GenAI): ``input_tokens`` *includes* the cached (cache-read)
tokens, which are billed at ``cached_input`` instead of ``input``.

What is not modelled: long-context surcharges (Gemini Pro above 200K prompt tokens, GPT-5.6 / 6
above 272K, Claude Haiku 5.5 above 100K: the table holds the short-prompt rate), cache *writes*,
batch / flex / priority tiers, audio and image tokens, regional uplifts.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, SupportsFloat, TypeGuard

__all__ = [
    "DEFAULT_PRICES",
    "PRICES_AS_OF",
    "ModelPrice",
    "PriceTable",
    "parse_overrides",
]

#: The day the built-in table was last checked against the providers' pricing pages.
PRICES_AS_OF: Final = "2026-11-22"

_PRICE_FIELDS: Final = ("input", "output", "cached_input")


def _is_price(value: object) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """List price of one model, in USD per 1M tokens."""

    input: float
    """USD per 1M (uncached) input tokens."""
    output: float
    """USD per 1M output tokens (reasoning / thinking tokens included)."""
    cached_input: float | None = None
    """USD per 1M cache-read input tokens; ``None`` means the same as ``input``."""

    def __post_init__(self) -> None:
        for field in _PRICE_FIELDS:
            value = getattr(self, field)
            if value is None and field == "cached_input":
                continue
            if not _is_price(value):
                raise ValueError(
                    f"ModelPrice.{field} must be a finite non-negative number, got {value!r}"
                )

    @property
    def cache_read(self) -> float:
        """The price actually applied to cache-read tokens."""
        return self.input if self.cached_input is None else self.cached_input


_P = ModelPrice

# The built-in table. Keys are normalised model names (lower case, no provider prefix); dated
# snapshots and aliases resolve to them by the longest-prefix rule above, so only list a snapshot
# when its price differs from its family's.
_BUILTIN_PRICES: Final[Mapping[str, ModelPrice]] = MappingProxyType(
    {
        # --- OpenAI -------------------------------------------------------------------------
        # Source: OpenAI's API pricing page ("Pricing", developer docs), Standard tier,
        # short-context column (input / cached input / output).
        # GPT-6 family.
        "gpt-6-astra": _P(10.00, 50.00, 1.00),
        "gpt-6.1-sol": _P(2.00, 10.00, 0.10),
        "gpt-6-sol": _P(2.00, 10.00, 0.20),
        "gpt-6-luna": _P(0.10, 0.50, 0.01),
        # GPT-5.6 family. Sol carries the promotional rate of 2026-08-21 ("at least through
        # 2026-11-21"); its launch rate was 5.00 / 0.50 / 30.00. The bare alias routes to Sol.
        "gpt-5.6": _P(4.00, 20.00, 0.40),
        "gpt-5.6-sol": _P(4.00, 20.00, 0.40),
        "gpt-5.6-terra": _P(2.00, 12.00, 0.20),
        "gpt-5.6-luna": _P(0.20, 1.20, 0.02),
        # GPT-5.x.
        "gpt-5.5": _P(5.00, 30.00, 0.50),
        "gpt-5.5-pro": _P(30.00, 180.00),
        "gpt-5.4": _P(2.50, 15.00, 0.25),
        "gpt-5.4-mini": _P(0.75, 4.50, 0.075),
        "gpt-5.4-nano": _P(0.20, 1.25, 0.02),
        "gpt-5.3-codex": _P(1.75, 14.00, 0.175),
        "gpt-5.2": _P(1.75, 14.00, 0.175),
        "gpt-5.1": _P(1.25, 10.00, 0.125),
        "gpt-5": _P(1.25, 10.00, 0.125),
        "gpt-5-mini": _P(0.25, 2.00, 0.025),
        "gpt-5-nano": _P(0.05, 0.40, 0.005),
        "gpt-5-pro": _P(15.00, 120.00),
        # GPT-4.1 and GPT-4o.
        "gpt-4.1": _P(2.00, 8.00, 0.50),
        "gpt-4.1-mini": _P(0.40, 1.60, 0.10),
        "gpt-4.1-nano": _P(0.10, 0.40, 0.025),
        "gpt-4o": _P(2.50, 10.00, 1.25),
        "gpt-4o-2024-05-13": _P(5.00, 15.00),
        "gpt-4o-mini": _P(0.15, 0.60, 0.075),
        # o-series reasoning models.
        "o1": _P(15.00, 60.00, 7.50),
        "o1-mini": _P(1.10, 4.40, 0.55),
        "o1-pro": _P(150.00, 600.00),
        "o3": _P(2.00, 8.00, 0.50),
        "o3-mini": _P(1.10, 4.40, 0.55),
        "o3-pro": _P(20.00, 80.00),
        "o4-mini": _P(1.10, 4.40, 0.275),
        # --- Anthropic ----------------------------------------------------------------------
        # Source: Anthropic's "Pricing" page in the Claude developer docs (model pricing table:
        # base input / cache hits & refreshes / output) and the per-model overview pages.
        "claude-fable-5-1": _P(10.00, 50.00, 0.25),
        "claude-fable-5": _P(10.00, 50.00, 1.00),
        "claude-mythos-5-1": _P(10.00, 50.00, 0.25),
        "claude-mythos-5": _P(10.00, 50.00, 1.00),
        "claude-opus-5-5": _P(4.00, 20.00, 0.20),
        "claude-opus-5": _P(5.00, 25.00, 0.50),
        "claude-opus-4-8": _P(5.00, 25.00, 0.50),
        "claude-opus-4-7": _P(5.00, 25.00, 0.50),
        "claude-opus-4-6": _P(5.00, 25.00, 0.50),
        "claude-opus-4-5": _P(5.00, 25.00, 0.50),
        "claude-opus-4-1": _P(15.00, 75.00, 1.50),
        "claude-opus-4": _P(15.00, 75.00, 1.50),
        "claude-3-opus": _P(15.00, 75.00, 1.50),
        # Sonnet 5.5 cache hits were cut from 0.20 to 0.10 on 2026-10-07.
        "claude-sonnet-5-5": _P(2.00, 10.00, 0.10),
        "claude-sonnet-5": _P(2.00, 10.00, 0.20),
        "claude-sonnet-4-6": _P(3.00, 15.00, 0.30),
        "claude-sonnet-4-5": _P(3.00, 15.00, 0.30),
        "claude-sonnet-4": _P(3.00, 15.00, 0.30),
        "claude-3-7-sonnet": _P(3.00, 15.00, 0.30),
        "claude-3-5-sonnet": _P(3.00, 15.00, 0.30),
        # Haiku 5.5 is priced by prompt length; this is the band for prompts up to 100K tokens
        # (above it: 0.50 / 0.05 / 2.50).
        "claude-haiku-5-5": _P(0.10, 0.50, 0.01),
        "claude-haiku-4-5": _P(1.00, 5.00, 0.10),
        "claude-3-5-haiku": _P(0.80, 4.00, 0.08),
        "claude-3-haiku": _P(0.25, 1.25, 0.03),
        # --- Google Gemini ------------------------------------------------------------------
        # Source: Google's "Gemini Developer API pricing" page, paid tier, text input, prompts
        # up to 200K tokens; cached = context-caching read price (storage not included).
        # 3.6 / 3.7 / 3.8 Flash are on introductory rates through 2026-12-31 (1.50 / 0.15 /
        # 7.50 from 2027-01-01).
        "gemini-3.8-flash": _P(0.75, 3.75, 0.075),
        "gemini-3.7-flash": _P(0.75, 3.75, 0.075),
        "gemini-3.6-flash": _P(0.75, 3.75, 0.075),
        "gemini-3.5-flash": _P(1.50, 9.00, 0.15),
        "gemini-3.5-flash-lite": _P(0.30, 2.50, 0.03),
        "gemini-3.1-pro": _P(2.00, 12.00, 0.20),
        "gemini-3.1-flash-lite": _P(0.25, 1.50, 0.025),
        "gemini-3-pro": _P(2.00, 12.00, 0.20),
        "gemini-3-flash": _P(0.50, 3.00, 0.05),
        "gemini-2.5-pro": _P(1.25, 10.00, 0.125),
        "gemini-2.5-flash": _P(0.30, 2.50, 0.03),
        "gemini-2.5-flash-lite": _P(0.10, 0.40, 0.01),
        "gemini-2.0-flash": _P(0.10, 0.40, 0.025),
        "gemini-2.0-flash-lite": _P(0.075, 0.30),
        "gemini-1.5-pro": _P(1.25, 5.00, 0.3125),
        "gemini-1.5-flash": _P(0.075, 0.30, 0.01875),
        "gemini-1.5-flash-8b": _P(0.0375, 0.15, 0.01),
        # --- Mistral ------------------------------------------------------------------------
        # Source: Mistral's "Pricing" page (La Plateforme API pricing); cached prompt tokens
        # are billed at 10% of input (Mistral docs, "Prompt caching"). The *-latest aliases
        # resolve to the family key, which carries the current model's price.
        "mistral-large": _P(0.50, 1.50, 0.05),  # Mistral Large 3 (2512)
        "mistral-large-2411": _P(2.00, 6.00),
        "mistral-large-2407": _P(2.00, 6.00),
        "mistral-medium": _P(1.50, 7.50, 0.15),  # Mistral Medium 3.5
        "mistral-medium-3-5": _P(1.50, 7.50, 0.15),
        "mistral-medium-3": _P(0.40, 2.00, 0.04),
        "mistral-medium-3-1": _P(0.40, 2.00, 0.04),
        "mistral-medium-2508": _P(0.40, 2.00, 0.04),
        "mistral-medium-2505": _P(0.40, 2.00, 0.04),
        "mistral-small": _P(0.10, 0.30, 0.01),  # Mistral Small 4 (2603), also Small 3.x
        "magistral-medium": _P(2.00, 5.00, 0.20),
        "magistral-small": _P(0.50, 1.50, 0.05),
        "codestral": _P(0.30, 0.90, 0.03),
        "devstral": _P(0.40, 2.00, 0.04),  # Devstral 2 (2512)
        "devstral-medium": _P(0.40, 2.00, 0.04),
        "devstral-small": _P(0.10, 0.30, 0.01),
        "ministral-14b": _P(0.20, 0.20, 0.02),
        "ministral-8b": _P(0.15, 0.15, 0.015),  # Ministral 3 8B
        "ministral-8b-2410": _P(0.10, 0.10),
        "ministral-3b": _P(0.10, 0.10, 0.01),  # Ministral 3 3B
        "ministral-3b-2410": _P(0.04, 0.04),
        "pixtral-large": _P(2.00, 6.00),
        "mistral-nemo": _P(0.15, 0.15),
        "open-mistral-nemo": _P(0.15, 0.15),
    }
)

# Characters that may follow a table key for the key to count as a prefix of a model name.
_SEPARATORS: Final = frozenset("-@:_[")

# Bedrock model ids: optional cross-region profile ("us.", "eu.", "apac.", "global.", "us-gov."),
# then the vendor ("anthropic.claude-...", "mistral.mistral-large-...").
_VENDOR_PREFIX: Final = re.compile(
    r"^(?:[a-z]{2,6}(?:-[a-z]{2,4})?\.)?(?:anthropic|mistral|openai|google|meta|amazon|cohere)\."
)

# Upper bound of the lookup cache; past it the oldest entry is dropped.
_CACHE_SIZE: Final = 4096

# Token counts above this are not real and are treated like any other unusable count (as 0).
_MAX_TOKENS: Final = 10**15


def _normalise_model(model: str) -> str:
    """Canonical spelling of a model name (see the module docstring)."""
    name = model.strip().lower()
    if "/" in name:
        name = name.rsplit("/", 1)[1]
    name = _VENDOR_PREFIX.sub("", name, count=1)
    if name.startswith("claude"):
        name = name.replace(".", "-")
    return name.strip()


def _normalise_provider(provider: object) -> str | None:
    if not isinstance(provider, str):
        return None
    return provider.strip().lower() or None


def _normalise_key(key: object) -> str:
    """Canonical table key: ``model`` or ``provider/model``. Raises ValueError if unusable."""
    if not isinstance(key, str):
        raise ValueError(f"price table key must be a string, got {key!r}")
    text = key.strip().lower()
    provider, sep, model = text.partition("/")
    if not sep:
        provider, model = "", text
    name = _normalise_model(model)
    if not name or (sep and not provider.strip()):
        raise ValueError(f"price table key {key!r} does not name a model")
    return f"{provider.strip()}/{name}" if sep else name


def _count(value: object) -> int:
    """A token count as a non-negative int; anything unusable counts as 0."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        number = value
    else:
        try:
            if isinstance(value, str):
                as_float = float(value.strip())
            elif isinstance(value, SupportsFloat):
                as_float = float(value)
            else:
                return 0
        except (TypeError, ValueError, OverflowError):
            return 0
        if not math.isfinite(as_float):
            return 0
        number = int(as_float)
    return number if 0 < number <= _MAX_TOKENS else 0


def _price_from_mapping(key: str, value: Mapping[object, object]) -> ModelPrice:
    where = f"price override for {key!r}"
    unknown = sorted(repr(field) for field in value if field not in _PRICE_FIELDS)
    if unknown:
        raise ValueError(
            f"{where} has unknown field(s) {', '.join(unknown)}; "
            "expected 'input', 'output' and optionally 'cached_input'"
        )

    def read(field: str) -> float | None:
        if field not in value:
            if field == "cached_input":
                return None
            raise ValueError(f"{where} is missing {field!r} (USD per 1M tokens)")
        number = value[field]
        if number is None and field == "cached_input":
            return None
        if not _is_price(number):
            raise ValueError(
                f"{where}: {field!r} must be a non-negative number (USD per 1M tokens), "
                f"got {number!r}"
            )
        return float(number)

    return ModelPrice(read("input") or 0.0, read("output") or 0.0, read("cached_input"))


def _to_price(key: str, value: object) -> ModelPrice:
    if isinstance(value, ModelPrice):
        return value
    if isinstance(value, Mapping):
        return _price_from_mapping(key, value)
    raise ValueError(
        f"price override for {key!r} must be an object with 'input' and 'output' "
        f"(USD per 1M tokens), got {type(value).__name__}"
    )


def parse_overrides(raw: object) -> dict[str, ModelPrice]:
    """Read per-project price overrides.

    ``raw`` is JSON-like: ``{"model": {"input": 2.5, "output": 10, "cached_input": 1.25}}``
    (``cached_input`` optional), or the same as a JSON string; ``None`` means no overrides.
    Keys may be provider-qualified (``"azure/gpt-4o"``). Returns normalised keys. Raises
    ValueError, naming the offending key and field, on anything else.
    """
    if raw is None:
        return {}
    if isinstance(raw, str | bytes | bytearray):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"price overrides are not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ValueError(
            "price overrides must be an object mapping model names to prices, "
            f"got {type(raw).__name__}"
        )
    parsed: dict[str, ModelPrice] = {}
    origin: dict[str, object] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"price override key {key!r} must be a non-empty model name")
        try:
            normalised = _normalise_key(key)
        except ValueError:
            raise ValueError(f"price override key {key!r} does not name a model") from None
        if normalised in parsed:
            raise ValueError(
                f"price override keys {origin[normalised]!r} and {key!r} name the same model"
            )
        parsed[normalised] = _to_price(key, value)
        origin[normalised] = key
    return parsed


class PriceTable:
    """An immutable model -> price table with a bounded lookup cache."""

    __slots__ = ("_cache", "_lock", "_prices", "_qualified", "_unqualified")

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        source = _BUILTIN_PRICES if prices is None else prices
        table: dict[str, ModelPrice] = {}
        for key, price in source.items():
            if not isinstance(price, ModelPrice):
                raise ValueError(f"price for {key!r} must be a ModelPrice, got {price!r}")
            table[_normalise_key(key)] = price
        self._prices: Mapping[str, ModelPrice] = MappingProxyType(table)
        by_length = sorted(table, key=len, reverse=True)
        self._unqualified = tuple(key for key in by_length if "/" not in key)
        self._qualified = tuple(key for key in by_length if "/" in key)
        self._cache: dict[tuple[str, str | None], ModelPrice | None] = {}
        self._lock = threading.Lock()

    @property
    def prices(self) -> Mapping[str, ModelPrice]:
        """The table, read-only, by normalised key."""
        return self._prices

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} models)"

    def with_overrides(
        self, overrides: Mapping[str, ModelPrice | Mapping[str, float]]
    ) -> PriceTable:
        """A new table: this one with ``overrides`` replacing or adding models."""
        merged = dict(self._prices)
        merged.update(parse_overrides(overrides))
        return PriceTable(merged)

    def lookup(self, model: str | None, provider: str | None = None) -> ModelPrice | None:
        """The price of ``model`` (as sent by provider ``provider``), or None if unknown."""
        if not isinstance(model, str):
            return None
        if not isinstance(provider, str):
            provider = None
        key = (model, provider)
        try:
            return self._cache[key]
        except KeyError:
            pass
        result = self._resolve(model, provider)
        with self._lock:
            if key not in self._cache:
                while len(self._cache) >= _CACHE_SIZE:
                    del self._cache[next(iter(self._cache))]
                self._cache[key] = result
        return result

    def cost(
        self,
        model: str | None,
        provider: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_tokens: int | None = None,
    ) -> float | None:
        """USD cost of one call, or None if there are no tokens or the model is unknown.

        ``input_tokens`` includes ``cached_tokens``. Missing, negative or otherwise unusable
        counts are taken as 0. Should ``cached_tokens`` exceed ``input_tokens`` (a source that
        reports them separately), the cached tokens are still charged, at the cache price.
        """
        input_count = _count(input_tokens)
        output_count = _count(output_tokens)
        if input_count == 0 and output_count == 0:
            return None
        price = self.lookup(model, provider)
        if price is None:
            return None
        cached_count = _count(cached_tokens)
        uncached_count = max(input_count - cached_count, 0)
        micro_usd = (
            uncached_count * price.input
            + cached_count * price.cache_read
            + output_count * price.output
        )
        return micro_usd / 1_000_000

    def _resolve(self, model: str, provider: str | None) -> ModelPrice | None:
        name = _normalise_model(model)
        if not name:
            return None
        best = self._match(name, self._unqualified)
        prov = _normalise_provider(provider)
        if prov is not None and self._qualified:
            qualified = self._match(f"{prov}/{name}", self._qualified)
            if qualified is not None:
                matched = qualified[0] - len(prov) - 1
                if best is None or matched >= best[0]:
                    return qualified[1]
        return None if best is None else best[1]

    def _match(self, name: str, keys: tuple[str, ...]) -> tuple[int, ModelPrice] | None:
        """(matched length, price) of the exact key or the longest separator-bounded prefix."""
        # Unqualified names never contain "/" and qualified ones always do, so an exact hit is
        # always of the kind being searched.
        exact = self._prices.get(name)
        if exact is not None:
            return len(name), exact
        for key in keys:
            if len(key) < len(name) and name[len(key)] in _SEPARATORS and name.startswith(key):
                return len(key), self._prices[key]
        return None


#: The built-in table.
DEFAULT_PRICES: Final = PriceTable()
