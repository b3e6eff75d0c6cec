"""Client CPU instructions per call, counted by valgrind's callgrind.

Timings on a shared, loaded machine move by tens of percent from run to run;
instruction counts do not. For each mode (``invoke``, ``ainvoke``, ``stream``)
and each candidate (``ChatHolySheep`` and the raw ``openai`` SDK, asking for the
same thing on the wire), a client script runs under ``valgrind --tool=callgrind``
twice: once making ``N1`` calls and once ``N2`` calls (default 20 and 220).
Imports and five warm-up calls run with valgrind's instrumentation off (fast);
then ``callgrind_control --instr=on`` switches it on and the calls run. The two
totals differ only by the extra calls, so

    instructions per call = (total(N2) - total(N1)) / (N2 - N1)

with switching on and interpreter shut-down cancelled out. The offline gateway runs in
its own process (``python -m langchain_holysheep.testing``), not under valgrind.

The request is the short one of ``bench_chat.py`` (``"Say hello."``, a
five-word answer): ``invoke`` is sequential ``invoke``, ``ainvoke`` sequential
``await ainvoke`` inside one event loop (concurrency 1, so the count does not
depend on how the calls interleave), ``stream`` reads the whole stream of the
same answer with usage (``stream_options.include_usage``), so the per-call count
includes the per-chunk work. The raw SDK does the same through
``client.chat.completions.create``.

``--root DIR`` measures another checkout of the package (its own ``.venv``), e.g.
an older commit in a worktree, against the same gateway::

    uv run python benchmarks/instructions_per_call.py [--quick] [--json FILE]
        [--modes invoke,ainvoke,stream] [--candidates ours,raw] [--root DIR]
        [--calls 20,220] [--jobs 2]

It is slow (callgrind runs Python about 50 times slower while counting): about
a minute per client run, twelve runs in all. ``--quick`` counts 1 and 3 calls,
to check that it runs. ``run_all.py`` does not run it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import API_KEY, BASELINE, HOLYSHEEP, ROOT, GatewayProcess, machine_info

MODES = ("invoke", "ainvoke", "stream")
CANDIDATES = {"ours": HOLYSHEEP, "raw": BASELINE}
MODEL = "mistral-small-2603"
PROMPT = "Say hello."
WARM_UP = 5

# Run by the measured interpreter: argv = mode, candidate, calls, base_url.
_CLIENT = """
import asyncio, sys
mode, candidate, calls, base_url = sys.argv[1:5]
calls = int(calls)
MODEL, PROMPT, KEY, WARM_UP = {model!r}, {prompt!r}, {key!r}, {warm_up}
messages = [{{"role": "user", "content": PROMPT}}]

if candidate == "ours":
    from langchain_holysheep import ChatHolySheep
    llm = ChatHolySheep(model=MODEL, base_url=base_url, api_key=KEY)

    def invoke():
        assert llm.invoke(PROMPT).content

    async def ainvoke():
        assert (await llm.ainvoke(PROMPT)).content

    def stream():
        assert sum(1 for chunk in llm.stream(PROMPT) if chunk.content) > 1
