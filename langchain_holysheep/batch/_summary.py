"""What a bulk run did: the usage table and the one-line summary.

:class:`UsageCounter` counts each written line (requests, errors, tokens, cost,
latency per model) into the usage tracker's shapes
(:class:`~langchain_holysheep.callbacks.UsageSummary`), and
:func:`usage_table` renders one: a row per model and a total, with latency
percentiles (nearest rank). :class:`BatchSummary` is the run's result: its
counts, what was spent, its exit status and the line the CLI prints.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from langchain_holysheep._text_table import render_table
from langchain_holysheep.batch._types import (
    EXIT_BUDGET,
    EXIT_OK,
    EXIT_SOME_FAILED,
    nano_to_usd,
)
from langchain_holysheep.callbacks import Tally, summarize

if TYPE_CHECKING:
    from langchain_holysheep.batch._types import LineResult
    from langchain_holysheep.callbacks import ModelUsage, Percentiles, UsageSummary

__all__ = [
    "UNKNOWN_MODEL",
    "BatchSummary",
    "UsageCounter",
    "format_usd",
    "usage_table",
]

UNKNOWN_MODEL = "unknown"
"""The row of lines that failed before any model was asked."""

_HEADER = (
    "model",
    "requests",
    "errors",
    "input tokens",
    "output tokens",
    "cost USD",
    "latency ms p50/p95/p99",
)


def format_usd(usd: Decimal | float) -> str:
    """An amount of USD as shown to people: ``$0.001234`` (six decimals).

    Args:
        usd: The amount.

    Returns:
        The text.
    """
    return f"${Decimal(str(usd)):.6f}"


def _ms(p: Percentiles | None) -> str:
    return "-" if p is None else f"{p.p50:.0f}/{p.p95:.0f}/{p.p99:.0f}"


def _row(name: str, usage: ModelUsage | UsageSummary) -> tuple[str, ...]:
    cost = usage.cost_usd
    if cost is None:
        cell = "n/a*" if usage.unpriced_requests else "-"
    else:
        cell = f"{cost:.6f}" + ("*" if usage.unpriced_requests else "")
    return (
        name,
        str(usage.requests),
        str(usage.errors),
        str(usage.input_tokens),
        str(usage.output_tokens),
        cell,
        _ms(usage.total_ms),
    )


def usage_table(usage: UsageSummary) -> str:
    """The usage table of a run: a row per model and a total.

    Args:
        usage: What the run counted.

    Returns:
        The table (no trailing newline), with a note under it when some
        answers had no known cost.
    """
    rows = [_row(u.model, u) for u in usage.by_model.values()]
    out = render_table(_HEADER, rows, total=_row("TOTAL", usage))
    if usage.unpriced_requests:
        out += (
            f"\n* {usage.unpriced_requests} answer(s) with no known cost are not "
            f"in the cost ({usage.unpriced_input_tokens} input / "
            f"{usage.unpriced_output_tokens} output tokens): "
            f"{', '.join(usage.unpriced_models)}; give their prices with --price "
            "or --prices"
        )
    return out


def _tally(result: LineResult) -> Tally:
    """The counts of one line: one request, its tokens and its cost."""
    priced = result.priced
    return Tally(
        requests=1,
        errors=0 if result.ok else 1,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        priced_requests=int(priced),
        unpriced_requests=int(not priced),
        unpriced_input_tokens=0 if priced else result.input_tokens,
        unpriced_output_tokens=0 if priced else result.output_tokens,
        cost=nano_to_usd(result.cost_nano) if priced else Decimal(0),
    )


class UsageCounter:
    """Counts a run's lines per model (thread-safe; percentiles on demand).

    Each line is one request of the table: an error line counts as a request
    and an error; its cost counts when known (a line whose cost is unknown
    is counted apart, never as $0).
    """

    def __init__(self) -> None:
        """Start with no lines."""
        self._lock = threading.Lock()
        self._tallies: dict[str, Tally] = {}
        self._latencies: dict[str, list[float]] = {}

    def add(self, result: LineResult) -> None:
        """Count one written line.

        Args:
            result: The line and its counts.
        """
        model = result.model or UNKNOWN_MODEL
        tally = _tally(result)
        with self._lock:
            self._tallies[model] = self._tallies.get(model, Tally()) + tally
            self._latencies.setdefault(model, []).append(result.latency_ms)

    def summary(self) -> UsageSummary:
        """The counts so far, with latency percentiles.

        Returns:
            A snapshot: later lines do not change it.
        """
        with self._lock:
            tallies = dict(self._tallies)
            latencies = {m: list(samples) for m, samples in self._latencies.items()}
        return summarize(tallies, latencies)

    def table(self) -> str:
        """The counts so far as the usage table (see :func:`usage_table`).

        Returns:
            The table.
        """
        return usage_table(self.summary())


@dataclass(frozen=True)
class BatchSummary:
    """The result of a run.

    Attributes:
        total: Requests in the input file.
        already_done: Of those, lines already in the output when it started.
        succeeded: Success lines this run wrote.
        failed: Error lines this run wrote.
        unsent: Requests left unanswered because the budget stopped the run.
        spent_usd: What the run spent (a shared budget: what the fleet spent).
        budget_usd: The budget, if any.
        budget_stopped: Whether the budget stopped the run.
        usage: This run's usage per model.
        elapsed_s: How long the run took, in seconds.
        output_path: The output file.
        failed_before: Of ``already_done``, lines that were error lines (the
            output still lacks their answers: the run exits 1).
    """

    total: int
    already_done: int
    succeeded: int
    failed: int
    unsent: int
    spent_usd: Decimal
    budget_usd: Decimal | None
    budget_stopped: bool
    usage: UsageSummary
    elapsed_s: float
    output_path: str
    failed_before: int = 0

    @property
    def exit_status(self) -> int:
        """3 when the budget stopped the run, else 1 with error lines, else 0."""
        if self.budget_stopped:
            return EXIT_BUDGET
        if self.failed or self.failed_before:
            return EXIT_SOME_FAILED
        return EXIT_OK

    def message(self) -> str:
        """The one line the CLI prints at the end of a run.

        Returns:
            What was answered, what failed, what was spent and, when the budget
            stopped the run, the budget and what to do.
        """
        done = self.already_done + self.succeeded + self.failed
        parts = [f"{done}/{self.total} requests answered"]
        if self.already_done:
            parts.append(f"{self.already_done} of them before this run")
        parts.append(f"{self.failed} failed" if self.failed else "none failed")
        spent = format_usd(self.spent_usd)
        if self.budget_usd is not None:
            spent += f" of the {format_usd(self.budget_usd)} budget"
        parts.append(f"{spent} spent in {self.elapsed_s:.1f} s")
        text = "holysheep batch: " + ", ".join(parts) + f"; output: {self.output_path}"
        if self.budget_stopped:
            text += (
                f". Stopped by the budget: {self.unsent} request(s) not sent, since "
                "the next one's worst case would not fit in what is left. Run the "
                "same command again with a larger --budget-usd to answer them "
                "(answered lines are skipped)."
            )
        elif self.failed or self.failed_before:
            errors = self.failed + self.failed_before
            text += (
                f". {errors} error line(s) are in the output (delete them and run "
                "again to retry them)."
            )
        return text
