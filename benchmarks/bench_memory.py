"""Soak: RSS growth over 10,000 sequential ``invoke`` calls.

Each candidate runs in its own fresh worker process (so one cannot inherit the
other's heap): it warms up (pools, caches, lazy imports), reads its RSS, makes
the calls, collects garbage and reads its RSS again. The gateway runs in yet
another process. The raw SDK and ChatOpenAI are measured for reference.

    uv run python benchmarks/bench_memory.py [--quick] [--calls N] [--json FILE]
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import (
    API_KEY,
    BASELINE,
    CHAT_OPENAI,
    HOLYSHEEP,
    ROOT,
    GatewayProcess,
    Result,
    emit,
    parser,
    rss_mib,
)

MODEL = "mistral-small-2603"
PROMPT = "Say hello."


def _caller(name: str, base_url: str) -> Any:
    if name == BASELINE:
        import openai  # noqa: PLC0415

        client = openai.OpenAI(base_url=base_url, api_key=API_KEY)
        messages: Any = [{"role": "user", "content": PROMPT}]
        return lambda: client.chat.completions.create(model=MODEL, messages=messages)
    if name == CHAT_OPENAI:
        from langchain_openai import ChatOpenAI  # noqa: PLC0415

        model: Any = ChatOpenAI(model=MODEL, base_url=base_url, api_key=API_KEY)
    else:
        from langchain_holysheep import ChatHolySheep  # noqa: PLC0415

        model = ChatHolySheep(model=MODEL, base_url=base_url, api_key=API_KEY)
    return lambda: model.invoke(PROMPT)


def worker(name: str, base_url: str, calls: int, warmup: int) -> dict[str, Any]:
    """Run ``calls`` invokes after ``warmup`` and report RSS along the way."""
    call = _caller(name, base_url)
    for _ in range(warmup):
        call()
    gc.collect()
    before = rss_mib()
    checkpoints = []
    step = max(1, calls // 10)
    for index in range(1, calls + 1):
        call()
        if index % step == 0:
            checkpoints.append(round(rss_mib(), 2))
    gc.collect()
    after = rss_mib()
    return {
        "before": before,
        "after": after,
        "growth": after - before,
        "checkpoints": checkpoints,
    }


def main(argv: list[str] | None = None) -> list[Result]:
    """Measure RSS growth per candidate and print it.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    cli = parser(__doc__ or "")
    cli.add_argument("--calls", type=int, default=None, help="invokes per candidate")
    cli.add_argument("--worker", default=None, help=argparse_hidden())
    cli.add_argument("--base-url", default=None, help=argparse_hidden())
    cli.add_argument("--warmup", type=int, default=None, help=argparse_hidden())
    args = cli.parse_args(argv)
    calls = args.calls or (100 if args.quick else 10_000)
    warmup = args.warmup or (20 if args.quick else 500)
    if args.worker:
        print(json.dumps(worker(args.worker, args.base_url, calls, warmup)))
        return []
    runs: dict[str, dict[str, Any]] = {}
    with GatewayProcess() as gateway:
        for name in (HOLYSHEEP, BASELINE, CHAT_OPENAI):
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--worker",
                name,
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
                msg = f"the {name} worker failed:\n{completed.stderr[-3000:]}"
                raise RuntimeError(msg)
            runs[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    result = Result(
        measure=f"RSS growth over {calls:,} sequential invokes",
        unit="MiB",
        target="< 1 MiB growth",
        target_absolute=1.0,
        samples={
            name: [run["growth"] for run in [data]] for name, data in runs.items()
        },
        note=(
            f"after {warmup} warm-up calls; RSS at 10 checkpoints for ChatHolySheep: "
            + ", ".join(f"{v:.1f}" for v in runs[HOLYSHEEP]["checkpoints"])
            + " MiB"
        ),
        extra={"runs": runs},
    )
    emit([result], args.json)
    return [result]


def argparse_hidden() -> str:
    """Help text for the internal worker options."""
    import argparse  # noqa: PLC0415

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
