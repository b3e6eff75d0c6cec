"""Soak: 10,000 ``asyncio.run(llm.ainvoke(...))`` calls in a row, one loop each.

What a Celery worker (or any code that calls ``asyncio.run`` per task) does. Each
call runs on a fresh event loop; the package keeps an async connection pool per
loop and must let the loop, and the pool, go when ``asyncio.run`` returns. The
worker process warms up, reads its RSS, runs the calls, collects garbage, then
reports the RSS growth and how many of the closed loops are still alive (by weak
reference: the target is none). The gateway runs in another process.

    uv run python benchmarks/bench_event_loops.py [--quick] [--calls N] [--json FILE]
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

from common import (
    API_KEY,
    HOLYSHEEP,
    ROOT,
    GatewayProcess,
    Result,
    emit,
    parser,
    rss_mib,
)

MODEL = "mistral-small-2603"


def worker(base_url: str, calls: int, warmup: int) -> dict[str, Any]:
    """Run ``calls`` one-loop ``ainvoke`` calls after ``warmup`` and report."""
    from langchain_holysheep import ChatHolySheep  # noqa: PLC0415

    model = ChatHolySheep(model=MODEL, base_url=base_url, api_key=API_KEY)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one_call() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await model.ainvoke("Say hello.")

    for _ in range(warmup):
        asyncio.run(one_call())
    gc.collect()
    before = rss_mib()
    loops.clear()
    checkpoints = []
    step = max(1, calls // 10)
    for index in range(1, calls + 1):
        asyncio.run(one_call())
        if index % step == 0:
            checkpoints.append(round(rss_mib(), 2))
    gc.collect()
    return {
        "growth": rss_mib() - before,
        "alive_loops": sum(ref() is not None for ref in loops),
        "checkpoints": checkpoints,
    }


def main(argv: list[str] | None = None) -> list[Result]:
    """Measure RSS growth and surviving loops, and print them.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    cli = parser(__doc__ or "")
    cli.add_argument("--calls", type=int, default=None, help="asyncio.run calls")
    cli.add_argument("--worker", action="store_true", help=_hidden())
    cli.add_argument("--base-url", default=None, help=_hidden())
    cli.add_argument("--warmup", type=int, default=None, help=_hidden())
    args = cli.parse_args(argv)
    calls = args.calls or (50 if args.quick else 10_000)
    warmup = args.warmup or (5 if args.quick else 200)
    if args.worker:
        print(json.dumps(worker(args.base_url, calls, warmup)))
        return []
    with GatewayProcess() as gateway:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--base-url",
            gateway.base_url,
            "--calls",
            str(calls),
            "--warmup",
            str(warmup),
        ]
        completed = subprocess.run(  # noqa: S603  (our own interpreter)
            command, capture_output=True, text=True, check=False, cwd=ROOT
        )
    if completed.returncode:
        msg = f"the worker failed:\n{completed.stderr[-3000:]}"
        raise RuntimeError(msg)
    run = json.loads(completed.stdout.strip().splitlines()[-1])
    checkpoints = ", ".join(f"{v:.1f}" for v in run["checkpoints"])
    results = [
        Result(
            measure=f"RSS growth over {calls:,} asyncio.run(ainvoke) calls",
            unit="MiB",
            target="< 1 MiB growth",
            target_absolute=1.0,
            samples={HOLYSHEEP: [run["growth"]]},
            note=f"after {warmup} warm-up runs; RSS at 10 checkpoints: "
            f"{checkpoints} MiB",
        ),
        Result(
            measure=f"closed event loops still alive after {calls:,} runs",
            unit="loops",
            target="0",
            target_absolute=0.0,
            samples={HOLYSHEEP: [float(run["alive_loops"])]},
        ),
    ]
    emit(results, args.json)
    return results


def _hidden() -> str:
    """Help text for the internal worker options."""
    import argparse  # noqa: PLC0415

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
