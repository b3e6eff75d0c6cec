"""Client CPU per call, and where it goes: for comparing two commits of the package.

Runs against the offline gateway in a child process and reports, for this checkout:

* the client process's CPU time (``time.process_time``, best of 3) for 1,000
  ``invoke``s, 2,000 ``ainvoke``s at concurrency 100 and 300 ``stream``s;
* a cProfile of 2,000 ``invoke``s: own time per call by area (the package, the
  SDK, httpx, langchain-core, the rest) and the package's functions by own time.

CPU time is steadier than wall time on a shared machine, so to compare commits,
check each out in its own worktree and run this script in each, alternating:

    uv run python benchmarks/cpu_per_call.py [--top N]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from typing import TYPE_CHECKING

from common import API_KEY, GatewayProcess

from langchain_holysheep import ChatHolySheep

if TYPE_CHECKING:
    from collections.abc import Callable


def _areas(
    stats: pstats.Stats, calls: int
) -> tuple[dict[str, float], list[tuple[float, str]]]:
    areas: dict[str, float] = {}
    ours: list[tuple[float, str]] = []
    for (path, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "langchain_holysheep" in path:
            area = "langchain_holysheep"
            ours.append(
                (own / calls * 1e6, f"{path.split('langchain_holysheep/')[-1]}:{name}")
            )
        elif "/openai/" in path:
            area = "openai"
        elif "httpx2" in path or "httpcore2" in path:
            area = "httpx2/httpcore2"
        elif "langchain_core" in path:
            area = "langchain_core"
        else:
            area = "other (stdlib, sockets)"
        areas[area] = areas.get(area, 0.0) + own / calls * 1e6
    return areas, sorted(ours, reverse=True)


def _calls(llm: ChatHolySheep) -> dict[str, Callable[[int], None]]:
    def invoke(n: int) -> None:
        for _ in range(n):
            llm.invoke("hi")

    async def gather(n: int) -> None:
        limit = asyncio.Semaphore(100)

        async def one() -> None:
            async with limit:
                await llm.ainvoke("hi")

        await asyncio.gather(*(one() for _ in range(n)))

    def stream(n: int) -> None:
        for _ in range(n):
            for _chunk in llm.stream("hi"):
                pass

    return {
        "invoke": invoke,
        "ainvoke": lambda n: asyncio.run(gather(n)),
        "stream": stream,
    }


def _cpu_times(calls: dict[str, Callable[[int], None]]) -> None:
    for name, warm_up in (("invoke", 50), ("ainvoke", 200), ("stream", 20)):
        calls[name](warm_up)
    for name, n, label in (
        ("invoke", 1000, "1,000 invoke"),
        ("ainvoke", 2000, "2,000 ainvoke at concurrency 100"),
        ("stream", 300, "300 stream"),
    ):
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            calls[name](n)
            best = min(best, time.process_time() - start)
        print(f"client CPU, {label}: {best:.3f} s")


def _profile(invoke: Callable[[int], None], top: int) -> None:
    profile = cProfile.Profile()
    profile.enable()
    invoke(2000)
    profile.disable()
    areas, ours = _areas(pstats.Stats(profile), 2000)
    print("cProfile of 2,000 invoke, own time per call (profiler overhead included):")
    for area, micros in sorted(areas.items()):
        print(f"  {area}: {micros:.1f} µs")
    print(f"  total: {sum(areas.values()):.1f} µs")
    print("package functions by own time per call:")
    for micros, name in ours[:top]:
        print(f"  {micros:5.1f} µs  {name}")


def main() -> None:
    """Measure and print."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument(
        "--top", type=int, default=15, help="package functions to list"
    )
    args = options.parse_args()
    with GatewayProcess() as gateway:
        llm = ChatHolySheep(
            model="mistral-small-2603", api_key=API_KEY, base_url=gateway.base_url
        )
        calls = _calls(llm)
        _cpu_times(calls)
        _profile(calls["invoke"], args.top)


if __name__ == "__main__":
    main()
