"""The SDK clients our pools are, and the HTTP clients they are built on.

Both HTTP clients are the SDK's own defaults (``openai.DefaultHttpxClient`` and
``openai.DefaultAsyncHttpxClient``: httpx2 over an httpcore2 pool, the SDK's
connection limits and timeouts) with two changes, made in the pool's network
backend:

* every socket wait (connect, write, read) is capped at the time left before the
  call's ``total_timeout`` deadline (:mod:`langchain_holysheep._deadline`), and
  fails as the transport's own timeout once none is left: the SDK and the error
  mapping treat it like any other timeout. Without a deadline this is one
  context-variable lookup per socket operation;
* (async only) when the pool asks an idle connection whether the server has
  closed it, the answer is one ``poll`` of the socket.

They also carry the response hooks ``_client`` passes (the rate limiter's 429
watch).

The SDK client classes (:class:`HolySheepOpenAI`, :class:`HolySheepAsyncOpenAI`)
change one thing: a wait before a retry that could not start before the deadline
ends the call at once (a timeout), instead of sleeping past it.

Why: each time a request takes a connection or gives one back, httpcore2 asks that
question of every idle connection in the pool. Through anyio, every answer first
rebuilds the socket's attribute table, ``getpeername`` system call included (about
10 µs). LangChain's ``ainvoke`` leaves each connection idle for a few event-loop
turns between calls (its ``agenerate`` gathers and its callback manager shields), so
at 100 concurrent calls about a hundred idle connections are checked per request,
and those checks were the largest single cost of the whole call
(``benchmarks/diagnose_ainvoke.py``). The answer is the same socket readability
check httpcore2 makes; only its cost changes.

The network change needs two private attributes (the transport's pool and the
pool's network backend), and the retry change overrides one private SDK method
(``_calculate_retry_timeout``). If a future httpx2, httpcore2 or openai moves
them, the clients are the SDK's defaults, unchanged, and
``tests/integration_tests/test_transport.py`` fails, so the loss is noticed.

A user's own ``http_async_client`` is never touched.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING, Any

import httpcore2
import httpx2
import openai

from langchain_holysheep._deadline import current

if TYPE_CHECKING:
    import socket
    import ssl
    from collections.abc import Awaitable, Callable, Iterable

    from openai._models import FinalRequestOptions

__all__ = [
    "HolySheepAsyncOpenAI",
    "HolySheepOpenAI",
    "default_async_http_client",
    "default_sync_http_client",
]


def _capped(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout``, cut to the time left before the current deadline (if any).

    Raises:
        Exception: ``error`` (a transport timeout) when no time is left.
    """
    deadline = current()
    if deadline is None:
        return timeout
    left = deadline.left()
    if left <= 0 or deadline.expired:
        deadline.trip()
        raise error(f"total_timeout of {deadline.seconds:g} s reached")
    return left if timeout is None or timeout > left else timeout


def _retry_wait(
    client: openai.OpenAI | openai.AsyncOpenAI,
    wait: float,
    options: FinalRequestOptions,
) -> float:
    """The SDK's wait before a retry, unless the retry could not beat the deadline.

    Raises:
        openai.APITimeoutError: The retry would start too late: the call ends now.
    """
    deadline = current()
    if deadline is None or wait < deadline.left():
        return wait
    deadline.trip()
    url = client._prepare_url(options.url)  # noqa: SLF001
    raise openai.APITimeoutError(request=httpx2.Request(options.method, url))


class HolySheepOpenAI(openai.OpenAI):
    """``openai.OpenAI`` whose retries never sleep past a ``total_timeout``."""

    def _calculate_retry_timeout(
        self,
        remaining_retries: int,
        options: FinalRequestOptions,
        response_headers: httpx2.Headers | None = None,
    ) -> float:
        wait = super()._calculate_retry_timeout(
            remaining_retries, options, response_headers
        )
        return _retry_wait(self, wait, options)


