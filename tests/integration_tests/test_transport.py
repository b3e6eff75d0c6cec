"""The default async HTTP client: the SDK's own, with a cheap idle-connection check.

The change lives in two private attributes of httpx2/httpcore2 (see
``langchain_holysheep/_transport.py``), so these tests look inside the pool on
purpose: if an upgrade moves those attributes, the first test fails and says so.
"""

from __future__ import annotations

import asyncio

import httpcore2
import httpx2
import openai

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._client import get_async_client
from langchain_holysheep._transport import (
    _SocketOnceBackend,
    _SocketOnceStream,
    default_async_http_client,
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
