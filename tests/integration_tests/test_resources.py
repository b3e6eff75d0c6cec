"""Resources: event loops and connection pools are released, over real HTTP."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from langchain_holysheep import _client

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
