"""The circuit breaker and its registry, tested directly (no LangChain, no network)."""

from __future__ import annotations

import ast
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from langchain_holysheep.fallback import _breaker as breaker_module
from langchain_holysheep.fallback._breaker import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    CircuitState,
    circuit_breaker_states,
    get_circuit_breaker,
    reset_circuit_breakers,
)

URL = "https://gateway.example.com/v1"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()


@pytest.fixture
def clock():
    return _Clock()


def _breaker(clock, **policy):
    return CircuitBreaker("m", URL, CircuitBreakerPolicy(clock=clock, **policy))


def test_breaker_opens_after_threshold_consecutive_failures(clock):
    breaker = _breaker(clock, failure_threshold=3, cooldown=10)
    assert breaker.record_failure() is False
    assert breaker.record_failure() is False
    assert breaker.state is CircuitState.CLOSED
    assert breaker.record_failure() is True
    assert breaker.state is CircuitState.OPEN
    assert breaker.acquire() == pytest.approx(10)


def test_breaker_success_resets_the_failure_count(clock):
    breaker = _breaker(clock, failure_threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED


def test_breaker_lets_one_trial_through_after_cooldown(clock):
    breaker = _breaker(clock, failure_threshold=1, cooldown=10)
    breaker.record_failure()
    clock.now += 10
    assert breaker.acquire() is None  # this caller is the trial
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.acquire() == 0.0  # everybody else waits for it
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.acquire() is None


def test_breaker_failed_trial_reopens_with_doubled_cooldown(clock):
    breaker = _breaker(clock, failure_threshold=1, cooldown=10, max_cooldown=15)
    breaker.record_failure()
    clock.now += 10
    assert breaker.acquire() is None
    assert breaker.record_failure() is True
    assert breaker.acquire() == pytest.approx(15)  # 20, capped at max_cooldown
    assert breaker.snapshot().trips == 2


def test_breaker_cooldown_is_seeded_from_retry_after(clock):
    breaker = _breaker(clock, failure_threshold=1, cooldown=30)
    breaker.record_failure(retry_after=4)
    assert breaker.acquire() == pytest.approx(4)


def test_breaker_release_frees_the_trial(clock):
    breaker = _breaker(clock, failure_threshold=1, cooldown=10)
    breaker.record_failure()
    clock.now += 10
    assert breaker.acquire() is None
    breaker.release()
    assert breaker.state is CircuitState.OPEN
    assert breaker.acquire() is None  # the next caller may try


def test_breaker_stale_trial_does_not_block_forever(clock):
    breaker = _breaker(clock, failure_threshold=1, cooldown=10)
    breaker.record_failure()
    clock.now += 10
    assert breaker.acquire() is None  # a trial whose caller never reports
    clock.now += 10
    assert breaker.acquire() is None


def test_breaker_snapshot_for_health_checks(clock):
    breaker = _breaker(clock, failure_threshold=2, cooldown=10)
    breaker.record_failure()
    snap = breaker.snapshot()
    assert (snap.state, snap.consecutive_failures, snap.retry_in) == (
        CircuitState.CLOSED,
        1,
        0.0,
    )
    breaker.record_failure()
    clock.now += 4
    assert breaker.snapshot().retry_in == pytest.approx(6)
    assert breaker.snapshot().state == "open"


def test_policy_rejects_bad_values():
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreakerPolicy(cooldown=10, max_cooldown=5)


def test_registry_shares_breakers_by_gateway_model_and_policy(clock):
    policy = CircuitBreakerPolicy(clock=clock)
    a = get_circuit_breaker("m", URL, policy)
    assert get_circuit_breaker("m", URL, CircuitBreakerPolicy(clock=clock)) is a
    assert get_circuit_breaker("m", "https://other.example/v1", policy) is not a
    assert get_circuit_breaker("n", URL, policy) is not a
    assert {s.model for s in circuit_breaker_states()} == {"m", "n"}


def test_registry_is_safe_under_concurrent_first_use():
    barrier = threading.Barrier(16)

    def get(_):
        barrier.wait()
        return get_circuit_breaker("race", URL)

    with ThreadPoolExecutor(16) as pool:
        breakers = set(map(id, pool.map(get, range(16))))
    assert len(breakers) == 1


def test_breaker_counts_concurrent_failures_exactly(clock):
    breaker = _breaker(clock, failure_threshold=1000)
    barrier = threading.Barrier(8)

    def fail(_):
        barrier.wait()
        for _ in range(100):
            breaker.record_failure()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fail, range(8)))
    assert breaker.snapshot().consecutive_failures == 800
    assert breaker.state is CircuitState.CLOSED


def test_breaker_grants_exactly_one_trial_under_contention(clock):
    breaker = _breaker(clock, failure_threshold=1, cooldown=1)
    breaker.record_failure()
    clock.now += 1
    barrier = threading.Barrier(16)

    def ask(_):
        barrier.wait()
        return breaker.acquire()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(16)))
    assert answers.count(None) == 1


def test_breaker_module_imports_only_the_standard_library():
    tree = ast.parse(Path(breaker_module.__file__).read_text("utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= sys.stdlib_module_names | {"__future__"}
