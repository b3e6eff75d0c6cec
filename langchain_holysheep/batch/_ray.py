"""A bulk run on a Ray cluster: shards as Ray actors, one writer in the driver.

:func:`run_on_ray` is what ``holysheep batch --ray`` runs. The driver (the
process that called it) streams the requests in chunks of ``chunk_size`` to a
pool of Ray actors, one chunk per actor at a time, so at most ``workers`` chunks
are in flight and the input is never loaded whole. Each actor runs the same
engine as a local run (:func:`~langchain_holysheep.batch._engine.arun_requests`)
on its chunk, in its own process and event loop, and streams each finished
:class:`LineResult` back as it finishes (a Ray streaming generator). The driver
calls ``on_result`` for each, in its own thread: it stays the one writer of
the output file, so the resume rule (a line is done once its output line is
whole in the file) is the local run's, and a killed driver re-sends only what
was in flight.

What the actors share:

* the limits, 429 blocks, circuit breakers and budget, through Redis, when
  ``settings.redis_url`` is set (each actor builds its own limiter and
  :class:`~langchain_holysheep.batch._budget.RedisBudget` on the same keys);
* without Redis, the budget lives in one budget actor all shards reserve from
  (:class:`_BudgetKeeper`), and the key's ``requests_per_minute`` and
  ``tokens_per_minute`` are split between the shards, so the run as a whole
  keeps to them (breakers and 429 blocks are then per shard).

``settings.concurrency`` is per shard, as it is per process when several
processes share a run.

The API key: each actor reads ``HOLYSHEEP_API_KEY`` from its own environment
(a local Ray inherits the driver's; on a cluster, set it where the workers
start) unless ``settings.api_key`` is set; the settings travel to the actors
pickled, the key inside a ``SecretStr``, never as clear text in a task
argument. Ray itself (the ``langchain-holysheep[ray]`` extra) is imported only
when a run uses it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.batch._types import BatchRequest, LineResult, usd_to_nano

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator
    from decimal import Decimal

    from langchain_holysheep.batch._engine import BatchSettings, RunStats
    from langchain_holysheep.batch._types import Budget

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "RAY_EXTRA_HINT",
    "import_ray",
    "run_on_ray",
    "shard_settings",
]

DEFAULT_CHUNK_SIZE: Final = 32
"""Requests per chunk, per request a shard may have in flight.

