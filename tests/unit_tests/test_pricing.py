"""Tests for langchain_holysheep.pricing."""

import json
from decimal import Decimal

import pytest

from langchain_holysheep.pricing import (
    PRICES_FILE_ENV_VAR,
    Cost,
    ModelPrice,
    PriceTable,
    PriceTableError,
    cost_from_usage,
    load_price_table,
    monthly_cost,
    resolve_call_cost,
)

SEEDED = {
    "gpt-4.1": ("3.00", "8.00"),
    "claude-sonnet-4.5": ("3.00", "15.00"),
    "gemini-2.5-flash": ("0.35", "2.50"),
    "mistral-small-2603": ("0.20", "0.60"),
    "deepseek-v3.2": ("0.07", "0.42"),
}


def usage(inp, out, cached=None, reasoning=None):
    u = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    if cached is not None:
        u["input_token_details"] = {"cache_read": cached}
    if reasoning is not None:
        u["output_token_details"] = {"reasoning": reasoning}
    return u


def exact(inp, out, in_price, out_price):
    return float(
        (Decimal(inp) * Decimal(in_price) + Decimal(out) * Decimal(out_price))
        / Decimal(1_000_000)
    )


@pytest.fixture(autouse=True)
def _no_env_prices(monkeypatch):
    monkeypatch.delenv(PRICES_FILE_ENV_VAR, raising=False)


def test_packaged_table_has_the_seeded_prices():
    table = load_price_table()
    assert set(table.models()) == set(SEEDED)
    assert len(table) == 5
    for model, (inp, out) in SEEDED.items():
        price = table.get(model)
        assert price is not None
        assert Decimal(repr(price.input_per_million)) == Decimal(inp)
        assert Decimal(repr(price.output_per_million)) == Decimal(out)
        assert price.cached_input_per_million is None
        assert price.source == "HolySheep published gateway prices, January 2026"
        assert price.source_date == "2026-01-01"
    assert [p.model for p in table] == list(table.models())
    assert table.as_of == "2026-01-01"


def test_packaged_table_is_cached():
    assert load_price_table() is load_price_table()


@pytest.mark.parametrize("model", sorted(SEEDED))
def test_cost_is_exact_to_the_micro_dollar(model):
    inp, out = SEEDED[model]
    cost = cost_from_usage(model, usage(1234, 567))
    assert cost is not None
    assert cost.source == "price_table"
    assert cost.model == model
    assert cost.usd == exact(1234, 567, inp, out)
    assert cost.input_usd == exact(1234, 0, inp, out)
    assert cost.output_usd == exact(0, 567, inp, out)
    assert cost.cached_input_usd == 0.0


def test_known_values_as_literals():
    costs = {m: cost_from_usage(m, usage(1234, 567)) for m in SEEDED}
    assert {m: c.usd for m, c in costs.items() if c is not None} == {
        "gpt-4.1": 0.008238,
        "claude-sonnet-4.5": 0.012207,
        "gemini-2.5-flash": 0.0018494,
        "mistral-small-2603": 0.000587,
        "deepseek-v3.2": 0.00032452,
    }
    # 1234*0.20/1e6 + 567*0.60/1e6, the brief's worked example
    assert costs["mistral-small-2603"].usd == 0.000587


def test_cached_tokens_without_cached_price_bill_at_input_price():
    plain = cost_from_usage("gpt-4.1", usage(1000, 100))
    cached = cost_from_usage("gpt-4.1", usage(1000, 100, cached=400))
    assert plain is not None
    assert cached is not None
    assert cached.usd == plain.usd == exact(1000, 100, "3", "8")
    assert cached.input_usd == exact(600, 0, "3", "8")
    assert cached.cached_input_usd == exact(400, 0, "3", "8")


def test_cached_tokens_with_cached_price():
    table = load_price_table(
        {
            "gpt-4.1": {
                "input_per_million": 3.0,
                "output_per_million": 8.0,
                "cached_input_per_million": 0.75,
            }
        }
    )
    cost = cost_from_usage("gpt-4.1", usage(1000, 100, cached=400), table=table)
    assert cost is not None
    expected = (
        Decimal(600) * Decimal(3) + Decimal(400) * Decimal("0.75") + Decimal(800)
    ) / Decimal(1_000_000)
    assert cost.usd == float(expected)
    assert cost.cached_input_usd == 0.0003
    # more cached tokens than input tokens is clamped, never a negative bill
    clamped = cost_from_usage("gpt-4.1", usage(10, 0, cached=50), table=table)
    assert clamped is not None
    assert clamped.usd == float(Decimal(10) * Decimal("0.75") / Decimal(1_000_000))


