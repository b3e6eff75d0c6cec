"""Profile ChatHolySheep's hot paths (invoke, stream, concurrent ainvoke) with cProfile.

Not a benchmark: it prints where the client-side time goes, to back optimisation
proposals with measurements. The gateway runs in a separate process, so only
the client's work is profiled.

    uv run python benchmarks/profile_hot_paths.py [--quick] [--top N]
        [--path invoke|stream|ainvoke]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats

from bench_chat import MODEL, SHORT_PROMPT, STREAM_PROMPT
from common import API_KEY, GatewayProcess

from langchain_holysheep import ChatHolySheep


def main(argv: list[str] | None = None) -> None:
    """Profile the chosen paths and print the top functions.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true", help="tiny sizes")
    cli.add_argument("--top", type=int, default=25, help="rows per table")
    cli.add_argument(
        "--path",
        action="append",
        choices=["invoke", "stream", "ainvoke"],
        help="path(s) to profile (default: all)",
    )
    args = cli.parse_args(argv)
    calls = 20 if args.quick else 1000
    paths = args.path or ["invoke", "stream", "ainvoke"]
    with GatewayProcess() as gateway:
        model = ChatHolySheep(model=MODEL, base_url=gateway.base_url, api_key=API_KEY)
        model.invoke(SHORT_PROMPT)  # warm the pool and lazy imports

        async def concurrent() -> None:
            semaphore = asyncio.Semaphore(100)

            async def one() -> None:
                async with semaphore:
                    await model.ainvoke(SHORT_PROMPT)

            await asyncio.gather(*(one() for _ in range(calls)))

        work = {
            "invoke": lambda: [model.invoke(SHORT_PROMPT) for _ in range(calls)],
            "stream": lambda: [
                list(model.stream(STREAM_PROMPT)) for _ in range(max(1, calls // 20))
            ],
            "ainvoke": lambda: asyncio.run(concurrent()),
        }
        for path in paths:
            profiler = cProfile.Profile()
            profiler.runcall(work[path])
            print(f"\n===== {path} =====")
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
