"""Circuit breakers shared through Redis (real Redis, real HTTP).

A second process is simulated by forgetting this process's breakers
(``reset_circuit_breakers``): the next chain builds new breaker objects, which
only know what Redis holds. Real processes: ``test_fleet.py``.
"""

from __future__ import annotations

import logging
import time

import pytest

from langchain_holysheep.fallback import (
    ChatHolySheepFallback,
    CircuitBreakerPolicy,
    CircuitState,
    SharedCircuitBreaker,
    circuit_breaker_states,
    get_circuit_breaker,
    reset_circuit_breakers,
)
from langchain_holysheep.testing import Fault
from tests.modes import MODES, call
from tests.redis_support import (
    SHARED_REDIS_URL,
    client,
    closed_port_url,
    namespace_on_shared_redis,
)

KEY = "cr_shared_breaker_key_00042"
DEAD, ALIVE = "gemini-2.5-flash", "deepseek-v3.2"


@pytest.fixture
def namespace():
    with namespace_on_shared_redis() as name:
        yield name
    reset_circuit_breakers()


@pytest.fixture
def policy(namespace):
    def make(**kwargs):
        kwargs.setdefault("redis_url", SHARED_REDIS_URL)
        kwargs.setdefault("redis_namespace", namespace)
        return CircuitBreakerPolicy(**kwargs)

    return make


@pytest.fixture
def make_chain(gw):
    def make(policy):
        return ChatHolySheepFallback(
            models=[DEAD, ALIVE],
            base_url=gw.base_url,
            api_key=KEY,
            circuit_breaker=policy,
        )

    return make


def _sent_to(gw, model):
    return sum(1 for r in gw.requests if r.model == model)


@pytest.mark.parametrize("mode", MODES)
async def test_a_breaker_one_process_opened_is_open_for_the_next(
    make_chain, policy, gw, mode
):
    gw.set_default(Fault(status=503, repeat=10**6), model=DEAD)
    shared = policy(failure_threshold=1, cooldown=30)
    assert (await call(make_chain(shared), mode)).content
    assert _sent_to(gw, DEAD) == 1
    reset_circuit_breakers()  # "another process": nothing in memory
    assert (await call(make_chain(shared), mode)).content
    assert _sent_to(gw, DEAD) == 1  # skipped, from Redis's state alone
    (snapshot,) = [s for s in circuit_breaker_states() if s.model == DEAD]
    assert snapshot.state is CircuitState.OPEN
    assert 25 < snapshot.retry_in <= 30


def test_failures_from_every_process_count_and_a_success_clears_them(policy):
    shared = policy(failure_threshold=2, cooldown=30)
    first = SharedCircuitBreaker(DEAD, "http://gw/v1", shared, SHARED_REDIS_URL)
    second = SharedCircuitBreaker(DEAD, "http://gw/v1", shared, SHARED_REDIS_URL)
    assert first.acquire() is None
    assert not first.record_failure()
    assert second.acquire() is None
    second.record_success()  # clears the count for the fleet
    assert not first.record_failure()
    assert second.record_failure()  # the fleet's second consecutive failure
    assert first.acquire() > 25
    assert first.snapshot().trips == 1


def test_half_open_lets_exactly_one_process_try(policy):
    shared = policy(failure_threshold=1, cooldown=0.5)
    fleet = [
        SharedCircuitBreaker(DEAD, "http://gw/v1", shared, SHARED_REDIS_URL)
        for _ in range(4)
    ]
    fleet[0].record_failure()
    time.sleep(0.6)
    answers = [b.acquire() for b in fleet]
    assert answers.count(None) == 1  # the trial's lease
    assert all(a == 0.0 for a in answers if a is not None)
    trial = fleet[answers.index(None)]
    trial.record_failure()  # the trial failed: open again, twice as long
    snapshot = fleet[1].snapshot()
    assert snapshot.state is CircuitState.OPEN
    assert 0.5 < snapshot.retry_in <= 1.0


def test_retry_after_seeds_the_cooldown_capped(policy):
    shared = policy(failure_threshold=1, cooldown=1, max_cooldown=10)
    breaker = SharedCircuitBreaker(DEAD, "http://gw/v1", shared, SHARED_REDIS_URL)
    breaker.record_failure(retry_after=3600)
    assert 9 < breaker.snapshot().retry_in <= 10


def test_redis_keys_hold_no_secret_and_expire(policy, namespace):
    scope = "https://user:hunter2@gateway.example/v1"
    breaker = get_circuit_breaker(DEAD, scope, policy(failure_threshold=1))
    assert isinstance(breaker, SharedCircuitBreaker)
    breaker.record_failure()
    redis = client()
    (key,) = [k.decode() for k in redis.scan_iter(match=f"hs:cb:*:{namespace}:*")]
    assert key == breaker.key
    assert "hunter2" not in key
    assert "gateway.example" not in key
    assert 0 < redis.pttl(key) <= (300 * 2 + 60) * 1000


async def test_redis_down_falls_back_to_this_process_breaker(make_chain, gw, caplog):
    caplog.set_level(logging.WARNING, logger="langchain_holysheep.fallback")
    gw.set_default(Fault(status=503, repeat=10**6), model=DEAD)
    shared = CircuitBreakerPolicy(failure_threshold=1, redis_url=closed_port_url())
    chain = make_chain(shared)
    for _ in range(3):
        assert (await chain.ainvoke("hi")).content
    assert _sent_to(gw, DEAD) == 1  # the local breaker opened and held
    unusable = [r for r in caplog.records if "unusable" in r.getMessage()]
    assert len(unusable) == 1
    reset_circuit_breakers()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379", "127.0.0.1:6379", "redis//x", 6379]
)
def test_a_bad_redis_url_is_refused_by_the_policy(url):
    with pytest.raises(ValueError, match="redis_url"):
        CircuitBreakerPolicy(redis_url=url)


def test_the_policy_repr_shows_no_redis_url():
    shown = repr(CircuitBreakerPolicy(redis_url="redis://:hunter2@host:6379/0"))
    assert "hunter2" not in shown
    breaker = SharedCircuitBreaker(
        DEAD,
        "http://gw/v1",
        CircuitBreakerPolicy(redis_url="redis://:hunter2@host:6379/0"),
        "redis://:hunter2@host:6379/0",
    )
    assert "hunter2" not in repr(breaker)
    assert "***" in repr(breaker)
