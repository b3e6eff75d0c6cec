"""The fallback chain: a chat model that falls over across models, and its breaker.

:class:`ChatHolySheepFallback` is a ``BaseChatModel`` in its own right, so
``bind_tools``, ``with_structured_output``, ``create_agent`` and LangGraph accept
it. Each call tries its members in order and answers with the first that
succeeds. What makes it fall over, and what does not::

    error / outcome                              default      same member again?
    -------------------------------------------  -----------  ------------------
    429, 5xx, 408/409, connection, timeout       fall over    up to max_retries
    error event inside a stream, truncated       fall over    up to max_retries
    stream, body that is not a completion
    404 model not found                          fall over    no
    400, 401, 403, 422, context overflow, 402    raise        no
    a response_checks rejection (not streams)    fall over    no
    member skipped: its circuit is open          fall over    no

Streams commit on the first chunk that carries output (text, reasoning or a
tool-call delta): before it the chain may fall over (nothing has been yielded);
after it, errors propagate and two models' output are never spliced.

A :class:`CircuitBreaker` per (gateway, model) is shared by every chain in the
process, across threads and event loops, and skips a member after
``failure_threshold`` consecutive retryable failures, for a cooldown seeded from
``Retry-After`` (else escalating from ``cooldown``), then lets one half-open
trial request decide whether the model is back.

Importing this module loads ``openai`` (through :mod:`langchain_holysheep.errors`);
``ChatHolySheep.with_model_fallbacks`` imports it lazily.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Self

from langchain_core.exceptions import (
    ContextOverflowError,
    ModelError,
    ModelNotFoundError,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableBinding, RunnableSerializable
from langchain_core.runnables.config import patch_config
from langchain_core.utils import secret_from_env
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from langchain_holysheep.chat_models import ChatHolySheep
from langchain_holysheep.errors import HolySheepError, mask_secrets

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator

    from langchain_core.callbacks import (
        AsyncCallbackManagerForChainRun,
        AsyncCallbackManagerForLLMRun,
        CallbackManagerForChainRun,
        CallbackManagerForLLMRun,
    )
    from langchain_core.language_models import LangSmithParams, LanguageModelInput
    from langchain_core.load.serializable import (
        SerializedConstructor,
        SerializedNotImplemented,
    )
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable, RunnableConfig
    from langchain_core.tools import BaseTool

__all__ = [
    "ChatHolySheepFallback",
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "CircuitSnapshot",
    "CircuitState",
    "FallbackOn",
    "HolySheepCircuitOpenError",
    "HolySheepFallbackError",
    "HolySheepResponseRejectedError",
    "ResponseCheck",
    "circuit_breaker_states",
    "empty_content",
    "finish_reason_length",
    "get_circuit_breaker",
    "is_fallback_error",
    "reset_circuit_breakers",
]

logger = logging.getLogger(__name__)

FallbackOn = type[BaseException] | Callable[[BaseException], bool]
"""An error type (``isinstance``) or a predicate that says "fall over on this"."""
ResponseCheck = Callable[[AIMessage], str | None]
"""Inspects a non-streamed answer; returns why it is rejected, or ``None``."""

_FALLBACK_STATUSES: Final = frozenset({404, 408, 409, 425, 429})
_RETRYABLE_STATUSES: Final = frozenset({408, 409, 425, 429})
_SERVER_ERROR: Final = 500
_TOOL_OPTIONS: Final = "tool_options"
_TRACE_ONLY_KWARGS: Final = ("ls_structured_output_format", "structured_output_format")


# --------------------------------------------------------------------- policy
def _status_code(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def _is_retryable(error: BaseException) -> bool:
    """Whether the same request to the same model may succeed later."""
    if isinstance(error, ModelError):
        return bool(error.is_retryable)
    status = _status_code(error)
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
    status = _status_code(error)
    if status is not None:
        return status in _FALLBACK_STATUSES or status >= _SERVER_ERROR
    return isinstance(error, (TimeoutError, ConnectionError))


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


# --------------------------------------------------------------------- errors
class HolySheepFallbackError(HolySheepError, ExceptionGroup[Exception]):
    """Every member of a fallback chain failed.

    Also an ``ExceptionGroup``: ``exceptions`` holds each attempt's error in the
    order the attempts were made (``except*`` works), and ``attempts`` the same
    attempts as the dicts found in ``response_metadata["fallback_attempts"]``.
    It is retryable when every attempt was.
    """

    attempts: list[dict[str, Any]]

    def __new__(
        cls,
        message: str,
        exceptions: Sequence[Exception],
        attempts: list[dict[str, Any]] | None = None,
    ) -> Self:
        """Create the group (``attempts`` defaults to none recorded)."""
        self = super().__new__(cls, message, exceptions)
        self.attempts = list(attempts or [])
        return self

    def __init__(
        self,
        message: str,
        exceptions: Sequence[Exception],
        attempts: list[dict[str, Any]] | None = None,
    ) -> None:
        """Initialise the group.

        Args:
            message: Which models were tried and why each failed.
            exceptions: The errors, in attempt order.
            attempts: The attempts as metadata dicts.
        """
        super().__init__(message, exceptions)
        self.attempts = list(attempts or [])

    @property
    def is_retryable(self) -> bool:  # type: ignore[override]
        """Whether every attempt failed in a way that may pass later."""
        return all(_is_retryable(e) for e in self.exceptions)

    def derive(  # type: ignore[override]
        self, excs: Sequence[Exception]
    ) -> HolySheepFallbackError:
        """Keep the type through ``split``/``subgroup``/``except*``."""
        return HolySheepFallbackError(self.message, excs, self.attempts)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the message, the errors and the attempts."""
        return (type(self), (self.message, list(self.exceptions), self.attempts))


