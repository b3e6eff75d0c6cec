"""``resolve_call_usd`` / ``ModelPrice.total_usd``: the same answer as the full cost."""

from __future__ import annotations

import itertools

import pytest

from langchain_holysheep.pricing import (
    ModelPrice,
    load_price_table,
    resolve_call_cost,
    resolve_call_usd,
)

_COUNTS = (0, 1, 7, 999, 123_456, 10**9 + 3)


@pytest.mark.parametrize(
    "price",
    [
        ModelPrice("m", 0.2, 0.6),
        ModelPrice(
            "m", 3, 15, cached_input_per_million=0.3, cache_write_per_million=3.75
        ),
        ModelPrice("m", 0.1234567, 1e-7, cached_input_per_million=0),
    ],
)
def test_total_usd_is_the_cost_total(price):
    for tokens in itertools.product(_COUNTS, _COUNTS, _COUNTS[:4], _COUNTS[:4]):
        assert price.total_usd(*tokens) == price.cost(*tokens).usd, tokens


_USAGES = [
    None,
    {},
    {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
    {"input_tokens": 1000, "output_tokens": 0},
    {"output_tokens": 9},
    {
        "input_tokens": 5000,
        "output_tokens": 70,
        "input_token_details": {"cache_read": 4000, "cache_creation": 600},
    },
    {"input_tokens": 3, "output_tokens": 2, "input_token_details": {}},
]
_METADATA = [
    {},
    {"cost_usd": 0.00123456789012},
    {"cost_usd": 0.5, "cost_source": "price_table"},
    {"cost_usd": -1.0},
    {"token_usage": {"cost_usd": 0.25}},
    {"token_usage": {"cost_usd": float("nan")}},
    {"token_usage": "not a dict"},
]
_MODELS = [
    (None, None),
    ("mistral-small-2603", None),
    ("GPT-4.1", None),
    ("gpt-4.1-2025-04-14", "gpt-4.1"),
    ("no-such-model", "claude-sonnet-4.5"),
    ("no-such-model", "no-such-either"),
    (None, "deepseek-v3.2"),
]


@pytest.mark.parametrize(("served", "requested"), _MODELS)
def test_resolve_call_usd_matches_resolve_call_cost(served, requested):
    assert any(model in load_price_table() for model in ("gpt-4.1", "deepseek-v3.2"))
    for usage, metadata in itertools.product(_USAGES, _METADATA):
        cost = resolve_call_cost(served, usage, metadata, requested_model=requested)
        expected = None if cost is None else (cost.usd, cost.source)
        got = resolve_call_usd(served, usage, metadata, requested_model=requested)
        assert got == expected, (usage, metadata)


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": -1, "output_tokens": 2},
        {"input_tokens": 1.5, "output_tokens": 2},
        {"input_tokens": True, "output_tokens": 2},
        {
            "input_tokens": 1,
            "output_tokens": 2,
            "input_token_details": {"cache_read": "3"},
        },
    ],
)
def test_resolve_call_usd_refuses_bad_counts_like_resolve_call_cost(usage):
    with pytest.raises(ValueError, match="usage") as full:
        resolve_call_cost("gpt-4.1", usage, {})
    with pytest.raises(ValueError, match="usage") as total:
        resolve_call_usd("gpt-4.1", usage, {})
    assert str(total.value) == str(full.value)


def test_resolve_call_usd_and_a_broken_prices_file(tmp_path, monkeypatch):
    broken = tmp_path / "prices.json"
    broken.write_text("{not json")
    monkeypatch.setenv("HOLYSHEEP_PRICES_FILE", str(broken))
    usage = {"input_tokens": 1, "output_tokens": 1}
    with pytest.raises(ValueError, match="HOLYSHEEP_PRICES_FILE"):
        resolve_call_cost("gpt-4.1", usage, {})
    with pytest.raises(ValueError, match="HOLYSHEEP_PRICES_FILE"):
        resolve_call_usd("gpt-4.1", usage, {})
    assert resolve_call_usd(None, usage, {}) is None
    assert resolve_call_usd("gpt-4.1", usage, {"cost_usd": 0.1}) == (0.1, "gateway")
