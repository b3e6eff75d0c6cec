"""A circuit breaker whose state lives in Redis, shared by every process.

``SharedCircuitBreaker`` is a :class:`~._breaker.CircuitBreaker` with the same
rules (consecutive retryable failures open it, a cooldown seeded from
``Retry-After`` or escalating from ``cooldown``, capped; one half-open trial),
but each step is one atomic Lua script call on Redis's clock, so:

* a failure or success seen by any process counts for all;
* a model one process saw fail is skipped by every process;
* in half-open, exactly one process in the fleet gets the trial request: it
  holds a lease (``max(cooldown, 1)`` seconds) that the others see.

A success costs no Redis call when the circuit was closed with no failures
when the call started (the common case): one round trip per call. If Redis is
unreachable, the breakers on it fall back to their in-process state (one
warning), and Redis is tried again later (backing off from 1 s to 30 s).

Keys: ``hs:cb:{<sha256(gateway URL)[:16]>}:<namespace>:<model>``, a hash of
``state``, ``failures``, ``trips``, ``until``, expiring on its own.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.fallback import _breaker
from langchain_holysheep.fallback._breaker import (
    CircuitBreaker,
    CircuitBreakerPolicy,
    CircuitSnapshot,
    CircuitState,
)
from langchain_holysheep.ratelimit._gcra import MICROS

if TYPE_CHECKING:
    import redis

__all__ = [
    "BREAKER_SCRIPT",
    "SharedCircuitBreaker",
    "breaker_key",
    "get_circuit_breaker",
]

_logger = logging.getLogger("langchain_holysheep.fallback")
_FIRST_BACKOFF: Final = 1.0
_MAX_BACKOFF: Final = 30.0

# KEYS[1]: the breaker's hash. ARGV: op ("acquire", "success", "failure",
# "release", "reset", "read"), failure threshold, cooldown µs, max cooldown µs,
# Retry-After µs (negative: none), trial lease µs, key TTL ms.
# acquire returns {wait µs (-1: go, 0: a trial is in flight), failures};
# failure returns {1 if it opened the circuit, failures}; read returns
# {state, failures, trips, µs until a trial}.
BREAKER_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local key, op = KEYS[1], ARGV[1]
local h = redis.call('HMGET', key, 'state', 'failures', 'trips', 'until')
local state = h[1] or 'closed'
local failures = tonumber(h[2] or '0') or 0
local trips = tonumber(h[3] or '0') or 0
local ends = tonumber(h[4] or '0') or 0
local function save()
  redis.call('HSET', key, 'state', state, 'failures', failures, 'trips', trips,
             'until', string.format('%.0f', ends))
  redis.call('PEXPIRE', key, tonumber(ARGV[7]))
end
if op == 'acquire' then
  if state == 'closed' then return {-1, failures} end
  if now < ends then
    if state == 'half_open' then return {0, failures} end
    return {ends - now, failures}
  end
  state = 'half_open'
  ends = now + tonumber(ARGV[6])
  save()
  return {-1, failures}
elseif op == 'success' or op == 'reset' then
  redis.call('DEL', key)
  return {0, 0}
elseif op == 'failure' then
  failures = failures + 1
  if state ~= 'half_open' and failures < tonumber(ARGV[2]) then
    save()
    return {0, failures}
  end
  trips = trips + 1
  local cooldown = tonumber(ARGV[5])
  if cooldown < 0 then cooldown = tonumber(ARGV[3]) * 2 ^ (trips - 1) end
  ends = now + math.min(cooldown, tonumber(ARGV[4]))
  state = 'open'
  save()
  return {1, failures}
elseif op == 'release' then
  if state == 'half_open' then
    state = 'open'
    ends = now
    save()
  end
  return {0, failures}
end
local left = ends - now
if state == 'closed' or left < 0 then left = 0 end
return {state, failures, trips, left}
"""
"""Every step of the shared breaker, one atomic call each."""


def breaker_key(scope: str, model: str, namespace: str) -> str:
    """The Redis key of a model's breaker on a gateway.

    Args:
        scope: The gateway's base URL (hashed: it may carry credentials).
        model: The model id.
        namespace: The policy's namespace.

    Returns:
        ``hs:cb:{<hash>}:<namespace>:<model>``.
    """
    digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
    return f"hs:cb:{{{digest}}}:{namespace}:{model}"


def get_circuit_breaker(
    model: str, scope: str, policy: CircuitBreakerPolicy | None = None
) -> CircuitBreaker:
    """The process-wide breaker for ``model`` on ``scope``, shared on Redis if set.

    Args:
        model: The model id.
        scope: The gateway base URL (or provider) the model is reached through.
        policy: The breaker policy (default: ``CircuitBreakerPolicy()``); with a
            ``redis_url`` the breaker's state is kept in that Redis.

    Returns:
        The breaker, created closed on first use.
    """
    policy = policy or CircuitBreakerPolicy()
    if policy.redis_url is None:
        return _breaker.get_circuit_breaker(model, scope, policy)
    return _breaker.get_circuit_breaker(model, scope, policy, _shared_breaker)


def _shared_breaker(
    model: str, scope: str, policy: CircuitBreakerPolicy
) -> CircuitBreaker:
    assert policy.redis_url is not None  # noqa: S101 (chosen above)
    return SharedCircuitBreaker(model, scope, policy, policy.redis_url)


