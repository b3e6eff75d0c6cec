"""Worst-case and actual costs of batch requests (pure: no socket).

The gateway's answers are rendered by the offline gateway's own planner and
renderer (``plan_chat`` / ``render_chat_json``, what it sends over HTTP), so
"worst case >= actual" is checked against the bodies it would answer with.
"""

import json
from decimal import Decimal

import pytest

from langchain_holysheep.batch._cost import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    MEDIA_PART_TOKENS,
    actual_nano,
    has_price,
    output_tokens_bound,
    prompt_tokens_bound,
    worst_case_nano,
)
from langchain_holysheep.batch._format import BatchInputError
from langchain_holysheep.batch._types import usd_to_nano
from langchain_holysheep.pricing import load_price_table
from langchain_holysheep.testing import Reply, ToolCall
from langchain_holysheep.testing._replies import plan_chat, render_chat_json

TABLE = load_price_table()
# 1 input token = 1,000 nano-dollars, 1 output token = 2,000.
SIMPLE = load_price_table(
    {"simple-model": {"input_per_million": 1, "output_per_million": 2}}
)
LONG = " ".join(f"word{i}" for i in range(400))


def gateway_answer(reply, body):
    """The answer body the offline gateway sends for ``body``."""
    return json.loads(render_chat_json(plan_chat(reply, body, 1)))


def user(text):
    return {"role": "user", "content": text}


CASES = {
    "short prompt, default answer": (
        Reply(stop_at_max_tokens=True),
        {"messages": [user("hi")], "max_tokens": 16},
    ),
    "answer cut at max_tokens": (
        Reply(content=LONG, stop_at_max_tokens=True),
        {"messages": [user("tell me everything")], "max_tokens": 50},
    ),
    "n answers": (
        Reply(content=LONG, stop_at_max_tokens=True),
        {"messages": [user("three takes")], "max_tokens": 20, "n": 3},
    ),
    "max_completion_tokens": (
        Reply(content=LONG, reasoning=LONG, stop_at_max_tokens=True),
        {"messages": [user("think")], "max_completion_tokens": 30},
    ),
    "many one-letter words": (
        Reply(stop_at_max_tokens=True),
        {
            "messages": [
                {"role": "system", "content": "a " * 300},
                user(" ".join("b" * 200)),
            ],
            "max_tokens": 8,
        },
    ),
    "chinese prompt": (
        Reply(content="好的 " * 100, stop_at_max_tokens=True),
        {"messages": [user("请把这段话翻译成英文。" * 20)], "max_tokens": 64},
    ),
    "tool call": (
        Reply(
            tool_calls=[ToolCall(name="lookup", arguments={"q": LONG[:200]})],
            stop_at_max_tokens=True,
        ),
        {
            "messages": [user("look it up")],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "parameters": {
                            "type": "object",
                            "properties": {"q": {"type": "string"}},
                        },
                    },
                }
            ],
            "max_tokens": 40,
        },
    ),
    "no max_tokens": (
        Reply(content=LONG),
        {"messages": [user("anything")]},
    ),
    "many messages": (
        Reply(stop_at_max_tokens=True),
        {
            "messages": [user(f"turn {i}") for i in range(50)],
            "max_tokens": 10,
        },
    ),
}


