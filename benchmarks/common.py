"""Shared helpers for the benchmark scripts.

* :class:`GatewayProcess` runs the offline gateway in a *separate* process
  (``python -m langchain_holysheep.testing --port 0``), so the server never
  competes with the client for the benchmark process's GIL.
* :func:`interleave` runs candidates in A B A B ... order, so drift on a shared,
  noisy machine hits every candidate alike; only medians and ratios are quoted.
* :class:`Result` is one row of the results table; :func:`emit` prints it and
  (with ``--json``) appends it to a file that ``run_all.py`` turns into markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from types import TracebackType

__all__ = [
    "API_KEY",
    "BASELINE",
    "CHAT_OPENAI",
    "HOLYSHEEP",
    "GatewayProcess",
    "Result",
    "ainterleave",
    "emit",
    "interleave",
    "machine_info",
    "parser",
    "rss_mib",
    "timed",
]

API_KEY = "cr_benchmark_key"
"""The key every candidate sends (the gateway accepts any key)."""
BASELINE = "raw openai SDK"
CHAT_OPENAI = "ChatOpenAI"
HOLYSHEEP = "ChatHolySheep"
ROOT = Path(__file__).resolve().parent.parent


_SCRIPTED_GATEWAY = """
import signal, sys, threading
from langchain_holysheep.testing import Fault, OfflineGateway, Reply
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
with OfflineGateway(port={port}) as gw:
    exec({setup!r})
    print(gw.base_url, flush=True)
    while not stop.wait(0.1):
        pass
"""


class GatewayProcess:
    """The offline gateway, served by a child Python process on 127.0.0.1."""

    def __init__(self, port: int = 0, setup: str | None = None) -> None:
        """Configure the child process.

        Args:
            port: The port to bind; ``0`` lets the gateway pick a free one.
            setup: Python statements run in the child with the started
                ``OfflineGateway`` bound to ``gw`` (e.g. scripted faults). Without
                it the child is ``python -m langchain_holysheep.testing``.
        """
        self.port = port
        self.setup = setup
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        """Start the child process and wait until it prints its base URL.

        Returns:
            The running gateway.

        Raises:
            RuntimeError: If the gateway does not start.
        """
        command = [
            sys.executable,
            "-m",
            "langchain_holysheep.testing",
            "--port",
            str(self.port),
        ]
        if self.setup is not None:
            command = [
                sys.executable,
                "-c",
                _SCRIPTED_GATEWAY.format(port=self.port, setup=self.setup),
            ]
        self._process = subprocess.Popen(  # noqa: S603  (our own interpreter)
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the offline gateway did not start: {line!r}")
        self.base_url = line
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the child process (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@dataclass
class Result:
    """One measure: per-candidate samples, their medians and the ratios."""

    measure: str
    unit: str
    target: str
    samples: dict[str, list[float]]
    baseline: str = BASELINE
    target_ratio: float | None = None
    """The ChatHolySheep/baseline ratio to reach (``None``: absolute target)."""
    target_absolute: float | None = None
    """An absolute ceiling for ChatHolySheep's median (same unit)."""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    judged: str = HOLYSHEEP
    """The candidate the target applies to."""

    @property
    def medians(self) -> dict[str, float]:
        """The median of each candidate's samples."""
        return {k: statistics.median(v) for k, v in self.samples.items() if v}

    @property
    def ratios(self) -> dict[str, float]:
        """Each candidate's median divided by the baseline's median."""
        medians = self.medians
        base = medians.get(self.baseline)
        if not base:
            return {}
        return {k: v / base for k, v in medians.items()}

    @property
    def met(self) -> bool | None:
        """Whether ChatHolySheep meets the target (``None``: nothing to judge)."""
        if self.target_ratio is not None:
            ratio = self.ratios.get(self.judged)
            return None if ratio is None else ratio <= self.target_ratio
        if self.target_absolute is not None:
            value = self.medians.get(self.judged)
            return None if value is None else value <= self.target_absolute
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict including medians, ratios and the verdict."""
        data = asdict(self)
        data.update(medians=self.medians, ratios=self.ratios, met=self.met)
        return data


def interleave(
    candidates: dict[str, Callable[[], float]],
    rounds: int,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Run each candidate once per round, A B A B ..., and collect its samples.

    The order alternates direction every round (A B C, C B A, ...) so that no
    candidate always runs right after the same neighbour. Garbage is collected
    before each sample and the collector is paused while it runs.

    Args:
        candidates: Name -> a function that runs one sample and returns its value
            (a time per operation, a wall time, ...).
        rounds: Measured rounds.
        warmup: Unmeasured rounds first (pools, caches, lazy imports).

    Returns:
        Name -> the measured samples, in round order.
    """
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            gc.disable()
            try:
                value = candidates[name]()
            finally:
                gc.enable()
            if index >= warmup:
                samples[name].append(value)
    return samples


async def ainterleave(
    candidates: dict[str, Callable[[], Awaitable[float]]],
    rounds: int,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """The async twin of :func:`interleave`, run inside one event loop.

    One loop for every round keeps each candidate's connection pool warm and
    sidesteps clients that cannot be reused across ``asyncio.run`` calls.

    Args:
        candidates: Name -> a coroutine function returning one sample.
        rounds: Measured rounds.
        warmup: Unmeasured rounds first.

    Returns:
        Name -> the measured samples, in round order.
    """
    names = list(candidates)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            value = await candidates[name]()
            if index >= warmup:
                samples[name].append(value)
    return samples


def timed(function: Callable[[], Any]) -> float:
    """Run ``function`` once and return the seconds it took."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def rss_mib() -> float:
    """This process's resident set size, in MiB (Linux ``/proc``)."""
    with Path("/proc/self/statm").open() as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    """The machine and software the numbers were measured on."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    info = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for package in (
        "langchain-holysheep",
        "openai",
        "langchain-core",
        "langchain-openai",
    ):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = "not installed"
    return info


def parser(description: str) -> argparse.ArgumentParser:
    """The command line every benchmark script shares.

    Args:
        description: What the script measures.

    Returns:
        A parser with ``--quick``, ``--rounds`` and ``--json``.
    """
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes: checks that the benchmark runs (CI smoke test)",
    )
    result.add_argument(
        "--rounds", type=int, default=None, help="measured rounds per candidate"
    )
    result.add_argument(
        "--json",
        type=Path,
        default=None,
        help="append the results, one JSON object per line, to this file",
    )
    return result


def emit(results: Sequence[Result], json_path: Path | None) -> None:
    """Print each result and append it to ``json_path`` as JSON lines.

    Args:
        results: The measured rows.
        json_path: Where ``run_all.py`` collects them, if anywhere.
    """
    for result in results:
        medians = ", ".join(
            f"{name}={value:.4g} {result.unit}"
            for name, value in result.medians.items()
        )
        ratios = ", ".join(
            f"{name}={value:.2f}x"
            for name, value in result.ratios.items()
            if name != result.baseline
        )
        verdict = {True: "met", False: "NOT met", None: "-"}[result.met]
        print(f"{result.measure}: {medians}")
        if ratios:
            print(f"    ratios vs {result.baseline}: {ratios}")
        print(f"    target {result.target}: {verdict}")
    if json_path is not None:
        with json_path.open("a") as output:
            for result in results:
                output.write(json.dumps(result.to_json()) + "\n")
