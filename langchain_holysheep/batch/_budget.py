"""A run's budget: in this process, or shared by a fleet through Redis.

Every request reserves its worst case before it is sent
(:func:`~langchain_holysheep.batch._cost.worst_case_nano`) and, once answered,
settles to what it cost (``settle(reserved, actual)``; ``actual`` is 0 when
nothing was billed, which releases the reservation). A reservation is refused
when ``spent + reserved + worst case`` would pass the limit, so while every
request costs at most its worst case, ``spent`` never passes the limit. A
request that cost more than it reserved (a gateway billing above the price
table) is still counted as spent, so the run stops sooner.

:class:`LocalBudget` counts in this process. :class:`RedisBudget` keeps the
counts in one Redis hash (``spent``, ``reserved``), and each step is one Lua
script call, so every process and shard holding the same key shares one
budget. The key is ``hs:{<sha256(API key)[:16]>}:<namespace>:budget`` (the
rate limiter's prefix: never the key itself); it expires
:data:`DEFAULT_TTL_S` after its last use. When that Redis cannot be reached, a
shared budget cannot be honoured: :class:`BudgetUnavailableError` is raised
(before the run starts, or at the next step), and the run stops sending.
"""

from __future__ import annotations

import threading
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.batch._format import BatchInputError
from langchain_holysheep.batch._types import NANO_USD, nano_to_usd
from langchain_holysheep.errors import HolySheepError, HolySheepInputError

if TYPE_CHECKING:
    from pydantic import SecretStr

    from langchain_holysheep.batch._types import Budget

__all__ = [
    "BUDGET_SCRIPT",
    "DEFAULT_TTL_S",
    "MAX_BUDGET_NANO",
    "BudgetUnavailableError",
    "LocalBudget",
    "RedisBudget",
    "budget_key",
    "make_budget",
]

DEFAULT_TTL_S: Final = 7 * 24 * 3600.0
"""A shared budget's Redis key expires this long after its last use (7 days)."""

MAX_BUDGET_NANO: Final = 2**53 - 1
"""The largest budget (about 9 million USD): Lua counts exactly up to here."""

# KEYS[1]: the budget's hash (fields spent, reserved). ARGV: op ("reserve",
# "settle", "read"), amount (reserve: the worst case; settle: the reservation),
# actual cost (settle), limit, key TTL ms. Every amount is whole nano-dollars.
# Returns {1 if done (reserve: 0 if it would not fit), spent, reserved}.
BUDGET_SCRIPT: Final = """
local key, op = KEYS[1], ARGV[1]
local h = redis.call('HMGET', key, 'spent', 'reserved')
local spent = tonumber(h[1] or '0') or 0
local reserved = tonumber(h[2] or '0') or 0
local ttl = tonumber(ARGV[5])
if op == 'reserve' then
  local n = tonumber(ARGV[2])
  if spent + reserved + n > tonumber(ARGV[4]) then
    return {0, spent, reserved}
  end
  reserved = reserved + n
elseif op == 'settle' then
  reserved = math.max(0, reserved - tonumber(ARGV[2]))
  spent = spent + tonumber(ARGV[3])
else
  if redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ttl) end
  return {1, spent, reserved}
end
redis.call('HSET', key, 'spent', string.format('%.0f', spent),
           'reserved', string.format('%.0f', reserved))
redis.call('PEXPIRE', key, ttl)
return {1, spent, reserved}
"""
"""Every step of a shared budget, one atomic call each."""

_BUDGET_HINT: Final = (
    "give a budget in USD above 0, e.g. --budget-usd 5 (budget_usd=Decimal('5'))"
)


class BudgetUnavailableError(HolySheepError):
    """A shared budget's Redis cannot be reached, so the run stops sending.

    A shared budget is only kept if every process can count against it: rather
    than spend past it, the run refuses to start (or sends nothing more). The
    message says what to do.
    """


def _amount(nano: object, what: str) -> int:
    if isinstance(nano, bool) or not isinstance(nano, int) or nano < 0:
        msg = f"{what} must be whole nano-dollars (an int >= 0), not {nano!r}"
        raise ValueError(msg)
    return nano


def _limit(limit_nano: object) -> int:
    if (
        isinstance(limit_nano, bool)
        or not isinstance(limit_nano, int)
        or not 0 < limit_nano <= MAX_BUDGET_NANO
    ):
        msg = (
            f"the budget must be whole nano-dollars above 0 and at most "
            f"{MAX_BUDGET_NANO}, not {limit_nano!r}: {_BUDGET_HINT}"
        )
        raise BatchInputError(msg)
    return limit_nano


