"""A generic circuit breaker: skip a model after repeated failures, retry it later.

Knows nothing of LangChain or HTTP (stdlib only): callers say when a request
may go (:meth:`CircuitBreaker.acquire`) and how it ended. The process-wide
registry shares one breaker per (scope, model, policy) across threads and event
loops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable  # noqa: TC003 (pydantic reads the policy's fields)
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerPolicy",
    "CircuitSnapshot",
    "CircuitState",
    "circuit_breaker_states",
    "get_circuit_breaker",
    "reset_circuit_breakers",
]


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
