"""Per-call ``response_metadata``: cost (to the micro-dollar) and latency."""

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.callbacks import holysheep_usage
from langchain_holysheep.testing import Reply

KEY = "cr_metadata_test_key"
KNOWN_USAGE = {"prompt_tokens": 1234, "completion_tokens": 567}


def _llm(gw, model="mistral-small-2603", **kwargs):
    return ChatHolySheep(
        model=model, base_url=gw.base_url, api_key=KEY, max_retries=0, **kwargs
    )


def _stream(llm, prompt="hi"):
    full = None
    for chunk in llm.stream(prompt):
        full = chunk if full is None else full + chunk
    return full


async def _astream(llm, prompt="hi"):
    full = None
    async for chunk in llm.astream(prompt):
        full = chunk if full is None else full + chunk
    return full


async def _ainvoke(llm, prompt="hi"):
    return await llm.ainvoke(prompt)


def _run(mode, llm):
    if mode == "invoke":
        return llm.invoke("hi")
    if mode == "stream":
        return _stream(llm)
    if mode == "ainvoke":
        return asyncio.run(_ainvoke(llm))
    return asyncio.run(_astream(llm))


MODES = ["invoke", "stream", "ainvoke", "astream"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("model", "expected_usd"),
    [
        # 1234 * 0.20 / 1e6 + 567 * 0.60 / 1e6 = 0.0002468 + 0.0003402
        ("mistral-small-2603", 0.000587),
        # 1234 * 3.00 / 1e6 + 567 * 8.00 / 1e6 = 0.003702 + 0.004536
        ("gpt-4.1", 0.008238),
        # 1234 * 0.07 / 1e6 + 567 * 0.42 / 1e6 = 0.00008638 + 0.00023814
        ("deepseek-v3.2", 0.00032452),
    ],
)
def test_cost_from_the_price_table(holysheep_gateway, mode, model, expected_usd):
    holysheep_gateway.set_default(Reply(content="a b c", usage=KNOWN_USAGE))
    message = _run(mode, _llm(holysheep_gateway, model))
    metadata = message.response_metadata
    assert metadata["cost_source"] == "price_table"
    assert round(metadata["cost_usd"], 9) == expected_usd
    assert message.usage_metadata["output_tokens"] == 567


@pytest.mark.parametrize("mode", MODES)
def test_gateway_cost_wins(holysheep_gateway, mode):
    holysheep_gateway.set_default(
        Reply(content="a b", usage=KNOWN_USAGE, cost_usd=0.0123)
    )
    metadata = _run(mode, _llm(holysheep_gateway, "gpt-4.1")).response_metadata
    assert metadata["cost_usd"] == 0.0123
    assert metadata["cost_source"] == "gateway"


@pytest.mark.parametrize("mode", MODES)
def test_unknown_model_has_no_cost(holysheep_gateway, mode):
    holysheep_gateway.set_default(Reply(content="a b", usage=KNOWN_USAGE))
    metadata = _run(mode, _llm(holysheep_gateway, "my-finetune-v1")).response_metadata
    assert metadata["cost_usd"] is None
    assert metadata["cost_source"] is None


def test_cost_is_for_the_model_that_served(holysheep_gateway):
    holysheep_gateway.set_default(
        Reply(content="a", usage=KNOWN_USAGE, model="deepseek-v3.2")
    )
    message = _llm(holysheep_gateway, "gpt-4.1").invoke("hi")
    assert message.response_metadata["model_name"] == "deepseek-v3.2"
    assert round(message.response_metadata["cost_usd"], 9) == 0.00032452


@pytest.mark.parametrize("mode", MODES)
def test_dated_served_id_is_priced_as_the_requested_model(holysheep_gateway, mode):
    """Gateways answer with dated ids ("gpt-4.1-2025-04-14") the table lacks."""
    holysheep_gateway.set_default(
        Reply(content="a", usage=KNOWN_USAGE, model="gpt-4.1-2025-04-14")
    )
    message = _run(mode, _llm(holysheep_gateway, "gpt-4.1"))
    assert message.response_metadata["model_name"] == "gpt-4.1-2025-04-14"
    assert round(message.response_metadata["cost_usd"], 9) == 0.008238
    assert message.response_metadata["cost_source"] == "price_table"