def _claude_with_cache_prices():
    return load_price_table(
        {
            "claude-sonnet-4.5": {
                "input_per_million": 3.0,
                "output_per_million": 15.0,
                "cached_input_per_million": 0.3,
                "cache_write_per_million": 3.75,
            }
        }
    )


def test_cache_write_tokens_are_billed_at_the_cache_write_price():
    u = usage(1000, 100)
    u["input_token_details"] = {"cache_read": 200, "cache_creation": 500}
    cost = cost_from_usage("claude-sonnet-4.5", u, table=_claude_with_cache_prices())
    assert cost is not None
    expected = (
        Decimal(300) * Decimal(3)
        + Decimal(200) * Decimal("0.3")
        + Decimal(500) * Decimal("3.75")
        + Decimal(100) * Decimal(15)
    ) / Decimal(1_000_000)
    assert cost.usd == float(expected)
    assert cost.cache_write_usd == float(Decimal(500) * Decimal("3.75") / 10**6)
    assert cost.input_usd == float(Decimal(300) * Decimal(3) / 10**6)


def test_cache_write_tokens_without_a_price_bill_at_the_input_price():
    u = usage(1000, 100)
    u["input_token_details"] = {"cache_creation": 500}
    cost = cost_from_usage("claude-sonnet-4.5", u)
    plain = cost_from_usage("claude-sonnet-4.5", usage(1000, 100))
    assert cost is not None
    assert plain is not None
    assert cost.usd == plain.usd
    assert cost.cache_write_usd == float(Decimal(500) * Decimal(3) / 10**6)


def test_cache_writes_are_clamped_to_the_input_left_after_reads():
    u = usage(100, 0)
    u["input_token_details"] = {"cache_read": 80, "cache_creation": 500}
    cost = cost_from_usage("claude-sonnet-4.5", u, table=_claude_with_cache_prices())
    assert cost is not None
    expected = (Decimal(80) * Decimal("0.3") + Decimal(20) * Decimal("3.75")) / 10**6
    assert cost.usd == float(expected)
    assert cost.input_usd == 0.0


def test_a_bad_cache_write_price_or_count_is_refused():
    with pytest.raises(PriceTableError, match="cache_write_per_million"):
        ModelPrice("m", 1, 1, cache_write_per_million=-1)
    u = usage(10, 0)
    u["input_token_details"] = {"cache_creation": -3}
    with pytest.raises(ValueError, match="cache_creation"):
        cost_from_usage("gpt-4.1", u)


def test_reasoning_tokens_are_not_double_counted():
    with_reasoning = cost_from_usage("gpt-4.1", usage(100, 500, reasoning=300))
    without = cost_from_usage("gpt-4.1", usage(100, 500))
    assert with_reasoning == without
    assert with_reasoning is not None
    assert with_reasoning.usd == exact(100, 500, "3", "8")


def test_gateway_cost_wins():
    cost = cost_from_usage("gpt-4.1", usage(1234, 567), gateway_cost_usd=0.0123456789)
    assert cost == Cost(usd=0.012345679, source="gateway", model="gpt-4.1")
    # even for a model the table does not know, and without usage
    unknown = cost_from_usage("no-such-model", None, gateway_cost_usd=0.5)
    assert unknown is not None
    assert unknown.usd == 0.5
    assert unknown.source == "gateway"
    assert unknown.input_usd is None
    with pytest.raises(ValueError, match="gateway_cost_usd"):
        cost_from_usage("gpt-4.1", usage(1, 1), gateway_cost_usd=-1.0)
    with pytest.raises(ValueError, match="gateway_cost_usd"):
        cost_from_usage("gpt-4.1", usage(1, 1), gateway_cost_usd=float("nan"))


