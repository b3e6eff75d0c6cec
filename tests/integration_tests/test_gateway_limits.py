"""The offline gateway's per-key rate limits: real 429s, headers and a record."""

from __future__ import annotations

import time

import openai
import pytest

from langchain_holysheep.errors import HolySheepRateLimitError
from langchain_holysheep.testing import RateLimitDecision, RateLimits
from tests.modes import MODES, call

KEY = "cr_gateway_limits_key_0001"


def test_over_the_request_limit_is_a_429_with_retry_headers(make_model, gw):
    gw.set_rate_limits(RateLimits(requests=2, window=1.5))
    llm = make_model(api_key=KEY)
    llm.invoke("one")
    llm.invoke("two")
    with pytest.raises(HolySheepRateLimitError) as info:
        llm.invoke("three")
    error = info.value
    headers = error.response.headers
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 2
    assert 0 < int(headers["retry-after-ms"]) <= 1500
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert "Rate limit reached for requests" in error.message
    log = gw.rate_limit_log
    assert [d.admitted for d in log] == [True, True, False]
    assert log[2].limit == "requests"
    assert all(isinstance(d, RateLimitDecision) for d in log)
    assert "cr_" not in log[0].key_id
    time.sleep(int(headers["retry-after-ms"]) / 1000 + 0.05)
    assert llm.invoke("four").content  # the window moved on


@pytest.mark.parametrize("mode", MODES)
async def test_the_token_limit_counts_prompt_plus_max_tokens(make_model, gw, mode):
    gw.set_rate_limits(RateLimits(tokens=250, window=30))
    llm = make_model(api_key=KEY, max_tokens=100)
    await call(llm, mode, "hi")  # 1 word + 4, plus 100
    await call(llm, mode, "hi")
    with pytest.raises(HolySheepRateLimitError, match="tokens"):
        await call(llm, mode, "hi")
    log = gw.rate_limit_log
    assert [(d.tokens, d.admitted, d.limit) for d in log] == [
        (105, True, None),
        (105, True, None),
        (105, False, "tokens"),
    ]


def test_limits_are_per_key_and_answers_carry_ratelimit_headers(gw):
    gw.set_rate_limits(RateLimits(requests=1, tokens=1000, window=30))
    gw.set_rate_limits(RateLimits(requests=5, window=30), api_key="cr_big_plan_key")
    responses = []
    for key in ("cr_key_a", "cr_key_b", "cr_big_plan_key", "cr_big_plan_key"):
        client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
        )
        responses.append(raw.headers)
        client.close()
    assert responses[0]["x-ratelimit-limit-requests"] == "1"
    assert responses[0]["x-ratelimit-remaining-tokens"] == "995"
    assert responses[1]["x-ratelimit-remaining-requests"] == "0"  # its own window
    assert responses[3]["x-ratelimit-limit-requests"] == "5"
    assert responses[3]["x-ratelimit-remaining-requests"] == "3"
    assert "x-ratelimit-limit-tokens" not in responses[3]
    assert all(d.admitted for d in gw.rate_limit_log)


def test_a_request_larger_than_the_token_limit_is_refused(make_model, gw):
    gw.set_rate_limits(RateLimits(tokens=50))
    with pytest.raises(HolySheepRateLimitError, match="Request too large"):
        make_model(max_tokens=100).invoke("hi")


def test_without_limits_nothing_is_recorded_and_reset_removes_them(make_model, gw):
    make_model().invoke("hi")
    assert gw.rate_limit_log == []
    gw.set_rate_limits(RateLimits(requests=1))
    gw.reset()
    make_model().invoke("a")
    make_model().invoke("b")
    assert gw.rate_limit_log == []


@pytest.mark.parametrize(
    "kwargs", [{"requests": 0}, {"tokens": -1}, {"window": 0}, {"requests": 1.5}]
)
def test_bad_limits_are_refused(kwargs):
    with pytest.raises(ValueError):
        RateLimits(**kwargs)
