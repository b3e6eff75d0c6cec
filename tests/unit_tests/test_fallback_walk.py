"""The attempt iterator every fallback call shares, tested directly.

The members here are never called: each test raises or returns inside
``with walk.attempt():`` as a member's call would.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import pytest
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langchain_holysheep.errors import (
    HolySheepCircuitOpenError,
    HolySheepFallbackError,
    HolySheepInputError,
    HolySheepUnsupportedInputError,
)
from langchain_holysheep.fallback import _walk as walk_module
from langchain_holysheep.fallback._breaker import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    CircuitState,
)
from langchain_holysheep.fallback._member import Member
from langchain_holysheep.fallback._policy import empty_content, is_fallback_error
from langchain_holysheep.fallback._walk import Walk


@dataclass
class _Settings:
    fallback_on: tuple = (is_fallback_error,)
    response_checks: tuple = ()
    max_retries: int = 0
    max_retry_after: float = 2.0
    retry_backoff: float = 0.0


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _members(*names, breakers=None):
    breakers = breakers or {}
    return [
        Member(
            name=n, model=FakeListChatModel(responses=["x"]), breaker=breakers.get(n)
        )
        for n in names
    ]


def _walk(*names, breakers=None, **settings):
    return Walk(
        settings=_Settings(**settings), members=_members(*names, breakers=breakers)
    )


def _run(walk, call):
    """Drive a walk the way every call site does."""
    for member in walk:
        with walk.attempt():
            result = call(member)
        if walk.answered:
            walk.succeeded()
            return result
    raise walk.exhausted()


async def _arun(walk, call):
    async for member in walk:
        with walk.attempt():
            result = call(member)
        if walk.answered:
            walk.succeeded()
            return result
    raise walk.exhausted()


def _busy(tried):
    def call(member):
        tried.append(member.name)
        raise ModelRateLimitError(f"busy {member.name}")

    return call


def test_every_member_fails_then_the_group_lists_each_attempt():
    tried = []
    with pytest.raises(HolySheepFallbackError) as caught:
        _run(_walk("a", "b"), _busy(tried))
    assert tried == ["a", "b"]
    assert [a["model"] for a in caught.value.attempts] == ["a", "b"]
    assert str(caught.value).startswith(
        "All 2 models of the fallback chain failed: "
        "1. a: ModelRateLimitError: busy a; 2. b: ModelRateLimitError: busy b"
    )


def test_an_answer_ends_the_walk():
    walk = _walk("a", "b")
    assert _run(walk, lambda member: member.name) == "a"
    assert walk.answered
    assert walk.attempts == []


def test_an_error_that_is_no_trigger_propagates_untouched_but_noted():
    def fail(member):
        if member.name == "a":
            raise ModelRateLimitError("busy")
        raise KeyError("a bug")

    with pytest.raises(KeyError) as caught:
        _run(_walk("a", "b"), fail)
    assert caught.value.__notes__ == [
        "Fallback chain: earlier attempts failed: a: ModelRateLimitError: busy"
    ]
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert frames[-1].name == "fail"
    assert walk_module.__file__ not in {f.filename for f in frames}


def test_a_retryable_error_retries_the_same_member_first():
    walk = _walk("a", "b", max_retries=2, max_retry_after=0.01, retry_backoff=0.001)
    tried = []
    with pytest.raises(HolySheepFallbackError) as caught:
        _run(walk, _busy(tried))
    assert tried == ["a", "a", "a", "b", "b", "b"]
    assert len(caught.value.exceptions) == 6


async def test_the_async_walk_makes_the_same_decisions():
    walk = _walk("a", "b", max_retries=1, max_retry_after=0.01, retry_backoff=0.001)
    tried = []
    with pytest.raises(HolySheepFallbackError) as caught:
        await _arun(walk, _busy(tried))
    assert tried == ["a", "a", "b", "b"]
    assert [a["model"] for a in caught.value.attempts] == ["a", "a", "b", "b"]


def _open_breaker(clock, **policy):
    breaker = CircuitBreaker(
        "a", "scope", CircuitBreakerPolicy(clock=clock, failure_threshold=1, **policy)
    )
    breaker.record_failure()
    return breaker


def test_an_open_circuit_is_skipped_and_recorded():
    breaker = _open_breaker(_Clock(), cooldown=10)
    walk = _walk("a", "b", breakers={"a": breaker})
    assert next(walk).name == "b"
    assert isinstance(walk.errors[0], HolySheepCircuitOpenError)
    assert walk.attempts[0]["error_type"] == "HolySheepCircuitOpenError"


def test_a_cancelled_attempt_frees_the_half_open_trial():
    clock = _Clock()
    breaker = _open_breaker(clock, cooldown=10)
    clock.now += 10
    states = []

    def interrupted(_member):
        states.append(breaker.state)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(_walk("a", breakers={"a": breaker}), interrupted)
    assert states == [CircuitState.HALF_OPEN]  # the call was the trial
    assert breaker.state is CircuitState.OPEN
    assert breaker.acquire() is None  # the next caller may try at once


def test_a_committed_stream_failure_propagates_and_counts():
    breaker = CircuitBreaker("a", "scope", CircuitBreakerPolicy(failure_threshold=5))
    walk = _walk("a", "b", breakers={"a": breaker})
    error = ModelRateLimitError("cut mid-stream")

    def stream_then_fail():
        next(walk)
        walk.succeeded()
        with walk.committed():
            raise error

    with pytest.raises(ModelRateLimitError) as caught:
        stream_then_fail()
    assert caught.value is error
    assert breaker.snapshot().consecutive_failures == 1
    assert walk.attempts == []  # nothing fell over


def _result(text):
    return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def test_a_rejected_answer_is_recorded_and_moves_on():
    walk = _walk("a", "b", response_checks=(empty_content,))
    assert walk.next_member().name == "a"
    assert not walk.accepts(_result(""))
    assert walk.attempts[0]["error_type"] == "HolySheepResponseRejectedError"
    assert walk.next_member().name == "b"
    assert walk.accepts(_result("fine"))


def test_input_a_member_cannot_take_is_a_failed_attempt_not_the_end():
    """Regression: a Claude member's input error ended the failover."""
    breaker = CircuitBreaker(
        "claude", "scope", CircuitBreakerPolicy(failure_threshold=1)
    )

    def call(member):
        if member.name == "claude":
            raise HolySheepUnsupportedInputError(
                "no strict", model="claude", setting="strict"
            )
        return member.name

    walk = _walk("claude", "gpt", breakers={"claude": breaker}, max_retries=3)
    assert _run(walk, call) == "gpt"
    [attempt] = walk.attempts
    assert attempt == {
        "model": "claude",
        "error_type": "HolySheepUnsupportedInputError",
        "status_code": None,
        "message": "no strict",
    }
    assert breaker.state is CircuitState.CLOSED  # the model is not unhealthy


def test_a_plain_input_error_still_ends_the_walk():
    def call(member):
        raise HolySheepInputError("bad for everyone")

    with pytest.raises(HolySheepInputError, match="bad for everyone"):
        _run(_walk("a", "b"), call)