class HolySheepAsyncOpenAI(openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` whose retries never sleep past a ``total_timeout``."""

    def _calculate_retry_timeout(
        self,
        remaining_retries: int,
        options: FinalRequestOptions,
        response_headers: httpx2.Headers | None = None,
    ) -> float:
        wait = super()._calculate_retry_timeout(
            remaining_retries, options, response_headers
        )
        return _retry_wait(self, wait, options)


class _DeadlineStream(httpcore2.NetworkStream):
    """A sync stream whose waits end at the call's deadline."""

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream

    # Reads and writes ask for the deadline inline: without one (the usual
    # call) that is the only work added to the stream's own.
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if current() is not None:
            timeout = _capped(timeout, httpcore2.ReadTimeout)
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if current() is not None:
            timeout = _capped(timeout, httpcore2.WriteTimeout)
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        timeout = _capped(timeout, httpcore2.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, timeout)
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    """A sync network backend whose connections end their waits at the deadline."""

    def __init__(self, backend: httpcore2.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        timeout = _capped(timeout, httpcore2.ConnectTimeout)
        stream = self._backend.connect_tcp(
            host, port, timeout, local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        timeout = _capped(timeout, httpcore2.ConnectTimeout)
        stream = self._backend.connect_unix_socket(path, timeout, socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _SyncHttpClient(openai.DefaultHttpxClient):
    """The SDK's default sync client, closed when collected (as the SDK's own is).

    Sync pools live for the process; without this their sockets would be
    reported unclosed when the interpreter exits.
    """

    def __del__(self) -> None:
        if self.is_closed:
            return
        # Module globals may be gone at interpreter exit: no ``contextlib`` here.
        try:  # noqa: SIM105
            self.close()
        except Exception:  # noqa: BLE001, S110  (as the SDK's own wrapper does)
            pass


def _wrap_network_backend(
    transport: httpx2.HTTPTransport | httpx2.AsyncHTTPTransport,
    pool_type: type[httpcore2.ConnectionPool | httpcore2.AsyncConnectionPool],
    wrap: Callable[[Any], Any],
) -> None:
    """Put ``wrap`` around the network backend of ``transport``'s pool.

    Left as it is if an httpx2/httpcore2 upgrade moved the attributes
    (``tests/integration_tests/test_transport.py`` fails then).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(pool, pool_type) and backend is not None:
        pool._network_backend = wrap(backend)  # noqa: SLF001


def default_sync_http_client(
    response_hooks: list[Callable[[httpx2.Response], None]] | None = None,
) -> httpx2.Client:
    """Build the SDK's default sync HTTP client, with waits capped at the deadline.

    Args:
        response_hooks: ``httpx`` response event hooks to install (``_client``
            passes the rate limiter's 429 watch).

    Returns:
        A new client (one pool); the ``openai.OpenAI`` built on it closes it.
    """
    transport = httpx2.HTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
    _wrap_network_backend(transport, httpcore2.ConnectionPool, _DeadlineBackend)
    return _SyncHttpClient(
        transport=transport, event_hooks={"response": list(response_hooks or [])}
    )


class _SocketOnceStream(httpcore2.AsyncNetworkStream):
    """A stream that looks its socket up once, and ends its waits at the deadline.

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
        if current() is not None:  # inline, as in ``_DeadlineStream``
            timeout = _capped(timeout, httpcore2.ReadTimeout)
        return await self._stream.read(max_bytes, timeout)

    async def write(
        self,
        buffer: bytes,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        if current() is not None:
            timeout = _capped(timeout, httpcore2.WriteTimeout)
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore2.AsyncNetworkStream:
        timeout = _capped(timeout, httpcore2.ConnectTimeout)
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
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        timeout = _capped(timeout, httpcore2.ConnectTimeout)
        stream = await self._backend.connect_tcp(
            host, port, timeout, local_address, socket_options
        )
        return _SocketOnceStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        timeout = _capped(timeout, httpcore2.ConnectTimeout)
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        return _SocketOnceStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def default_async_http_client(
    response_hooks: list[Callable[[httpx2.Response], Awaitable[None]]] | None = None,
) -> httpx2.AsyncClient:
    """Build the SDK's default async HTTP client, with the cheap idle-connection check.

    Args:
        response_hooks: ``httpx`` response event hooks to install (``_client``
            passes the rate limiter's 429 watch).

    Returns:
        A new client (one pool); the ``openai.AsyncOpenAI`` built on it closes it.
    """
    transport = httpx2.AsyncHTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
    _wrap_network_backend(transport, httpcore2.AsyncConnectionPool, _SocketOnceBackend)
    return openai.DefaultAsyncHttpxClient(
        transport=transport, event_hooks={"response": list(response_hooks or [])}
    )
