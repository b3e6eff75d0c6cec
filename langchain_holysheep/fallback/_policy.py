"""The fallback trigger policy: which outcomes fall over, and how long to wait.

Pure functions, no state: whether an error may pass on retry, whether it makes
the chain try the next member, whether a structured answer failed to parse, the
stock response checks, and the wait before trying the same member again.
:mod:`langchain_holysheep.fallback._walk` applies them; the chain only holds
the settings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelError,
    ModelNotFoundError,
)
from langchain_core.messages import AIMessage

from langchain_holysheep.errors import (
    HolySheepResponseRejectedError,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "FallbackOn",
    "ResponseCheck",
    "empty_content",
    "finish_reason_length",
    "is_fallback_error",
    "is_parse_error",
    "is_retryable",
    "rejection",
    "retry_after",
    "retry_delay",
    "status_code",
    "triggers",
]

FallbackOn = type[BaseException] | Callable[[BaseException], bool]
"""An error type (``isinstance``) or a predicate that says "fall over on this"."""
ResponseCheck = Callable[[AIMessage], str | None]
"""Inspects a non-streamed answer; returns why it is rejected, or ``None``."""

_FALLBACK_STATUSES: Final = frozenset({404, 408, 409, 425, 429})
_RETRYABLE_STATUSES: Final = frozenset({408, 409, 425, 429})
_SERVER_ERROR: Final = 500


def status_code(error: BaseException) -> int | None:
    """The HTTP status an error carries, if any.

    Args:
        error: Any error.

    Returns:
        Its integer ``status_code`` attribute, else ``None``.
    """
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def is_retryable(error: BaseException) -> bool:
    """Whether the same request to the same model may succeed later.

    Args:
        error: What a member raised.

    Returns:
        A ``ModelError``'s ``is_retryable``; else ``True`` for 408/409/425/429
        and 5xx statuses, timeouts and connection errors.
    """
    if isinstance(error, ModelError):
        return bool(error.is_retryable)
    status = status_code(error)
    if status is not None:
        return status in _RETRYABLE_STATUSES or status >= _SERVER_ERROR
    return isinstance(error, (TimeoutError, ConnectionError))


def is_fallback_error(error: BaseException) -> bool:
    r"""The default trigger: should the chain try the next model after ``error``?

    ``True`` for retryable errors (429, 5xx, 408/409, connection, timeout, an
    error inside a stream, a truncated stream: langchain-core ``ModelError``\\ s
    whose ``is_retryable`` is set, or foreign errors with such a
    ``status_code``) and for model-not-found (404). ``False`` for the rest,
    notably 400/401/403/422 and context overflow, which every member would hit
    too (they share the key and the request).

    Args:
        error: What a member raised.

    Returns:
        Whether to fall over to the next member.
    """
    if isinstance(error, ContextOverflowError):
        return False
    if isinstance(error, ModelError):
        return bool(error.is_retryable) or isinstance(error, ModelNotFoundError)
    status = status_code(error)
    if status is not None:
        return status in _FALLBACK_STATUSES or status >= _SERVER_ERROR
    return isinstance(error, (TimeoutError, ConnectionError))


def is_parse_error(error: BaseException) -> bool:
    """Whether a structured-output error means "the answer could not be parsed".

    With ``fallback_on_parse_error`` (the default) such an answer counts as a
    failed attempt and the next member is asked: another model may well
    answer in the schema. A refusal (``ModelRefusalError``) is not a parse
    error: it is raised (or returned with ``include_raw=True``).

    Args:
        error: The ``parsing_error`` of a member's structured output.

    Returns:
        ``True`` for parser errors: ``OutputParserException`` (the package's
        ``HolySheepStructuredOutputError`` and ``HolySheepIncompleteOutputError``
        among them), pydantic's ``ValidationError`` and other ``ValueError``s.
    """
    return isinstance(error, ValueError)


def triggers(error: Exception, fallback_on: Iterable[FallbackOn]) -> bool:
    """Whether ``error`` makes the chain fall over, under a ``fallback_on`` set.

    A rejected answer always does; otherwise any matching type or true
    predicate does.

    Args:
        error: What the attempt raised.
        fallback_on: The chain's error types and predicates.

    Returns:
        Whether to record the error and go on (retry or next member).
    """
    if isinstance(error, HolySheepResponseRejectedError):
        return True
    for item in fallback_on:
        if isinstance(item, type):
            if isinstance(error, item):
                return True
        elif item(error):
            return True
    return False


def empty_content(message: AIMessage) -> str | None:
    """Response check: reject an answer with no text and no tool call.

    Args:
        message: The answer.

    Returns:
        The reason it is rejected, or ``None`` to accept it.
    """
    if message.tool_calls or message.invalid_tool_calls or message.text.strip():
        return None
    return "empty answer (no text and no tool call)"


def finish_reason_length(message: AIMessage) -> str | None:
    """Response check: reject an answer cut off by the token limit.

    Args:
        message: The answer.

    Returns:
        The reason it is rejected, or ``None`` to accept it.
    """
    if message.response_metadata.get("finish_reason") == "length":
        return "finish_reason 'length': the answer was cut off at max_tokens"
    return None


def rejection(message: AIMessage, checks: Iterable[ResponseCheck]) -> str | None:
    """Run the response checks on a non-streamed answer.

    Args:
        message: The answer.
        checks: The chain's ``response_checks``, in order.

    Returns:
        The first check's reason to reject it, or ``None`` to accept it.
    """
    for check in checks:
        if (reason := check(message)) is not None:
            return reason
    return None


def retry_after(error: BaseException) -> float | None:
    """The wait the server asked for (``Retry-After``), read from the error.

    Args:
        error: What a member raised.

    Returns:
        Seconds from its response's headers, or ``None``.
    """
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    return retry_after_seconds(headers)


def retry_delay(
    wait: float | None, tries: int, *, backoff: float, cap: float
) -> float | None:
    """How long to wait before trying the same member again.

    Args:
        wait: The server's ``Retry-After``, if it gave one.
        tries: Retries of this member so far.
        backoff: The chain's ``retry_backoff`` (base of the jittered backoff).
        cap: The chain's ``max_retry_after``.

    Returns:
        The server's wait if within ``cap`` (``None``, move on, if over it);
        without one, jittered exponential backoff capped at ``cap``.
    """
    if wait is not None:
        return wait if wait <= cap else None
    jitter = 0.5 + random.random() / 2  # noqa: S311 (not cryptographic)
    return min(backoff * 2.0**tries * jitter, cap)
