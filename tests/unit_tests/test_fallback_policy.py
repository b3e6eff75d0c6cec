"""The fallback trigger policy, tested directly: pure functions, no chain."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAuthenticationError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
)
from langchain_core.messages import AIMessage

from langchain_holysheep.errors import (
    HolySheepCircuitOpenError,
    HolySheepResponseRejectedError,
    HolySheepTruncatedStreamError,
)
from langchain_holysheep.fallback._policy import (
    empty_content,
    finish_reason_length,
    is_fallback_error,
    is_retryable,
    rejection,
    retry_after,
    retry_delay,
    status_code,
    triggers,
)


class _StatusError(Exception):
    def __init__(self, status_code):
        super().__init__(f"status {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ModelRateLimitError("429"), True),
        (HolySheepTruncatedStreamError("cut", None, body=None), True),
        (ModelNotFoundError("no such model"), True),
        (ModelAuthenticationError("401"), False),
        (ModelPermissionDeniedError("403"), False),
        (ModelInvalidRequestError("400"), False),
        (ContextOverflowError("too long"), False),
        (_StatusError(503), True),
        (_StatusError(429), True),
        (_StatusError(404), True),
        (_StatusError(400), False),
        (_StatusError(401), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ValueError("bug"), False),
    ],
)
def test_default_trigger_table(error, expected):
    assert is_fallback_error(error) is expected


def test_response_checks():
    assert empty_content(AIMessage("")) is not None
    assert empty_content(AIMessage("  ")) is not None
    assert empty_content(AIMessage("hi")) is None
    assert (
        empty_content(AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "1"}]))
        is None
    )
    cut = AIMessage("partial", response_metadata={"finish_reason": "length"})
    assert "length" in finish_reason_length(cut)
    assert finish_reason_length(AIMessage("ok")) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ModelRateLimitError("429"), True),
        (ModelNotFoundError("no such model"), False),  # falls over, never retried
        (ModelAuthenticationError("401"), False),
        (HolySheepCircuitOpenError("m", 3.0), True),
        (_StatusError(503), True),
        (_StatusError(429), True),
        (_StatusError(409), True),
        (_StatusError(404), False),
        (_StatusError(400), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ValueError("bug"), False),
    ],
)
def test_retryable_table(error, expected):
    assert is_retryable(error) is expected


def test_status_code_reads_only_integers():
    assert status_code(_StatusError(502)) == 502
    assert status_code(_StatusError("502")) is None
    assert status_code(ValueError()) is None


def test_triggers_match_types_and_predicates():
    rate_limited = ModelRateLimitError("429")
    assert triggers(rate_limited, (ModelRateLimitError,))
    assert triggers(rate_limited, (ValueError, is_fallback_error))
    assert not triggers(rate_limited, (ValueError, lambda _error: False))


def test_a_rejected_answer_always_triggers():
    rejected = HolySheepResponseRejectedError("empty", AIMessage(""))
    assert triggers(rejected, (lambda _error: False,))


def test_rejection_returns_the_first_reason_in_order():
    answer = AIMessage("", response_metadata={"finish_reason": "length"})
    assert rejection(answer, (finish_reason_length, empty_content)) == (
        finish_reason_length(answer)
    )
    assert rejection(answer, (empty_content, finish_reason_length)) == (
        empty_content(answer)
    )
    assert rejection(AIMessage("fine"), (empty_content, finish_reason_length)) is None
    assert rejection(answer, ()) is None


class _HeadersError(Exception):
    def __init__(self, headers):
        super().__init__("with headers")
        self.response = type("Response", (), {"headers": headers})()


def test_retry_after_comes_from_the_response_headers():
    assert retry_after(_HeadersError({"Retry-After": "3"})) == 3.0
    assert retry_after(_HeadersError({"retry-after-ms": "250"})) == 0.25
    assert retry_after(_HeadersError({})) is None
    assert retry_after(ValueError("no response")) is None


def test_retry_delay_honours_a_retry_after_within_the_cap():
    assert retry_delay(1.5, 0, backoff=0.5, cap=2.0) == 1.5
    assert retry_delay(0.0, 3, backoff=0.5, cap=2.0) == 0.0
    assert retry_delay(2.5, 0, backoff=0.5, cap=2.0) is None  # over it: move on


@pytest.mark.parametrize("tries", [0, 1, 2])
def test_retry_delay_backs_off_with_jitter_and_a_cap(tries):
    delays = [retry_delay(None, tries, backoff=0.1, cap=10.0) for _ in range(50)]
    base = 0.1 * 2.0**tries
    assert all(base / 2 <= d <= base for d in delays)
    assert retry_delay(None, 20, backoff=0.1, cap=2.0) == 2.0
