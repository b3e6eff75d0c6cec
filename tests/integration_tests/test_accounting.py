"""Accounting: who served, what was cached, what it cost. Real HTTP, offline gateway."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.globals import get_llm_cache, set_llm_cache

from langchain_holysheep.callbacks import HolySheepUsageTracker
from langchain_holysheep.fallback import ChatHolySheepFallback
from langchain_holysheep.pricing import PRICES_FILE_ENV_VAR
from langchain_holysheep.testing import Fault, Reply
from tests.modes import INVOKES, MODES, call

KEY = "cr_accounting_key_0123456789"


# ------------------------------------------------------------- model_name
@pytest.mark.parametrize("mode", MODES)
async def test_model_name_is_the_requested_id_when_the_body_names_none(
    gw, make_model, mode
):
    """Regression: a body without ``model`` gave ``model_name=None``."""
    gw.enqueue(Reply(content="hi", omit_model=True))
    answer = await call(make_model(model="gpt-4.1"), mode)
    assert answer.response_metadata["model_name"] == "gpt-4.1"
    gw.enqueue(Reply(content="hi", omit_model=True))
    answer = await call(make_model(), mode, model="deepseek-v3.2")
    assert answer.response_metadata["model_name"] == "deepseek-v3.2"


@pytest.mark.parametrize("mode", MODES)
async def test_model_name_is_the_served_id_when_the_body_names_it(gw, make_model, mode):
    gw.enqueue(Reply(content="hi", model="gpt-4.1-2025-04-14"))
    answer = await call(make_model(model="gpt-4.1"), mode)
    assert answer.response_metadata["model_name"] == "gpt-4.1-2025-04-14"


# ----------------------------------------------------------- cache writes
CACHE_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 10,
    "prompt_tokens_details": {"cached_tokens": 200, "cache_write_tokens": 500},
}


@pytest.fixture
def claude_cache_prices(tmp_path, monkeypatch):
    prices = {
        "claude-sonnet-4.5": {
            "input_per_million": 3.0,
            "output_per_million": 15.0,
            "cached_input_per_million": 0.3,
            "cache_write_per_million": 3.75,
        }
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(prices))
    monkeypatch.setenv(PRICES_FILE_ENV_VAR, str(path))


@pytest.mark.parametrize("mode", MODES)
async def test_cache_writes_are_reported_and_priced(
    gw, make_model, claude_cache_prices, mode
):
    gw.enqueue(Reply(content="cached", usage=CACHE_USAGE))
    answer = await call(make_model(model="claude-sonnet-4.5"), mode)
    assert answer.usage_metadata["input_token_details"] == {
        "cache_read": 200,
        "cache_creation": 500,
    }
    expected = (
        Decimal(300) * Decimal(3)
        + Decimal(200) * Decimal("0.3")
        + Decimal(500) * Decimal("3.75")
        + Decimal(10) * Decimal(15)
    ) / Decimal(1_000_000)
    assert answer.response_metadata["cost_usd"] == float(expected)
    assert answer.response_metadata["cost_source"] == "price_table"


@pytest.mark.parametrize("mode", ["invoke", "stream"])
async def test_cache_writes_in_anthropic_style_usage(gw, make_model, mode):
    usage = {
        "prompt_tokens": 900,
        "completion_tokens": 3,
        "cache_creation_input_tokens": 700,
        "cache_read_input_tokens": 100,
        "prompt_tokens_details": None,
    }
    gw.enqueue(Reply(content="x", usage=usage))
    answer = await call(make_model(model="claude-sonnet-4.5"), mode)
    assert answer.usage_metadata["input_token_details"] == {
        "cache_read": 100,
        "cache_creation": 700,
    }


# ------------------------------------------------------ LangChain cache hits
@pytest.fixture
def llm_cache():
    previous = get_llm_cache()
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(previous)


async def _invoke(model, mode, text, tracker):
    config = {"callbacks": [tracker]}
    if mode == "invoke":
        return model.invoke(text, config=config)
    return await model.ainvoke(text, config=config)


def _chat_requests(gw):
    return [r for r in gw.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize("mode", INVOKES)
async def test_llm_cache_hits_are_not_billed(gw, make_model, llm_cache, mode):
    """Regression: every cache hit was billed again (its metadata kept the cost)."""
    gw.set_default(Reply(content="answer", usage={"prompt_tokens": 40}))
    tracker = HolySheepUsageTracker()
    model = make_model(model="gpt-4.1")
    first = await _invoke(model, mode, "same question", tracker)
    for _ in range(3):
        hit = await _invoke(model, mode, "same question", tracker)
        assert hit.content == first.content
    assert len(_chat_requests(gw)) == 1
    usage = tracker.snapshot()
    assert usage.requests == 1
    assert usage.cache_hits == 3
    assert usage.total_cost_usd == first.response_metadata["cost_usd"] > 0
    assert usage.input_tokens == first.usage_metadata["input_tokens"]
    assert usage.output_tokens == first.usage_metadata["output_tokens"]
    assert usage.total_ms is not None
    assert usage.total_ms.count == 1  # a hit is no gateway latency sample
    assert "3 answer(s) came from the LangChain cache" in usage.table()
    # A new question is a new gateway call, billed.
    await _invoke(model, mode, "another question", tracker)
    assert tracker.snapshot().requests == 2


@pytest.mark.parametrize("mode", INVOKES)
async def test_llm_cache_hits_of_a_fallback_chain_count_no_failed_member_again(
    gw, llm_cache, mode
):
    gw.enqueue(Fault(status=503), model="mistral-small-2603")
    chain = ChatHolySheepFallback(
        models=["mistral-small-2603", "gemini-2.5-flash"],
        base_url=gw.base_url,
        api_key=KEY,
    )
    tracker = HolySheepUsageTracker()
    first = await _invoke(chain, mode, "q", tracker)
    assert first.response_metadata["model_name"] == "gemini-2.5-flash"
    await _invoke(chain, mode, "q", tracker)
    assert len(_chat_requests(gw)) == 2  # the failed primary, then the fallback
    usage = tracker.snapshot()
    assert usage.errors == 1
    assert usage.requests == 2  # both gateway calls of the first invoke
    assert usage.cache_hits == 1
    assert usage.total_cost_usd == first.response_metadata["cost_usd"]


def test_a_model_level_cache_counts_the_same(gw, make_model):
    gw.set_default(Reply(content="answer"))
    tracker = HolySheepUsageTracker()
    model = make_model(model="gpt-4.1", cache=InMemoryCache())
    for _ in range(2):
        model.invoke("q", config={"callbacks": [tracker]})
    usage = tracker.snapshot()
    assert (usage.requests, usage.cache_hits) == (1, 1)
