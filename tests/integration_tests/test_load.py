"""Load: concurrent calls, 0 errors, every answer its own, no leaked fds.

Real HTTP against the offline gateway on 127.0.0.1. Each prompt is unique and the
gateway echoes it ("Offline reply to: <prompt>"), so a crossed or lost response
fails the test. Open file descriptors are counted before and after; the gateway
shares this process, so its server-side sockets count too and are given a moment
to close after the client hangs up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from langchain_holysheep import ChatHolySheep

KEY = "cr_load_test_key_0123456789"
FD_SLACK = 12


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def settled_fds(limit: int, wait: float = 15.0) -> int:
    """Open fds once they drop to ``limit`` (or the count after ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    count = open_fds()
    while count > limit and time.monotonic() < deadline:
        time.sleep(0.05)
        count = open_fds()
    return count


@pytest.fixture
def model(gw):
    built = ChatHolySheep(base_url=gw.base_url, api_key=KEY, max_retries=0)
    yield built
    built.close()


def expected(prompt: str) -> str:
    return f"Offline reply to: {prompt}"


def test_1000_concurrent_ainvoke_complete_without_errors_or_leaks(gw, model):
    async def run() -> list[object]:
        prompts = [f"ainvoke {i}" for i in range(1000)]
        results = await asyncio.gather(
            *(model.ainvoke(p) for p in prompts), return_exceptions=True
        )
        return [
            r if isinstance(r, BaseException) else (r.content == expected(p))
            for p, r in zip(prompts, results, strict=True)
        ]

    before = open_fds()
    outcomes = asyncio.run(run())  # the loop's pool is closed when it shuts down
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == []
    assert all(outcomes)
    assert len(gw.requests) == 1000
    assert settled_fds(before + FD_SLACK) <= before + FD_SLACK


def test_200_concurrent_astream_complete_without_errors_or_leaks(gw, model):
    async def one(prompt: str) -> bool:
        text = ""
        last = None
        async for chunk in model.astream(prompt):
            text += chunk.content
            last = chunk
        assert last is not None
        return text == expected(prompt) and last.usage_metadata is not None

    async def run() -> list[object]:
        prompts = [f"astream number {i} of many" for i in range(200)]
        return await asyncio.gather(*(one(p) for p in prompts), return_exceptions=True)

    before = open_fds()
    outcomes = asyncio.run(run())
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == []
    assert outcomes == [True] * 200
    assert settled_fds(before + FD_SLACK) <= before + FD_SLACK


async def test_concurrent_ainvoke_and_astream_mixed_in_one_loop(gw, model):
    async def streamed(prompt: str) -> str:
        return "".join([chunk.content async for chunk in model.astream(prompt)])

    async def invoked(prompt: str) -> str:
        return (await model.ainvoke(prompt)).content

    prompts = [f"mixed {i}" for i in range(200)]
    answers = await asyncio.gather(
        *((streamed if i % 2 else invoked)(p) for i, p in enumerate(prompts))
    )
    assert answers == [expected(p) for p in prompts]
    await model.aclose()


def test_8_threads_sharing_one_model_for_2000_calls(gw, model):
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(thread: int) -> int:
        done = 0
        for i in range(250):
            prompt = f"thread {thread} call {i}"
            try:
                if i % 10 == 0:
                    text = "".join(c.content for c in model.stream(prompt))
                else:
                    text = model.invoke(prompt).content
            except Exception as error:
                with lock:
                    errors.append(error)
                continue
            done += text == expected(prompt)
        return done

    model.invoke("warm up")  # build the shared pool once, outside the count
    before = open_fds()
    with ThreadPoolExecutor(max_workers=8) as pool:
        done = sum(pool.map(worker, range(8)))
    assert errors == []
    assert done == 2000
    # The shared sync pool keeps some keep-alive connections (two fds each,
    # client and gateway side), then none once the model closes it.
    model.close()
    assert settled_fds(before + FD_SLACK) <= before + FD_SLACK
