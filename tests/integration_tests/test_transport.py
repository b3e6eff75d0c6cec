"""The default HTTP clients: the SDK's own, with a cheap idle-connection check
(async) and every socket wait capped at a ``total_timeout`` deadline (both).

The change lives in two private attributes of httpx2/httpcore2 (see
``langchain_holysheep/_transport.py``), so these tests look inside the pool on
purpose: if an upgrade moves those attributes, the first test fails and says so.
"""

from __future__ import annotations

import asyncio

import httpcore2
import httpx2
import openai
import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._client import get_async_client, get_sync_client
from langchain_holysheep._deadline import Deadline, within
from langchain_holysheep._transport import (
    HolySheepAsyncOpenAI,
    HolySheepOpenAI,
    _DeadlineBackend,
    _DeadlineStream,
    _SocketOnceBackend,
    _SocketOnceStream,
    default_async_http_client,
    default_sync_http_client,
)
from langchain_holysheep.testing import OfflineGateway, Reply

KEY = "cr_transport_test_key_0123456789"


def _pool(client: openai.AsyncOpenAI) -> httpcore2.AsyncConnectionPool:
    transport = client._client._transport  # type: ignore[attr-defined]
    pool = transport._pool
    assert isinstance(pool, httpcore2.AsyncConnectionPool)
    return pool


def _streams(pool: httpcore2.AsyncConnectionPool) -> list[_SocketOnceStream]:
    streams = [c._connection._network_stream for c in pool.connections]  # type: ignore[attr-defined]
    assert streams, "the pool holds no connection"
    assert all(isinstance(s, _SocketOnceStream) for s in streams)
    return streams


async def _pooled_client(model: ChatHolySheep) -> openai.AsyncOpenAI:
    return await get_async_client(model._client_config(model.http_async_client))


def test_default_client_keeps_the_sdk_defaults():
    async def check() -> None:
        client = default_async_http_client()
        try:
            reference = openai.DefaultAsyncHttpxClient()
            assert client.timeout == reference.timeout
            assert client.follow_redirects is reference.follow_redirects is True
            pool = client._transport._pool  # type: ignore[attr-defined]
            limits = openai.DEFAULT_CONNECTION_LIMITS
            assert pool._max_connections == limits.max_connections
            assert pool._max_keepalive_connections == limits.max_keepalive_connections
            assert pool._keepalive_expiry == limits.keepalive_expiry
            assert isinstance(pool._network_backend, _SocketOnceBackend)
            await reference.aclose()
        finally:
            await client.aclose()

    asyncio.run(check())


async def test_pooled_connections_answer_the_idle_check_as_the_wrapped_stream_does():
    with OfflineGateway() as gateway:
        model = ChatHolySheep(base_url=gateway.base_url, api_key=KEY, max_retries=0)
        gateway.enqueue(Reply(content="one"), Reply(content="two"))
        await asyncio.gather(model.ainvoke("a"), model.ainvoke("b"))
        pool = _pool(await _pooled_client(model))
        streams = _streams(pool)
        for stream in streams:  # idle and open: reusable
            assert stream.get_extra_info("is_readable") is False
            assert stream._stream.get_extra_info("is_readable") is False
        assert not any(connection.has_expired() for connection in pool.connections)
    # The gateway has closed every connection: none may be reused.
    for _ in range(200):
        if all(s._stream.get_extra_info("is_readable") for s in streams):
            break
        await asyncio.sleep(0.01)
    for stream in streams:
        assert stream._stream.get_extra_info("is_readable") is True
        assert stream.get_extra_info("is_readable") is True
    assert all(connection.has_expired() for connection in pool.connections)
    await model.aclose()


async def test_other_stream_details_come_from_the_wrapped_stream():
    with OfflineGateway() as gateway:
        model = ChatHolySheep(base_url=gateway.base_url, api_key=KEY, max_retries=0)
        gateway.enqueue(Reply(content="hi"))
        await model.ainvoke("hi")
        [stream] = _streams(_pool(await _pooled_client(model)))
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", gateway.port)
        assert stream.get_extra_info("socket") is stream._socket
        await model.aclose()


