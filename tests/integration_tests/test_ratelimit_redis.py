"""HolySheepRateLimiter on a real Redis, driving ChatHolySheep over real HTTP.

Each test keeps to its own namespace on the shared Redis (127.0.0.1:6379) and
deletes its keys; tests that count server-wide statistics or stop the server
use a private ``redis-server``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_holysheep import HolySheepRateLimiter
from langchain_holysheep.errors import (
    HolySheepInputError,
    HolySheepRateLimitError,
    HolySheepTotalTimeoutError,
)
from langchain_holysheep.testing import Fault
from tests.modes import MODES, call
from tests.redis_support import (
    SHARED_REDIS_URL,
    PrivateRedis,
    client,
    closed_port_url,
    namespace_on_shared_redis,
)

KEY = "cr_ratelimit_redis_key_0042"
LOGGER = "langchain_holysheep.ratelimit"


@pytest.fixture
def namespace():
    with namespace_on_shared_redis() as name:
        yield name


@pytest.fixture
def make_limiter(namespace):
    made = []

    def make(**kwargs):
        kwargs.setdefault("redis_url", SHARED_REDIS_URL)
        kwargs.setdefault("namespace", namespace)
        kwargs.setdefault("api_key", KEY)
        limiter = HolySheepRateLimiter(**kwargs)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        limiter.close()


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.stop()


def _warnings(caplog):
    return [r for r in caplog.records if r.name == LOGGER and r.levelname == "WARNING"]


def _tat_ahead(limiter, suffix):
    """Seconds the limit's TAT is ahead of Redis's clock (0 if the key is gone)."""
    redis = client()
    seconds, micros = redis.time()
    value = redis.get(limiter.key_prefix + suffix)
    return 0.0 if value is None else (int(value) - (seconds * 10**6 + micros)) / 1e6


# ----------------------------------------------------------- keys and values
async def test_redis_holds_only_the_key_hash_and_numbers_that_expire(
    make_model, make_limiter, namespace
):
    limiter = make_limiter(
        requests_per_minute=600,
        tokens_per_minute=600_000,
        model_limits={"gpt-4.1": {"requests_per_minute": 600}},
    )
    await call(make_model(model="gpt-4.1", rate_limiter=limiter), "invoke")
    redis = client()
    keys = sorted(k.decode() for k in redis.scan_iter(match=f"hs:*:{namespace}:*"))
    prefix = limiter.key_prefix
    assert keys == [prefix + s for s in ("m:gpt-4.1:rpm", "rpm", "tpm")]
    assert prefix.startswith("hs:{")  # one Redis Cluster hash tag for all keys
    assert prefix.index("}") == len("hs:{") + 16
    for key in keys:
        assert KEY not in key
        value = redis.get(key)
        assert value.isdigit()
        assert KEY.encode() not in value
        assert 0 < redis.pttl(key) <= 2_500  # TAT + 1 s: they expire on their own


def test_a_request_is_counted_once_with_its_tokens(make_model, make_limiter):
    """core's acquire and the model's reservation must not both count it."""
    limiter = make_limiter(requests_per_minute=60, tokens_per_minute=60_000)
    make_model(rate_limiter=limiter, max_tokens=500).invoke("hi")
    assert 0.3 < _tat_ahead(limiter, "rpm") <= 1.0  # one request: 1 s (two: 2 s)
    assert 0.1 < _tat_ahead(limiter, "tpm") <= 0.51  # ~505 tokens at 1,000/s


def test_another_chat_model_is_limited_by_requests_only(make_limiter):
    limiter = make_limiter(requests_per_minute=60, tokens_per_minute=600)
    fake = GenericFakeChatModel(
        messages=iter([AIMessage("a"), AIMessage("b")]), rate_limiter=limiter
    )
    fake.invoke("hello")
    assert 0.5 < _tat_ahead(limiter, "rpm") <= 1.0
    assert _tat_ahead(limiter, "tpm") == 0.0
    assert not limiter.acquire(blocking=False)


def test_limiters_share_a_namespace_and_key_and_nothing_else(make_limiter):
    first = make_limiter(requests_per_minute=60)
    second = make_limiter(requests_per_minute=60)  # another process, same limits
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)
    assert make_limiter(requests_per_minute=60, api_key="cr_other").acquire(
        blocking=False
    )
    with namespace_on_shared_redis() as other:
        assert make_limiter(requests_per_minute=60, namespace=other).acquire(
            blocking=False
        )


@pytest.mark.parametrize("mode", MODES)
async def test_booked_slots_space_calls_on_redis_clock(make_model, make_limiter, mode):
    limiter = make_limiter(requests_per_minute=600)  # one each 0.1 s
    llm = make_model(rate_limiter=limiter)
    start = time.monotonic()
    for _ in range(4):
        await call(llm, mode)
    assert time.monotonic() - start >= 0.3 - 0.02


@pytest.mark.parametrize("mode", MODES)
async def test_a_fleet_slot_past_total_timeout_is_refused_unsent(
    make_model, make_limiter, gw, mode
):
    # Two limiters on one key: the other process took the minute's one request.
    make_limiter(requests_per_minute=1).reserve()
    llm = make_model(rate_limiter=make_limiter(requests_per_minute=1))
    with pytest.raises(HolySheepTotalTimeoutError) as caught:
        await call(llm, mode, total_timeout=10)
    assert 55 < caught.value.limiter_wait <= 60
    assert gw.requests == []


@pytest.mark.parametrize("mode", MODES)
async def test_tokens_are_reserved_before_sending(make_model, make_limiter, gw, mode):
    limiter = make_limiter(tokens_per_minute=60_000)  # 1,000 tokens a second
    llm = make_model(rate_limiter=limiter, max_tokens=200)
    start = time.monotonic()
    for _ in range(3):
        await call(llm, mode)
    assert time.monotonic() - start >= 2 * 0.2  # two waits of ~205 tokens
    assert len(gw.requests) == 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_request_over_the_token_limit_is_refused_before_sending(
    make_model, make_limiter, gw, mode
):
    llm = make_model(rate_limiter=make_limiter(tokens_per_minute=1000))
    with pytest.raises(HolySheepInputError, match="default_max_tokens=1024"):
        await call(llm, mode)
    assert gw.requests == []


# --------------------------------------------------------------- round trips
@pytest.mark.parametrize("mode", MODES)
async def test_one_script_call_per_request(make_model, private_redis, gw, mode):
    limiter = HolySheepRateLimiter(
        requests_per_minute=60_000,
        tokens_per_minute=10_000_000,
        model_limits={"gpt-4.1": {"requests_per_minute": 60_000}},
        redis_url=private_redis.url,
        api_key=KEY,
    )
    llm = make_model(model="gpt-4.1", rate_limiter=limiter)
    before = private_redis.script_calls()
    for _ in range(5):
        await call(llm, mode)
    assert len(gw.requests) == 5
    assert private_redis.script_calls() - before == 5
    limiter.close()


def test_a_flushed_script_cache_is_refilled_in_the_same_call(private_redis):
    limiter = HolySheepRateLimiter(
        requests_per_minute=6000, redis_url=private_redis.url
    )
    assert limiter.acquire()
    redis = client(private_redis.url)
    redis.script_flush()
    assert limiter.acquire()
    assert limiter.backend == "redis"
    from langchain_holysheep.ratelimit._gcra import GCRA_SHA1

    assert redis.script_exists(GCRA_SHA1) == [True]
    limiter.close()


# --------------------------------------------- learned output (actual usage)
def _ahead(url, key):
    """Seconds a TAT key is ahead of that Redis's clock (0 if the key is gone)."""
    redis = client(url)
    seconds, micros = redis.time()
    value = redis.get(key)
    return 0.0 if value is None else (int(value) - (seconds * 10**6 + micros)) / 1e6


