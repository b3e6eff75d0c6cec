"""A bulk run's progress: a live bar on a terminal, else a plain line now and then.

Both displays show the same counts: lines done of the total (lines answered
before this run included), requests a second and the time left at this run's
pace, the dollars this run spent, and the error lines. On a terminal, with
``rich`` installed (the ``langchain-holysheep[progress]`` extra), it is a live
bar; otherwise (a file, a pipe, a CI log) one line every ``interval`` seconds,
such as::

    batch: 120/1000 (12.0%), 8.1 req/s, ETA 1m49s, $0.012300 spent, 2 errors

At the end the display stops and the usage table is printed
(:func:`~langchain_holysheep.batch._summary.usage_table`).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

from langchain_holysheep.batch._summary import format_usd, usage_table
from langchain_holysheep.batch._types import nano_to_usd

if TYPE_CHECKING:
    from langchain_holysheep.batch._types import LineResult, Progress
    from langchain_holysheep.callbacks import UsageSummary

__all__ = [
    "DEFAULT_INTERVAL_S",
    "LiveProgress",
    "PlainProgress",
    "make_progress",
]

DEFAULT_INTERVAL_S: Final = 5.0
"""Seconds between two plain progress lines."""

_RICH_HINT: Final = (
    "a live progress bar needs rich: install the extra with "
    "`pip install 'langchain-holysheep[progress]'` (or `pip install rich`), "
    "or use plain progress lines (live=False)"
)


def _duration(seconds: float) -> str:
    """``"1h02m"``, ``"3m07s"`` or ``"12s"``."""
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class _Counts:
    """What both displays show, updated under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.already_done = 0
        self.done = 0
        self.errors = 0
        self.spent_nano = 0
        self.unpriced = 0
        self.started = time.monotonic()

    def start(self, total: int, already_done: int) -> None:
        with self.lock:
            self.total, self.already_done = total, already_done
            self.started = time.monotonic()

    def add(self, result: LineResult) -> None:
        with self.lock:
            self.done += 1
            self.errors += 0 if result.ok else 1
            if result.priced:
                self.spent_nano += result.cost_nano
            else:
                self.unpriced += 1

    def fields(self) -> dict[str, str]:
        """The rate, time left, spending and errors as text."""
        with self.lock:
            elapsed = time.monotonic() - self.started
            done, left = self.done, self.total - self.already_done - self.done
            spent, unpriced, errors = self.spent_nano, self.unpriced, self.errors
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = _duration(left / rate) if rate > 0 and left > 0 else "-"
        if left <= 0:
            eta = "0s"
        return {
            "rate": f"{rate:.1f} req/s",
            "eta": f"ETA {eta}",
            "spent": f"{format_usd(nano_to_usd(spent))}{'*' if unpriced else ''} spent",
            "errors": f"{errors} error{'' if errors == 1 else 's'}",
        }

    def line(self) -> str:
        fields = self.fields()
        with self.lock:
            done = self.already_done + self.done
            total = self.total
        share = f" ({100 * done / total:.1f}%)" if total else ""
        return (
            f"batch: {done}/{total}{share}, {fields['rate']}, {fields['eta']}, "
            f"{fields['spent']}, {fields['errors']}"
        )


def _print_usage(stream: TextIO, usage: UsageSummary | None) -> None:
    if usage is not None and usage.requests:
        stream.write(usage_table(usage) + "\n")
        stream.flush()


class PlainProgress:
    """One progress line every ``interval`` seconds (for logs and pipes)."""

    def __init__(self, stream: TextIO, *, interval: float = DEFAULT_INTERVAL_S) -> None:
        """Prepare the display (nothing is written before :meth:`start`).

        Args:
            stream: Where the lines go.
            interval: Seconds between two lines.
        """
        self._stream = stream
        self._interval = interval
        self._counts = _Counts()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, total: int, already_done: int) -> None:
        """Write the first line, then one every ``interval`` seconds.

        Args:
            total: Requests in the input.
            already_done: Of those, lines answered before this run.
        """
        self._counts.start(total, already_done)
        self._write()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._tick, name="holysheep-batch-progress", daemon=True
        )
        self._thread.start()

    def advance(self, result: LineResult) -> None:
        """Count one written line.

        Args:
            result: The line and its counts.
        """
        self._counts.add(result)

    def finish(self, usage: UsageSummary | None) -> None:
        """Stop the lines, write the last one, then the usage table.

        Args:
            usage: What the run counted (``None``: no table).
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._write()
        _print_usage(self._stream, usage)

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self._write()

    def _write(self) -> None:
        self._stream.write(self._counts.line() + "\n")
        self._stream.flush()


class LiveProgress:
    """A live ``rich`` progress bar (for a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        """Prepare the bar (nothing is drawn before :meth:`start`).

        Args:
            stream: The terminal.

        Raises:
            ImportError: rich is not installed (the message names the extra).
        """
        try:
            from rich.console import Console  # noqa: PLC0415 (optional extra)
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
            )
        except ImportError as error:
            raise ImportError(_RICH_HINT, name="rich") from error
        self._stream = stream
        self._counts = _Counts()
        self._bar: Any = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            TextColumn("{task.fields[spent]}"),
            TextColumn("{task.fields[errors]}"),
            console=Console(file=stream, force_terminal=True),
            refresh_per_second=4,
        )
        self._task: Any = None

    def start(self, total: int, already_done: int) -> None:
        """Draw the bar.

        Args:
            total: Requests in the input.
            already_done: Of those, lines answered before this run.
        """
        self._counts.start(total, already_done)
        self._task = self._bar.add_task(
            "batch", total=total, completed=already_done, **self._counts.fields()
        )
        self._bar.start()

    def advance(self, result: LineResult) -> None:
        """Count one written line and update the bar.

        Args:
            result: The line and its counts.
        """
        self._counts.add(result)
        if self._task is not None:
            self._bar.update(self._task, advance=1, **self._counts.fields())

    def finish(self, usage: UsageSummary | None) -> None:
        """Stop the bar (left drawn as it ended), then print the usage table.

        Args:
            usage: What the run counted (``None``: no table).
        """
        if self._task is not None:
            self._bar.update(self._task, **self._counts.fields())
        self._bar.stop()
        _print_usage(self._stream, usage)


def _rich_installed() -> bool:
    try:
        import rich  # noqa: F401, PLC0415 (optional extra)
    except ImportError:
        return False
    return True


def make_progress(
    stream: TextIO | None = None,
    *,
    interval: float = DEFAULT_INTERVAL_S,
    live: bool | None = None,
) -> Progress:
    """The progress display for ``stream``.

    Args:
        stream: Where it goes (default: ``sys.stderr``).
        interval: Seconds between two plain lines.
        live: ``True`` for the live bar, ``False`` for plain lines; ``None``:
            the live bar when ``stream`` is a terminal and rich is installed.

    Returns:
        The display.

    Raises:
        ValueError: ``interval`` is not a number of seconds above 0.
        ImportError: ``live=True`` and rich is not installed.
    """
    out = sys.stderr if stream is None else stream
    if isinstance(interval, bool) or not (
        isinstance(interval, int | float) and interval > 0 and math.isfinite(interval)
    ):
        msg = f"interval must be a number of seconds above 0, not {interval!r}"
        raise ValueError(msg)
    if live is None:
        isatty = getattr(out, "isatty", None)
        live = bool(isatty is not None and isatty()) and _rich_installed()
    if live:
        return LiveProgress(out)
    return PlainProgress(out, interval=float(interval))