def test_stream_ttft_brackets_the_gateway_delay(holysheep_gateway):
    holysheep_gateway.enqueue(Reply(content="one two three", delay_before_headers=0.2))
    latency = _stream(_llm(holysheep_gateway)).response_metadata["latency"]
    assert latency["ttft_ms"] >= 200
    assert latency["total_ms"] >= latency["ttft_ms"]
    assert latency["output_tokens_per_s"] > 0


async def test_astream_ttft_brackets_the_gateway_delay(holysheep_gateway):
    holysheep_gateway.enqueue(Reply(content="one two three", delay_before_headers=0.2))
    latency = (await _astream(_llm(holysheep_gateway))).response_metadata["latency"]
    assert latency["ttft_ms"] >= 200
    assert latency["total_ms"] >= latency["ttft_ms"]


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_invoke_total_brackets_the_delay_and_has_no_ttft(holysheep_gateway, mode):
    holysheep_gateway.enqueue(Reply(content="one two", delay_before_headers=0.2))
    latency = _run(mode, _llm(holysheep_gateway)).response_metadata["latency"]
    assert latency["ttft_ms"] is None
    assert latency["total_ms"] >= 200
    assert latency["output_tokens_per_s"] > 0


def test_only_the_final_stream_chunk_carries_call_metadata(holysheep_gateway):
    holysheep_gateway.set_default(Reply(content="one two three", usage=KNOWN_USAGE))
    chunks = list(_llm(holysheep_gateway).stream("hi"))
    assert all("latency" not in c.response_metadata for c in chunks[:-1])
    assert set(chunks[-1].response_metadata) >= {"latency", "cost_usd", "cost_source"}


def test_streaming_flag_invoke_has_ttft(holysheep_gateway):
    holysheep_gateway.enqueue(Reply(content="one two", delay_before_headers=0.2))
    message = _llm(holysheep_gateway, streaming=True).invoke("hi")
    assert message.response_metadata["latency"]["ttft_ms"] >= 200


def test_tracker_totals_equal_the_sum_of_per_call_metadata(holysheep_gateway):
    gw = holysheep_gateway
    models = ["mistral-small-2603", "gpt-4.1", "deepseek-v3.2", "my-finetune-v1"]
    gw.set_responder(
        lambda body: Reply(
            content="word " * (len(body["model"]) % 5 + 1),
            usage={"prompt_tokens": 100 + len(body["model"]), "completion_tokens": 37},
            cost_usd=0.5 if body["model"] == "deepseek-v3.2" else None,
        )
    )
    llms = [_llm(gw, m) for m in models]
    with holysheep_usage() as usage:

        def sync_call(i):
            llm = llms[i % len(llms)]
            return llm.invoke("hi") if i % 2 else _stream(llm)

        async def async_calls():
            coros = [
                (llm.ainvoke("hi") if i % 2 else _astream(llm))
                for i, llm in enumerate(llms * 3)
            ]
            return await asyncio.gather(*coros)

        with ThreadPoolExecutor(8) as pool:
            # Threads do not inherit the context: carry it into each task.
            futures = [
                pool.submit(contextvars.copy_context().run, sync_call, i)
                for i in range(24)
            ]
            messages = [f.result() for f in futures]
        messages += asyncio.run(async_calls())
    summary = usage.snapshot()
    costs = [m.response_metadata["cost_usd"] for m in messages]
    assert summary.requests == len(messages) == 36
    assert summary.errors == 0
    assert summary.input_tokens == sum(
        m.usage_metadata["input_tokens"] for m in messages
    )
    assert summary.output_tokens == sum(
        m.usage_metadata["output_tokens"] for m in messages
    )
    assert summary.total_cost_usd == pytest.approx(
        sum(c for c in costs if c is not None), abs=1e-9
    )
    assert summary.unpriced_requests == costs.count(None) == 9
    for model in models[:3]:
        per_call = [
            m.response_metadata["cost_usd"]
            for m in messages
            if m.response_metadata["model_name"] == model
        ]
        assert summary.cost_by_model[model] == pytest.approx(sum(per_call), abs=1e-9)
    assert summary.by_model["deepseek-v3.2"].gateway_priced_requests == 9
