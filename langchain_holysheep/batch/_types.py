"""The shapes every part of a bulk run shares (pure data, no I/O).

A run reads :class:`BatchRequest` lines, sends each through one process's
request runner, and appends one :class:`LineResult` per request to the output
file. Money is counted in whole nano-dollars (``1e-9`` USD, :data:`NANO_USD`),
so reservations and corrections add up exactly across processes.

:class:`Budget` and :class:`Progress` are the two seams between the engine and
the parts it drives: the budget (in process, or shared through Redis) and the
progress display (a live bar, or a plain line every few seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_holysheep.callbacks import UsageSummary

__all__ = [
    "CHAT_COMPLETIONS_URL",
    "EXIT_BUDGET",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "NANO_USD",
    "BatchRequest",
    "Budget",
    "LineResult",
    "Progress",
    "nano_to_usd",
    "usd_to_nano",
]

CHAT_COMPLETIONS_URL: Final = "/v1/chat/completions"
"""The one ``url`` a batch line may name (OpenAI Batch API spelling)."""

NANO_USD: Final = Decimal("1e-9")
"""One nano-dollar: the unit budgets count in."""

EXIT_OK: Final = 0
"""Every input line has a successful output line."""
EXIT_SOME_FAILED: Final = 1
"""The run finished, and some lines are error lines."""
EXIT_INPUT: Final = 2
"""Bad input or arguments: nothing was sent."""
EXIT_BUDGET: Final = 3
"""The budget stopped the run: lines are left unanswered (run again to go on)."""


def usd_to_nano(usd: Decimal | float | str) -> int:
    """USD as whole nano-dollars, rounded up (a reservation never falls short).

    Args:
        usd: An amount in USD.

    Returns:
        The amount in nano-dollars.
    """
    nano = Decimal(str(usd)) / NANO_USD
    return int(nano.to_integral_value(rounding="ROUND_CEILING"))


def nano_to_usd(nano: int) -> Decimal:
    """Nano-dollars as an exact USD ``Decimal``.

    Args:
        nano: An amount in nano-dollars.

    Returns:
        The amount in USD.
    """
    return Decimal(nano) * NANO_USD


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One validated input line.

    Attributes:
        custom_id: The caller's id for the line (unique in the file).
        body: The chat-completions request body, as given.
        line_no: Its 1-based line number in the input file.
    """

    custom_id: str
    body: Mapping[str, Any]
    line_no: int


@dataclass(frozen=True, slots=True)
class LineResult:
    """What one request produced: its output line and the counts around it.

    Attributes:
        custom_id: The input line's id.
        line: The output line, one JSON object and its newline, written as is.
        ok: Whether the line is a success (``"error": null``).
        model: The model that served (or was last tried), if any was asked.
        cost_nano: What the request cost, in nano-dollars (0 when unknown).
        priced: Whether ``cost_nano`` is known (a price or a gateway cost).
        input_tokens: Prompt tokens the gateway reported.
        output_tokens: Completion tokens the gateway reported.
        latency_ms: From the first attempt to the answer, in milliseconds.
        attempts: Requests sent for this line (retries and fallbacks included).
    """

    custom_id: str
    line: str
    ok: bool
    model: str | None = None
    cost_nano: int = 0
    priced: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    attempts: int = 0


class Budget(Protocol):
    """The money a run may spend, shared by whoever holds the same budget.

    A request reserves its worst case before it is sent, and settles to what
    it cost once answered (or releases the reservation when nothing was
    spent). ``spent + reserved`` never exceeds the limit.
    """

    @property
    def limit_nano(self) -> int:
        """The budget, in nano-dollars."""
        ...

    async def reserve(self, nano: int) -> bool:
        """Reserve ``nano``; ``False`` (reserving nothing) if it would not fit."""
        ...

    async def settle(self, reserved_nano: int, actual_nano: int) -> None:
        """Replace a reservation by what the request actually cost."""
        ...

    async def spent_nano(self) -> int:
        """What has been spent so far (settled costs), in nano-dollars."""
        ...


class Progress(Protocol):
    """A run's progress display (a live bar on a terminal, else plain lines)."""

    def start(self, total: int, already_done: int) -> None:
        """The run begins: ``total`` lines, ``already_done`` answered before."""
        ...

    def advance(self, result: LineResult) -> None:
        """One more line was written."""
        ...

    def finish(self, usage: UsageSummary | None) -> None:
        """The run ended: stop the display, then print the usage table."""
        ...
