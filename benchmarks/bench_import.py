"""Cold import time and RSS after import, each in a fresh interpreter.

Each sample starts a new Python process that times one import statement and
then reads its own resident set size. Bytecode is cached first (one unmeasured
run per candidate), candidates alternate A B A B ..., medians are reported.

* ``from langchain_holysheep import ChatHolySheep`` (the candidate), vs
* ``from langchain_openai import ChatOpenAI`` (the baseline for this measure),
* and, for reference, ``import langchain_holysheep``, langchain-core's
  ``BaseChatModel`` alone (the floor for any LangChain chat model: ChatHolySheep
  must subclass it) and a bare interpreter.

    uv run python benchmarks/bench_import.py [--quick] [--rounds N] [--json FILE]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from common import CHAT_OPENAI, HOLYSHEEP, ROOT, Result, emit, interleave, parser

BARE = "bare interpreter"
PACKAGE = "import langchain_holysheep"
FLOOR = "langchain-core BaseChatModel alone"
STATEMENTS = {
    HOLYSHEEP: "from langchain_holysheep import ChatHolySheep",
    CHAT_OPENAI: "from langchain_openai import ChatOpenAI",
    PACKAGE: "import langchain_holysheep",
    FLOOR: "from langchain_core.language_models import BaseChatModel",
    BARE: "pass",
}
CHILD = """
import json, os, sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
with open("/proc/self/statm") as statm:
    pages = int(statm.read().split()[1])
print(json.dumps({{
    "seconds": elapsed,
    "rss_mib": pages * os.sysconf("SC_PAGE_SIZE") / 1048576,
    "openai_loaded": "openai" in sys.modules,
    "modules": len(sys.modules),
}}))
"""


def run_child(statement: str) -> dict[str, float]:
    """Run ``statement`` in a fresh interpreter and return what it measured."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    completed = subprocess.run(  # noqa: S603  (our own interpreter)
        [sys.executable, "-c", CHILD.format(statement=statement)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    if completed.returncode:
        msg = f"{statement!r} failed:\n{completed.stderr[-3000:]}"
        raise RuntimeError(msg)
    data: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return data


def main(argv: list[str] | None = None) -> list[Result]:
    """Measure import time and RSS after import, and print them.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The results.
    """
    args = parser(__doc__ or "").parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 12)
    seen: dict[str, list[dict[str, float]]] = {name: [] for name in STATEMENTS}

    def sample(name: str) -> float:
        data = run_child(STATEMENTS[name])
        seen[name].append(data)
        return data["seconds"]

    times = interleave(
        {name: (lambda name=name: sample(name)) for name in STATEMENTS},  # type: ignore[misc]
        rounds,
        warmup=1,
    )
    measured = {name: runs[-rounds:] for name, runs in seen.items()}
    openai_loaded = any(run["openai_loaded"] for run in measured[HOLYSHEEP])
    import_time = Result(
        measure="cold import (fresh interpreter, bytecode cached)",
        unit="s",
        target=f"<= 0.6x of `{STATEMENTS[CHAT_OPENAI]}`",
        target_ratio=0.6,
        baseline=CHAT_OPENAI,
        samples={name: times[name] for name in STATEMENTS if name != BARE},
        note=(
            f"{rounds} samples per candidate; importing langchain_holysheep "
            f"{'LOADS' if openai_loaded else 'does not load'} openai"
        ),
        extra={"openai_loaded": openai_loaded},
    )
    rss = Result(
        measure="RSS after import",
        unit="MiB",
        target="<= 85 MiB",
        target_absolute=85.0,
        baseline=CHAT_OPENAI,
        samples={
            name: [run["rss_mib"] for run in runs] for name, runs in measured.items()
        },
        note=f"{rounds} samples per candidate; a bare interpreter for reference",
    )
    emit([import_time, rss], args.json)
    return [import_time, rss]


if __name__ == "__main__":
    main()