@pytest.mark.parametrize("mode", MODES)
async def test_learned_mode_gives_back_unused_tokens_on_the_next_round_trip(
    make_model, private_redis, gw, mode
):
    """tokens_per_minute=60,000 (1,000 a second) and max_tokens=3,000.

    Reserving max_tokens, five calls would book 15 s of tokens; learning that
    the gateway answers in a few dozen tokens, the first call's unused
    reservation is given back by the second call's own script call.
    """
    limiter = HolySheepRateLimiter(
        tokens_per_minute=60_000,
        reserve_output="learned",
        redis_url=private_redis.url,
        api_key=KEY,
    )
    llm = make_model(rate_limiter=limiter, max_tokens=3000)
    tpm = limiter.key_prefix + "tpm"
    before = private_redis.script_calls()
    first = await call(llm, mode)
    assert 2.5 < _ahead(private_redis.url, tpm) <= 3.1  # max_tokens, at first
    used = first.usage_metadata["total_tokens"]
    learned = limiter.learned_output_tokens(llm.model_name)
    assert learned == first.usage_metadata["output_tokens"]
    for _ in range(4):
        used += (await call(llm, mode)).usage_metadata["total_tokens"]
    assert private_redis.script_calls() - before == 5  # corrections rode along
    assert len(gw.requests) == 5
    assert _ahead(private_redis.url, tpm) < (used + 3000) / 1000 - 2.5
    limiter.close()


