"""Tests for the model price table (assay.semconv.prices). Expected costs are worked by hand."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from assay.semconv import prices as prices_module
from assay.semconv.prices import (
    DEFAULT_PRICES,
    PRICES_AS_OF,
    ModelPrice,
    PriceTable,
    parse_overrides,
)

GPT_4O = ModelPrice(input=2.50, output=10.00, cached_input=1.25)
GPT_4O_MINI = ModelPrice(input=0.15, output=0.60, cached_input=0.075)
SONNET_3 = ModelPrice(input=3.00, output=15.00, cached_input=0.30)  # Sonnet 3.5 .. 4.6


# --- lookup: matching ----------------------------------------------------------------------


def test_exact_match() -> None:
    assert DEFAULT_PRICES.lookup("gpt-4o") == GPT_4O
    assert DEFAULT_PRICES.lookup("gpt-4o-mini") == GPT_4O_MINI
    assert DEFAULT_PRICES.lookup("claude-sonnet-4-5") == SONNET_3
    assert DEFAULT_PRICES.lookup("gemini-2.5-pro") == ModelPrice(1.25, 10.00, 0.125)
    assert DEFAULT_PRICES.lookup("codestral") == ModelPrice(0.30, 0.90, 0.03)


def test_lookup_is_case_insensitive_and_trims_whitespace() -> None:
    assert DEFAULT_PRICES.lookup("GPT-4o") == GPT_4O
    assert DEFAULT_PRICES.lookup("  Claude-3-5-Sonnet-20241022\n") == SONNET_3


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("o3-2025-04-16", "o3"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-sonnet-5-5[1m]", "claude-sonnet-5-5"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),  # Vertex
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),  # Vertex
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet"),  # Bedrock
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),  # Bedrock profile
        ("mistral.mistral-large-2407-v1:0", "mistral-large-2407"),  # Bedrock
        ("gemini-1.5-flash-002", "gemini-1.5-flash"),
        ("gemini-3.1-pro-preview", "gemini-3.1-pro"),
        ("mistral-large-latest", "mistral-large"),
        ("codestral-2508", "codestral"),
    ],
)
def test_dated_and_tagged_ids_resolve_to_their_family(model: str, family: str) -> None:
    expected = DEFAULT_PRICES.prices[family]
    assert DEFAULT_PRICES.lookup(model) == expected


def test_longest_prefix_wins() -> None:
    # "gpt-4o" is a prefix of both names; the longer key must win.
    assert DEFAULT_PRICES.lookup("gpt-4o-mini-2024-07-18") == GPT_4O_MINI
    assert DEFAULT_PRICES.lookup("gpt-4o-mini-2024-07-18") != GPT_4O
    assert DEFAULT_PRICES.lookup("gemini-2.5-flash-lite-001") == ModelPrice(0.10, 0.40, 0.01)
    assert DEFAULT_PRICES.lookup("claude-opus-4-5-20251101") == ModelPrice(5.00, 25.00, 0.50)
    assert DEFAULT_PRICES.lookup("claude-opus-4-1-20250805") == ModelPrice(15.00, 75.00, 1.50)


def test_snapshot_with_its_own_price_beats_its_family() -> None:
    assert DEFAULT_PRICES.lookup("gpt-4o-2024-05-13") == ModelPrice(5.00, 15.00)
    assert DEFAULT_PRICES.lookup("mistral-large-2411") == ModelPrice(2.00, 6.00)


def test_prefix_must_end_at_a_separator() -> None:
    # "gpt-5" must not price an unknown "gpt-5.9", nor "o1" an "o10".
    assert DEFAULT_PRICES.lookup("gpt-5.9-sol") is None
    assert DEFAULT_PRICES.lookup("o10") is None
    assert DEFAULT_PRICES.lookup("gpt-4oo") is None


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("openai/gpt-4o-mini", GPT_4O_MINI),
        ("anthropic/claude-3-5-sonnet-20241022", SONNET_3),
        ("anthropic/claude-3.5-sonnet", SONNET_3),  # OpenRouter-style dotted version
        ("models/gemini-2.5-flash", ModelPrice(0.30, 2.50, 0.03)),
        ("publishers/google/models/gemini-2.0-flash-001", ModelPrice(0.10, 0.40, 0.025)),
        ("mistral/codestral-latest", ModelPrice(0.30, 0.90, 0.03)),
        ("openrouter/openai/gpt-4o-2024-08-06", GPT_4O),
    ],
)
def test_provider_and_path_prefixes_are_stripped(model: str, expected: ModelPrice) -> None:
    assert DEFAULT_PRICES.lookup(model) == expected


@pytest.mark.parametrize("model", [None, "", "   ", "openai/", "my-private-model", "llama-3-70b"])
def test_unknown_model_is_none(model: str | None) -> None:
    assert DEFAULT_PRICES.lookup(model) is None
    assert DEFAULT_PRICES.cost(model, "openai", 1000, 1000) is None


def test_weird_model_types_do_not_raise() -> None:
    assert DEFAULT_PRICES.lookup(42) is None  # type: ignore[arg-type]
    assert DEFAULT_PRICES.lookup(["gpt-4o"]) is None  # type: ignore[arg-type]
    assert DEFAULT_PRICES.cost(b"gpt-4o", None, 10, 10) is None  # type: ignore[arg-type]


def test_repeated_lookups_agree_and_the_cache_stays_bounded() -> None:
    table = PriceTable()
    assert table.lookup("gpt-4o-mini-2024-07-18") == GPT_4O_MINI
    assert table.lookup("gpt-4o-mini-2024-07-18") == GPT_4O_MINI  # served from the cache
    for i in range(prices_module._CACHE_SIZE + 500):
        table.lookup(f"unknown-model-{i}")
    assert len(table._cache) <= prices_module._CACHE_SIZE
    assert table.lookup("gpt-4o") == GPT_4O


# --- cost ----------------------------------------------------------------------------------


def test_cost_without_cache() -> None:
    # gpt-4o: 1000 * 2.50 + 500 * 10.00 = 7500 micro-USD
    assert DEFAULT_PRICES.cost("gpt-4o", "openai", 1000, 500) == pytest.approx(0.0075)


def test_cost_with_cached_tokens_included_in_input() -> None:
    # gpt-4o, 1000 input of which 400 cached, 500 output:
    # 600 * 2.50 + 400 * 1.25 + 500 * 10.00 = 1500 + 500 + 5000 = 7000 micro-USD
    assert DEFAULT_PRICES.cost("gpt-4o", "openai", 1000, 500, 400) == pytest.approx(0.007)
    # Sonnet 4.5, 10_000 input of which 8_000 cached, 2_000 output:
    # 2000 * 3.00 + 8000 * 0.30 + 2000 * 15.00 = 6000 + 2400 + 30000 = 38400 micro-USD
    cost = DEFAULT_PRICES.cost("claude-sonnet-4-5-20250929", "anthropic", 10_000, 2_000, 8_000)
    assert cost == pytest.approx(0.0384)


def test_cached_price_defaults_to_input_price() -> None:
    table = PriceTable({"m": ModelPrice(input=1.0, output=2.0)})
    # 500 * 1.0 + 500 * 1.0 (cached, same price) + 1000 * 2.0 = 3000 micro-USD
    assert table.cost("m", None, 1000, 1000, 500) == pytest.approx(0.003)
    assert table.cost("m", None, 1000, 1000, 500) == table.cost("m", None, 1000, 1000)


def test_cost_of_large_counts() -> None:
    # o1: 2M input (1M cached) + 1M output = 1 * 15 + 1 * 7.50 + 1 * 60 = 82.50 USD
    assert DEFAULT_PRICES.cost("o1", None, 2_000_000, 1_000_000, 1_000_000) == pytest.approx(82.5)


@pytest.mark.parametrize(
    ("input_tokens", "output_tokens"),
    [(None, None), (0, 0), (None, 0), (-5, -5), (0, None)],
)
def test_no_tokens_means_no_cost(input_tokens: int | None, output_tokens: int | None) -> None:
    assert DEFAULT_PRICES.cost("gpt-4o", "openai", input_tokens, output_tokens) is None


def test_missing_or_negative_counts_are_zero() -> None:
    # Only the 100 output tokens count: 100 * 10.00 = 1000 micro-USD
    assert DEFAULT_PRICES.cost("gpt-4o", None, None, 100) == pytest.approx(0.001)
    assert DEFAULT_PRICES.cost("gpt-4o", None, -5, 100) == pytest.approx(0.001)
    assert DEFAULT_PRICES.cost("gpt-4o", None, 1000, 0, -300) == pytest.approx(0.0025)


def test_weird_counts_do_not_raise() -> None:
    weird: list[object] = [float("nan"), float("inf"), "lots", object(), True, 10**400]
    for value in weird:
        # Each weird input count is taken as 0, leaving the 100 output tokens: 0.001 USD.
        cost = DEFAULT_PRICES.cost("gpt-4o", None, value, 100)  # type: ignore[arg-type]
        assert cost == pytest.approx(0.001), value
    # Numeric strings and integral floats are read as counts: 1000 * 2.50 = 2500 micro-USD.
    assert DEFAULT_PRICES.cost("gpt-4o", None, "1000", None) == pytest.approx(0.0025)  # type: ignore[arg-type]
    assert DEFAULT_PRICES.cost("gpt-4o", None, 1000.0, None) == pytest.approx(0.0025)  # type: ignore[arg-type]


def test_cached_tokens_above_input_are_still_charged_at_cache_price() -> None:
    # 0 uncached + 300 cached * 1.25 + 100 output * 10.00 = 375 + 1000 = 1375 micro-USD
    assert DEFAULT_PRICES.cost("gpt-4o", None, 200, 100, 300) == pytest.approx(0.001375)


# --- overrides -----------------------------------------------------------------------------


def test_overrides_win_over_defaults_and_add_models() -> None:
    table = DEFAULT_PRICES.with_overrides(
        {
            "gpt-4o": {"input": 1.0, "output": 2.0},
            "acme-finetune": ModelPrice(input=3.0, output=4.0, cached_input=0.5),
        }
    )
    assert table.lookup("gpt-4o") == ModelPrice(1.0, 2.0)
    assert table.lookup("gpt-4o-2024-08-06") == ModelPrice(1.0, 2.0)
    assert table.lookup("ACME-finetune-v2") == ModelPrice(3.0, 4.0, 0.5)
    # 1000 * 1.0 + 1000 * 2.0 = 3000 micro-USD
    assert table.cost("gpt-4o", "openai", 1000, 1000) == pytest.approx(0.003)
    # Other models keep their defaults, including the longer "gpt-4o-mini".
    assert table.lookup("gpt-4o-mini") == GPT_4O_MINI
    assert table.lookup("claude-3-5-haiku") == DEFAULT_PRICES.lookup("claude-3-5-haiku")


def test_overrides_leave_the_original_table_unchanged() -> None:
    DEFAULT_PRICES.with_overrides(
        {"gpt-4o": {"input": 1.0, "output": 2.0}, "new": ModelPrice(1, 1)}
    )
    assert DEFAULT_PRICES.lookup("gpt-4o") == GPT_4O
    assert DEFAULT_PRICES.lookup("new") is None


def test_provider_qualified_override_applies_only_to_that_provider() -> None:
    azure = ModelPrice(input=2.75, output=11.0)
    table = DEFAULT_PRICES.with_overrides({"azure/gpt-4o": azure})
    assert table.lookup("gpt-4o-2024-08-06", "Azure") == azure
    assert table.lookup("gpt-4o", "openai") == GPT_4O
    assert table.lookup("gpt-4o") == GPT_4O
    # The unqualified, longer "gpt-4o-mini" matches more of the name than "azure/gpt-4o".
    assert table.lookup("gpt-4o-mini", "azure") == GPT_4O_MINI


def test_custom_table_replaces_the_builtin_one() -> None:
    table = PriceTable({"Only-Model": ModelPrice(1.0, 1.0)})
    assert len(table) == 1
    assert table.lookup("only-model") == ModelPrice(1.0, 1.0)
    assert table.lookup("gpt-4o") is None


# --- parse_overrides -----------------------------------------------------------------------


def test_parse_overrides_reads_json_like_input() -> None:
    raw = {
        "My-Model": {"input": 1, "output": 2.5, "cached_input": 0.25},
        "other": {"input": 0, "output": 0, "cached_input": None},
    }
    assert parse_overrides(raw) == {
        "my-model": ModelPrice(1.0, 2.5, 0.25),
        "other": ModelPrice(0.0, 0.0, None),
    }
    as_text = '{"my-model": {"input": 1, "output": 2}}'
    assert parse_overrides(as_text) == {"my-model": ModelPrice(1.0, 2.0)}
    assert parse_overrides(None) == {}
    assert parse_overrides({}) == {}


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ({"my-model": {"input": 1}}, ["'my-model'", "missing", "'output'"]),
        ({"my-model": {"output": 1}}, ["'my-model'", "missing", "'input'"]),
        ({"my-model": {"input": -1, "output": 1}}, ["'my-model'", "'input'", "-1"]),
        ({"my-model": {"input": "1", "output": 1}}, ["'my-model'", "'input'", "'1'"]),
        ({"my-model": {"input": 1, "output": True}}, ["'my-model'", "'output'", "True"]),
        ({"my-model": {"input": 1, "output": float("nan")}}, ["'my-model'", "'output'"]),
        ({"my-model": {"input": 1, "output": 2, "cached_input": -0.5}}, ["'cached_input'"]),
        (
            {"my-model": {"input": 1, "output": 2, "cache_input": 1}},
            ["'my-model'", "'cache_input'"],
        ),
        ({"my-model": 3.0}, ["'my-model'", "float"]),
        ({"": {"input": 1, "output": 1}}, ["''"]),
        ({7: {"input": 1, "output": 1}}, ["7"]),
        ({"A": {"input": 1, "output": 1}, "a": {"input": 2, "output": 2}}, ["'A'", "'a'"]),
        ([{"input": 1, "output": 1}], ["object", "list"]),
        ("{not json", ["JSON"]),
    ],
)
def test_parse_overrides_names_the_bad_key(raw: object, fragments: list[str]) -> None:
    with pytest.raises(ValueError) as caught:
        parse_overrides(raw)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message


def test_with_overrides_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="'broken'"):
        DEFAULT_PRICES.with_overrides({"broken": {"input": 1.0}})


def test_model_price_rejects_invalid_numbers() -> None:
    with pytest.raises(ValueError, match="input"):
        ModelPrice(input=-1.0, output=1.0)
    with pytest.raises(ValueError, match="cached_input"):
        ModelPrice(input=1.0, output=1.0, cached_input=math.inf)


# --- the built-in table --------------------------------------------------------------------


def test_builtin_table_is_sane() -> None:
    assert dt.date.fromisoformat(PRICES_AS_OF) >= dt.date(2026, 11, 1)
    assert len(DEFAULT_PRICES) >= 80
    for key, price in DEFAULT_PRICES.prices.items():
        assert key == key.strip().lower() and "/" not in key, key
        assert price.input > 0 and price.output > 0, key
        assert price.cache_read <= price.input, key


def test_builtin_table_covers_each_provider() -> None:
    for model in [
        "gpt-5.6-sol",
        "gpt-6-astra",
        "o4-mini",
        "claude-opus-5",
        "claude-haiku-4-5",
        "gemini-3.1-pro",
        "gemini-2.0-flash",
        "mistral-medium-latest",
        "magistral-small-2509",
    ]:
        assert DEFAULT_PRICES.lookup(model) is not None, model
