"""The HTTP clients our pooled ``openai`` clients are built on.

Both are the SDK's defaults with the response hooks ``_client`` passes (the
rate limiter's 429 watch). The async one has one more change, below.

The async client is the SDK's default (``openai.DefaultAsyncHttpxClient``: httpx2
over an httpcore2 pool, the SDK's connection limits and timeouts) with one change:
when the pool asks an idle connection whether the server has closed it, the answer
is one ``poll`` of the socket.

Why: each time a request takes a connection or gives one back, httpcore2 asks that
question of every idle connection in the pool. Through anyio, every answer first
rebuilds the socket's attribute table, ``getpeername`` system call included (about
10 µs). LangChain's ``ainvoke`` leaves each connection idle for a few event-loop
turns between calls (its ``agenerate`` gathers and its callback manager shields), so
at 100 concurrent calls about a hundred idle connections are checked per request,
and those checks were the largest single cost of the whole call
(``benchmarks/diagnose_ainvoke.py``). The answer is the same socket readability
check httpcore2 makes; only its cost changes.

The change needs two private attributes (the transport's pool and the pool's
network backend). If a future httpx2 or httpcore2 moves them, the client is the
SDK's default, unchanged, and ``tests/integration_tests/test_transport.py`` fails, so
the loss is noticed.

A user's own ``http_async_client`` is never touched.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING, Any

import httpcore2
import httpx2
import openai

if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Awaitable, Callable

__all__ = ["default_async_http_client", "default_sync_http_client"]


class _SocketOnceStream(httpcore2.AsyncNetworkStream):
    """A stream that looks its socket up once, not on every idle check.

    The socket is registered with a poller once, so a check is one ``poll``
    system call: readable means the server closed the connection (or sent
    something unasked), and either way it must not be reused. A closed socket's
    ``fileno()`` is -1 and is checked first, so a reused descriptor number is
    never polled for this stream. Where there is no socket or no ``select.poll``
    (Windows), the wrapped stream answers, as it would have anyway.
    """

    def __init__(self, stream: httpcore2.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket: socket.socket | None = stream.get_extra_info("socket")
        self._poller: select.poll | None = None
        if self._socket is not None and hasattr(select, "poll"):
            self._poller = select.poll()
            self._poller.register(self._socket, select.POLLIN)

    # The ``timeout`` parameters (ASYNC109) are httpcore2's interface.
    async def read(
        self,
        max_bytes: int,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore2.AsyncNetworkStream:
        upgraded = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _SocketOnceStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._is_readable()
        return self._stream.get_extra_info(info)

    def _is_readable(self) -> bool:
        if self._poller is None or self._socket is None or self._socket.fileno() < 0:
            return bool(self._stream.get_extra_info("is_readable"))
        return bool(self._poller.poll(0))


class _SocketOnceBackend(httpcore2.AsyncNetworkBackend):
    """A network backend whose streams are wrapped in ``_SocketOnceStream``."""

    def __init__(self, backend: httpcore2.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self, *args: Any, **kwargs: Any
    ) -> httpcore2.AsyncNetworkStream:
        return _SocketOnceStream(await self._backend.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(
        self, *args: Any, **kwargs: Any
    ) -> httpcore2.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(*args, **kwargs)
        return _SocketOnceStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _SyncClient(openai.DefaultHttpxClient):
    """The SDK's default sync client, closed when dropped (as the SDK's own is)."""

    def __del__(self) -> None:
        if self.is_closed:
            return
        try:  # noqa: SIM105 (``contextlib`` may be gone at interpreter exit)
            self.close()
        except Exception:  # noqa: BLE001, S110 (best effort, as the SDK's)
            pass


def default_sync_http_client(
    response_hooks: list[Callable[[httpx2.Response], None]] | None = None,
) -> httpx2.Client:
    """Build the SDK's default sync HTTP client, with ``response_hooks``.

    Args:
        response_hooks: ``httpx`` response event hooks to install.

    Returns:
        A new client; the ``openai.OpenAI`` built on it closes it.
    """
    return _SyncClient(event_hooks={"response": list(response_hooks or [])})


def default_async_http_client(
    response_hooks: list[Callable[[httpx2.Response], Awaitable[None]]] | None = None,
) -> httpx2.AsyncClient:
    """Build the SDK's default async HTTP client, with the cheap idle-connection check.

    Args:
        response_hooks: ``httpx`` response event hooks to install.

    Returns:
        A new client (one pool); the ``openai.AsyncOpenAI`` built on it closes it.
    """
    transport = httpx2.AsyncHTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(pool, httpcore2.AsyncConnectionPool) and backend is not None:
        pool._network_backend = _SocketOnceBackend(backend)  # noqa: SLF001
    return openai.DefaultAsyncHttpxClient(
        transport=transport, event_hooks={"response": list(response_hooks or [])}
    )