class LocalBudget:
    """A budget counted in this process (every thread and event loop in it)."""

    def __init__(self, limit_nano: int) -> None:
        """Create an empty budget.

        Args:
            limit_nano: The most the run may spend, in nano-dollars.

        Raises:
            BatchInputError: The limit is not a whole number above 0.
        """
        self._limit = _limit(limit_nano)
        self._lock = threading.Lock()
        self._spent = 0
        self._reserved = 0

    def __repr__(self) -> str:
        """The limit, what is spent and what is reserved, in USD."""
        return (
            f"LocalBudget(limit_usd={nano_to_usd(self._limit)}, "
            f"spent_usd={nano_to_usd(self._spent)}, "
            f"reserved_usd={nano_to_usd(self._reserved)})"
        )

    @property
    def limit_nano(self) -> int:
        """The budget, in nano-dollars."""
        return self._limit

    async def reserved_nano(self) -> int:
        """What requests in flight have reserved, in nano-dollars.

        Returns:
            The open reservations.
        """
        return self._reserved

    async def reserve(self, nano: int) -> bool:
        """Reserve a request's worst case, if it fits.

        Args:
            nano: The worst case, in nano-dollars.

        Returns:
            Whether it was reserved (``False``: nothing was).
        """
        nano = _amount(nano, "a reservation")
        with self._lock:
            if self._spent + self._reserved + nano > self._limit:
                return False
            self._reserved += nano
            return True

    async def settle(self, reserved_nano: int, actual_nano: int) -> None:
        """Replace a reservation by what the request cost (0: release it).

        Args:
            reserved_nano: What the request reserved.
            actual_nano: What it cost.
        """
        reserved_nano = _amount(reserved_nano, "a reservation")
        actual_nano = _amount(actual_nano, "a cost")
        with self._lock:
            self._reserved = max(0, self._reserved - reserved_nano)
            self._spent += actual_nano

    async def spent_nano(self) -> int:
        """What has been spent so far, in nano-dollars.

        Returns:
            The settled costs.
        """
        return self._spent


class RedisBudget:
    """A budget in Redis, shared by every process that holds the same key."""

    def __init__(
        self,
        redis_url: str,
        *,
        key: str,
        limit_nano: int,
        timeout: float = 0.5,
        ttl: float = DEFAULT_TTL_S,
    ) -> None:
        """Prepare the budget (nothing connects until :meth:`check` or a step).

        Args:
            redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL.
            key: The budget's Redis key (see :func:`budget_key`).
            limit_nano: The most the fleet may spend, in nano-dollars.
            timeout: Connect and read timeout in seconds.
            ttl: Seconds the key lives after its last use.

        Raises:
            BatchInputError: The limit is not a whole number above 0, or the
                TTL is not positive.
            HolySheepInputError: The URL is not a Redis URL.
            ImportError: redis-py is not installed.
        """
        from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
            AsyncClients,
            Script,
            check_url,
            import_redis,
            mask_url,
        )

        self._limit = _limit(limit_nano)
        if not ttl > 0:
            raise BatchInputError(f"ttl must be a number of seconds above 0, not {ttl}")
        check_url(redis_url)
        self._url = redis_url
        self._shown_url = mask_url(redis_url)
        self._timeout = timeout
        self._key = key
        self._ttl_ms = max(1, round(ttl * 1000))
        self._failures: tuple[type[Exception], ...] = (
            import_redis().exceptions.RedisError,
            OSError,
        )
        self._clients = AsyncClients(redis_url, timeout)
        self._script = Script(BUDGET_SCRIPT)

    def __repr__(self) -> str:
        """The limit, the key and the Redis URL (its password masked)."""
        return (
            f"RedisBudget({self._shown_url!r}, key={self._key!r}, "
            f"limit_usd={nano_to_usd(self._limit)})"
        )

    @property
    def limit_nano(self) -> int:
        """The budget, in nano-dollars."""
        return self._limit

    @property
    def key(self) -> str:
        """The budget's Redis key."""
        return self._key

    def check(self) -> None:
        """Make sure Redis answers, before the run starts (a sync ``PING``).

        Raises:
            BudgetUnavailableError: Redis cannot be reached.
        """
        from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
            sync_client,
        )

        client = sync_client(self._url, self._timeout)
        try:
            client.ping()
        except self._failures as error:
            raise self._unavailable(error, starting=True) from None
        finally:
            client.close()

    async def reserve(self, nano: int) -> bool:
        """Reserve a request's worst case on the shared budget, if it fits.

        Args:
            nano: The worst case, in nano-dollars.

        Returns:
            Whether it was reserved (``False``: nothing was).

        Raises:
            BudgetUnavailableError: Redis cannot be reached.
        """
        reply = await self._run("reserve", _amount(nano, "a reservation"), 0)
        return int(reply[0]) == 1

    async def settle(self, reserved_nano: int, actual_nano: int) -> None:
        """Replace a reservation by what the request cost (0: release it).

        Args:
            reserved_nano: What the request reserved.
            actual_nano: What it cost.

        Raises:
            BudgetUnavailableError: Redis cannot be reached (the reservation
                then stays counted until the key expires: never less than
                was spent).
        """
        await self._run(
            "settle",
            _amount(reserved_nano, "a reservation"),
            _amount(actual_nano, "a cost"),
        )

    async def spent_nano(self) -> int:
        """What the fleet has spent so far, in nano-dollars.

        Returns:
            The settled costs.

        Raises:
            BudgetUnavailableError: Redis cannot be reached.
        """
        reply = await self._run("read", 0, 0)
        return int(reply[1])

    async def reserved_nano(self) -> int:
        """What the fleet's requests in flight have reserved, in nano-dollars.

        Returns:
            The open reservations.

        Raises:
            BudgetUnavailableError: Redis cannot be reached.
        """
        reply = await self._run("read", 0, 0)
        return int(reply[2])

    async def _run(self, op: str, amount: int, actual: int) -> Any:
        """One script call."""
        try:
            client = await self._clients.get()
            return await self._script.arun(
                client, 1, self._key, op, amount, actual, self._limit, self._ttl_ms
            )
        except self._failures as error:
            raise self._unavailable(error, starting=False) from None

    def _unavailable(
        self, error: Exception, *, starting: bool
    ) -> BudgetUnavailableError:
        from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
            describe_error,
        )

        reason = describe_error(error, self._url)
        what = (
            "the run does not start"
            if starting
            else "the run stops sending (nothing more is spent)"
        )
        return BudgetUnavailableError(
            f"the shared budget's Redis at {self._shown_url} cannot be reached "
            f"({reason}), so {what}: the budget could not be kept. Start Redis or "
            "fix --redis-url, then run the same command again (lines already "
            "answered are skipped); or leave out --redis-url for a budget counted "
            "in this process only."
        )