def test_a_correction_reaches_every_process_sharing_the_limit(make_model, make_limiter):
    learner = make_limiter(tokens_per_minute=60_000, reserve_output="learned")
    other = make_limiter(tokens_per_minute=60_000)  # another process, same key
    llm = make_model(rate_limiter=learner, max_tokens=3000)
    llm.invoke("hi")
    assert _tat_ahead(other, "tpm") > 2.5  # 3 s booked ahead, for both
    llm.invoke("hi")  # carries the first call's unused ~2,970 tokens back
    assert _tat_ahead(other, "tpm") < 0.5
    assert other.reserve(tokens=100, blocking=True)


# ------------------------------------------------------------ Redis failures
@pytest.mark.parametrize("mode", MODES)
async def test_redis_down_calls_go_on_under_local_limits_with_one_warning(
    make_model, gw, caplog, mode
):
    caplog.set_level(logging.INFO, logger=LOGGER)
    limiter = HolySheepRateLimiter(
        requests_per_minute=1200,  # 0.05 s apart fleet-wide
        fleet_size=4,  # so 0.2 s apart in this process alone
        redis_url=closed_port_url().replace("127.0.0.1", ":secretpw@127.0.0.1"),
        api_key=KEY,
    )
    llm = make_model(rate_limiter=limiter)
    start = time.monotonic()
    for _ in range(4):
        assert (await call(llm, mode)).content
    assert time.monotonic() - start >= 3 * 0.2 - 0.02
    assert len(gw.requests) == 4
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert "unusable" in warnings[0].getMessage()
    assert "fleet_size=4" in warnings[0].getMessage()
    assert "secretpw" not in caplog.text
    assert KEY not in caplog.text
    assert limiter.backend == "local (Redis unreachable)"


