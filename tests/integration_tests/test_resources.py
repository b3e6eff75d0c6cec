"""Resources: event loops and connection pools are released, over real HTTP."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from langchain_holysheep import ChatHolySheep, _client
from langchain_holysheep.fallback import ChatHolySheepFallback

RUNS = 25


def _alive(refs):
    gc.collect()
    return [ref for ref in refs if ref() is not None]


@pytest.mark.parametrize("mode", ["ainvoke", "astream"])
def test_no_closed_event_loop_survives_asyncio_run(gw, model, mode):
    """Regression: every ``asyncio.run(llm.ainvoke(...))`` kept its loop alive.

    The per-loop client entry held the closer generator, which holds the loop's
    finalizer hook (a bound method of the loop): 10,000 Celery tasks, 10,000
    loops and their pools in memory.
    """
    loops = []

    async def one_call():
        loops.append(weakref.ref(asyncio.get_running_loop()))
        if mode == "ainvoke":
            return (await model.ainvoke("hi")).content
        return "".join([c.text async for c in model.astream("hi")])

    for _ in range(RUNS):
        assert asyncio.run(one_call()) == "Offline reply to: hi"
    assert _alive(loops) == []
    assert not any(ref() in _client._async_clients for ref in loops)


def test_a_loop_closed_without_shutdown_is_forgotten(gw, model):
    """A loop closed by hand (no ``shutdown_asyncgens``) is dropped later."""
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(model.ainvoke("hi")).content
    loop.run_until_complete(model.aclose())  # its sockets; the entry stays
    loop.close()  # the closer generator never ran
    ref = weakref.ref(loop)
    del loop
    asyncio.run(model.ainvoke("again"))  # a new loop's first client prunes
    assert _alive([ref]) == []


# ------------------------------------------------- the fallback chain's pools
CHAIN_KEY = "cr_resources_chain_key_0123456"


def _chain(gw, *models):
    return ChatHolySheepFallback(
        models=list(models or ("mistral-small-2603", "gemini-2.5-flash")),
        base_url=gw.base_url,
        api_key=CHAIN_KEY,
    )


def _config(chain):
    member = chain._members()[0].model
    return member._client_config(member.http_client)


def test_chain_close_releases_its_members_pool(gw):
    chain = _chain(gw)
    chain.invoke("a")
    config = _config(chain)
    assert config in _client._sync_clients
    chain.close()
    assert config not in _client._sync_clients
    chain.close()  # twice is fine
    assert chain.invoke("b").content == "Offline reply to: b"
    assert config in _client._sync_clients  # rebuilt on the next call
    chain.close()


async def test_chain_aclose_releases_this_loops_pool(gw):
    chain = _chain(gw)
    await chain.ainvoke("a")
    config = _config(chain)
    clients, _ = _client._async_clients[asyncio.get_running_loop()]
    assert config in clients
    await chain.aclose()
    assert config not in clients
    assert (await chain.ainvoke("b")).content == "Offline reply to: b"


def test_chain_close_leaves_other_providers_members_alone(gw):
    other = FakeListChatModel(responses=["x"])
    chain = ChatHolySheepFallback(
        models=[ChatHolySheep(base_url=gw.base_url, api_key=CHAIN_KEY), other]
    )
    chain.invoke("a")
    chain.close()
    asyncio.run(chain.aclose())
    assert other.invoke("still here").content == "x"