async def test_wrapped_backend_delegates_every_operation():
    backend = _SocketOnceBackend(httpcore2.AsyncMockBackend([b"first", b"second"]))
    stream = await backend.connect_tcp("example.test", 443)
    assert isinstance(stream, _SocketOnceStream)
    upgraded = await stream.start_tls(ssl_context=None)  # type: ignore[arg-type]
    assert isinstance(upgraded, _SocketOnceStream)
    await upgraded.write(b"request")
    assert await upgraded.read(10) == b"first"
    # A mock stream has no socket: the wrapped stream answers the idle check.
    assert upgraded.get_extra_info("is_readable") is False
    await upgraded.aclose()
    unix = await backend.connect_unix_socket("holysheep.sock")  # a mock: no file
    assert isinstance(unix, _SocketOnceStream)
    await backend.sleep(0)


async def test_a_users_http_async_client_is_used_as_given():
    with OfflineGateway() as gateway:
        async with httpx2.AsyncClient() as mine:
            model = ChatHolySheep(
                base_url=gateway.base_url,
                api_key=KEY,
                max_retries=0,
                http_async_client=mine,
            )
            gateway.enqueue(Reply(content="hi"))
            assert (await model.ainvoke("hi")).content == "hi"
            client = await _pooled_client(model)
            assert client._client is mine
            pool = mine._transport._pool  # type: ignore[attr-defined]
            assert not isinstance(pool._network_backend, _SocketOnceBackend)
            await model.aclose()


def test_default_sync_client_keeps_the_sdk_defaults():
    client = default_sync_http_client()
    reference = openai.DefaultHttpxClient()
    try:
        assert client.timeout == reference.timeout
        assert client.follow_redirects is reference.follow_redirects is True
        pool = client._transport._pool  # type: ignore[attr-defined]
        limits = openai.DEFAULT_CONNECTION_LIMITS
        assert pool._max_connections == limits.max_connections
        assert pool._max_keepalive_connections == limits.max_keepalive_connections
        assert isinstance(pool._network_backend, _DeadlineBackend)
    finally:
        client.close()
        reference.close()


def test_pooled_clients_are_the_deadline_aware_sdk_classes():
    """If the SDK renames the retry wait we override, this says so."""
    assert "_calculate_retry_timeout" in vars(openai._base_client.BaseClient)
    with OfflineGateway() as gateway:
        model = ChatHolySheep(base_url=gateway.base_url, api_key=KEY, max_retries=0)
        client = get_sync_client(model._client_config(None))
        assert isinstance(client, HolySheepOpenAI)
        model.invoke("hi")
        pool = client._client._transport._pool  # type: ignore[attr-defined]
        streams = [c._connection._network_stream for c in pool.connections]
        assert streams
        assert all(isinstance(s, _DeadlineStream) for s in streams)

        async def pooled() -> openai.AsyncOpenAI:
            return await _pooled_client(model)

        assert isinstance(asyncio.run(pooled()), HolySheepAsyncOpenAI)
        model.close()


def test_sync_deadline_backend_caps_every_wait():
    seen: list[float | None] = []

    class Recording(httpcore2.MockStream):
        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            seen.append(timeout)
            return super().read(max_bytes, timeout)

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            seen.append(timeout)

    class Backend(httpcore2.MockBackend):
        def connect_tcp(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(kwargs.get("timeout", args[2] if len(args) > 2 else None))
            return Recording(list(self._buffer))

    backend = _DeadlineBackend(Backend([b"data"]))
    stream = backend.connect_tcp("example.test", 443, 30.0)
    stream.write(b"x", 30.0)
    assert stream.read(10, 30.0) == b"data"
    assert seen == [30.0, 30.0, 30.0]  # no deadline: as given
    seen.clear()
    with within(Deadline(0.5)):
        stream.write(b"x", 30.0)
        stream.read(10, None)
    assert all(t is not None and 0 < t <= 0.5 for t in seen)
    expired = Deadline(0.001)
    expired.trip()
    with within(expired), pytest.raises(httpcore2.ReadTimeout, match="total_timeout"):
        stream.read(10, 30.0)
    with within(Deadline(-1)), pytest.raises(httpcore2.ConnectTimeout):
        backend.connect_tcp("example.test", 443, 30.0)
    stream.close()