class HolySheepCircuitOpenError(HolySheepError):
    """A member was skipped without a request: its circuit breaker is open."""

    is_retryable = True

    def __init__(self, model: str, retry_in: float) -> None:
        """Create the error.

        Args:
            model: The skipped member.
            retry_in: Seconds until a trial request will be let through (0 while
                another caller's trial is in flight).
        """
        self.model = model
        self.retry_in = retry_in
        when = (
            "a trial request is in flight"
            if retry_in <= 0
            else f"next trial in {retry_in:.1f} s"
        )
        super().__init__(
            f"skipped: circuit open after repeated failures ({when}); "
            "see circuit_breaker_states()"
        )


class HolySheepResponseRejectedError(HolySheepError):
    """A response check rejected a member's answer (``response_checks``)."""

    def __init__(self, reason: str, response: AIMessage) -> None:
        """Create the error.

        Args:
            reason: What the check said.
            response: The rejected answer.
        """
        self.reason = reason
        self.response = response
        super().__init__(f"response rejected: {reason}")


# ------------------------------------------------------------- circuit breaker
class CircuitState(StrEnum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    """Requests go through; failures are counted."""
    OPEN = "open"
    """Requests are skipped until the cooldown ends."""
    HALF_OPEN = "half_open"
    """One trial request is in flight; its outcome closes or reopens."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreakerPolicy:
    """How a circuit breaker trips and recovers.

    Breakers are shared by every chain that uses the same policy for the same
    model on the same gateway.
    """

    failure_threshold: int = 3
    """Consecutive retryable failures that open the circuit."""
    cooldown: float = 30.0
    """Seconds the circuit stays open, doubled after each failed trial; a
    ``Retry-After`` on the failure that opens it is used instead."""
    max_cooldown: float = 300.0
    """The longest cooldown, whatever ``Retry-After`` or doubling says."""
    clock: Callable[[], float] = time.monotonic
    """Seconds from a monotonic clock (injectable for tests)."""

    def __post_init__(self) -> None:
        """Reject values that would make a breaker misbehave."""
        if self.failure_threshold < 1:
            msg = "failure_threshold must be at least 1"
            raise ValueError(msg)
        if not 0 <= self.cooldown <= self.max_cooldown:
            msg = "cooldown must be between 0 and max_cooldown"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """A breaker's state at one moment, for health checks."""

    model: str
    """The model id."""
    scope: str
    """The gateway (base URL) or provider the model is reached through."""
    state: CircuitState
    """``closed``, ``open`` or ``half_open``."""
    consecutive_failures: int
    """Retryable failures since the last success."""
    retry_in: float
    """Seconds until an open circuit lets a trial through (0 otherwise)."""
    trips: int
    """Times the circuit opened since the last success."""


class CircuitBreaker:
    """Skips a model after repeated retryable failures; one trial reopens it.

    Thread-safe (one lock, never held across I/O, so safe from any event loop).
    Get shared instances from :func:`get_circuit_breaker`.
    """

    def __init__(
        self, model: str, scope: str, policy: CircuitBreakerPolicy | None = None
    ) -> None:
        """Create a closed breaker.

        Args:
            model: The model id.
            scope: The gateway URL (or provider) it is reached through.
            policy: Thresholds, cooldowns and clock.
        """
        self.model = model
        self.scope = scope
        self.policy = policy or CircuitBreakerPolicy()
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._trips = 0
        self._open_until = 0.0
        self._trial_since = 0.0

    def __repr__(self) -> str:
        """Show the model and state."""
        return f"CircuitBreaker({self.model!r}, {self.scope!r}, {self.state.value})"

    @property
    def state(self) -> CircuitState:
        """The current state."""
        return self._state

    def acquire(self) -> float | None:
        """Ask to send a request.

        Returns:
            ``None`` when the request may go (in ``open`` with the cooldown
            over, the caller becomes the one half-open trial), else the seconds
            until a trial will be let through (0: another trial is in flight).
        """
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return None
            now = self.policy.clock()
            if self._state is CircuitState.HALF_OPEN:
                # A trial whose caller vanished must not block the model forever.
                if now - self._trial_since < max(self.policy.cooldown, 1.0):
                    return 0.0
            elif now < self._open_until:
                return self._open_until - now
            self._state = CircuitState.HALF_OPEN
            self._trial_since = now
            return None

    def record_success(self) -> None:
        """The model answered: close the circuit and forget past failures."""
        with self._lock:
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._trips = 0

    def record_failure(self, retry_after: float | None = None) -> bool:
        """Count a retryable failure; open the circuit at the threshold.

        Args:
            retry_after: The server's ``Retry-After``, which seeds the cooldown.

        Returns:
            Whether this failure opened the circuit.
        """
        with self._lock:
            self._failures += 1
            if (
                self._state is not CircuitState.HALF_OPEN
                and self._failures < self.policy.failure_threshold
            ):
                return False
            self._trips += 1
            cooldown = (
                retry_after
                if retry_after is not None
                else self.policy.cooldown * 2.0 ** (self._trips - 1)
            )
            self._open_until = self.policy.clock() + min(
                cooldown, self.policy.max_cooldown
            )
            self._state = CircuitState.OPEN
            return True

    def release(self) -> None:
        """A request ended without a health signal: free the trial, if it was one."""
        with self._lock:
            if self._state is CircuitState.HALF_OPEN:
                self._state = CircuitState.OPEN
                self._open_until = self.policy.clock()

    def reset(self) -> None:
        """Close the circuit and clear all counts."""
        self.record_success()

    def snapshot(self) -> CircuitSnapshot:
        """Read the state for a health check.

        Returns:
            The state, failure count and time to the next trial.
        """
        with self._lock:
            retry_in = 0.0
            if self._state is CircuitState.OPEN:
                retry_in = max(self._open_until - self.policy.clock(), 0.0)
            return CircuitSnapshot(
                model=self.model,
                scope=self.scope,
                state=self._state,
                consecutive_failures=self._failures,
                retry_in=retry_in,
                trips=self._trips,
            )


_BreakerKey = tuple[str, str, CircuitBreakerPolicy]
_BREAKERS: dict[_BreakerKey, CircuitBreaker] = {}
_BREAKERS_LOCK: Final = threading.Lock()


def get_circuit_breaker(
    model: str, scope: str, policy: CircuitBreakerPolicy | None = None
) -> CircuitBreaker:
    """Return the process-wide breaker for ``model`` on ``scope`` under ``policy``.

    Args:
        model: The model id.
        scope: The gateway base URL (or provider) the model is reached through.
        policy: The breaker policy (default: ``CircuitBreakerPolicy()``).

    Returns:
        The shared breaker, created closed on first use.
    """
    key = (scope, model, policy or CircuitBreakerPolicy())
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(key)
        if breaker is None:
            breaker = _BREAKERS[key] = CircuitBreaker(model, scope, key[2])
        return breaker


def circuit_breaker_states() -> list[CircuitSnapshot]:
    """Snapshot every breaker in the process (for a health endpoint).

    Returns:
        One snapshot per (gateway, model, policy) used so far.
    """
    with _BREAKERS_LOCK:
        breakers = list(_BREAKERS.values())
    return [b.snapshot() for b in breakers]


def reset_circuit_breakers() -> None:
    """Forget every breaker (all circuits close). Handy between tests."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()


# ------------------------------------------------------------ one call's walk
@dataclass(slots=True)
class _Member:
    name: str
    model: BaseChatModel
    breaker: CircuitBreaker | None


@dataclass(slots=True)
class _Walk:
    """One call's progress through the members; sync and async share it."""

    chain: ChatHolySheepFallback
    members: list[_Member]
    index: int = 0
    tries: int = 0
    current: _Member | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def next_member(self) -> _Member | None:
        """The member to try now (skipping open circuits), or ``None`` if done."""
        while self.index < len(self.members):
            member = self.members[self.index]
            wait = member.breaker.acquire() if member.breaker else None
            if wait is None:
                self.current = member
                return member
            self._record(member, HolySheepCircuitOpenError(member.name, wait))
            self._advance("skipped (circuit open)", logging.INFO)
        return None

    def failed(self, error: Exception) -> float | None:
        """Account for ``error``; raise it unless it triggers a fallback.

        Returns:
            Seconds to wait before trying the same member again, or ``None`` to
            move on to the next member.
        """
        member = self._member()
        retryable = _is_retryable(error)
        retry_after = _retry_after(error)
        if member.breaker is not None:
            if retryable:
                if member.breaker.record_failure(retry_after):
                    logger.warning(
                        "Circuit for model %s opened after repeated failures.",
                        member.name,
                    )
            else:
                member.breaker.release()
        if not self.chain._triggers(error):  # noqa: SLF001 (the chain's own policy)
            if self.attempts:
                error.add_note(
                    "Fallback chain: earlier attempts failed: "
                    + "; ".join(_describe(a) for a in self.attempts)
                )
            raise error
        self._record(member, error)
        if retryable and self.tries < self.chain.max_retries:
            delay = self.chain._retry_delay(retry_after, self.tries)  # noqa: SLF001
            if delay is not None:
                self.tries += 1
                logger.info("Retrying model %s in %.2f s.", member.name, delay)
                return delay
        self._advance(f"failed ({type(error).__name__})")
        return None

    def rejected(self, reason: str, message: AIMessage) -> None:
        """A response check rejected the answer: record it and move on."""
        member = self._member()
        if member.breaker is not None:
            member.breaker.record_success()
        self._record(member, HolySheepResponseRejectedError(reason, message))
        self._advance(f"answer rejected ({reason})")

    def succeeded(self) -> list[dict[str, Any]]:
        """The current member answered (or committed its stream)."""
        member = self._member()
        if member.breaker is not None:
            member.breaker.record_success()
        return list(self.attempts)

    def abandoned(self) -> None:
        """The call was cancelled mid-attempt: free a half-open trial."""
        if self.current is not None and self.current.breaker is not None:
            self.current.breaker.release()

    def failed_after_commit(self, error: BaseException) -> None:
        """A committed stream failed: it cannot fall over, but it counts."""
        member = self._member()
        if member.breaker is not None and _is_retryable(error):
            member.breaker.record_failure(_retry_after(error))

    def exhausted(self) -> HolySheepFallbackError:
        """The group of every attempt's error, to raise when no member is left."""
        lines = "; ".join(
            f"{i}. {_describe(a)}" for i, a in enumerate(self.attempts, start=1)
        )
        tried = len({a["model"] for a in self.attempts})
        message = f"All {tried} models of the fallback chain failed: {lines}"
        return HolySheepFallbackError(message, self.errors, self.attempts)

    def _member(self) -> _Member:
        if self.current is None:  # pragma: no cover (a programming error)
            msg = "no member is being tried"
            raise RuntimeError(msg)
        return self.current

    def _record(self, member: _Member, error: Exception) -> None:
        self.errors.append(error)
        self.attempts.append(
            {
                "model": member.name,
                "error_type": type(error).__name__,
                "status_code": _status_code(error),
                "message": mask_secrets(_message(error)),
            }
        )

    def _advance(self, why: str, level: int = logging.WARNING) -> None:
        """Move to the next member; log one line per fallback."""
        left = self.members[self.index].name
        self.index += 1
        self.tries = 0
        self.current = None
        if self.index < len(self.members):
            logger.log(
                level,
                "Model %s %s; falling over to %s.",
                left,
                why,
                self.members[self.index].name,
            )


def _message(error: BaseException) -> str:
    text = getattr(error, "message", None)
    return text if isinstance(text, str) and text else str(error)


def _describe(attempt: dict[str, Any]) -> str:
    status = attempt["status_code"]
    kind = attempt["error_type"] + (f" (HTTP {status})" if status else "")
    return f"{attempt['model']}: {kind}: {attempt['message']}"


def _retry_after(error: BaseException) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    from langchain_holysheep.errors import retry_after_seconds  # noqa: PLC0415

    return retry_after_seconds(headers)


def _has_output(chunk: ChatGenerationChunk) -> bool:
    """Whether a stream chunk commits the stream (text, reasoning or tool call)."""
    message = chunk.message
    if message.content:
        return True
    if isinstance(message, AIMessageChunk) and message.tool_call_chunks:
        return True
    return bool(message.additional_kwargs.get("reasoning_content"))


def _to_chunk(result: ChatResult) -> ChatGenerationChunk:
    """One chunk carrying a whole answer (for members that cannot stream)."""
    generation = result.generations[0]
    message = generation.message
    tool_call_chunks = [
        {
            "name": call["name"],
            "args": json.dumps(call["args"]),
            "id": call.get("id"),
            "index": i,
            "type": "tool_call_chunk",
        }
        for i, call in enumerate(getattr(message, "tool_calls", None) or [])
    ]
    chunk = AIMessageChunk(
        content=message.content,
        additional_kwargs=message.additional_kwargs,
        response_metadata=message.response_metadata,
        usage_metadata=getattr(message, "usage_metadata", None),
        tool_call_chunks=tool_call_chunks,
        id=message.id,
        chunk_position="last",
    )
    return ChatGenerationChunk(
        message=chunk, generation_info=generation.generation_info
    )


def _scope(model: BaseChatModel) -> str:
    for name in ("base_url", "openai_api_base", "api_base", "endpoint"):
        value = getattr(model, name, None)
        if isinstance(value, str) and value:
            return value
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _name(model: BaseChatModel) -> str:
    for name in ("model_name", "model", "model_id"):
        value = getattr(model, name, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


# ----------------------------------------------------------------- the chain
class ChatHolySheepFallback(BaseChatModel):
    """A chat model that tries several models in order and answers from the first.

    Members are ``ChatHolySheep`` models, model ids (built on first use from the
    first ``ChatHolySheep`` member's settings, or from this chain's
    ``ChatHolySheep`` keyword arguments, sharing one connection pool), or any
    other ``BaseChatModel`` (for cross-provider chains). ``ChatHolySheep``
    members run with SDK retries off: the chain owns the retry budget
    (``max_retries``) and waits for a ``Retry-After`` only up to
    ``max_retry_after`` seconds before moving on.

    Instantiate:
        .. code-block:: python

            from langchain_holysheep import ChatHolySheep

            primary = ChatHolySheep(model="mistral-small-2603", temperature=0)
            llm = primary.with_model_fallbacks(["gemini-2.5-flash", "deepseek-v3.2"])
            # or, all from ids with shared settings:
            llm = ChatHolySheepFallback(
                models=["mistral-small-2603", "gemini-2.5-flash"], temperature=0
            )

    Invoke:
        .. code-block:: python

            msg = llm.invoke("Hello")
            msg.response_metadata["model_name"]  # the model that served
            msg.response_metadata["fallback_attempts"]  # what failed first

    Tools, structured output, agents:
        .. code-block:: python

            llm.bind_tools([get_weather])  # every member's own bind_tools
            llm.with_structured_output(Joke)  # every member's own method
            create_agent(llm, tools=[get_weather])

    When every member fails, :class:`HolySheepFallbackError` (a
    ``HolySheepError`` and an ``ExceptionGroup``) lists each attempt in order.
    See ``docs/fallbacks.md`` for the exact semantics.

    All other methods are private or match ``BaseChatModel``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    models: list[BaseChatModel | str] = Field(min_length=1)
    """The members, in the order they are tried (the first is the primary)."""
    fallback_on: tuple[FallbackOn, ...] = (is_fallback_error,)
    """Errors that make the chain try the next member: error types and/or
    predicates (any match triggers). Default: :func:`is_fallback_error`."""
    response_checks: tuple[ResponseCheck, ...] = ()
    """Checks on non-streamed answers (e.g. :func:`empty_content`,
    :func:`finish_reason_length`); a rejected answer falls over."""
    max_retries: int = Field(default=0, ge=0)
    """Extra tries of the same member for a retryable error, before moving on.
    The member's own SDK retries are off."""
    max_retry_after: float = Field(default=2.0, ge=0)
    """The longest ``Retry-After`` (seconds) the chain waits to retry a member;
    a longer one moves on at once."""
    retry_backoff: float = Field(default=0.5, ge=0)
    """Base of the jittered exponential wait between tries of one member when
    the error gave no ``Retry-After`` (capped by ``max_retry_after``)."""
    circuit_breaker: CircuitBreakerPolicy | None = Field(
        default_factory=CircuitBreakerPolicy
    )
    """Breaker policy, shared per (gateway, model, policy) across the process;
    ``None`` (or ``False``) turns breakers off."""
    settings: dict[str, Any] = Field(default_factory=dict)
    """``ChatHolySheep`` settings for members given as ids when no member is a
    ``ChatHolySheep``. ``ChatHolySheep`` keyword arguments passed to the chain
    (``temperature=0``, ``timeout=30``...) land here."""
    api_key: SecretStr | None = None
    """The key for members given as ids (like ``settings``; default
    ``HOLYSHEEP_API_KEY``). Never logged or serialized."""

    _template: ChatHolySheep | None = PrivateAttr(default=None)
    _built: list[_Member] | None = PrivateAttr(default=None)
    _build_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # ----------------------------------------------------------- validation
    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, values: Any) -> Any:
        """Move ``ChatHolySheep`` keyword arguments into ``settings``."""
        if not isinstance(values, dict):
            return values
        own = set(cls.model_fields) | {
            f.alias for f in cls.model_fields.values() if f.alias
        }
        moved = {k: v for k, v in values.items() if k not in own}
        settings = {**(values.get("settings") or {}), **moved}
        if not moved and "api_key" not in settings:
            return values
        values = {k: v for k, v in values.items() if k in own}
        if "api_key" in settings:  # a key lives in its own secret field
            values.setdefault("api_key", settings.pop("api_key"))
        values["settings"] = settings
        return values

    @field_validator("fallback_on", mode="before")
    @classmethod
    def _check_fallback_on(cls, value: Any) -> tuple[FallbackOn, ...]:
        items = (
            (value,)
            if isinstance(value, type) or callable(value)
            else tuple(value or ())
        )
        if not items:
            msg = (
                "fallback_on is empty, so the chain could never fall over: pass "
                "error types and/or predicates (default: is_fallback_error)."
            )
            raise ValueError(msg)
        for item in items:
            if not callable(item) or (
                isinstance(item, type) and not issubclass(item, BaseException)
            ):
                msg = (
                    f"fallback_on items must be exception types or predicates "
                    f"(error -> bool), got {item!r}."
                )
                raise ValueError(msg)  # noqa: TRY004 (pydantic wants ValueError)
        return items

    @field_validator("circuit_breaker", mode="before")
    @classmethod
    def _check_circuit_breaker(cls, value: Any) -> Any:
        if value is True:
            return CircuitBreakerPolicy()
        if value is False:
            return None
        return value

    @model_validator(mode="after")
    def _check_members(self) -> Self:
        holysheep = [m for m in self.models if isinstance(m, ChatHolySheep)]
        ids = [m for m in self.models if isinstance(m, str)]
        settings = dict(self.settings)
        if self.api_key is not None:
            settings["api_key"] = self.api_key
        if settings:
            if not ids:
                msg = (
                    f"ChatHolySheep settings {sorted(settings)} apply only to "
                    "members given as model ids, and there are none."
                )
                raise ValueError(msg)
            if holysheep:
                msg = (
                    f"ChatHolySheep settings {sorted(settings)} were passed to "
                    "the chain, but members given as ids copy the first ChatHolySheep "
                    "member's settings. Set them on that member instead."
                )
                raise ValueError(msg)
            if {"model", "model_name"} & set(settings):
                msg = "Name the models in models=[...], not with model=."
                raise ValueError(msg)
        if ids:
            self._template = holysheep[0] if holysheep else ChatHolySheep(**settings)
        for member in self.models:
            retries = getattr(member, "max_retries", None)
            if not isinstance(member, (str, ChatHolySheep)) and (
                isinstance(retries, int) and retries > 0
            ):
                warnings.warn(
                    f"Fallback member {_name(member)!r} retries by itself "
                    f"(max_retries={retries}), which delays failover; build it "
                    "with max_retries=0 and let the chain's max_retries apply.",
                    UserWarning,
                    stacklevel=2,
                )
        return self

    # ------------------------------------------------- serialization overrides
    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the key and without built members (they hold locks).

        Members given as ``ChatHolySheep`` pickle without their key too; the
        unpickled chain (and its members) read ``HOLYSHEEP_API_KEY``.
        """
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        fields["api_key"] = None
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        """Restore a pickled chain; members are rebuilt lazily, as when new."""
        super().__setstate__(state)
        object.__setattr__(
            self, "api_key", secret_from_env("HOLYSHEEP_API_KEY", default=None)()
        )
        self._template = None
        self._built = None
        self._build_lock = threading.Lock()
        ids = [m for m in self.models if isinstance(m, str)]
        if ids:
            holysheep = [m for m in self.models if isinstance(m, ChatHolySheep)]
            self._template = (
                holysheep[0] if holysheep else ChatHolySheep(**self.settings)
            )

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Where ``dumpd`` finds the key: an environment variable, never a value."""
        return {"api_key": "HOLYSHEEP_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """The chain can be serialized with ``dumpd``/``dumps``."""
        return True

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """Serialize, leaving out defaults that are functions.

        Returns:
            The constructor form; custom ``fallback_on`` predicates and
            ``response_checks`` serialize as "not implemented".
        """
        data = super().to_json()
        if data["type"] != "constructor":  # pragma: no cover (always serializable)
            return data
        kwargs = data["kwargs"]
        if self.fallback_on == (is_fallback_error,):
            kwargs.pop("fallback_on", None)
        policy = self.circuit_breaker
        if policy is not None and policy.clock is time.monotonic:
            kwargs["circuit_breaker"] = {
                "failure_threshold": policy.failure_threshold,
                "cooldown": policy.cooldown,
                "max_cooldown": policy.max_cooldown,
            }
        return data

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """Return ``["langchain_holysheep", "fallback"]``."""
        return ["langchain_holysheep", "fallback"]

    # ------------------------------------------------ BaseChatModel overrides
    @property
    def _llm_type(self) -> str:
        return "holysheep-fallback"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        """The members' identities, in order (used as the cache key)."""
        return {
            "models": [
                {"name": m.name, **m.model._identifying_params}  # noqa: SLF001
                for m in self._members()
            ],
        }

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = self._members()[0].model._get_ls_params(stop=stop, **kwargs)  # noqa: SLF001
        params["ls_model_type"] = "chat"
        return params

    @property
    def model_names(self) -> list[str]:
        """The members' model ids, in the order they are tried."""
        return [m.name for m in self._members()]

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool]
        | None = None,
    ) -> int:
        """Count tokens as the primary model does.

        Args:
            messages: The conversation.
            tools: Tools bound to the call.

        Returns:
            The primary's count.
        """
        return self._members()[0].model.get_num_tokens_from_messages(messages, tools)

    def circuit_states(self) -> dict[str, CircuitSnapshot]:
        """Each member's breaker state (empty with breakers off).

        Returns:
            Snapshots keyed by model id.
        """
        return {m.name: m.breaker.snapshot() for m in self._members() if m.breaker}

    # ---- tools and structured output
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools to every member, each through its own ``bind_tools``.

        Each member is checked now (a member that cannot take the tools or the
        options raises here, not mid-failover).

        Args:
            tools: Tools in any form ``bind_tools`` accepts.
            tool_choice: As for the members' ``bind_tools``.
            **kwargs: Other options for the members' ``bind_tools``
                (``strict``, ``parallel_tool_calls``, ``response_format``...).

        Returns:
            The chain with the tools bound (``kwargs["tools"]`` holds them in
            OpenAI format).
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        options = dict(kwargs)
        if tool_choice is not None:
            options["tool_choice"] = tool_choice
        for member in self._members():
            try:
                member.model.bind_tools(formatted, **options)
            except NotImplementedError as error:
                msg = f"Fallback member {member.name!r} does not support tool calling."
                raise NotImplementedError(msg) from error
        return self.bind(tools=formatted, **{_TOOL_OPTIONS: options})

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """Structured output from every member, each with its own method.

        Args:
            schema: As for the members' ``with_structured_output``.
            include_raw: Return ``{"raw", "parsed", "parsing_error"}``.
            **kwargs: Passed to each member (``method``, ``strict``...).

        Returns:
            A runnable that falls over like the chain (streams are not
            committed early: the whole answer is parsed).
        """
        runnables = [
            m.model.with_structured_output(schema, include_raw=include_raw, **kwargs)  # type: ignore[arg-type]
            for m in self._members()
        ]
        return _StructuredFallback(chain=self, runnables=runnables)

    # ----------------------------------------------------------- the calls
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        walk = self._walk()
        while (member := walk.next_member()) is not None:
            model, call_kwargs = _prepare(member.model, kwargs)
            try:
                result = model._generate_with_cache(messages, stop=stop, **call_kwargs)  # noqa: SLF001
            except Exception as error:  # noqa: BLE001 (sorted by the trigger policy)
                if delay := walk.failed(error):
                    time.sleep(delay)
                continue
            except BaseException:
                walk.abandoned()
                raise
            if self._accept(walk, result):
                return self._annotate(result, member, walk.succeeded())
        raise walk.exhausted()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> ChatResult:
        walk = self._walk()
        while (member := walk.next_member()) is not None:
            model, call_kwargs = _prepare(member.model, kwargs)
            try:
                result = await model._agenerate_with_cache(  # noqa: SLF001
                    messages, stop=stop, **call_kwargs
                )
            except Exception as error:  # noqa: BLE001 (sorted by the trigger policy)
                if delay := walk.failed(error):
                    await asyncio.sleep(delay)
                continue
            except BaseException:
                walk.abandoned()
                raise
            if self._accept(walk, result):
                return self._annotate(result, member, walk.succeeded())
        raise walk.exhausted()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        walk = self._walk()
        while (member := walk.next_member()) is not None:
            model, call_kwargs = _prepare(member.model, kwargs)
            chunks = _open_stream(model, messages, stop, call_kwargs)
            try:
                buffered = _peek(chunks)
            except Exception as error:  # noqa: BLE001 (sorted by the trigger policy)
                if delay := walk.failed(error):
                    time.sleep(delay)
                continue
            except BaseException:
                walk.abandoned()
                chunks.close()
                raise
            # Committed: from here on this member's output is the answer.
            _annotate_chunk(buffered[0] if buffered else None, walk.succeeded())
            named = _Named()
            try:
                yield from map(named, buffered)
                yield from map(named, chunks)
            except Exception as error:
                walk.failed_after_commit(error)
                raise
            finally:
                chunks.close()
            if not named.seen:
                yield _name_chunk(member.name)
            return
        raise walk.exhausted()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,  # noqa: ARG002
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        walk = self._walk()
        while (member := walk.next_member()) is not None:
            model, call_kwargs = _prepare(member.model, kwargs)
            chunks = _aopen_stream(model, messages, stop, call_kwargs)
            try:
                buffered = await _apeek(chunks)
            except Exception as error:  # noqa: BLE001 (sorted by the trigger policy)
                if delay := walk.failed(error):
                    await asyncio.sleep(delay)
                continue
            except BaseException:
                walk.abandoned()
                await chunks.aclose()
                raise
            _annotate_chunk(buffered[0] if buffered else None, walk.succeeded())
            named = _Named()
            try:
                for chunk in buffered:
                    yield named(chunk)
                async for chunk in chunks:
                    yield named(chunk)
            except Exception as error:
                walk.failed_after_commit(error)
                raise
            finally:
                await chunks.aclose()
            if not named.seen:
                yield _name_chunk(member.name)
            return
        raise walk.exhausted()

    # ------------------------------------------------------------ internals
    def _members(self) -> list[_Member]:
        """Build the members on first use (ids copy the template; pools shared)."""
        built = self._built
        if built is not None:
            return built
        with self._build_lock:
            if self._built is None:
                self._built = [self._build(m) for m in self.models]
            return self._built

    def _build(self, spec: BaseChatModel | str) -> _Member:
        model: BaseChatModel
        if isinstance(spec, str):
            if self._template is None:  # pragma: no cover (set by the validator)
                msg = "no template to build model ids from"
                raise RuntimeError(msg)
            model = self._template.model_copy(
                update={"model_name": spec, "max_retries": 0}
            )
        elif isinstance(spec, ChatHolySheep) and spec.max_retries:
            model = spec.model_copy(update={"max_retries": 0})
        else:
            model = spec
        name = _name(model)
        breaker = (
            get_circuit_breaker(name, _scope(model), self.circuit_breaker)
            if self.circuit_breaker is not None
            else None
        )
        return _Member(name=name, model=model, breaker=breaker)

    def _walk(self) -> _Walk:
        return _Walk(chain=self, members=self._members())

    def _triggers(self, error: Exception) -> bool:
        if isinstance(error, HolySheepResponseRejectedError):
            return True
        for item in self.fallback_on:
            if isinstance(item, type):
                if isinstance(error, item):
                    return True
            elif item(error):
                return True
        return False

    def _retry_delay(self, retry_after: float | None, tries: int) -> float | None:
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        jitter = 0.5 + random.random() / 2  # noqa: S311 (not cryptographic)
        return min(self.retry_backoff * 2.0**tries * jitter, self.max_retry_after)

    def _accept(self, walk: _Walk, result: ChatResult) -> bool:
        message = result.generations[0].message if result.generations else None
        if not self.response_checks or not isinstance(message, AIMessage):
            return True
        for check in self.response_checks:
            if (reason := check(message)) is not None:
                walk.rejected(reason, message)
                return False
        return True

    @staticmethod
    def _annotate(
        result: ChatResult, member: _Member, attempts: list[dict[str, Any]]
    ) -> ChatResult:
        for generation in result.generations:
            metadata = generation.message.response_metadata
            metadata.setdefault("model_name", member.name)
            metadata["fallback_attempts"] = attempts
        return result