class SharedCircuitBreaker(CircuitBreaker):
    """A circuit breaker kept in Redis (see the module docstring)."""

    def __init__(
        self, model: str, scope: str, policy: CircuitBreakerPolicy, url: str
    ) -> None:
        """Create the breaker (nothing connects until the first call).

        Args:
            model: The model id.
            scope: The gateway URL (or provider) it is reached through.
            policy: Thresholds, cooldowns and the Redis settings.
            url: The Redis URL.
        """
        super().__init__(model, scope, policy)
        self._redis = _connection(url, policy.redis_timeout)
        self._key = breaker_key(scope, model, policy.redis_namespace)
        lease = max(policy.cooldown, 1.0)
        ttl = max(policy.max_cooldown, lease) * 2 + 60
        self._args = (
            policy.failure_threshold,
            round(policy.cooldown * MICROS),
            round(policy.max_cooldown * MICROS),
        )
        self._lease_us = round(lease * MICROS)
        self._ttl_ms = round(ttl * 1000)
        self._clean = False

    def __repr__(self) -> str:
        """Show the model and where the state lives (password masked)."""
        shown = self._redis.shown_url
        return f"SharedCircuitBreaker({self.model!r}, {self.scope!r}, {shown})"

    @property
    def key(self) -> str:
        """The breaker's Redis key."""
        return self._key

    @property
    def state(self) -> CircuitState:
        """The fleet's current state (this process's while Redis is down)."""
        return self.snapshot().state

    # -------------------------------------------------------------- steps
    def acquire(self) -> float | None:
        """Ask to send a request (see :meth:`CircuitBreaker.acquire`).

        Returns:
            ``None`` when the request may go, else seconds until a trial.
        """
        reply = self._run("acquire")
        if reply is None:
            return super().acquire()
        wait_us, failures = int(reply[0]), int(reply[1])
        self._clean = failures == 0 and wait_us < 0
        return None if wait_us < 0 else wait_us / MICROS

    def record_success(self) -> None:
        """The model answered: close the fleet's circuit (no call if it was clean)."""
        super().record_success()
        if not self._clean:
            self._run("success")

    def record_failure(self, retry_after: float | None = None) -> bool:
        """Count a retryable failure for the fleet; open at the threshold.

        Args:
            retry_after: The server's ``Retry-After``, which seeds the cooldown.

        Returns:
            Whether this failure opened the circuit.
        """
        self._clean = False
        reply = self._run(
            "failure", -1 if retry_after is None else round(retry_after * MICROS)
        )
        if reply is None:
            return super().record_failure(retry_after)
        return int(reply[0]) == 1

    def release(self) -> None:
        """A request ended without a health signal: free the trial, if it was one."""
        if self._run("release") is None:
            super().release()

    def reset(self) -> None:
        """Close the fleet's circuit and clear all counts."""
        super().reset()
        self._run("reset")

    def snapshot(self) -> CircuitSnapshot:
        """Read the fleet's state from Redis (this process's while it is down).

        Returns:
            The state, failure count and time to the next trial.
        """
        reply = self._run("read")
        if reply is None:
            return super().snapshot()
        state, failures, trips, left_us = reply
        name = state.decode() if isinstance(state, bytes) else str(state)
        return CircuitSnapshot(
            model=self.model,
            scope=self.scope,
            state=CircuitState(name),
            consecutive_failures=int(failures),
            retry_in=int(left_us) / MICROS if name == "open" else 0.0,
            trips=int(trips),
        )

    # ----------------------------------------------------------- plumbing
    def _run(self, op: str, retry_after_us: int = -1) -> Any:
        """One script call; ``None`` when Redis is unusable (local state then)."""
        return self._redis.run(
            self._key,
            op,
            *self._args,
            retry_after_us,
            self._lease_us,
            self._ttl_ms,
        )


class _Connection:
    """One Redis for every shared breaker on it: its client and its health.

    While Redis is unusable, every breaker on it uses its in-process state;
    one warning per outage, then a new try after 1 s, 2 s... up to 30 s.
    """

    def __init__(self, url: str, timeout: float) -> None:
        from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
            import_redis,
            mask_url,
            sync_client,
        )

        self._url = url
        self.client: redis.Redis = sync_client(url, timeout)
        self.no_script = import_redis().exceptions.NoScriptError
        self.shown_url = mask_url(url)
        self._lock = threading.Lock()
        self._degraded = False
        self._retry_at = 0.0
        self._backoff = _FIRST_BACKOFF

    def run(self, key: str, *args: Any) -> Any:
        """Run the breaker script on ``key``; ``None`` if Redis is unusable."""
        if self._degraded and time.monotonic() < self._retry_at:
            return None
        try:
            try:
                reply = self.client.evalsha(_SHA1, 1, key, *args)
            except self.no_script:
                reply = self.client.eval(BREAKER_SCRIPT, 1, key, *args)
        except Exception as error:  # noqa: BLE001 (a Redis error never fails a call)
            self._failed(error)
            return None
        if self._degraded:
            with self._lock:
                self._degraded = False
                self._backoff = _FIRST_BACKOFF
            _logger.info(
                "Circuit breakers: Redis at %s answers again; breaker state is "
                "shared again.",
                self.shown_url,
            )
        return reply

    def _failed(self, error: Exception) -> None:
        with self._lock:
            first = not self._degraded
            self._degraded = True
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
        if first:
            from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
                describe_error,
            )

            _logger.warning(
                "Circuit breakers: Redis at %s is unusable (%s); each process "
                "keeps its own breaker state until Redis answers again.",
                self.shown_url,
                describe_error(error, self._url),
            )


_CONNECTIONS: dict[tuple[str, float], _Connection] = {}
_CONNECTIONS_LOCK: Final = threading.Lock()


def _connection(url: str, timeout: float) -> _Connection:
    with _CONNECTIONS_LOCK:
        connection = _CONNECTIONS.get((url, timeout))
        if connection is None:
            connection = _CONNECTIONS[url, timeout] = _Connection(url, timeout)
        return connection


_SHA1: Final = hashlib.sha1(BREAKER_SCRIPT.encode(), usedforsecurity=False).hexdigest()