def budget_key(namespace: str, api_key: str | SecretStr | None) -> str:
    """The Redis key of a shared budget (the API key only as a hash).

    Args:
        namespace: Separates runs that share a Redis and an API key.
        api_key: The API key; ``None`` reads ``HOLYSHEEP_API_KEY``.

    Returns:
        ``hs:{<sha256(key)[:16]>}:<namespace>:budget``.
    """
    from langchain_holysheep.ratelimit.limiter import key_prefix  # noqa: PLC0415

    return key_prefix(api_key, namespace) + "budget"


def _budget_nano(budget_usd: object) -> int:
    """A budget in USD as whole nano-dollars, rounded down (never more)."""
    if isinstance(budget_usd, bool) or not isinstance(
        budget_usd, Decimal | int | float | str
    ):
        msg = f"budget_usd must be a number of USD, not {budget_usd!r}: {_BUDGET_HINT}"
        raise BatchInputError(msg)
    try:
        usd = Decimal(str(budget_usd))
    except ArithmeticError:
        usd = Decimal("NaN")
    if not usd.is_finite() or usd <= 0:
        msg = f"budget_usd must be above 0, not {budget_usd!r}: {_BUDGET_HINT}"
        raise BatchInputError(msg)
    nano = int((usd / NANO_USD).to_integral_value(rounding=ROUND_FLOOR))
    if not 0 < nano <= MAX_BUDGET_NANO:
        msg = (
            f"budget_usd {budget_usd} is out of range: it must be at least "
            f"0.000000001 and at most {nano_to_usd(MAX_BUDGET_NANO)}"
        )
        raise BatchInputError(msg)
    return nano


def make_budget(
    budget_usd: Decimal | None,
    *,
    redis_url: str | None,
    namespace: str,
    api_key: str | SecretStr | None,
) -> Budget | None:
    """The budget of a run: none, this process's, or shared through Redis.

    A shared budget is checked here (Redis must answer), so a run whose budget
    cannot be kept does not start.

    Args:
        budget_usd: The most the run may spend, in USD (``None``: no budget).
        redis_url: Share the budget through this Redis (``None``: this
            process only).
        namespace: Separates runs that share a Redis and an API key.
        api_key: The API key (only its hash reaches Redis); ``None`` reads
            ``HOLYSHEEP_API_KEY``.

    Returns:
        The budget, or ``None`` without ``budget_usd``.

    Raises:
        BatchInputError: The budget is not a number above 0, the namespace is
            empty, the Redis URL is malformed, or redis-py is missing.
        BudgetUnavailableError: The Redis of a shared budget does not answer.
    """
    if budget_usd is None:
        return None
    limit = _budget_nano(budget_usd)
    if redis_url is None:
        return LocalBudget(limit)
    if not isinstance(namespace, str) or not namespace.strip():
        msg = f"namespace must be a non-empty string, not {namespace!r}"
        raise BatchInputError(msg)
    try:
        budget = RedisBudget(
            redis_url, key=budget_key(namespace, api_key), limit_nano=limit
        )
        budget.check()
    except HolySheepInputError as error:
        if isinstance(error, BatchInputError):
            raise
        raise BatchInputError(str(error)) from None
    except ImportError:
        msg = (
            "a budget shared through --redis-url needs redis-py: install it with "
            "`pip install 'langchain-holysheep[redis]'`, or leave out --redis-url "
            "for a budget counted in this process only"
        )
        raise BatchInputError(msg) from None
    return budget
