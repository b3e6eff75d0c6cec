"""The Redis backend: the GCRA script in one round trip, sync and async.

``redis`` (redis-py, the ``langchain-holysheep[redis]`` extra) is imported only
here, and only when a limiter is given a Redis URL. Every call is one
``EVALSHA``; the first (and the first after Redis lost its script cache, on
``NOSCRIPT``) is an ``EVAL``, which also caches the script. Clients fail fast
(a short socket timeout, no retries): the limiter falls back to its local limits
rather than wait for Redis.

Async clients are bound to their event loop, one per loop, and closed when the
loop shuts down (the same hook ``_client`` uses), so no socket outlives its loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.errors import HolySheepInputError
from langchain_holysheep.ratelimit._gcra import (
    BLOCK_SCRIPT,
    GCRA_SCRIPT,
    MICROS,
    Booking,
    Charge,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import redis
    import redis.asyncio

__all__ = [
    "AsyncClients",
    "RedisGCRA",
    "Script",
    "check_url",
    "client_options",
    "describe_error",
    "import_redis",
    "mask_url",
    "sync_client",
]

_SCHEMES: Final = ("redis", "rediss", "unix")
_EXTRA_HINT: Final = (
    "HolySheepRateLimiter(redis_url=...) needs redis-py: install the extra with "
    "`pip install 'langchain-holysheep[redis]'` (or `pip install redis`), or pass "
    "redis_url=None (and unset HOLYSHEEP_REDIS_URL) to limit in this process only."
)


def import_redis() -> Any:
    """Import redis-py, or say which extra installs it.

    Returns:
        The ``redis`` module.

    Raises:
        ImportError: If redis-py is not installed; the message names the extra.
    """
    try:
        import redis  # noqa: PLC0415  (optional dependency, loaded on use)
        import redis.asyncio  # noqa: PLC0415
    except ImportError as error:
        raise ImportError(_EXTRA_HINT, name="redis") from error
    return redis


def mask_url(url: str) -> str:
    """``url`` with its credentials masked, for repr and logs (``_secrets``' rule).

    Args:
        url: A Redis URL, e.g. ``redis://:secret@host:6379/0``.

    Returns:
        The URL, safe to show (userinfo and ``password=`` masked).
    """
    from langchain_holysheep._secrets import mask_url as masked  # noqa: PLC0415

    return masked(url)


def describe_error(error: Exception, url: str) -> str:
    """``"<Type>: <message>"`` of a Redis error, the URL's credentials masked.

    Args:
        error: What redis-py raised.
        url: The Redis URL in use.

    Returns:
        One short line, safe to log.
    """
    from langchain_holysheep._secrets import (  # noqa: PLC0415
        credential_values,
        mask_text,
    )

    text = f"{type(error).__name__}: {error}"
    return mask_text(text, credential_values(base_url=url))[:300]


def check_url(url: str) -> None:
    """Refuse what is not a Redis URL, before anything connects.

    Args:
        url: The URL to check.

    Raises:
        HolySheepInputError: If it is not a ``redis://``, ``rediss://`` or
            ``unix://`` URL.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in _SCHEMES:
        raise HolySheepInputError(
            f"redis_url {mask_url(url)!r} is not a Redis URL: use "
            "redis://[[user]:password@]host[:port][/db], rediss://... (TLS) or "
            "unix:///path/to/redis.sock."
        )


def client_options(timeout: float) -> dict[str, Any]:
    """redis-py options for a client that fails fast (the caller falls back).

    Args:
        timeout: Connect and read timeout in seconds.

    Returns:
        Keyword arguments for ``Redis.from_url``.
    """
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }


def sync_client(url: str, timeout: float) -> redis.Redis:
    """A sync redis-py client for ``url``, with no retries (nothing connects yet).

    Args:
        url: A Redis URL (see :func:`check_url`).
        timeout: Connect and read timeout in seconds.

    Returns:
        The client.

    Raises:
        HolySheepInputError: If the URL is malformed.
        ImportError: If redis-py is not installed.
    """
    check_url(url)
    module = import_redis()
    try:
        client: redis.Redis = module.Redis.from_url(
            url,
            retry=module.retry.Retry(module.backoff.NoBackoff(), 0),
            **client_options(timeout),
        )
    except ValueError as error:
        reason = describe_error(error, url).removeprefix("ValueError: ")
        raise HolySheepInputError(
            f"redis_url {mask_url(url)!r} is malformed: {reason}"
        ) from None
    return client


class Script:
    """A Lua script run in one call each time, on a fresh server too.

    The first call is an ``EVAL`` (which also caches the script on the
    server), the next ones ``EVALSHA``, and ``EVAL`` again on ``NOSCRIPT``
    (Redis restarted or flushed its script cache).
    """

    def __init__(self, source: str) -> None:
        """Prepare the script (nothing is sent yet).

        Args:
            source: The Lua source.

        Raises:
            ImportError: If redis-py is not installed.
        """
        self.source = source
        self.sha1 = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._no_script = import_redis().exceptions.NoScriptError
        self._sent = False

    def run(self, client: redis.Redis, *args: Any) -> Any:
        """Run the script: ``numkeys, *keys, *argv`` as ``EVAL`` takes them.

        Args:
            client: A sync client.
            *args: The number of keys, the keys, then the arguments.

        Returns:
            The script's reply.
        """
        if not self._sent:
            reply = client.eval(self.source, *args)
            self._sent = True
            return reply
        try:
            return client.evalsha(self.sha1, *args)
        except self._no_script:
            return client.eval(self.source, *args)

    async def arun(self, client: redis.asyncio.Redis, *args: Any) -> Any:
        """Async :meth:`run`.

        Args:
            client: An async client (of the running loop).
            *args: The number of keys, the keys, then the arguments.

        Returns:
            The script's reply.
        """
        if not self._sent:
            reply = await client.eval(self.source, *args)
            self._sent = True
            return reply
        try:
            return await client.evalsha(self.sha1, *args)
        except self._no_script:
            return await client.eval(self.source, *args)