def test_unknown_model_or_missing_usage_is_none():
    assert cost_from_usage("gpt-5-unknown", usage(10, 10)) is None
    assert cost_from_usage("gpt-4.1-2025-04-14", usage(10, 10)) is None
    assert cost_from_usage(None, usage(10, 10)) is None
    assert cost_from_usage("gpt-4.1", None) is None
    assert cost_from_usage("gpt-4.1", {}) is None
    assert cost_from_usage("gpt-4.1", {"total_tokens": 5}) is None
    zero = cost_from_usage("gpt-4.1", usage(0, 0))
    assert zero is not None
    assert zero.usd == 0.0


def test_bad_token_counts_raise():
    with pytest.raises(ValueError, match="input_tokens"):
        cost_from_usage("gpt-4.1", usage(-1, 5))
    with pytest.raises(ValueError, match="output_tokens"):
        cost_from_usage("gpt-4.1", {"input_tokens": 1, "output_tokens": "5"})


def test_call_cost_prefers_the_cost_the_model_reported():
    reported = {"cost_usd": 0.0123456789, "token_usage": {"cost_usd": 0.5}}
    cost = resolve_call_cost("gpt-4.1", usage(1234, 567), reported)
    assert cost == Cost(usd=0.012345679, source="gateway", model="gpt-4.1")
    # its cost_source label is kept: "price_table", anything else is the gateway's
    for label, source in (
        ("price_table", "price_table"),
        ("gateway", "gateway"),
        (None, "gateway"),
        ("invoice", "gateway"),
    ):
        metadata = {"cost_usd": 0.25, "cost_source": label}
        cost = resolve_call_cost("no-such-model", None, metadata)
        assert cost is not None
        assert (cost.usd, cost.source) == (0.25, source)


def test_call_cost_then_the_gateway_cost_then_the_table():
    gateway = resolve_call_cost(
        "gpt-4.1", usage(1234, 567), {"token_usage": {"cost_usd": 0.00061}}
    )
    assert gateway == Cost(usd=0.00061, source="gateway", model="gpt-4.1")
    table = resolve_call_cost("gpt-4.1", usage(1234, 567), {"token_usage": {}})
    assert table == cost_from_usage("gpt-4.1", usage(1234, 567))
    assert table is not None
    assert table.source == "price_table"


@pytest.mark.parametrize("bad", [None, -1.0, float("nan"), float("inf"), True, "0.1"])
def test_call_cost_ignores_reported_costs_that_are_not_numbers(bad):
    metadata = {"cost_usd": bad, "token_usage": {"cost_usd": bad}}
    cost = resolve_call_cost("gpt-4.1", usage(1234, 567), metadata)
    assert cost == cost_from_usage("gpt-4.1", usage(1234, 567))
    assert resolve_call_cost("no-such-model", usage(1, 1), metadata) is None


def test_call_cost_prices_a_dated_served_id_as_the_requested_one():
    dated = resolve_call_cost(
        "gpt-4.1-2025-04-14", usage(1234, 567), {}, requested_model="gpt-4.1"
    )
    assert dated == cost_from_usage("gpt-4.1", usage(1234, 567))
    # without a requested id (the usage tracker), the dated id stays unpriced
    assert resolve_call_cost("gpt-4.1-2025-04-14", usage(1234, 567), {}) is None
    # the served id's own price wins when it has one
    table = load_price_table(
        {"gpt-4.1-2025-04-14": {"input_per_million": 1, "output_per_million": 1}}
    )
    served = resolve_call_cost(
        "gpt-4.1-2025-04-14", usage(1_000_000, 0), {}, table, requested_model="gpt-4.1"
    )
    assert served is not None
    assert served.usd == 1.0


def test_call_cost_without_usage_or_price_is_none():
    assert resolve_call_cost("gpt-4.1", None, {}) is None
    assert resolve_call_cost("gpt-4.1", {}, {"token_usage": None}) is None
    assert resolve_call_cost(None, usage(10, 10), {}) is None
    assert (
        resolve_call_cost("no-such-model", usage(10, 10), {}, requested_model="x")
        is None
    )
    with pytest.raises(ValueError, match="input_tokens"):
        resolve_call_cost("gpt-4.1", usage(-1, 5), {})