A shard's concurrency falls while the tail of a chunk is answered; 32 in-flight
slots' worth per chunk keeps that dip to a few percent of the run.
"""

RAY_EXTRA_HINT: Final = (
    "holysheep batch --ray (and HolySheepChatCompletions) need Ray: install the "
    "extra with `pip install 'langchain-holysheep[ray]'` (or `pip install "
    "'ray[data]'`), or run without --ray."
)

DEFAULT_MAX_WORKERS: Final = 8
"""The most shards started when ``workers`` is not given (one per CPU up to it)."""

_MAX_RESULTS_PER_YIELD: Final = 256
_API_KEY_ENV: Final = "HOLYSHEEP_API_KEY"

logger = logging.getLogger(__name__)


def import_ray() -> Any:
    """Import Ray, or say which extra installs it.

    Returns:
        The ``ray`` module.

    Raises:
        HolySheepInputError: If Ray is not installed; the message names the extra.
    """
    try:
        import ray  # noqa: PLC0415  (optional dependency, loaded on use)
    except ImportError as error:
        from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

        raise HolySheepInputError(RAY_EXTRA_HINT) from error
    return ray


# ------------------------------------------------------------------ splitting


def _split_rate(value: float | None, parts: int) -> list[float | None]:
    """A per-minute limit in ``parts`` equal shares that add up to it."""
    return [None if value is None else value / parts] * parts


def shard_settings(settings: BatchSettings, workers: int) -> list[BatchSettings]:
    """The settings each of ``workers`` shards runs with.

    The key's ``requests_per_minute`` and ``tokens_per_minute`` are split
    between the shards when there is no ``redis_url`` to share one limit
    through; with Redis every shard books against the same fleet-wide limit,
    so each keeps the whole value. ``concurrency`` is per shard.

    Args:
        settings: The run's settings.
        workers: The number of shards (at least 1).

    Returns:
        One settings object per shard.
    """
    if settings.redis_url is not None:
        return [settings] * workers
    rpm = _split_rate(settings.requests_per_minute, workers)
    tpm = _split_rate(settings.tokens_per_minute, workers)
    return [
        dataclasses.replace(
            settings, requests_per_minute=rpm[index], tokens_per_minute=tpm[index]
        )
        for index in range(workers)
    ]


def _worker_count(workers: int | None, cpus: int) -> int:
    """``workers``, else one shard per CPU of the cluster, up to 8."""
    if workers is not None:
        return workers
    return max(1, min(cpus, DEFAULT_MAX_WORKERS))


def _init_address(address: str | None) -> str | None:
    """What ``ray.init`` is given: ``address``; without one, a local Ray.

    ``RAY_ADDRESS`` still wins when set (a driver started by ``ray job submit``
    runs on its cluster), but an address is never guessed from a cluster some
    other program started on this machine.
    """
    if address is not None:
        return address
    return None if os.environ.get("RAY_ADDRESS") else "local"


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_arguments(
    address: str | None, workers: int | None, chunk_size: int | None
) -> None:
    from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

    if workers is not None and not _is_count(workers):
        msg = f"workers must be a whole number of Ray actors (>= 1), got {workers!r}"
        raise HolySheepInputError(msg)
    if chunk_size is not None and not _is_count(chunk_size):
        msg = (
            f"chunk_size must be a whole number of requests (>= 1), got {chunk_size!r}"
        )
        raise HolySheepInputError(msg)
    if address is not None and not address.strip():
        msg = (
            "the Ray address is empty: give the cluster's address (e.g. "
            "ray://head:10001 or auto), or leave it out for a local Ray"
        )
        raise HolySheepInputError(msg)


def _chunks(
    requests: Iterable[BatchRequest], size: int
) -> Iterator[list[BatchRequest]]:
    iterator = iter(requests)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _api_key(settings: BatchSettings) -> str | None:
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    return os.environ.get(_API_KEY_ENV) or None


# ------------------------------------------------------------ the actors' code


class _BudgetKeeper:
    """The run's budget when there is no Redis: one Ray actor all shards share.

    Its methods are synchronous, and a synchronous Ray actor runs one call at a
    time, so each step is atomic: ``spent + reserved`` never passes the limit.
    """

    def __init__(self, limit_nano: int) -> None:
        self._limit = limit_nano
        self._spent = 0
        self._reserved = 0

    def reserve(self, nano: int) -> bool:
        if self._spent + self._reserved + nano > self._limit:
            return False
        self._reserved += nano
        return True

    def settle(self, reserved_nano: int, actual_nano: int) -> None:
        self._reserved = max(0, self._reserved - reserved_nano)
        self._spent += actual_nano

    def spent(self) -> int:
        return self._spent


class _KeeperBudget:
    """A shard's :class:`Budget`: it reserves from the shared :class:`_BudgetKeeper`."""

    def __init__(self, keeper: Any, limit_nano: int) -> None:
        self._keeper = keeper
        self._limit = limit_nano

    @property
    def limit_nano(self) -> int:
        return self._limit

    async def reserve(self, nano: int) -> bool:
        return bool(await self._keeper.reserve.remote(nano))

    async def settle(self, reserved_nano: int, actual_nano: int) -> None:
        await self._keeper.settle.remote(reserved_nano, actual_nano)

    async def spent_nano(self) -> int:
        return int(await self._keeper.spent.remote())


