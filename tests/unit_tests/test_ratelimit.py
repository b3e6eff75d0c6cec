"""The rate limiter's pure parts and its in-process backend (no sockets)."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_holysheep import HolySheepRateLimiter
from langchain_holysheep.errors import HolySheepInputError
from langchain_holysheep.ratelimit import DEFAULT_MAX_TOKENS, ModelLimits
from langchain_holysheep.ratelimit._estimate import output_reservation, request_tokens
from langchain_holysheep.ratelimit._gcra import GCRA_SCRIPT, MICROS, Charge, book
from langchain_holysheep.ratelimit._redis import mask_url

SECOND = MICROS


# ------------------------------------------------------------------ pure GCRA
def test_calls_are_spaced_by_the_emission_interval():
    tats = {}
    charges = (Charge("rpm", 0.5 * SECOND),)  # 120 a minute
    waits = [book(tats, charges, 10 * SECOND, -1).wait for _ in range(4)]
    assert waits == [0.0, 0.5, 1.0, 1.5]


def test_a_booked_wait_moves_the_slot_on_and_a_refused_one_changes_nothing():
    tats = {}
    charges = (Charge("rpm", SECOND),)
    assert book(tats, charges, 0, 0).booked
    refused = book(tats, charges, 0, 0.5 * SECOND)
    assert (refused.booked, refused.wait) == (False, 1.0)
    assert tats == {"rpm": SECOND}  # not committed
    booked = book(tats, charges, 0, 2 * SECOND)
    assert (booked.booked, booked.wait) == (True, 1.0)
    assert tats == {"rpm": 2 * SECOND}


def test_all_limits_are_committed_together_from_the_latest_start():
    tats = {"rpm": 0.0, "tpm": 3 * SECOND}
    charges = (Charge("rpm", SECOND), Charge("tpm", 2 * SECOND))
    result = book(tats, charges, SECOND, -1)
    assert result.wait == 2.0  # the token limit decides
    assert tats == {"rpm": 4 * SECOND, "tpm": 5 * SECOND}


def test_a_block_delays_every_call_until_it_ends():
    tats = {}
    result = book(tats, (Charge("rpm", SECOND),), 0, -1, block_until_us=5 * SECOND)
    assert result.wait == 5.0
    assert tats == {"rpm": 6 * SECOND}


@pytest.mark.parametrize("seed", range(5))
def test_any_window_admits_at_most_the_limit_plus_one_call(seed):
    """Random arrivals and costs: no window of a minute exceeds limit + one call."""
    rng = random.Random(seed)  # noqa: S311 (not crypto)
    limit, minute = 1000.0, 60 * SECOND
    tats, starts = {}, []
    now = 0.0
    for _ in range(400):
        now += rng.expovariate(1 / (2 * SECOND))
        cost = rng.randint(1, 200)
        result = book(tats, (Charge("tpm", cost * minute / limit),), now, -1)
        starts.append((now + result.wait * MICROS, cost))
    starts.sort()
    for i, (start, _) in enumerate(starts):
        in_window = sum(c for s, c in starts[i:] if s < start + minute)
        assert in_window <= limit + 200


def test_the_lua_script_is_the_same_rule():
    # The Redis test suite runs it; here: it reads the clock from Redis, checks
    # every key, and commits only after the wait check.
    assert "redis.call('TIME')" in GCRA_SCRIPT
    commit = GCRA_SCRIPT.index("redis.call('SET'")
    assert GCRA_SCRIPT.index("return {0, wait}") < commit
    assert "'PX'" in GCRA_SCRIPT


# ------------------------------------------------------------- token estimate
def test_a_request_reserves_its_prompt_plus_max_tokens_times_n():
    messages = [SystemMessage("be brief"), HumanMessage("hello there")]
    body = {"model": "m", "max_tokens": 100, "n": 2}
    prompt = request_tokens(messages, {}, 0) - output_reservation({}, 0)
    assert prompt > 0
    assert request_tokens(messages, body, 7) == prompt + 200


def test_without_max_tokens_the_default_output_is_reserved():
    assert output_reservation({}, DEFAULT_MAX_TOKENS) == DEFAULT_MAX_TOKENS
    assert output_reservation({"max_completion_tokens": 50}, 9) == 50


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"requests_per_minute": 0}, "requests_per_minute must be a positive"),
        ({"requests_per_minute": -5}, "requests_per_minute must be a positive"),
        ({"tokens_per_minute": 0.0}, "tokens_per_minute must be a positive"),
        ({"tokens_per_minute": float("nan")}, "tokens_per_minute"),
        ({"requests_per_minute": "60"}, "must be a number"),
        ({"model_limits": {"gpt-4.1": {"requests_per_minute": 0}}}, "gpt-4.1"),
        ({"model_limits": {"gpt-4.1": {"rpm": 5}}}, "unknown keys"),
        ({"model_limits": {"gpt-4.1": 5}}, "ModelLimits or a dict"),
        ({"fleet_size": 0}, "fleet_size"),
        ({"fleet_size": 2.5}, "fleet_size"),
        ({"redis_timeout": 0}, "redis_timeout"),
        ({"namespace": ""}, "namespace"),
        ({"default_max_tokens": 0}, "default_max_tokens"),
        ({"redis_url": "http://127.0.0.1:6379"}, "is not a Redis URL"),
        ({"redis_url": "localhost:6379"}, "is not a Redis URL"),
        ({"redis_url": "redis://:pw@host:port/0"}, "is malformed"),
        ({"redis_url": 6379}, "redis_url must be"),
    ],
)
def test_bad_input_is_a_typed_error_at_construction(kwargs, match):
    with pytest.raises(HolySheepInputError, match=match) as info:
        HolySheepRateLimiter(**kwargs)
    assert isinstance(info.value, ValueError)
    assert "pw@" not in str(info.value)


def test_a_request_bigger_than_the_token_limit_is_refused_before_waiting():
    limiter = HolySheepRateLimiter(tokens_per_minute=1000, redis_url=None)
    with pytest.raises(HolySheepInputError, match=r"1500 tokens.*max_tokens"):
        limiter.reserve(tokens=1500)
    limits = {"gpt-4.1": ModelLimits(tokens_per_minute=100)}
    limiter = HolySheepRateLimiter(model_limits=limits, redis_url=None)
    with pytest.raises(HolySheepInputError, match=r"m:gpt-4\.1:tpm"):
        limiter.reserve(tokens=200, model="gpt-4.1")
    assert limiter.reserve(tokens=200, model="other")


# ------------------------------------------------------------ repr and keys
def test_the_key_is_hashed_and_the_redis_password_masked(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_secret_key_123456")
    limiter = HolySheepRateLimiter(
        requests_per_minute=60,
        redis_url="redis://user:hunter2@127.0.0.1:1/0",
        namespace="ns",
    )
    shown = repr(limiter)
    assert "hunter2" not in shown
    assert "cr_secret" not in shown
    assert "redis://***:***@127.0.0.1:1/0" in shown
    assert limiter.key_prefix.startswith("hs:{")
    assert limiter.key_prefix.endswith("}:ns:")
    assert "cr_secret" not in limiter.key_prefix
    other = HolySheepRateLimiter(redis_url=None, api_key="cr_other_key", namespace="ns")
    assert other.key_prefix != limiter.key_prefix


def test_mask_url_keeps_urls_without_a_password():
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert "hunter2" not in mask_url("rediss://:hunter2@h:1/2")
    assert "hunter2" not in mask_url("unix:///tmp/redis.sock?password=hunter2&db=1")


def test_redis_url_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("HOLYSHEEP_REDIS_URL", "redis://127.0.0.1:1/3")
    assert "127.0.0.1:1/3" in repr(HolySheepRateLimiter())
    assert HolySheepRateLimiter(redis_url=None).backend == "local"


def test_a_missing_redis_extra_is_named(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"langchain-holysheep\[redis\]"):
        HolySheepRateLimiter(redis_url="redis://127.0.0.1:1/0")


# ------------------------------------------------------ in-process backend
def test_in_process_requests_are_spaced_sync_and_async():
    limiter = HolySheepRateLimiter(requests_per_minute=600, redis_url=None)
    start = time.monotonic()
    for _ in range(4):
        assert limiter.acquire()
    assert time.monotonic() - start >= 0.3 - 0.01  # three intervals of 0.1 s

    async def four():
        for _ in range(4):
            assert await limiter.aacquire()

    start = time.monotonic()
    asyncio.run(four())
    assert time.monotonic() - start >= 0.4 - 0.01  # the slot after the last


def test_non_blocking_acquire_does_not_take_a_future_slot():
    limiter = HolySheepRateLimiter(requests_per_minute=60, redis_url=None)
    assert limiter.acquire(blocking=False)
    assert not limiter.acquire(blocking=False)
    assert not asyncio.run(limiter.aacquire(blocking=False))


def test_requests_only_limiter_ignores_tokens_and_token_only_ignores_requests():
    requests_only = HolySheepRateLimiter(requests_per_minute=60, redis_url=None)
    assert requests_only.reserve(tokens=10**9, requests=0, blocking=False)
    tokens_only = HolySheepRateLimiter(tokens_per_minute=60, redis_url=None)
    for _ in range(5):
        assert tokens_only.acquire(blocking=False)
    assert tokens_only.reserve(tokens=30, blocking=False)
    assert not tokens_only.reserve(tokens=30, blocking=False)


def test_model_limits_apply_to_their_model_only():
    limiter = HolySheepRateLimiter(
        model_limits={"gpt-4.1": {"requests_per_minute": 60}}, redis_url=None
    )
    assert limiter.reserve(model="gpt-4.1", blocking=False)
    assert not limiter.reserve(model="gpt-4.1", blocking=False)
    assert limiter.reserve(model="deepseek-v3.2", blocking=False)
    assert limiter.acquire(blocking=False)  # no model: the key's limits only


def test_in_process_limits_log_nothing(caplog):
    caplog.set_level(logging.DEBUG, logger="langchain_holysheep.ratelimit")
    limiter = HolySheepRateLimiter(requests_per_minute=6000, redis_url=None)
    limiter.acquire()
    assert caplog.records == []


# ------------------------------------------------------------------- blocks
def test_a_block_holds_calls_in_process_and_is_capped():
    limiter = HolySheepRateLimiter(redis_url=None, max_block=0.3)
    limiter.block(3600)
    assert not limiter.acquire(blocking=False)
    start = time.monotonic()
    assert limiter.acquire()
    assert 0.2 <= time.monotonic() - start < 3600
    limiter.block(0)  # nothing to hold
    assert limiter.acquire(blocking=False)


def test_a_model_block_holds_that_model_only():
    limiter = HolySheepRateLimiter(redis_url=None)
    asyncio.run(limiter.ablock(30, model="gpt-4.1"))
    assert not limiter.reserve(model="gpt-4.1", blocking=False)
    assert limiter.reserve(model="deepseek-v3.2", blocking=False)
    assert limiter.acquire(blocking=False)


@pytest.mark.parametrize("max_block", [0, -1, 7200, "60"])
def test_max_block_must_be_a_sane_number_of_seconds(max_block):
    with pytest.raises(HolySheepInputError, match="max_block"):
        HolySheepRateLimiter(max_block=max_block)


# ------------------------------------------- learned output and corrections
def test_a_correction_moves_a_live_tat_before_the_call_is_placed():
    tats = {"tpm": 3 * SECOND}
    result = book(tats, (Charge("tpm", SECOND, -2 * SECOND),), SECOND, -1)
    assert result.wait == 0.0  # the earlier call used 2 s less than it reserved
    assert tats == {"tpm": 2 * SECOND}
    owed = book(tats, (Charge("tpm", SECOND, 0.5 * SECOND),), SECOND, -1)
    assert owed.wait == 1.5  # and this one's predecessor used 0.5 s more
    assert tats == {"tpm": 3.5 * SECOND}


def test_a_correction_to_an_expired_tat_is_past_and_ignored():
    # As on Redis, where the key is gone a second after its TAT.
    tats = {"tpm": SECOND}
    result = book(tats, (Charge("tpm", SECOND, 5 * SECOND),), 10 * SECOND, -1)
    assert result.wait == 0.0
    assert tats == {"tpm": 11 * SECOND}


def test_a_refused_booking_keeps_the_correction_owed():
    limiter = HolySheepRateLimiter(
        tokens_per_minute=60_000, reserve_output="learned", redis_url=None
    )
    body = {"model": "m", "max_tokens": 1000}
    reserved = limiter.reserve_chat([HumanMessage("hi")], body)
    limiter.settle_chat(body, reserved, {"input_tokens": 5, "output_tokens": 995})
    owed = 5 + 995 - reserved
    assert limiter._owed == {"tpm": owed}
    assert not limiter.reserve(tokens=59_000, blocking=False)
    assert limiter._owed == {"tpm": owed}  # nothing was booked: still owed
    assert limiter.reserve(tokens=10)
    assert limiter._owed == {}


def _prompt(messages, body):
    return (
        HolySheepRateLimiter(tokens_per_minute=10**9, redis_url=None).chat_tokens(
            messages, {**body, "max_tokens": 1, "n": 1}
        )
        - 1
    )


def test_learned_mode_reserves_what_the_model_answers_and_corrects_the_rest():
    limiter = HolySheepRateLimiter(
        tokens_per_minute=60_000, reserve_output="learned", redis_url=None
    )
    messages = [HumanMessage("hello there")]
    body = {"model": "gpt-4.1", "max_tokens": 500}
    prompt = _prompt(messages, body)
    first = limiter.reserve_chat(messages, body)
    assert first == prompt + 500  # nothing learned yet: max_tokens
    assert limiter.learned_output_tokens("gpt-4.1") is None
    limiter.settle_chat(body, first, {"input_tokens": prompt, "output_tokens": 40})
    assert limiter.learned_output_tokens("gpt-4.1") == 40
    assert limiter._owed == {"tpm": 40 - 500}  # the unused 460 are given back
    tat_before = limiter._local._tats["tpm"]
    second = limiter.reserve_chat(messages, body)
    assert second == prompt + 40
    increment = (second - 460) * 1000  # µs at 1,000 tokens a second
    assert limiter._local._tats["tpm"] == pytest.approx(tat_before + increment)
    limiter.settle_chat(body, second, {"input_tokens": prompt, "output_tokens": 90})
    assert limiter.learned_output_tokens("gpt-4.1") == pytest.approx(40 + 0.2 * 50)
    assert limiter.learned_output_tokens("other") is None


def test_learned_output_is_per_choice_and_never_above_max_tokens():
    limiter = HolySheepRateLimiter(
        tokens_per_minute=60_000, reserve_output="learned", redis_url=None
    )
    messages = [HumanMessage("hi")]
    body = {"model": "m", "max_tokens": 100, "n": 2}
    reserved = limiter.reserve_chat(messages, body)
    limiter.settle_chat(body, reserved, {"input_tokens": 3, "output_tokens": 60})
    assert limiter.learned_output_tokens("m") == 30
    assert limiter.chat_tokens(messages, body) == _prompt(messages, body) + 60
    assert limiter.chat_tokens(messages, {"model": "m", "max_tokens": 10}) == (
        _prompt(messages, body) + 10
    )


def test_max_tokens_mode_learns_nothing_and_owes_nothing():
    limiter = HolySheepRateLimiter(tokens_per_minute=60_000, redis_url=None)
    body = {"model": "m", "max_tokens": 100}
    reserved = limiter.reserve_chat([HumanMessage("hi")], body)
    limiter.settle_chat(body, reserved, {"input_tokens": 3, "output_tokens": 1})
    assert limiter.learned_output_tokens("m") is None
    assert limiter._owed == {}


@pytest.mark.parametrize("usage", [None, {}, {"input_tokens": 3}])
def test_an_answer_without_usage_leaves_the_reservation_as_counted(usage):
    limiter = HolySheepRateLimiter(
        tokens_per_minute=60_000, reserve_output="learned", redis_url=None
    )
    body = {"model": "m", "max_tokens": 100}
    limiter.settle_chat(body, limiter.reserve_chat([HumanMessage("hi")], body), usage)
    assert limiter.learned_output_tokens("m") is None
    assert limiter._owed == {}


def test_reserve_output_must_be_one_of_the_two_modes():
    with pytest.raises(HolySheepInputError, match="reserve_output"):
        HolySheepRateLimiter(reserve_output="actual")  # type: ignore[arg-type]
