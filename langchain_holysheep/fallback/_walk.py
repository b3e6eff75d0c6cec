"""One call's walk through the members: the attempt loop, written once.

Every way of calling the chain (sync and async, invoke and stream, and the
structured-output wrapper) runs the same loop, modelled on tenacity's attempt
iterator: iterate the walk to get the member to try (``for`` waits with
``time.sleep``, ``async for`` with ``asyncio.sleep``), do the call inside
``with walk.attempt():``, and read ``walk.answered``. The walk decides the rest:
skipping open circuits, counting failures on the breakers, retrying the same
member or moving on, and, when no member is left, the group of every error.
With a chain ``total_timeout`` the walk holds the call's deadline: it never
waits or starts an attempt past it (the call ends with
``HolySheepTotalTimeoutError``), and :meth:`Walk.bounded` gives each
``ChatHolySheep`` attempt the time left as its own ``total_timeout``::

    for member in walk:
        with walk.attempt():
            result = member.model.invoke(...)  # the only I/O
        if walk.answered:
            walk.succeeded()
            return result
    raise walk.exhausted()
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

from langchain_core.messages import AIMessage

from langchain_holysheep.errors import (
    HolySheepCircuitOpenError,
    HolySheepFallbackError,
    HolySheepResponseRejectedError,
    HolySheepTimeoutError,
    HolySheepTotalTimeoutError,
    HolySheepUnsupportedInputError,
    mask_secrets,
)
from langchain_holysheep.fallback._policy import (
    is_retryable,
    rejection,
    retry_after,
    retry_delay,
    status_code,
    triggers,
)

if TYPE_CHECKING:
    from types import TracebackType

    from langchain_core.outputs import ChatResult

    from langchain_holysheep._deadline import Deadline
    from langchain_holysheep.fallback._member import Member
    from langchain_holysheep.fallback._policy import FallbackOn, ResponseCheck

__all__ = ["Walk", "WalkSettings"]

logger: Final = logging.getLogger("langchain_holysheep.fallback")


class WalkSettings(Protocol):
    """The chain settings a walk reads (``ChatHolySheepFallback`` has them)."""

    @property
    def fallback_on(self) -> tuple[FallbackOn, ...]:
        """Error types and predicates that fall over."""

    @property
    def response_checks(self) -> tuple[ResponseCheck, ...]:
        """Checks on non-streamed answers."""

    @property
    def max_retries(self) -> int:
        """Extra tries of one member for a retryable error."""

    @property
    def max_retry_after(self) -> float:
        """The longest wait before trying a member again."""

    @property
    def retry_backoff(self) -> float:
        """Base of the jittered backoff without a ``Retry-After``."""


@dataclass(slots=True)
class Walk:
    """One call's progress through the members; every call site shares it.

    Iterating it yields the member to try next (after any retry wait), skipping
    members whose circuit is open, and stops when none is left; each turn of the
    loop makes one attempt (the outcome moves the walk on). ``attempt()`` and
    ``committed()`` are context managers for the call itself.
    """

    settings: WalkSettings
    members: list[Member]
    index: int = 0
    """The position of the member being tried."""
    tries: int = 0
    """Retries of that member so far."""
    current: Member | None = None
    answered: bool = False
    """Whether the last attempt ended without an error."""
    delay: float | None = None
    """Seconds to wait before the next attempt (a retry of the same member)."""
    after_commit: bool = False
    """Whether the context manager now guards a committed stream."""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    deadline: Deadline | None = None
    """The call's ``total_timeout`` deadline, if it has one."""

    # --------------------------------------------------- the attempt iterator
    def __iter__(self) -> Self:
        """Iterate synchronously (retry waits block the thread)."""
        return self

    def __next__(self) -> Member:
        """Wait if a retry is due, then return the member to try."""
        if delay := self.delay:
            self.delay = None
            self._check_time(delay)
            time.sleep(delay)
        self._check_time(0.0)
        if (member := self.next_member()) is None:
            raise StopIteration
        return member

    def __aiter__(self) -> Self:
        """Iterate asynchronously (retry waits yield to the event loop)."""
        return self

    async def __anext__(self) -> Member:
        """Wait if a retry is due, then return the member to try."""
        if delay := self.delay:
            self.delay = None
            self._check_time(delay)
            await asyncio.sleep(delay)
        self._check_time(0.0)
        if (member := self.next_member()) is None:
            raise StopAsyncIteration
        return member

    def attempt(self) -> Self:
        """Context manager around one attempt's call (before any commit).

        An ``Exception`` it raises is sorted by :meth:`failed`: suppressed when
        it falls over (``answered`` stays false), propagated otherwise. Anything
        else (cancellation, ``KeyboardInterrupt``) frees a half-open trial.
        """
        self.after_commit = False
        return self

    def committed(self) -> Self:
        """Context manager around a committed stream: errors propagate, counted."""
        self.after_commit = True
        return self

    def __enter__(self) -> None:
        """Start an attempt."""
        self.answered = False

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        """End an attempt: whether its error is suppressed (the walk goes on)."""
        if error is None:
            self.answered = True
            return False
        if not isinstance(error, Exception):
            if not self.after_commit:
                self.abandoned()
            return False
        if self.after_commit:
            self.failed_after_commit(error)
            if isinstance(error, HolySheepTimeoutError) and self._out_of_time():
                raise self._timed_out(error) from error
            return False
        return self.failed(error)

    # ------------------------------------------------------------ the steps
    def next_member(self) -> Member | None:
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

    def failed(self, error: Exception) -> bool:
        """Account for ``error``: count it, and say whether it triggers a fallback.

        Input this member's model cannot take (a
        ``HolySheepUnsupportedInputError``, raised before anything was sent) is
        always a failed attempt: the next member may take it, and the model is
        not unhealthy, so its breaker does not count it.

        Returns:
            ``True`` when the walk goes on (a retry of the same member after
            ``delay``, or the next member); ``False`` when ``error`` is to be
            raised (with a note listing the earlier attempts, if any).
        """
        member = self._member()
        if isinstance(error, HolySheepUnsupportedInputError):
            if member.breaker is not None:
                member.breaker.release()
            self._record(member, error)
            self._advance(f"cannot take this input ({error.setting})")
            return True
        retryable = is_retryable(error)
        wait = retry_after(error)
        if member.breaker is not None:
            if retryable:
                if member.breaker.record_failure(wait):
                    logger.warning(
                        "Circuit for model %s opened after repeated failures.",
                        member.name,
                    )
            else:
                member.breaker.release()
        settings = self.settings
        if not triggers(error, settings.fallback_on):
            self.note_earlier_attempts(error)
            return False
        self._record(member, error)
        if self._out_of_time():  # the next turn ends the call
            return True
        if retryable and self.tries < settings.max_retries:
            delay = retry_delay(
                wait,
                self.tries,
                backoff=settings.retry_backoff,
                cap=settings.max_retry_after,
            )
            if delay is not None:
                self.tries += 1
                logger.info("Retrying model %s in %.2f s.", member.name, delay)
                self.delay = delay
                return True
        self._advance(f"failed ({type(error).__name__})")
        return True

    def bounded(self, member: Member, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A member call's kwargs, with the time left as its ``total_timeout``.

        Only for members that take it (``ChatHolySheep``), and only when the
        call has a deadline; a member's own shorter ``total_timeout`` stays.

        Args:
            member: The member about to be called.
            kwargs: Its call's kwargs (from ``prepare``).

        Returns:
            The kwargs to call it with.
        """
        if self.deadline is None or not member.takes_total_timeout:
            return kwargs
        left = max(self.deadline.left(), 0.001)
        own = getattr(member.model, "total_timeout", None)
        if isinstance(own, int | float) and own < left:
            return kwargs
        return {**kwargs, "total_timeout": left}

    def accepts(self, result: ChatResult) -> bool:
        """Run the response checks on a non-streamed answer.

        Returns:
            Whether it is accepted; a rejection is recorded (see
            :meth:`rejected`) and the walk moves on.
        """
        checks = self.settings.response_checks
        if not checks:
            return True
        message = result.generations[0].message if result.generations else None
        if not isinstance(message, AIMessage):
            return True
        if (reason := rejection(message, checks)) is None:
            return True
        self.rejected(reason, message)
        return False

    def rejected(self, reason: str, message: AIMessage) -> None:
        """A response check rejected the answer: record it and move on."""
        member = self._member()
        if member.breaker is not None:
            member.breaker.record_success()
        self._record(member, HolySheepResponseRejectedError(reason, message))
        self._advance(f"answer rejected ({reason})")

    def unparsable(self, error: Exception, *, reprompt: bool) -> None:
        """The answer could not be parsed into the schema: a failed attempt.

        The member did answer, so its breaker counts a success. With
        ``reprompt`` the same member is asked again (once, the caller decides);
        otherwise the walk moves on.
        """
        member = self._member()
        if member.breaker is not None:
            member.breaker.record_success()
        self._record(member, error)
        if reprompt:
            logger.info("Re-prompting model %s with its parse error.", member.name)
        else:
            self._advance(f"gave an unparsable answer ({type(error).__name__})")

    def note_earlier_attempts(self, error: BaseException) -> None:
        """Note the failed attempts on an error that ends the walk."""
        if self.attempts:
            error.add_note(
                "Fallback chain: earlier attempts failed: "
                + "; ".join(_describe(a) for a in self.attempts)
            )

    def succeeded(self) -> list[dict[str, Any]]:
        """The current member answered (or committed its stream).

        Returns:
            A copy of the failed attempts before it.
        """
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
        if member.breaker is not None and is_retryable(error):
            member.breaker.record_failure(retry_after(error))

    def exhausted(self) -> HolySheepFallbackError:
        """The group of every attempt's error, to raise when no member is left."""
        lines = "; ".join(
            f"{i}. {_describe(a)}" for i, a in enumerate(self.attempts, start=1)
        )
        tried = len({a["model"] for a in self.attempts})
        message = f"All {tried} models of the fallback chain failed: {lines}"
        return HolySheepFallbackError(message, self.errors, self.attempts)

    # ------------------------------------------------------------ internals
    def _out_of_time(self) -> bool:
        return self.deadline is not None and self.deadline.expired

    def _check_time(self, wait: float) -> None:
        """Raise if the deadline has passed, or would before ``wait`` is over."""
        deadline = self.deadline
        if deadline is not None and (deadline.expired or wait >= deadline.left()):
            deadline.trip()
            last = self.errors[-1] if self.errors else None
            raise self._timed_out(last) from last

    def _timed_out(self, cause: BaseException | None) -> HolySheepTotalTimeoutError:
        """The chain's own timeout: its bound, the attempts, a stream's text."""
        if self.deadline is None:  # pragma: no cover (a programming error)
            msg = "the walk has no deadline"
            raise RuntimeError(msg)
        error = HolySheepTotalTimeoutError(
            self.deadline.seconds, getattr(cause, "request", None)
        )
        partial = getattr(cause, "partial_text", None)
        error.partial_text = partial if isinstance(partial, str) else None
        if self.attempts:
            error.add_note(
                "Fallback chain: attempts before the deadline: "
                + "; ".join(_describe(a) for a in self.attempts)
            )
        return error

    def _member(self) -> Member:
        if self.current is None:  # pragma: no cover (a programming error)
            msg = "no member is being tried"
            raise RuntimeError(msg)
        return self.current

    def _record(self, member: Member, error: Exception) -> None:
        self.errors.append(error)
        self.attempts.append(
            {
                "model": member.name,
                "error_type": type(error).__name__,
                "status_code": status_code(error),
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
    if not (isinstance(text, str) and text):
        text = str(error)
    # langchain-core's parser errors end with a troubleshooting link.
    return text.split("\nFor troubleshooting, visit:", 1)[0]


def _describe(attempt: dict[str, Any]) -> str:
    status = attempt["status_code"]
    kind = attempt["error_type"] + (f" (HTTP {status})" if status else "")
    return f"{attempt['model']}: {kind}: {attempt['message']}"
