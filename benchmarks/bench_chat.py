"""Chat overhead: ChatHolySheep vs the raw openai SDK vs langchain-openai.

Three measures, each candidate interleaved with the others (A B A B ...) against
the same offline gateway, which runs in a separate process:

* sequential ``invoke`` of a short reply: time per call;
* ``stream`` of a 200-chunk reply: time per content chunk;
* 1000 ``ainvoke`` at concurrency 100: wall time of the batch.

The baseline is the SDK's typed call, ``client.chat.completions.create``
(``stream=True`` for streams). Every candidate asks for the same thing on the
wire: streams request usage (``stream_options.include_usage``) in all three.

    uv run python benchmarks/bench_chat.py [--quick] [--rounds N] [--json FILE]
        [--measures invoke,stream,ainvoke] [--base-url URL]

``--base-url`` sends to a gateway that is already running instead of starting
one, so two checkouts can be measured against the very same server: run this
script with each checkout's interpreter (``<worktree>/.venv/bin/python
benchmarks/bench_chat.py --base-url ...``), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import openai
from common import (
    API_KEY,
    BASELINE,
    CHAT_OPENAI,
    HOLYSHEEP,
    GatewayProcess,
    Result,
    ainterleave,
    emit,
    interleave,
    parser,
)
from langchain_openai import ChatOpenAI

from langchain_holysheep import ChatHolySheep

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

MODEL = "mistral-small-2603"
SHORT_PROMPT = "Say hello."
# The gateway answers "Offline reply to: <prompt>", one word per chunk: three
# words of preamble plus 197 prompt words make exactly 200 content chunks.
STREAM_CHUNKS = 200
STREAM_PROMPT = " ".join(f"w{i}" for i in range(STREAM_CHUNKS - 3))


def _models(base_url: str) -> tuple[openai.OpenAI, ChatOpenAI, ChatHolySheep]:
    sdk = openai.OpenAI(base_url=base_url, api_key=API_KEY)
    chat_openai = ChatOpenAI(
        model=MODEL, base_url=base_url, api_key=API_KEY, stream_usage=True
    )
    holysheep = ChatHolySheep(model=MODEL, base_url=base_url, api_key=API_KEY)
    return sdk, chat_openai, holysheep


def bench_invoke(base_url: str, calls: int, rounds: int) -> Result:
    """Sequential ``invoke`` of a short reply: seconds per call."""
    sdk, chat_openai, holysheep = _models(base_url)
    messages: Any = [{"role": "user", "content": SHORT_PROMPT}]

    def per_call(one: Callable[[], object]) -> Callable[[], float]:
        def sample() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                one()
            return (time.perf_counter() - start) / calls

        return sample

    samples = interleave(
        {
            BASELINE: per_call(
                lambda: (
                    sdk.chat.completions.create(model=MODEL, messages=messages)
                    .choices[0]
                    .message.content
                )
            ),
            CHAT_OPENAI: per_call(lambda: chat_openai.invoke(SHORT_PROMPT).content),
            HOLYSHEEP: per_call(lambda: holysheep.invoke(SHORT_PROMPT).content),
        },
        rounds,
    )
    sdk.close()
    return Result(
        measure="sequential invoke, short reply (time per call)",
        unit="s",
        target="<= 0.85x the raw SDK",
        target_ratio=0.85,
        samples=samples,
        note=f"{calls} calls per sample, {rounds} samples per candidate",
    )


def bench_stream(base_url: str, streams: int, rounds: int) -> Result:
    """``stream`` of a 200-chunk reply: seconds per content chunk."""
    sdk, chat_openai, holysheep = _models(base_url)
    messages: Any = [{"role": "user", "content": STREAM_PROMPT}]

    def sdk_stream() -> int:
        count = 0
        stream = sdk.chat.completions.create(
            model=MODEL,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
        return count

    def lc_stream(model: ChatOpenAI | ChatHolySheep) -> Callable[[], int]:
        def run() -> int:
            return sum(1 for chunk in model.stream(STREAM_PROMPT) if chunk.content)

        return run

    def per_chunk(one: Callable[[], int]) -> Callable[[], float]:
        def sample() -> float:
            start = time.perf_counter()
            for _ in range(streams):
                count = one()
                if count != STREAM_CHUNKS:
                    msg = f"expected {STREAM_CHUNKS} content chunks, got {count}"
                    raise RuntimeError(msg)
            return (time.perf_counter() - start) / (streams * STREAM_CHUNKS)

        return sample

    samples = interleave(
        {
            BASELINE: per_chunk(sdk_stream),
            CHAT_OPENAI: per_chunk(lc_stream(chat_openai)),
            HOLYSHEEP: per_chunk(lc_stream(holysheep)),
        },
        rounds,
    )
    sdk.close()
    return Result(
        measure=f"stream of a {STREAM_CHUNKS}-chunk reply (time per chunk)",
        unit="s",
        target="<= 0.6x the raw SDK",
        target_ratio=0.6,
        samples=samples,
        note=f"{streams} streams per sample, {rounds} samples per candidate",
    )


async def _abench(base_url: str, calls: int, concurrency: int, rounds: int) -> Result:
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY)
    chat_openai = ChatOpenAI(model=MODEL, base_url=base_url, api_key=API_KEY)
    holysheep = ChatHolySheep(model=MODEL, base_url=base_url, api_key=API_KEY)
    messages: Any = [{"role": "user", "content": SHORT_PROMPT}]

    async def sdk_call() -> object:
        response = await sdk.chat.completions.create(model=MODEL, messages=messages)
        return response.choices[0].message.content

    async def lc_call(model: ChatOpenAI | ChatHolySheep) -> object:
        return (await model.ainvoke(SHORT_PROMPT)).content

    def batch(one: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[float]]:
        async def sample() -> float:
            remaining = iter(range(calls))

            async def worker() -> None:
                for _ in remaining:
                    await one()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - start

        return sample

    samples = await ainterleave(
        {
            BASELINE: batch(sdk_call),
            CHAT_OPENAI: batch(lambda: lc_call(chat_openai)),
            HOLYSHEEP: batch(lambda: lc_call(holysheep)),
        },
        rounds,
    )
    await sdk.close()
    await holysheep.aclose()
    return Result(
        measure=f"{calls} ainvoke at concurrency {concurrency} (wall time)",
        unit="s",
        target="<= 0.9x the raw SDK",
        target_ratio=0.9,
        samples=samples,
        note=f"{rounds} samples per candidate, one event loop",
    )


def bench_ainvoke(base_url: str, calls: int, concurrency: int, rounds: int) -> Result:
    """``calls`` ``ainvoke`` at ``concurrency``: wall time of the batch."""
    return asyncio.run(_abench(base_url, calls, concurrency, rounds))


MEASURES = ("invoke", "stream", "ainvoke")


def _measures(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in MEASURES]
    if unknown or not names:
        msg = f"expected a comma-separated subset of {','.join(MEASURES)}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return names


def main(argv: list[str] | None = None) -> list[Result]:
    """Run the three chat measures and print them.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    cli = parser(__doc__ or "")
    cli.add_argument(
        "--measures",
        type=_measures,
        default=MEASURES,
        metavar="LIST",
        help=f"comma-separated subset of {','.join(MEASURES)} (default: all)",
    )
    cli.add_argument(
        "--base-url",
        default=None,
        metavar="URL",
        help="a running OpenAI-compatible gateway to send to (default: start one)",
    )
    args = cli.parse_args(argv)
    if args.quick:
        sizes = {"calls": 5, "streams": 1, "batch": 20, "concurrency": 5}
        rounds = args.rounds or 1
    else:
        sizes = {"calls": 200, "streams": 10, "batch": 1000, "concurrency": 100}
        rounds = args.rounds or 15
    runs: dict[str, Callable[[str], Result]] = {
        "invoke": lambda url: bench_invoke(url, sizes["calls"], rounds),
        "stream": lambda url: bench_stream(url, sizes["streams"], rounds),
        "ainvoke": lambda url: bench_ainvoke(
            url, sizes["batch"], sizes["concurrency"], max(1, rounds // 2)
        ),
    }
    with contextlib.ExitStack() as stack:
        url = args.base_url or stack.enter_context(GatewayProcess()).base_url
        results = [runs[name](url) for name in args.measures]
    emit(results, args.json)
    return results


if __name__ == "__main__":
    main()