else:
    import openai
    sdk = openai.OpenAI(base_url=base_url, api_key=KEY)
    asdk = openai.AsyncOpenAI(base_url=base_url, api_key=KEY)

    def invoke():
        answer = sdk.chat.completions.create(model=MODEL, messages=messages)
        assert answer.choices[0].message.content

    async def ainvoke():
        answer = await asdk.chat.completions.create(model=MODEL, messages=messages)
        assert answer.choices[0].message.content

    def stream():
        count = 0
        for chunk in sdk.chat.completions.create(
            model=MODEL, messages=messages, stream=True,
            stream_options={{"include_usage": True}},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                count += 1
        assert count > 1

def ready():  # warm: the controller switches counting on, then says go
    print("ready", flush=True)
    sys.stdin.readline()

if mode == "ainvoke":
    async def main():
        for _ in range(WARM_UP):
            await ainvoke()
        ready()
        for _ in range(calls):
            await ainvoke()
    asyncio.run(main())
else:
    one = invoke if mode == "invoke" else stream
    for _ in range(WARM_UP):
        one()
    ready()
    for _ in range(calls):
        one()
"""

_TOTALS = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _python(root: Path) -> str:
    if root.resolve() == ROOT.resolve():
        return sys.executable
    python = root / ".venv" / "bin" / "python"
    if not python.exists():
        msg = f"{python} not found: run `uv sync --frozen` in {root} first"
        raise SystemExit(msg)
    return str(python)


def _count(python: str, root: Path, run: tuple[str, str, int], base_url: str) -> int:
    """Instructions the client executes for ``run``'s calls (mode, candidate, N)."""
    mode, candidate, calls = run
    client = _CLIENT.format(model=MODEL, prompt=PROMPT, key=API_KEY, warm_up=WARM_UP)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            python,
            "-c",
            client,
            mode,
            candidate,
            str(calls),
            base_url,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        env.pop("HOLYSHEEP_PRICES_FILE", None)
        with subprocess.Popen(  # noqa: S603  (valgrind on our interpreter)
            command,
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            if process.stdout.readline().strip() == "ready":
                subprocess.run(  # noqa: S603
                    ["callgrind_control", "--instr=on", str(process.pid)],  # noqa: S607
                    capture_output=True,
                    check=True,
                )
                process.stdin.write("go\n")
                process.stdin.flush()
            _, stderr = process.communicate()
        if process.returncode:
            tail = "\n".join(stderr.splitlines()[-15:])
            msg = f"{mode}/{candidate}/{calls} failed:\n{tail}"
            raise RuntimeError(msg)
        match = _TOTALS.search(out.read_text())
    if match is None:
        msg = f"no totals in the callgrind output of {mode}/{candidate}/{calls}"
        raise RuntimeError(msg)
    return int(match.group(1))


def measure(
    root: Path,
    modes: list[str],
    candidates: list[str],
    calls: tuple[int, int],
    jobs: int,
) -> dict[str, dict[str, float]]:
    """Instructions per call: mode -> candidate -> count.

    Args:
        root: The checkout whose package (and ``.venv``) is measured.
        modes: Some of :data:`MODES`.
        candidates: Some of ``ours`` and ``raw``.
        calls: The two call counts (``N1 < N2``).
        jobs: Client runs at once.

    Returns:
        The per-call counts.
    """
    python = _python(root)
    runs = [(m, c, n) for m in modes for c in candidates for n in calls]
    with GatewayProcess() as gateway, ThreadPoolExecutor(jobs) as pool:
        totals = dict(
            zip(
                runs,
                pool.map(lambda run: _count(python, root, run, gateway.base_url), runs),
                strict=True,
            )
        )
    low, high = calls
    return {
        mode: {
            name: (totals[mode, name, high] - totals[mode, name, low]) / (high - low)
            for name in candidates
        }
        for mode in modes
    }


def markdown(per_call: dict[str, dict[str, float]], command: str) -> str:
    """The counts as a markdown table (thousands of instructions per call)."""
    names = [name for name in CANDIDATES if name in next(iter(per_call.values()))]
    header = [f"{CANDIDATES[name]} (k instr/call)" for name in names]
    both = "ours" in names and "raw" in names
    lines = [
        "| mode | " + " | ".join(header) + (" | ratio |" if both else " |"),
        "| --- |" + " --- |" * (len(names) + both),
    ]
    for mode, counts in per_call.items():
        cells = [f"{counts[name] / 1000:,.1f}" for name in names]
        if both:
            cells.append(f"{counts['ours'] / counts['raw']:.3f}x")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nCommand: `{command}`"


def main(argv: list[str] | None = None) -> None:
    """Count, print the table, and append the JSON line when asked.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Raises:
        SystemExit: Without valgrind, or for a bad option.
    """
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--quick", action="store_true", help="1 and 3 calls (smoke)")
    cli.add_argument("--json", type=Path, default=None, help="append results here")
    cli.add_argument("--modes", default=",".join(MODES))
    cli.add_argument("--candidates", default="ours,raw")
    cli.add_argument("--calls", default="20,220", help="N1,N2")
    cli.add_argument("--jobs", type=int, default=1, help="client runs at once")
    cli.add_argument("--root", type=Path, default=ROOT, help="checkout to measure")
    args = cli.parse_args(argv)
    if shutil.which("valgrind") is None:
        msg = "valgrind not found (apt-get install valgrind)"
        raise SystemExit(msg)
    modes = [m for m in args.modes.split(",") if m]
    candidates = [c for c in args.candidates.split(",") if c]
    if not set(modes) <= set(MODES) or not set(candidates) <= set(CANDIDATES):
        msg = f"modes are {', '.join(MODES)}; candidates are ours, raw"
        raise SystemExit(msg)
    low, high = (1, 3) if args.quick else map(int, args.calls.split(","))
    if not 0 <= low < high:
        msg = "--calls takes N1,N2 with N1 < N2"
        raise SystemExit(msg)
    per_call = measure(args.root.resolve(), modes, candidates, (low, high), args.jobs)
    command = "uv run python benchmarks/instructions_per_call.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(markdown(per_call, command.strip()))
    if args.json is not None:
        record: dict[str, Any] = {
            "measure": "instructions per call (callgrind)",
            "root": str(args.root),
            "calls": [low, high],
            "per_call": per_call,
            "machine": machine_info(),
        }
        with args.json.open("a") as file:
            file.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
