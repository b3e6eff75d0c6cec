"""Bulk runs: ``holysheep batch``'s engine vs a raw ``AsyncOpenAI`` + semaphore loop.

Three measures against the offline gateway, which runs in a separate process
(the resume measure runs it in this one, to count what it is sent):

* throughput: the same input file (10,000 lines) answered into an output file at
  concurrency 64, by ``arun_batch`` and by the loop a user would write without
  it (``asyncio.Semaphore(64)``, ``AsyncOpenAI().chat.completions.create`` per
  line, ``model_dump_json()`` into the output). Interleaved in one event loop;
  wall time per run, so the target (>= 0.95x the loop's throughput) is a wall
  time <= 1/0.95 = 1.053x the loop's;
* peak RSS of a whole ``run_batch`` of 10,000 and of 100,000 lines, each in a
  fresh child process (``ru_maxrss`` of that child, from ``os.wait4``): the
  input is streamed, so the peak should stay flat;
* resume cost: ``holysheep batch`` run as a subprocess, killed with SIGKILL
  after about half the lines, then run again to the end; the cost is the
  requests the gateway saw minus the lines (answers lost with the killed
  process and sent again).

    uv run python benchmarks/bench_batch.py [--quick] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    API_KEY,
    BASELINE,
    ROOT,
    GatewayProcess,
    Result,
    ainterleave,
    emit,
    parser,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

MODEL = "mistral-small-2603"
OURS = "holysheep batch"
CONCURRENCY = 64
THROUGHPUT_TARGET = 0.95


def write_input(path: Path, lines: int) -> Path:
    """An OpenAI Batch API input file of ``lines`` short chat requests."""
    with path.open("w") as out:
        for index in range(lines):
            line = {
                "custom_id": f"req-{index}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "messages": [{"role": "user", "content": f"Say hello {index}."}],
                    "max_tokens": 16,
                },
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return path


def count_lines(path: Path) -> int:
    """Whole lines in ``path`` (0 if it does not exist)."""
    try:
        with path.open("rb") as data:
            return sum(
                chunk.count(b"\n") for chunk in iter(lambda: data.read(1 << 16), b"")
            )
    except FileNotFoundError:
        return 0


class QuietProgress:
    """A progress display that shows nothing (the benchmark prints its own)."""

    def start(self, total: int, already_done: int) -> None:
        """Nothing to show."""

    def advance(self, result: object) -> None:
        """Nothing to show."""

    def finish(self, usage: object) -> None:
        """Nothing to show."""


# ------------------------------------------------------------------ throughput


async def raw_loop(input_path: Path, output_path: Path, base_url: str) -> None:
    """What a user writes without ``holysheep batch``: a semaphore and the SDK."""
    import openai  # noqa: PLC0415

    client = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    with output_path.open("w") as out:

        async def one(line: dict[str, Any]) -> None:
            async with semaphore:
                response = await client.chat.completions.create(**line["body"])
            out.write(
                json.dumps({"custom_id": line["custom_id"]})[:-1]
                + ',"response":{"status_code":200,"body":'
                + response.model_dump_json()
                + "}}\n"
            )

        with input_path.open() as lines:
            await asyncio.gather(*(one(json.loads(text)) for text in lines))
    await client.close()


async def ours(input_path: Path, output_path: Path, base_url: str) -> None:
    """The same job with ``arun_batch``."""
    from langchain_holysheep.batch._api import arun_batch  # noqa: PLC0415

    summary = await arun_batch(
        input_path,
        output_path,
        concurrency=CONCURRENCY,
        base_url=base_url,
        progress=QuietProgress(),
    )
    if summary.failed or summary.succeeded != summary.total:
        msg = f"the run did not answer every line: {summary.message()}"
        raise RuntimeError(msg)


async def _throughput(base_url: str, lines: int, rounds: int, tmp: Path) -> Result:
    input_path = write_input(tmp / "throughput.jsonl", lines)
    output_path = tmp / "throughput-out.jsonl"

    def sample(
        run: Callable[[Path, Path, str], Awaitable[None]],
    ) -> Callable[[], Awaitable[float]]:
        async def one() -> float:
            output_path.unlink(missing_ok=True)  # a fresh run, not a resume
            start = time.perf_counter()
            await run(input_path, output_path, base_url)
            elapsed = time.perf_counter() - start
            if count_lines(output_path) != lines:
                msg = (
                    f"{run.__name__} wrote {count_lines(output_path)} of {lines} lines"
                )
                raise RuntimeError(msg)
            return elapsed

        return one

    samples = await ainterleave(
        {BASELINE: sample(raw_loop), OURS: sample(ours)}, rounds
    )
    result = Result(
        measure=f"{lines:,} lines at concurrency {CONCURRENCY} (wall time)",
        unit="s",
        target=f">= {THROUGHPUT_TARGET}x the raw loop's throughput",
        target_ratio=1 / THROUGHPUT_TARGET,
        samples=samples,
        baseline=BASELINE,
        judged=OURS,
        note=f"{rounds} runs each, one event loop, interleaved",
    )
    medians = result.medians
    result.extra = {
        "requests_per_second": {name: lines / value for name, value in medians.items()}
    }
    return result


# ------------------------------------------------------------------------ RSS


def rss_child(input_path: str, output_path: str, base_url: str) -> None:
    """In the child: one whole ``run_batch`` (its peak RSS is what is measured)."""
    from langchain_holysheep.batch._api import run_batch  # noqa: PLC0415

    summary = run_batch(
        input_path,
        output_path,
        concurrency=CONCURRENCY,
        base_url=base_url,
        progress=QuietProgress(),
    )
    if summary.succeeded != summary.total:
        raise SystemExit(f"the run did not answer every line: {summary.message()}")


def peak_rss_mib(lines: int, base_url: str, tmp: Path) -> float:
    """The peak RSS of a fresh process running a ``lines``-line batch."""
    input_path = write_input(tmp / f"rss-{lines}.jsonl", lines)
    output_path = tmp / f"rss-{lines}-out.jsonl"
    output_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--rss-child",
        str(input_path),
        str(output_path),
        base_url,
    ]
    env = {**os.environ, "HOLYSHEEP_API_KEY": API_KEY}
    process = subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        msg = f"the {lines}-line child failed with status {process.returncode}"
        raise RuntimeError(msg)
    input_path.unlink()
    output_path.unlink()
    return usage.ru_maxrss / 1024  # KiB on Linux


def _rss(base_url: str, sizes: tuple[int, int], tmp: Path) -> Result:
    small, large = sizes
    samples = {
        f"{small:,} lines": [peak_rss_mib(small, base_url, tmp)],
        f"{large:,} lines": [peak_rss_mib(large, base_url, tmp)],
    }
    return Result(
        measure="peak RSS of a whole run_batch (fresh process per size)",
        unit="MiB",
        target=f"flat: {large:,} lines <= 1.1x {small:,} lines",
        target_ratio=1.1,
        samples=samples,
        baseline=f"{small:,} lines",
        judged=f"{large:,} lines",
        note="ru_maxrss of the child, one run per size",
    )


# --------------------------------------------------------------------- resume


def _holysheep() -> str:
    script = Path(sys.executable).with_name("holysheep")
    return str(script) if script.exists() else "holysheep"


def resume_cost(lines: int, tmp: Path) -> Result:
    """Kill ``holysheep batch`` halfway, run it again; count re-sent requests."""
    from langchain_holysheep.testing import OfflineGateway  # noqa: PLC0415

    input_path = write_input(tmp / "resume.jsonl", lines)
    output_path = tmp / "resume-out.jsonl"
    output_path.unlink(missing_ok=True)
    env = {**os.environ, "HOLYSHEEP_API_KEY": API_KEY}
    with OfflineGateway() as gateway:
        command = [
            _holysheep(),
            "batch",
            str(input_path),
            "--output",
            str(output_path),
            "--concurrency",
            str(CONCURRENCY),
            "--base-url",
            gateway.base_url,
            "--quiet",
        ]
        first = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        while count_lines(output_path) < lines // 2 and first.poll() is None:
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait()
        done_at_kill = count_lines(output_path)
        seen_at_kill = len(gateway.requests)
        second = subprocess.run(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False
        )
        sent = len(gateway.requests)
    if second.returncode:
        msg = f"the second run exited with {second.returncode}"
        raise RuntimeError(msg)
    ids = [
        json.loads(text)["custom_id"] for text in output_path.read_text().splitlines()
    ]
    if len(ids) != lines or len(set(ids)) != lines:
        msg = f"after the rerun: {len(ids)} lines, {len(set(ids))} ids, {lines} asked"
        raise RuntimeError(msg)
    return Result(
        measure=f"resume after SIGKILL at about half of {lines:,} lines",
        unit="requests",
        target="re-sent <= the concurrency (only what was in flight)",
        target_absolute=CONCURRENCY,
        samples={OURS: [sent - lines]},
        baseline=OURS,
        judged=OURS,
        note=(
            f"{done_at_kill:,} lines written and {seen_at_kill:,} requests sent "
            f"when killed; {sent:,} requests in all"
        ),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the three measures and print them."""
    cli = parser(__doc__ or "")
    cli.add_argument("--rss-child", nargs=3, help=argparse_hidden())
    args = cli.parse_args(argv)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    os.environ.setdefault("HOLYSHEEP_API_KEY", API_KEY)
    lines = 500 if args.quick else 10_000
    sizes = (500, 2_000) if args.quick else (10_000, 100_000)
    rounds = args.rounds or (1 if args.quick else 3)
    results = []
    with tempfile.TemporaryDirectory() as name, GatewayProcess() as gateway:
        tmp = Path(name)
        results.append(asyncio.run(_throughput(gateway.base_url, lines, rounds, tmp)))
        results.append(_rss(gateway.base_url, sizes, tmp))
        results.append(resume_cost(400 if args.quick else 10_000, tmp))
    emit(results, args.json)
    print()
    print(markdown(results))
    return 0


def argparse_hidden() -> str:
    """Help text of the internal ``--rss-child`` mode (hidden)."""
    import argparse  # noqa: PLC0415

    return argparse.SUPPRESS


def markdown(results: list[Result]) -> str:
    """The three measures as the markdown table ``docs/performance.md`` quotes."""
    lines = [
        "| measure | target | raw loop / baseline | holysheep batch | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        medians = result.medians
        base = medians.get(result.baseline)
        judged = medians.get(result.judged)
        ratio = result.ratios.get(result.judged)
        cells = [
            "-"
            if base is None or result.baseline == result.judged
            else f"{base:.4g} {result.unit}",
            "-" if judged is None else f"{judged:.4g} {result.unit}",
        ]
        if ratio is not None and result.baseline != result.judged:
            cells[1] += f" ({ratio:.2f}x)"
        per_second = result.extra.get("requests_per_second", {})
        for index, name in enumerate((result.baseline, result.judged)):
            if name in per_second:
                cells[index] += f", {per_second[name]:,.0f} req/s"
        verdict = {True: "yes", False: "**no**", None: "-"}[result.met]
        lines.append(
            f"| {result.measure} | {result.target} | {cells[0]} | {cells[1]} "
            f"| {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