class _Named:
    """Passes chunks through, noting whether any names the serving model."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        if not self.seen and "model_name" in chunk.message.response_metadata:
            self.seen = True
        return chunk


def _peek(chunks: Iterator[ChatGenerationChunk]) -> list[ChatGenerationChunk]:
    """Read up to and including the first chunk that carries output."""
    buffered = []
    for chunk in chunks:
        buffered.append(chunk)
        if _has_output(chunk):
            break
    return buffered


async def _apeek(
    chunks: AsyncIterator[ChatGenerationChunk],
) -> list[ChatGenerationChunk]:
    """Read up to and including the first chunk that carries output."""
    buffered = []
    async for chunk in chunks:
        buffered.append(chunk)
        if _has_output(chunk):
            break
    return buffered


def _name_chunk(name: str) -> ChatGenerationChunk:
    """An empty last chunk naming the model, for streams that do not name it.

    ``model_name`` is set only where no chunk has it: chunk metadata strings
    concatenate when chunks are added.
    """
    return ChatGenerationChunk(
        message=AIMessageChunk(content="", response_metadata={"model_name": name})
    )


def _annotate_chunk(
    chunk: ChatGenerationChunk | None, attempts: list[dict[str, Any]]
) -> None:
    if chunk is not None:
        chunk.message.response_metadata["fallback_attempts"] = attempts


def _prepare(
    model: BaseChatModel, kwargs: dict[str, Any]
) -> tuple[BaseChatModel, dict[str, Any]]:
    """The model and kwargs for one member: tools bound by its own bind_tools."""
    call_kwargs = {k: v for k, v in kwargs.items() if k not in _TRACE_ONLY_KWARGS}
    if _TOOL_OPTIONS not in call_kwargs:
        return model, call_kwargs
    options = call_kwargs.pop(_TOOL_OPTIONS)
    bound = model.bind_tools(call_kwargs.pop("tools", []), **options)
    if not isinstance(bound, RunnableBinding) or not isinstance(
        bound.bound, BaseChatModel
    ):
        msg = (
            f"{type(model).__name__}.bind_tools returned {type(bound).__name__}, "
            "not a chat model binding; the fallback chain cannot call it."
        )
        raise TypeError(msg)
    extra = {k: v for k, v in bound.kwargs.items() if k not in _TRACE_ONLY_KWARGS}
    return bound.bound, {**extra, **call_kwargs}


def _open_stream(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> Generator[ChatGenerationChunk, None, None]:
    if model._should_stream(async_api=False, **{**kwargs, "stream": True}):  # noqa: SLF001
        if model.rate_limiter:
            model.rate_limiter.acquire(blocking=True)
        yield from model._stream(messages, stop=stop, **kwargs)  # noqa: SLF001
    else:
        yield _to_chunk(model._generate_with_cache(messages, stop=stop, **kwargs))  # noqa: SLF001


async def _aopen_stream(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> AsyncGenerator[ChatGenerationChunk, None]:
    if model._should_stream(async_api=True, **{**kwargs, "stream": True}):  # noqa: SLF001
        if model.rate_limiter:
            await model.rate_limiter.aacquire(blocking=True)
        async for chunk in model._astream(messages, stop=stop, **kwargs):  # noqa: SLF001
            yield chunk
    else:
        result = await model._agenerate_with_cache(messages, stop=stop, **kwargs)  # noqa: SLF001
        yield _to_chunk(result)


class _StructuredFallback(RunnableSerializable[Any, Any]):
    """``with_structured_output`` of a chain: each member's own, tried in order."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chain: ChatHolySheepFallback
    runnables: list[Any]

    def invoke(
        self,
        input: Any,  # noqa: A002 (the Runnable signature)
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(
        self,
        input: Any,  # noqa: A002 (the Runnable signature)
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _invoke(
        self,
        input_: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        walk = self.chain._walk()  # noqa: SLF001
        while walk.next_member() is not None:
            runnable = self.runnables[walk.index]
            child = patch_config(config, callbacks=run_manager.get_child())
            try:
                output = runnable.invoke(input_, child, **kwargs)
            except Exception as error:  # noqa: BLE001 (sorted by the trigger policy)
                if delay := walk.failed(error):
                    time.sleep(delay)
                continue
            except BaseException:
                walk.abandoned()
                raise
            walk.succeeded()
            return output
        raise walk.exhausted()

    async def _ainvoke(
        self,
        input_: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        walk = self.chain._walk()  # noqa: SLF001
        while walk.next_member() is not None:
            runnable = self.runnables[walk.index]
            child = patch_config(config, callbacks=run_manager.get_child())
            try:
                output = await runnable.ainvoke(input_, child, **kwargs)
            except Exception as error:  # noqa: BLE001 (sorted by the trigger policy)
                if delay := walk.failed(error):
                    await asyncio.sleep(delay)
                continue
            except BaseException:
                walk.abandoned()
                raise
            walk.succeeded()
            return output
        raise walk.exhausted()