class _Shard:
    """One Ray actor: runs the engine on each chunk the driver gives it.

    An async actor: every call runs on the actor's one event loop, so the
    connection pool, the limiter and the budget's Redis client live as long as
    the actor. The driver gives it one chunk at a time.
    """

    def __init__(
        self, settings: BatchSettings, budget_usd: Decimal | None, keeper: Any
    ) -> None:
        self._settings = settings
        self._budget_usd = budget_usd
        self._keeper = keeper
        self._budget: Budget | None = None

    async def ready(self) -> dict[str, Any]:
        """Answer once started: the process, its node, whether it has a key."""
        import ray  # noqa: PLC0415  (inside the actor: Ray is there)

        return {
            "has_key": _api_key(self._settings) is not None,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def _get_budget(self) -> Budget | None:
        if self._budget_usd is None:
            return None
        if self._budget is None:
            if self._keeper is not None:
                self._budget = _KeeperBudget(
                    self._keeper, usd_to_nano(self._budget_usd)
                )
            else:
                from langchain_holysheep.batch._budget import (  # noqa: PLC0415
                    make_budget,
                )

                self._budget = make_budget(
                    self._budget_usd,
                    redis_url=self._settings.redis_url,
                    namespace=self._settings.namespace,
                    api_key=_api_key(self._settings),
                )
        return self._budget

    async def run(
        self, chunk: list[BatchRequest]
    ) -> AsyncIterator[list[LineResult] | RunStats]:
        """Send ``chunk``; yield its results as they finish, then the run's stats."""
        from langchain_holysheep.batch._engine import (  # noqa: PLC0415
            arun_requests,
        )

        finished: asyncio.Queue[LineResult | None] = asyncio.Queue()

        async def drive() -> RunStats:
            try:
                return await arun_requests(
                    chunk,
                    self._settings,
                    on_result=finished.put_nowait,
                    budget=self._get_budget(),
                )
            finally:
                finished.put_nowait(None)

        task = asyncio.ensure_future(drive())
        try:
            done = False
            while not done:
                batch = [await finished.get()]
                while not finished.empty() and len(batch) < _MAX_RESULTS_PER_YIELD:
                    batch.append(finished.get_nowait())
                if batch[-1] is None:  # the end mark is always put last
                    done = True
                    batch.pop()
                if batch:
                    yield [result for result in batch if result is not None]
            yield await task
        finally:
            if not task.done():
                task.cancel()


# ------------------------------------------------------------------ the driver


class _Driver:
    """One run's bookkeeping in the driver: actors, chunks in flight, totals."""

    def __init__(
        self,
        ray: Any,
        requests: Iterable[BatchRequest],
        chunk_size: int,
        on_result: Callable[[LineResult], None],
    ) -> None:
        self.ray = ray
        self.chunks = _chunks(requests, chunk_size)
        self.on_result = on_result
        self.starting: dict[Any, Any] = {}  # ready() ref -> actor
        self.idle: list[Any] = []
        self.running: dict[Any, Any] = {}  # streaming generator -> actor
        self.exhausted = False
        self.stopped = False
        self.written = 0
        self.sent = 0
        self.shards = 0
        self.shards_started = 0

    def submit(self) -> None:
        while self.idle and not (self.exhausted or self.stopped):
            chunk = next(self.chunks, None)
            if chunk is None:
                self.exhausted = True
                return
            actor = self.idle.pop()
            self.running[actor.run.remote(chunk)] = actor

    def step(self, run_stats: type[RunStats]) -> bool:
        """Wait for the next event; ``False`` once the run is over."""
        self.submit()
        if not self.running and (self.exhausted or self.stopped or not self.starting):
            return False
        waitables = [*self.running, *self.starting]
        ready, _ = self.ray.wait(waitables, num_returns=1)
        for waitable in ready:
            if waitable in self.starting:
                self._started(waitable)
                continue
            self._take(waitable, run_stats)
        return True

    def _started(self, ref: Any) -> None:
        actor = self.starting.pop(ref)
        info = _get(self.ray, ref)
        if not info["has_key"]:
            from langchain_holysheep.errors import (  # noqa: PLC0415
                HolySheepMissingAPIKeyError,
            )

            raise HolySheepMissingAPIKeyError
        self.shards_started += 1
        logger.info(
            "Ray shard %d of %d started: process %d on node %s",
            self.shards_started,
            self.shards,
            info["pid"],
            info["node"],
        )
        self.idle.append(actor)

    def _take(self, generator: Any, run_stats: type[RunStats]) -> None:
        try:
            ref = next(generator)
        except StopIteration:
            self.idle.append(self.running.pop(generator))
            return
        item = _get(self.ray, ref)
        if isinstance(item, run_stats):
            self.written += item.written
            self.sent += item.sent
            self.stopped = self.stopped or item.budget_stopped
            return
        for result in item:
            self.on_result(result)


def _get(ray: Any, ref: Any) -> Any:
    """``ray.get``, re-raising a shard's own error as itself (no Ray wrapper)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

        cause = getattr(error, "cause", None)
        if isinstance(cause, HolySheepError):
            raise cause from error
        raise


def run_on_ray(
    requests: Iterable[BatchRequest],
    settings: BatchSettings,
    *,
    on_result: Callable[[LineResult], None],
    budget_usd: Decimal | None,
    address: str | None,
    workers: int | None,
    chunk_size: int | None = None,
) -> RunStats:
    """Send ``requests`` from Ray actors; call ``on_result`` here for each answer.

    Ray is started with ``ray.init(address=address)`` unless this process is
    already connected (then that cluster is used and left running). Without an
    address: the cluster ``RAY_ADDRESS`` names if set, else a new local Ray,
    shut down at the end.

    Args:
        requests: The requests to send, streamed (read a chunk at a time).
        settings: The run's settings (``concurrency`` is per shard; the rates
            are the key's, split between the shards without ``redis_url``).
        on_result: Called in this thread once per finished request.
        budget_usd: The run's budget, shared by every shard (Redis with
            ``settings.redis_url``, else one budget actor), or ``None``.
        address: The Ray cluster (``ray://host:10001``, ``auto``, ``local``) or
            ``None``.
        workers: The number of shards (Ray actors); default: one per CPU of the
            cluster, up to :data:`DEFAULT_MAX_WORKERS`.
        chunk_size: Requests per chunk (default: :data:`DEFAULT_CHUNK_SIZE` times
            the concurrency).

    Returns:
        The lines written and requests sent by all shards, and whether the
        budget stopped the run.

    Raises:
        HolySheepInputError: Ray is not installed, or a bad ``workers`` or
            ``address``.
        HolySheepMissingAPIKeyError: A shard has no API key in its environment.
    """
    _check_arguments(address, workers, chunk_size)
    ray = import_ray()
    from langchain_holysheep.batch._engine import RunStats  # noqa: PLC0415

    started = not ray.is_initialized()
    if started:
        ray.init(
            address=_init_address(address),
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    actors: list[Any] = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = _worker_count(workers, cpus)
        shards = shard_settings(settings, count)
        keeper = None
        if budget_usd is not None and settings.redis_url is None:
            keeper = (
                ray.remote(_BudgetKeeper)
                .options(num_cpus=0)
                .remote(usd_to_nano(budget_usd))
            )
            actors.append(keeper)
        shard_class = ray.remote(_Shard).options(
            num_cpus=min(1.0, max(cpus, 1) / count), scheduling_strategy="SPREAD"
        )
        size = chunk_size or DEFAULT_CHUNK_SIZE * settings.concurrency
        driver = _Driver(ray, requests, size, on_result)
        driver.shards = len(shards)
        for shard in shards:
            actor = shard_class.remote(shard, budget_usd, keeper)
            actors.append(actor)
            driver.starting[actor.ready.remote()] = actor
        while driver.step(RunStats):
            pass
        return RunStats(
            written=driver.written, sent=driver.sent, budget_stopped=driver.stopped
        )
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