def test_lookup_is_exact_then_case_insensitive():
    table = load_price_table()
    assert table.get("GPT-4.1") is table.get("gpt-4.1")
    assert table["Claude-Sonnet-4.5"].model == "claude-sonnet-4.5"
    assert "DEEPSEEK-V3.2" in table
    assert "deepseek" not in table
    assert table.get("gpt-4") is None
    with pytest.raises(KeyError):
        table["gpt-4"]
    cost = table.cost("Mistral-Small-2603", usage(1234, 567))
    assert cost is not None
    assert cost.usd == 0.000587
    assert cost.model == "mistral-small-2603"


def test_case_insensitive_lookup_and_duplicates():
    table = PriceTable(
        [
            ModelPrice("Foo", 1.0, 1.0),
        ]
    )
    assert table.get("foo") is table.get("Foo")
    with pytest.raises(PriceTableError, match="duplicate"):
        PriceTable([ModelPrice("Foo", 1.0, 1.0), ModelPrice("foo", 2.0, 2.0)])


def test_override_by_dict():
    table = load_price_table(
        {"gpt-4.1": {"input_per_million": 2, "output_per_million": 6}}
    )
    price = table.get("gpt-4.1")
    assert price is not None
    assert (price.input_per_million, price.output_per_million) == (2, 6)
    assert price.source == "user override"
    # other rows untouched, new model added
    assert table.get("deepseek-v3.2") == load_price_table().get("deepseek-v3.2")
    added = load_price_table().with_overrides(
        {"my-model": {"input_per_million": 1.5, "output_per_million": 2.5}}
    )
    assert "my-model" in added
    assert len(added) == 6
    cost = cost_from_usage("my-model", usage(1_000_000, 1_000_000), table=added)
    assert cost is not None
    assert cost.usd == 4.0
    # the packaged table is not mutated
    assert "my-model" not in load_price_table()
    assert load_price_table().get("gpt-4.1").input_per_million == 3.0


def test_override_replaces_row_matching_case_insensitively():
    table = load_price_table(
        {"GPT-4.1": {"input_per_million": 1, "output_per_million": 1}}
    )
    assert len(table) == 5
    assert table.get("gpt-4.1").model == "GPT-4.1"
    assert table.get("gpt-4.1").input_per_million == 1


def test_override_by_file_rows_shape(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "currency": "USD",
                "unit": "per 1M tokens",
                "prices": [
                    {
                        "model": "deepseek-v3.2",
                        "input_per_million": 0.1,
                        "output_per_million": 0.2,
                        "source": "our contract",
                        "source_date": "2026-02-01",
                    }
                ],
            }
        )
    )
    table = load_price_table(path)
    price = table.get("deepseek-v3.2")
    assert price is not None
    assert price.source == "our contract"
    cost = table.cost("deepseek-v3.2", usage(1234, 567))
    assert cost is not None
    assert cost.usd == exact(1234, 567, "0.1", "0.2")
    # a bare list of rows works too, and str paths
    path.write_text(
        json.dumps([{"model": "x", "input_per_million": 1, "output_per_million": 2}])
    )
    assert "x" in load_price_table(str(path))


def test_override_by_file_dict_shape(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {"gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2}}
        )
    )
    table = load_price_table().with_overrides(path)
    assert table.get("gemini-2.5-flash").input_per_million == 0.3


def test_env_var_file_is_used_without_overrides(tmp_path, monkeypatch):
    path = tmp_path / "env_prices.json"
    path.write_text(
        json.dumps({"gpt-4.1": {"input_per_million": 1, "output_per_million": 1}})
    )
    monkeypatch.setenv(PRICES_FILE_ENV_VAR, str(path))
    cost = cost_from_usage("gpt-4.1", usage(1_000_000, 1_000_000))
    assert cost is not None
    assert cost.usd == 2.0
    # explicit overrides take precedence over the env var (env file not applied)
    explicit = load_price_table(
        {"other": {"input_per_million": 1, "output_per_million": 1}}
    )
    assert explicit.get("gpt-4.1").input_per_million == 3.0
    # the file is re-read when it changes
    path.write_text(
        json.dumps({"gpt-4.1": {"input_per_million": 10, "output_per_million": 10.5}})
    )
    assert load_price_table().get("gpt-4.1").output_per_million == 10.5
    monkeypatch.setenv(PRICES_FILE_ENV_VAR, str(tmp_path / "missing.json"))
    with pytest.raises(PriceTableError, match=PRICES_FILE_ENV_VAR):
        load_price_table()
    monkeypatch.setenv(PRICES_FILE_ENV_VAR, "")
    assert load_price_table().get("gpt-4.1").input_per_million == 3.0