@pytest.mark.parametrize("model", ["gpt-4.1", "claude-sonnet-4.5", "deepseek-v3.2"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_worst_case_is_never_below_what_the_gateway_bills(case, model):
    reply, request = CASES[case]
    body = {"model": model, **request}
    answer = gateway_answer(reply, body)
    cost, priced = actual_nano(model, answer, TABLE)
    assert priced
    assert cost > 0
    assert worst_case_nano(body, model, TABLE) >= cost


def test_actual_cost_is_the_answers_usage_at_the_table_price():
    body = {"model": "simple-model", "messages": [user("count these five words")]}
    answer = gateway_answer(Reply(content="one two three"), body)
    usage = answer["usage"]
    cost, priced = actual_nano("simple-model", answer, SIMPLE)
    assert priced
    assert cost == usage["prompt_tokens"] * 1000 + usage["completion_tokens"] * 2000


def test_a_cost_the_gateway_reports_wins_over_the_table():
    body = {"model": "gpt-4.1", "messages": [user("hi")]}
    answer = gateway_answer(Reply(cost_usd=0.000123456), body)
    assert actual_nano("gpt-4.1", answer, TABLE) == (123_456, True)


def test_a_dated_served_id_is_priced_as_the_requested_model():
    body = {"model": "simple-model", "messages": [user("hi")]}
    answer = gateway_answer(Reply(model="simple-model-2026-01-01"), body)
    cost, priced = actual_nano("simple-model", answer, SIMPLE)
    assert priced
    assert cost == (
        answer["usage"]["prompt_tokens"] * 1000
        + answer["usage"]["completion_tokens"] * 2000
    )


def test_an_answer_without_usage_or_price_has_no_known_cost():
    unknown = gateway_answer(
        Reply(), {"model": "no-such-model", "messages": [user("hi")]}
    )
    assert actual_nano("no-such-model", unknown, TABLE) == (0, False)
    answer = gateway_answer(Reply(), {"model": "gpt-4.1", "messages": [user("hi")]})
    assert actual_nano("gpt-4.1", {**answer, "usage": None}, TABLE) == (0, False)
    bad = {**answer, "usage": {"prompt_tokens": -3, "completion_tokens": 1}}
    assert actual_nano("gpt-4.1", bad, TABLE) == (0, False)


def test_an_unknown_model_is_refused_naming_it_and_saying_what_to_do():
    body = {"model": "no-such-model", "messages": [user("hi")], "max_tokens": 5}
    assert not has_price("no-such-model", TABLE)
    with pytest.raises(BatchInputError) as caught:
        worst_case_nano(body, "no-such-model", TABLE)
    text = str(caught.value)
    assert "'no-such-model'" in text
    assert "--price no-such-model=IN,OUT" in text
    assert "--prices" in text
    assert "without a budget" in text


def test_an_override_price_makes_a_model_known():
    body = {"model": "my-model", "messages": [user("hi")], "max_tokens": 5}
    table = load_price_table(
        {"my-model": {"input_per_million": 0.5, "output_per_million": 1.5}}
    )
    assert not has_price("my-model", TABLE)
    assert has_price("my-model", table)
    assert has_price("MY-MODEL", table)  # the table's case-insensitive lookup
    prompt = prompt_tokens_bound(body)
    assert worst_case_nano(body, "my-model", table) == prompt * 500 + 5 * 1500


def test_n_multiplies_the_answer_not_the_prompt():
    body = {"model": "simple-model", "messages": [user("hi")], "max_tokens": 100}
    one = worst_case_nano(body, "simple-model", SIMPLE)
    three = worst_case_nano({**body, "n": 3}, "simple-model", SIMPLE)
    assert three - one == 2 * 100 * 2000
    assert output_tokens_bound({**body, "n": 3}, "simple-model") == 300


@pytest.mark.parametrize("n", [0, 1, -2, True, "3", 2.0])
def test_an_n_that_is_not_above_one_counts_one_answer(n):
    body = {"messages": [user("hi")], "max_tokens": 10, "n": n}
    assert output_tokens_bound(body, "gpt-4.1") == 10


def test_max_completion_tokens_is_reserved_and_the_larger_limit_wins():
    base = {"model": "simple-model", "messages": [user("hi")]}
    assert output_tokens_bound({**base, "max_completion_tokens": 70}, "m") == 70
    assert (
        output_tokens_bound(
            {**base, "max_completion_tokens": 70, "max_tokens": 90}, "m"
        )
        == 90
    )
    low = worst_case_nano({**base, "max_tokens": 10}, "simple-model", SIMPLE)
    high = worst_case_nano(
        {**base, "max_tokens": 10, "max_completion_tokens": 510}, "simple-model", SIMPLE
    )
    assert high - low == 500 * 2000


def test_without_a_limit_the_models_largest_answer_is_reserved():
    body = {"messages": [user("hi")]}
    # gpt-4.1 documents 32,768 output tokens; an unknown model gets the default.
    assert output_tokens_bound(body, "gpt-4.1") == 32_768
    assert output_tokens_bound(body, "simple-model") == DEFAULT_MAX_OUTPUT_TOKENS
    assert output_tokens_bound({**body, "max_tokens": 0}, "simple-model") == (
        DEFAULT_MAX_OUTPUT_TOKENS
    )


def test_the_prompt_bound_covers_every_byte_sent_and_media_parts():
    text = "请把这段话翻译成英文。"
    body = {"messages": [user(text)]}
    assert prompt_tokens_bound(body) >= len(text.encode())
    with_image = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            }
        ]
    }
    assert prompt_tokens_bound(with_image) >= len(text.encode()) + MEDIA_PART_TOKENS
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}},
    }
    assert prompt_tokens_bound({**body, "response_format": schema}) > (
        prompt_tokens_bound(body)
    )


def test_cache_write_prices_above_input_are_reserved():
    table = load_price_table(
        {
            "cached-model": {
                "input_per_million": 1,
                "output_per_million": 2,
                "cache_write_per_million": 4,
            }
        }
    )
    body = {"messages": [user("hi")], "max_tokens": 1}
    prompt = prompt_tokens_bound(body)
    assert worst_case_nano(body, "cached-model", table) == prompt * 4000 + 2000


def test_worst_case_rounds_up_to_a_whole_nano_dollar():
    table = load_price_table(
        {"odd-model": {"input_per_million": 0.0001, "output_per_million": 0.0001}}
    )
    body = {"messages": [user("hi")], "max_tokens": 1}
    tokens = prompt_tokens_bound(body) + 1
    exact = Decimal(tokens) * Decimal("0.0001") / 1_000_000
    assert worst_case_nano(body, "odd-model", table) == usd_to_nano(exact)
    assert worst_case_nano(body, "odd-model", table) >= 1