class AsyncClients:
    """One async redis-py client per event loop, closed when its loop shuts down.

    Async clients are bound to the loop they were made on; this keeps one per
    loop (weakly, so a finished loop is not kept alive) with the same fail-fast
    options as :func:`sync_client`.
    """

    def __init__(self, url: str, timeout: float) -> None:
        """Prepare (nothing connects yet).

        Args:
            url: A Redis URL (see :func:`check_url`).
            timeout: Connect and read timeout in seconds.

        Raises:
            HolySheepInputError: If the URL is not a Redis URL.
            ImportError: If redis-py is not installed.
        """
        check_url(url)
        self._redis = import_redis()
        self._url = url
        self._kwargs = client_options(timeout)
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            tuple[redis.asyncio.Redis, AsyncGenerator[None, None]],
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> redis.asyncio.Redis:
        """The running loop's client, made on first use.

        Returns:
            The client.
        """
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        module = self._redis
        client: redis.asyncio.Redis = module.asyncio.Redis.from_url(
            self._url,
            retry=module.asyncio.retry.Retry(module.backoff.NoBackoff(), 0),
            **self._kwargs,
        )
        closer = _close_on_loop_shutdown(client)
        await closer.__anext__()  # registers with the loop's shutdown hook
        self._clients[loop] = (client, closer)
        return client


def _script_args(
    blocks: tuple[str, ...], charges: tuple[Charge, ...], max_wait: float | None
) -> list[Any]:
    """``numkeys, *keys, *args`` for the script (see ``_gcra.GCRA_SCRIPT``)."""
    max_wait_us = -1 if max_wait is None else round(max_wait * MICROS)
    keys = [*blocks, *(c.key for c in charges)]
    per_limit = [repr(v) for c in charges for v in (c.increment_us, c.correction_us)]
    return [len(keys), *keys, max_wait_us, len(blocks), *per_limit]


def _booking(reply: Any) -> Booking:
    booked, wait_us = reply
    return Booking(booked=int(booked) == 1, wait=max(0, int(wait_us)) / MICROS)


class RedisGCRA:
    """GCRA on one Redis server (or Cluster slot), sync and async."""

    def __init__(self, url: str, timeout: float) -> None:
        """Check ``url`` and prepare a client (no connection is made yet).

        Args:
            url: ``redis://``, ``rediss://`` or ``unix://`` URL.
            timeout: Connect and read timeout in seconds.

        Raises:
            HolySheepInputError: If the URL is malformed.
            ImportError: If redis-py is not installed.
        """
        self._client: redis.Redis = sync_client(url, timeout)
        self._async_clients = AsyncClients(url, timeout)
        # Every call is one script call, even on a fresh server.
        self._gcra = Script(GCRA_SCRIPT)

    @property
    def client(self) -> redis.Redis:
        """The sync client (for tests and ``holysheep status``)."""
        return self._client

    def book(
        self,
        blocks: tuple[str, ...],
        charges: tuple[Charge, ...],
        max_wait: float | None,
    ) -> Booking:
        """Run the script once (``EVAL`` if Redis lacks it).

        Args:
            blocks: Block keys to honour.
            charges: What the call costs against each limit.
            max_wait: The longest acceptable wait in seconds (``None``: any).

        Returns:
            The booking, on Redis's clock.
        """
        args = _script_args(blocks, charges, max_wait)
        return _booking(self._gcra.run(self._client, *args))

    async def abook(
        self,
        blocks: tuple[str, ...],
        charges: tuple[Charge, ...],
        max_wait: float | None,
    ) -> Booking:
        """Async :meth:`book`, on this event loop's client.

        Args:
            blocks: Block keys to honour.
            charges: What the call costs against each limit.
            max_wait: The longest acceptable wait in seconds (``None``: any).

        Returns:
            The booking, on Redis's clock.
        """
        client = await self._async_clients.get()
        args = _script_args(blocks, charges, max_wait)
        return _booking(await self._gcra.arun(client, *args))

    def block(self, key: str, seconds: float) -> None:
        """Lengthen ``key``'s block to ``seconds`` from now (one ``EVAL``).

        Args:
            key: The block key.
            seconds: The block's length.
        """
        self._client.eval(BLOCK_SCRIPT, 1, key, round(seconds * MICROS))

    async def ablock(self, key: str, seconds: float) -> None:
        """Async :meth:`block`.

        Args:
            key: The block key.
            seconds: The block's length.
        """
        client = await self._async_clients.get()
        await client.eval(BLOCK_SCRIPT, 1, key, round(seconds * MICROS))

    def close(self) -> None:
        """Close the sync client's connections (they reopen on next use)."""
        self._client.close()


async def _close_on_loop_shutdown(
    client: redis.asyncio.Redis,
) -> AsyncGenerator[None, None]:
    """Park until the loop shuts its async generators down, then close ``client``."""
    try:
        yield
    finally:
        await client.aclose()