def test_alternative_mistral_price_is_recorded_but_not_default():
    table = load_price_table()
    default = table.get("mistral-small-2603")
    assert (default.input_per_million, default.output_per_million) == (0.20, 0.60)
    (alt,) = table.alternatives("mistral-small-2603")
    assert (alt.input_per_million, alt.output_per_million) == (0.15, 0.45)
    assert alt.source != default.source
    assert alt.source_date == "2026-01-01"
    assert table.alternatives("gpt-4.1") == ()
    switched = table.use_alternative("mistral-small-2603")
    assert switched.get("mistral-small-2603") == alt
    cost = switched.cost("mistral-small-2603", usage(1234, 567))
    assert cost is not None
    assert cost.usd == exact(1234, 567, "0.15", "0.45")
    # the default table still uses the gateway price
    assert table.cost("mistral-small-2603", usage(1234, 567)).usd == 0.000587
    with pytest.raises(PriceTableError, match="alternative"):
        table.use_alternative("gpt-4.1")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"m": {"input_per_million": -1, "output_per_million": 1}}, "negative"),
        ({"m": {"input_per_million": 1}}, "missing"),
        ({"m": {"output_per_million": 1}}, "missing"),
        ({"m": {"input_per_million": "1", "output_per_million": 1}}, "number"),
        ({"m": {"input_per_million": True, "output_per_million": 1}}, "number"),
        (
            {"m": {"input_per_million": float("inf"), "output_per_million": 1}},
            "finite",
        ),
        (
            {"m": {"input_per_million": 1, "output_per_million": 1, "inptu": 2}},
            "unknown field",
        ),
        (
            {
                "m": {
                    "input_per_million": 1,
                    "output_per_million": 1,
                    "cached_input_per_million": -0.1,
                }
            },
            "cached_input_per_million",
        ),
        (
            {
                "m": {
                    "input_per_million": 1,
                    "output_per_million": 1,
                    "source_date": "Jan",
                }
            },
            "ISO date",
        ),
        ({"m": 0.5}, "must be an object"),
        ({"prices": [{"input_per_million": 1, "output_per_million": 1}]}, "'model'"),
        (
            {
                "currency": "EUR",
                "prices": [
                    {"model": "m", "input_per_million": 1, "output_per_million": 1}
                ],
            },
            "USD",
        ),
    ],
)
def test_bad_overrides_raise(overrides, match):
    with pytest.raises(PriceTableError, match=match):
        load_price_table(overrides)


def test_bad_override_files_raise(tmp_path):
    with pytest.raises(PriceTableError, match="cannot read"):
        load_price_table(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(PriceTableError, match="not valid JSON"):
        load_price_table(broken)
    scalar = tmp_path / "scalar.json"
    scalar.write_text("3")
    with pytest.raises(PriceTableError, match="expected a JSON object"):
        load_price_table(scalar)
    assert issubclass(PriceTableError, ValueError)


def test_model_price_validates_itself():
    with pytest.raises(PriceTableError, match="negative"):
        ModelPrice("m", 1.0, -2.0)
    with pytest.raises(PriceTableError, match="non-empty"):
        ModelPrice("", 1.0, 2.0)


def test_monthly_cost():
    cost = monthly_cost("gpt-4.1", 100_000, 1_000, 200)
    assert cost is not None
    assert cost.usd == 460.0  # 1e8 * 3/1e6 + 2e7 * 8/1e6
    assert cost.input_usd == 300.0
    assert cost.output_usd == 160.0
    mistral = monthly_cost("mistral-small-2603", 30, 1234, 567)
    assert mistral is not None
    assert mistral.usd == float(Decimal("0.000587") * 30)
    assert monthly_cost("unknown", 10, 10, 10) is None
    assert monthly_cost("gpt-4.1", 0, 10, 10).usd == 0.0
    cached = monthly_cost("gpt-4.1", 10, 1000, 0, cached_input_tokens=500)
    assert cached.cached_input_usd == float(Decimal(5000) * 3 / Decimal(1_000_000))
    with pytest.raises(ValueError, match="requests_per_month"):
        monthly_cost("gpt-4.1", -1, 10, 10)
