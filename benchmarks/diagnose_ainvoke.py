"""Why 1000 ``ainvoke`` at concurrency 100 is slower than the raw SDK.

Not a benchmark of the package: a diagnosis that backs the explanation in
``docs/performance.md``. In one event loop, against the offline gateway in a
separate process, it compares three ways of making the same call:

* the raw SDK's typed call (the baseline);
* ``ChatHolySheep._agenerate`` called directly (our request path alone);
* the same, followed by one ``await asyncio.sleep(0)`` (one event-loop turn
  between calls, as langchain-core's ``gather`` adds);
* ``ChatHolySheep.ainvoke`` (the same path inside langchain-core's wrapper);
* ``ChatHolySheep.ainvoke`` on the SDK's stock async client
  (``openai.DefaultAsyncHttpxClient()``), i.e. without the cheaper idle-connection
  check of ``langchain_holysheep/_transport.py``.

For each it reports the wall time (interleaved, medians), the tasks created per
call (counted with ``loop.set_task_factory``) and the pool's idle-connection
checks per request (``has_expired`` calls, read from a cProfile run).

    uv run python benchmarks/diagnose_ainvoke.py [--quick] [--rounds N] [--keepalive K]
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import openai
from bench_chat import MODEL, SHORT_PROMPT
from common import API_KEY, GatewayProcess, parser
from langchain_core.messages import HumanMessage

from langchain_holysheep import ChatHolySheep

Call = Callable[[], Awaitable[object]]


def _candidates(
    base_url: str, keepalive: int | None
) -> tuple[dict[str, Call], Callable[[], Awaitable[None]]]:
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY)
    pool: dict[str, Any] = {}
    if keepalive is not None:  # the knob docs/performance.md discusses
        import httpx2  # noqa: PLC0415  (what openai 3.x is built on)

        limits = httpx2.Limits(
            max_connections=1000, max_keepalive_connections=keepalive
        )
        pool["http_async_client"] = openai.DefaultAsyncHttpxClient(limits=limits)
    model = ChatHolySheep(model=MODEL, base_url=base_url, api_key=API_KEY, **pool)
    stock_client = openai.DefaultAsyncHttpxClient()
    stock = ChatHolySheep(
        model=MODEL, base_url=base_url, api_key=API_KEY, http_async_client=stock_client
    )
    messages: Any = [{"role": "user", "content": SHORT_PROMPT}]
    prompt = [HumanMessage(SHORT_PROMPT)]

    async def raw_sdk() -> object:
        return await sdk.chat.completions.create(model=MODEL, messages=messages)

    async def agenerate_direct() -> object:
        return await model._agenerate(prompt)  # noqa: SLF001 (the point of the diagnosis)

    async def agenerate_one_hop() -> object:
        result = await model._agenerate(prompt)  # noqa: SLF001
        await asyncio.sleep(0)
        return result

    async def ainvoke() -> object:
        return await model.ainvoke(SHORT_PROMPT)

    async def ainvoke_stock_pool() -> object:
        return await stock.ainvoke(SHORT_PROMPT)

    async def close() -> None:
        await sdk.close()
        await model.aclose()
        await stock_client.aclose()
        if "http_async_client" in pool:
            await pool["http_async_client"].aclose()

    candidates = {
        "raw SDK": raw_sdk,
        "ChatHolySheep._agenerate": agenerate_direct,
        "_agenerate + one loop turn": agenerate_one_hop,
        "ChatHolySheep.ainvoke": ainvoke,
        "ainvoke, SDK's stock pool": ainvoke_stock_pool,
    }
    return candidates, close


async def _batch(call: Call, calls: int, concurrency: int) -> float:
    remaining = iter(range(calls))

    async def worker() -> None:
        for _ in remaining:
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def _count_tasks(call: Call, calls: int, concurrency: int) -> float:
    loop = asyncio.get_running_loop()
    created = 0

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        await _batch(call, calls, concurrency)
    finally:
        loop.set_task_factory(None)
    return (created - concurrency) / calls  # minus the workers themselves


def _idle_checks(
    loop: asyncio.AbstractEventLoop, call: Call, calls: int, concurrency: int
) -> float:
    profile = cProfile.Profile()
    profile.enable()
    loop.run_until_complete(_batch(call, calls, concurrency))
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    checks = sum(
        entry[1]  # primitive call count
        for (filename, _, name), entry in stats.items()
        if name == "has_expired" and "httpcore" in filename
    )
    return checks / calls


def main(argv: list[str] | None = None) -> None:
    """Run the diagnosis and print one line per candidate.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    cli = parser(__doc__ or "")
    cli.add_argument(
        "--keepalive",
        type=int,
        help="give ChatHolySheep a pool with this max_keepalive_connections",
    )
    args = cli.parse_args(argv)
    calls, concurrency = (40, 10) if args.quick else (1000, 100)
    rounds = args.rounds or (1 if args.quick else 7)
    with GatewayProcess() as gateway:
        loop = asyncio.new_event_loop()
        try:
            candidates, close = _candidates(gateway.base_url, args.keepalive)
            for call in candidates.values():  # warm up pools and caches
                loop.run_until_complete(_batch(call, concurrency, concurrency))
            times: dict[str, list[float]] = {name: [] for name in candidates}
            for _ in range(rounds):
                for name, call in candidates.items():
                    times[name].append(
                        loop.run_until_complete(_batch(call, calls, concurrency))
                    )
            baseline = statistics.median(times["raw SDK"])
            pool = f", keepalive {args.keepalive}" if args.keepalive else ""
            print(f"{calls} calls at concurrency {concurrency}, {rounds} rounds{pool}")
            for name, call in candidates.items():
                median = statistics.median(times[name])
                tasks = loop.run_until_complete(_count_tasks(call, calls, concurrency))
                checks = _idle_checks(loop, call, calls, concurrency)
                print(
                    f"{name:26} {median:7.3f} s ({median / baseline:.2f}x)  "
                    f"tasks/call {tasks:5.2f}  idle-connection checks/request "
                    f"{checks:6.1f}"
                )
            loop.run_until_complete(close())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


if __name__ == "__main__":
    main()
