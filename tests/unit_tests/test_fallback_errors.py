"""The fallback chain's three errors: the group, the skipped member, the rejection."""

from __future__ import annotations

import pickle

from langchain_core.exceptions import (
    ModelError,
    ModelNotFoundError,
    ModelRateLimitError,
)
from langchain_core.messages import AIMessage

from langchain_holysheep.errors import (
    HolySheepCircuitOpenError,
    HolySheepError,
    HolySheepFallbackError,
    HolySheepResponseRejectedError,
)


def test_fallback_error_is_a_model_error_and_an_exception_group():
    errors = [ModelRateLimitError("a"), ModelNotFoundError("b")]
    group = HolySheepFallbackError("all failed", errors, [{"model": "x"}])
    assert isinstance(group, HolySheepError)
    assert isinstance(group, ModelError)
    assert isinstance(group, ExceptionGroup)
    assert group.exceptions == tuple(errors)
    assert group.attempts == [{"model": "x"}]
    assert group.is_retryable is False  # a 404 will not pass by waiting
    assert HolySheepFallbackError("m", [ModelRateLimitError("a")]).is_retryable


def test_fallback_error_works_with_except_star():
    group = HolySheepFallbackError(
        "all failed", [ModelRateLimitError("a"), ModelNotFoundError("b")]
    )
    caught = []
    try:
        raise group
    except* ModelRateLimitError as rate_limited:
        caught.append(rate_limited)
    except* ModelNotFoundError as missing:
        caught.append(missing)
    assert [type(g) for g in caught] == [HolySheepFallbackError] * 2
    assert [len(g.exceptions) for g in caught] == [1, 1]


def test_fallback_error_pickles():
    group = HolySheepFallbackError("all failed", [ValueError("x")], [{"model": "m"}])
    copy = pickle.loads(pickle.dumps(group))  # noqa: S301 (our own bytes)
    assert isinstance(copy, HolySheepFallbackError)
    assert copy.message == "all failed"
    assert copy.attempts == [{"model": "m"}]
    assert str(copy.exceptions[0]) == "x"


def test_circuit_open_error_says_when():
    error = HolySheepCircuitOpenError("gpt-4.1", 12.34)
    assert "12.3 s" in str(error)
    assert error.is_retryable
    assert "in flight" in str(HolySheepCircuitOpenError("gpt-4.1", 0.0))


def test_response_rejected_error_keeps_the_reason_and_the_answer():
    answer = AIMessage("")
    error = HolySheepResponseRejectedError("empty answer", answer)
    assert str(error) == "response rejected: empty answer"
    assert (error.reason, error.response) == ("empty answer", answer)
    assert isinstance(error, HolySheepError)


def test_the_fallback_package_re_exports_the_same_classes():
    from langchain_holysheep import fallback

    assert fallback.HolySheepFallbackError is HolySheepFallbackError
    assert fallback.HolySheepCircuitOpenError is HolySheepCircuitOpenError
    assert fallback.HolySheepResponseRejectedError is HolySheepResponseRejectedError
    for name in fallback.__all__:
        assert hasattr(fallback, name)
