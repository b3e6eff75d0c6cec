"""The one place that builds ``openai`` clients, and shares them.

Clients are expensive (a connection pool each) and must not be built per call, so:

* sync clients are shared process-wide, one per :class:`ClientConfig`;
* async clients are shared per event loop *and* config, and are never reused on
  another loop (a pooled ``AsyncClient`` from a closed loop fails with "Event loop
  is closed"). When a loop shuts down (``asyncio.run`` returning, a pytest-asyncio
  test ending) its clients are closed through the loop's async-generator shutdown
  hook, so no socket outlives its loop, and the loop is forgotten: nothing here
  keeps a closed loop alive (10,000 ``asyncio.run`` calls leave memory flat).

Timeouts and retries are *not* part of the key: they are sent per request, so a
fallback chain's members (retries off) share the primary's pool.

Building a client is also the last gate before anything is sent: a credential
that is still a masked placeholder (``***``, copied from a ``repr`` or a
``dumps``) is refused, and the client's credentials are handed to
:mod:`~langchain_holysheep._log_masking`, so the SDK's own log lines mask them.
:func:`client_credentials` reads them back from a client when an error needs
masking.

The HTTP clients we build (not a user's own ``http_client``) carry one response
hook, ``ratelimit.limiter.on_response`` / ``aon_response``: a 429 they see,
including one the SDK then retries by itself, blocks a ``HolySheepRateLimiter``'s
fleet, and a 429 that gives its wait only in ``x-ratelimit-reset-*`` gets the
matching ``retry-after-ms`` for the SDK's own retry.

``openai`` (and ``_transport``, which needs it) is imported here lazily: importing
langchain-holysheep stays cheap.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_holysheep._secrets import credential_values, placeholder_slot

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping

    import openai

_ClientT = TypeVar("_ClientT", "openai.OpenAI", "openai.AsyncOpenAI")

__all__ = [
    "ClientConfig",
    "aclose_async_clients",
    "client_credentials",
    "close_sync_client",
    "get_async_client",
    "get_sync_client",
]


@lru_cache(maxsize=64)
def _key_digest(api_key: str) -> str:
    """SHA-256 of a key, computed once per key (configs are rebuilt per call)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class ClientConfig:
    """Everything that decides which pooled client a model uses.

    The key itself is kept out of ``repr`` and out of equality (its digest is
    compared instead), so a config can be logged and used as a dict key safely.
    """

    base_url: str
    api_key: str = field(repr=False, compare=False)
    default_headers: tuple[tuple[str, str], ...] = ()
    default_query: tuple[tuple[str, str], ...] = ()
    http_client: Any = field(default=None, compare=False, repr=False)
    key_digest: str = field(init=False, repr=False)
    http_client_id: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Derive the comparable stand-ins for the key and the user's client."""
        object.__setattr__(self, "key_digest", _key_digest(self.api_key))
        object.__setattr__(self, "http_client_id", id(self.http_client))

    @classmethod
    def create(
        cls,
        *,
        base_url: str,
        api_key: str,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, object] | None = None,
        http_client: Any = None,
    ) -> ClientConfig:
        """Build a hashable config from a model's settings.

        Args:
            base_url: The gateway URL, ending in ``/v1``.
            api_key: The API key.
            default_headers: Headers sent with every request.
            default_query: Query parameters sent with every request.
            http_client: A user-supplied ``httpx``/``httpx2`` client, if any.

        Returns:
            The config.
        """
        return cls(
            base_url=base_url,
            api_key=api_key,
            default_headers=tuple(sorted((default_headers or {}).items())),
            default_query=tuple(
                sorted((k, str(v)) for k, v in (default_query or {}).items())
            ),
            http_client=http_client,
        )

    def credential_values(self) -> tuple[str, ...]:
        """Every credential of this config, as ``_secrets.credential_values``."""
        return credential_values(
            api_key=self.api_key,
            base_url=self.base_url,
            headers=self.default_headers,
            query=self.default_query,
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``openai.OpenAI``/``openai.AsyncOpenAI``."""
        kwargs: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "default_headers": dict(self.default_headers) or None,
            "default_query": dict(self.default_query) or None,
            # Timeouts and retries are sent per request by the model.
            "max_retries": 0,
        }
        if self.http_client is not None:
            kwargs["http_client"] = self.http_client
        return kwargs


def _checked_kwargs(config: ClientConfig) -> dict[str, Any]:
    """The client's keyword arguments, once its credentials pass the last gate.

    A masked placeholder is never sent where a credential belongs, and the
    SDK's loggers learn the credentials they must mask.

    Raises:
        HolySheepInputError: A credential is a masked placeholder (``***``).
    """
    slot = placeholder_slot(
        api_key=config.api_key,
        base_url=config.base_url,
        headers=dict(config.default_headers),
        query=dict(config.default_query),
    )
    if slot is not None:
        from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

        msg = (
            f"{slot} is the masked placeholder '***' that repr(), dumps() and "
            "logs show, not a credential; nothing was sent. Pass the real value "
            "(a model restored with langchain_core.load needs secrets_map=...)."
        )
        raise HolySheepInputError(msg)
    from langchain_holysheep._log_masking import protect  # noqa: PLC0415

    protect(config.credential_values())
    return config.client_kwargs()


def client_credentials(client: openai.OpenAI | openai.AsyncOpenAI) -> tuple[str, ...]:
    """The credentials an SDK client sends, to mask out of its errors.

    Read from the client's public settings (key, base URL, default headers and
    query), so it also covers a client built around a user's ``http_client``.

    Args:
        client: The SDK client.

    Returns:
        As ``_secrets.credential_values``.
    """
    return credential_values(
        api_key=client.api_key,
        base_url=str(client.base_url),
        headers=client.default_headers,
        query=client.default_query,
    )


def _for_holysheep(client: _ClientT) -> _ClientT:
    """Stop the SDK from sending the user's OpenAI account ids to the gateway.

    The SDK reads ``OPENAI_ORG_ID``/``OPENAI_PROJECT_ID`` from the environment and
    sends them as ``OpenAI-Organization``/``OpenAI-Project`` headers; they mean
    nothing to HolySheep and are not its business.
    """
    client.organization = None
    client.project = None
    return client


_lock = threading.Lock()
_sync_clients: dict[ClientConfig, openai.OpenAI] = {}
_LoopClients = dict[ClientConfig, "openai.AsyncOpenAI"]
_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[_LoopClients, AsyncGenerator[None, None]]
] = weakref.WeakKeyDictionary()


def get_sync_client(config: ClientConfig) -> openai.OpenAI:
    """Return the process-wide sync client for ``config``, building it once.

    Args:
        config: The connection settings.

    Returns:
        The shared client.
    """
    client = _sync_clients.get(config)
    if client is not None:
        return client
    from langchain_holysheep._transport import (  # noqa: PLC0415  (loads openai)
        HolySheepOpenAI,
        default_sync_http_client,
    )
    from langchain_holysheep.ratelimit.limiter import on_response  # noqa: PLC0415

    with _lock:
        client = _sync_clients.get(config)
        if client is None:
            kwargs = _checked_kwargs(config)
            if "http_client" not in kwargs:
                kwargs["http_client"] = default_sync_http_client([on_response])
            client = _for_holysheep(HolySheepOpenAI(**kwargs))
            _sync_clients[config] = client
    return client


def close_sync_client(config: ClientConfig) -> None:
    """Close and forget the shared sync client for ``config`` (rebuilt on next use).

    A client built around a user-supplied ``http_client`` is forgotten but the
    user's client is left open: its owner closes it.

    Args:
        config: The connection settings.
    """
    with _lock:
        client = _sync_clients.pop(config, None)
    if client is not None and config.http_client is None:
        client.close()


async def _close_on_loop_shutdown(
    loop: asyncio.AbstractEventLoop, clients: _LoopClients
) -> AsyncGenerator[None, None]:
    """Park until the loop shuts its async generators down, then close ``clients``.

    ``asyncio.run`` (and every ``asyncio.Runner``) calls ``shutdown_asyncgens``
    before closing the loop, which resumes this generator with ``GeneratorExit``.
    The loop's entry is then removed: the generator holds the loop's finalizer
    hook (a bound method of the loop), so an entry left behind would keep every
    closed loop, and its clients, alive for the life of the process.
    """
    try:
        yield
    finally:
        with _lock:
            _async_clients.pop(loop, None)
        for config, client in list(clients.items()):
            if config.http_client is None:
                await client.close()
        clients.clear()


def _forget_closed_loops() -> None:
    """Drop the entries of loops closed without shutting their generators down.

    ``loop.close()`` without ``shutdown_asyncgens`` never runs the closer, so its
    entry would stay; their sockets died with the loop. Called (under ``_lock``)
    only when a loop gets its first client, so the hot path never pays for it.
    """
    for loop in [loop for loop in _async_clients if loop.is_closed()]:
        del _async_clients[loop]


async def get_async_client(config: ClientConfig) -> openai.AsyncOpenAI:
    """Return the async client for ``config`` on the running event loop.

    Args:
        config: The connection settings.

    Returns:
        A client bound to the running loop, shared by every model on that loop.
    """
    loop = asyncio.get_running_loop()
    entry = _async_clients.get(loop)
    if entry is not None and (client := entry[0].get(config)) is not None:
        return client
    if entry is None:
        clients: _LoopClients = {}
        closer = _close_on_loop_shutdown(loop, clients)
        # The first step registers the generator with the loop's shutdown hook.
        await closer.__anext__()
        entry = (clients, closer)
        with _lock:
            _forget_closed_loops()
            _async_clients[loop] = entry
    client = entry[0].get(config)
    if client is None:
        from langchain_holysheep._transport import (  # noqa: PLC0415  (loads openai)
            HolySheepAsyncOpenAI,
            default_async_http_client,
        )
        from langchain_holysheep.ratelimit.limiter import (  # noqa: PLC0415
            aon_response,
        )

        kwargs = _checked_kwargs(config)
        if "http_client" not in kwargs:
            kwargs["http_client"] = default_async_http_client([aon_response])
        client = _for_holysheep(HolySheepAsyncOpenAI(**kwargs))
        entry[0][config] = client
    return client


async def aclose_async_clients(config: ClientConfig) -> None:
    """Close and forget this loop's async client for ``config``.

    Args:
        config: The connection settings.
    """
    entry = _async_clients.get(asyncio.get_running_loop())
    if entry is None:
        return
    client = entry[0].pop(config, None)
    if client is not None and config.http_client is None:
        await client.close()