def test_a_server_that_is_not_redis_is_one_warning(make_model, gw, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limiter = HolySheepRateLimiter(
        requests_per_minute=6000, redis_url=f"redis://127.0.0.1:{gw.port}/0"
    )
    llm = make_model(rate_limiter=limiter)
    for _ in range(3):
        assert llm.invoke("hi").content
    (warning,) = _warnings(caplog)
    assert "unusable" in warning.getMessage()
    assert len([r for r in gw.requests if r.path == "/v1/chat/completions"]) == 3


def test_a_silent_redis_times_out_instead_of_hanging(make_model, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    with socket.socket() as server:  # accepts, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        limiter = HolySheepRateLimiter(
            requests_per_minute=6000,
            redis_url=f"redis://127.0.0.1:{port}/0",
            redis_timeout=0.2,
        )
        outcome = {}
        worker = threading.Thread(
            target=lambda: outcome.update(
                ok=make_model(rate_limiter=limiter).invoke("x")
            )
        )
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive()
    assert outcome["ok"].content
    assert len(_warnings(caplog)) == 1


def test_the_limiter_reconnects_after_its_backoff(private_redis, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    private_redis.stop()
    limiter = HolySheepRateLimiter(
        requests_per_minute=6000, redis_url=private_redis.url
    )
    assert limiter.acquire()
    assert limiter.backend == "local (Redis unreachable)"
    private_redis.start()
    assert limiter.acquire()  # still backing off: no Redis call
    assert limiter.backend == "local (Redis unreachable)"
    time.sleep(1.1)  # the first back-off is 1 s
    assert limiter.acquire()
    assert limiter.backend == "redis"
    assert len(_warnings(caplog)) == 1
    assert any("answers again" in r.getMessage() for r in caplog.records)
    assert private_redis.script_calls() == 1
    limiter.close()


# ------------------------------------------------------------ 429s: the block
@pytest.mark.parametrize("mode", MODES)
async def test_a_429_blocks_the_key_for_every_limiter_sharing_it(
    make_model, make_limiter, gw, mode
):
    gw.enqueue(Fault(status=429, headers={"Retry-After": "1"}))
    first, second = (
        make_limiter(requests_per_minute=6000),
        make_limiter(requests_per_minute=6000),
    )
    with pytest.raises(HolySheepRateLimitError):
        await call(make_model(rate_limiter=first), mode)
    assert not second.acquire(blocking=False)  # another process, same key
    left = _tat_ahead(first, "block")
    assert 0 < left <= 1.0
    start = time.monotonic()
    assert (await call(make_model(rate_limiter=second), mode)).content
    assert time.monotonic() - start >= left - 0.05  # it waited the block out


def test_a_429_the_sdk_retries_by_itself_still_blocks_the_fleet(
    make_model, make_limiter, gw
):
    gw.enqueue(Fault(status=429, headers={"retry-after-ms": "1500"}))
    limiter, other = make_limiter(), make_limiter(requests_per_minute=6000)
    llm = make_model(rate_limiter=limiter, max_retries=1)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(llm.invoke, "hi")
        time.sleep(0.4)  # the SDK is waiting out the 429 by itself
        assert not other.acquire(blocking=False)
        assert answer.result(timeout=10).content
    assert len(gw.requests) == 2


def test_a_429_naming_its_model_blocks_that_model_only(make_model, make_limiter, gw):
    gw.enqueue(
        Fault(
            status=429,
            message="Rate limit reached for gpt-4.1 on requests per min",
            headers={"Retry-After": "5"},
        )
    )
    limiter = make_limiter()  # no limits: only blocks hold calls
    with pytest.raises(HolySheepRateLimitError):
        make_model(model="gpt-4.1", rate_limiter=limiter).invoke("hi")
    assert limiter.acquire(blocking=False)  # the key is not blocked
    assert not limiter.reserve(model="gpt-4.1", blocking=False)
    assert limiter.reserve(model="deepseek-v3.2", blocking=False)


def test_a_block_is_capped_and_never_shortened(make_limiter):
    limiter = make_limiter(max_block=2)
    limiter.block(3600)
    assert 1.5 < _tat_ahead(limiter, "block") <= 2.0
    limiter.block(0.5)  # a later, shorter 429 keeps the longer block
    assert _tat_ahead(limiter, "block") > 1.5


async def test_with_redis_down_a_429_blocks_this_process(make_model, gw, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    limiter = HolySheepRateLimiter(
        requests_per_minute=6000, redis_url=closed_port_url()
    )
    gw.enqueue(Fault(status=429, headers={"Retry-After": "1"}))
    with pytest.raises(HolySheepRateLimitError):
        await make_model(rate_limiter=limiter).ainvoke("hi")
    start = time.monotonic()
    assert await make_model(rate_limiter=limiter).ainvoke("hi")
    assert time.monotonic() - start >= 0.8
    assert len(_warnings(caplog)) == 1


def test_the_sdk_waits_for_x_ratelimit_reset_when_there_is_no_retry_after(
    make_model, gw
):
    gw.enqueue(
        Fault(
            status=429,
            headers={
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "1.2s",
            },
        )
    )
    start = time.monotonic()
    assert make_model(max_retries=1).invoke("hi").content
    assert time.monotonic() - start >= 1.2  # not the SDK's 0.5-1 s back-off


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_redis_stopped_mid_run_then_back(make_model, private_redis, caplog, mode):
    """Every call completes under local limits, one warning; then sharing resumes."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    limiter = HolySheepRateLimiter(
        requests_per_minute=1200,  # 0.05 s apart, 0.1 s alone (fleet_size=2)
        fleet_size=2,
        redis_url=private_redis.url,
        api_key=KEY,
    )
    llm = make_model(rate_limiter=limiter)
    for _ in range(3):
        await call(llm, mode)
    assert limiter.backend == "redis"
    private_redis.stop()
    start = time.monotonic()
    for _ in range(4):
        assert (await call(llm, mode)).content
    assert time.monotonic() - start >= 3 * 0.1 - 0.02
    assert limiter.backend == "local (Redis unreachable)"
    private_redis.start()
    await asyncio.sleep(1.2)  # past the first back-off
    for _ in range(2):
        assert (await call(llm, mode)).content
    assert limiter.backend == "redis"
    assert private_redis.script_calls() >= 2  # the fresh server counts again
    assert len(_warnings(caplog)) == 1
    assert any("answers again" in r.getMessage() for r in caplog.records)
    limiter.close()
