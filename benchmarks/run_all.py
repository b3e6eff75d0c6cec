"""Run every benchmark and print one markdown results table.

Each script runs in its own process (``--json`` collects its rows), then the
table, the exact command and the machine are printed, and written to
``--output`` when given (``docs/performance.md`` quotes such a run).

    uv run python benchmarks/run_all.py [--quick] [--output FILE]

``--quick`` uses tiny sizes: CI runs it to check that the benchmarks still work;
its numbers mean nothing and nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, machine_info

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_chat.py",
    "bench_import.py",
    "bench_memory.py",
    "bench_event_loops.py",
    # Added once their modules exist: failover and embeddings overhead.
    "bench_fallback.py",
    "bench_embeddings.py",
    "bench_fleet.py",
    "bench_batch.py",
)


def _format(value: float, unit: str) -> str:
    if unit != "s":
        return f"{value:.2f} {unit}"
    if value >= 1:
        return f"{value:.3f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3f} ms"
    return f"{value * 1e6:.1f} µs"


def _row(result: dict[str, Any]) -> str:
    cells = []
    for name, median in result["medians"].items():
        ratio = result["ratios"].get(name)
        text = f"{name}: {_format(median, result['unit'])}"
        if ratio is not None and name != result["baseline"]:
            judged = name == result["judged"]
            text += f" (**{ratio:.2f}x**)" if judged else f" ({ratio:.2f}x)"
        elif name == result["judged"]:
            text = f"**{text}**"
        elif name == result["baseline"] and result["ratios"]:
            text += " (baseline)"
        cells.append(text)
    verdict = {True: "yes", False: "**no**", None: "-"}[result["met"]]
    note = f" _{result['note']}_" if result.get("note") else ""
    return (
        f"| {result['measure']} | {result['target']} | {'<br>'.join(cells)}{note} "
        f"| {verdict} |"
    )


def table(results: list[dict[str, Any]]) -> str:
    """Render the results as a markdown table (medians and ratios per measure)."""
    lines = [
        "| measure | target (ChatHolySheep) | medians (ratio to the baseline) | met |",
        "| --- | --- | --- | --- |",
    ]
    lines += [_row(result) for result in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scripts and print the table.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: non-zero if a script failed (never for a missed target).
    """
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    cli.add_argument("--output", type=Path, default=None, help="write markdown here")
    args = cli.parse_args(argv)
    started = time.perf_counter()
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "results.jsonl"
        json_path.touch()
        for script in SCRIPTS:
            path = HERE / script
            if not path.exists():
                print(f"skipped {script}: not written yet")
                continue
            command = [sys.executable, str(path), "--json", str(json_path)]
            if args.quick:
                command.append("--quick")
            print(f"$ {shlex.join(command[1:])}", flush=True)
            completed = subprocess.run(command, check=False, cwd=ROOT)  # noqa: S603
            if completed.returncode:
                failed.append(script)
        results = [json.loads(line) for line in json_path.read_text().splitlines()]
    command = "uv run python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    machine = "\n".join(f"- {key}: {value}" for key, value in machine_info().items())
    report = (
        f"{table(results)}\n\nCommand: `{command}` "
        f"({time.perf_counter() - started:.0f} s)\n\nMachine:\n{machine}\n"
    )
    print()
    print(report)
    if args.output is not None:
        args.output.write_text(report)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
