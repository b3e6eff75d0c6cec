"""The in-process backend: GCRA on this process's monotonic clock.

Used when no Redis URL is configured (the limits hold for one process), and as
the fallback while Redis is unreachable (the limits then hold for this process's
share of the fleet). Thread-safe; the lock is held only to compute a booking,
never while waiting.
"""

from __future__ import annotations

import threading
import time

from langchain_holysheep.ratelimit._gcra import MICROS, Booking, Charge, book

__all__ = ["LocalGCRA"]

_PRUNE_AT = 256


class LocalGCRA:
    """GCRA state for one process (see :func:`~._gcra.book`)."""

    def __init__(self) -> None:
        """Start with every limit free."""
        self._tats: dict[str, float] = {}
        self._blocks: dict[str, float] = {}
        self._lock = threading.Lock()

    def book(
        self,
        blocks: tuple[str, ...],
        charges: tuple[Charge, ...],
        max_wait: float | None,
    ) -> Booking:
        """Book a call's slot against ``charges``, after any of ``blocks``.

        Args:
            blocks: The block keys that apply to the call.
            charges: What the call costs against each limit.
            max_wait: The longest acceptable wait in seconds (``None``: any).

        Returns:
            Whether the slot was booked, and the wait until it.
        """
        max_wait_us = -1.0 if max_wait is None else max_wait * MICROS
        with self._lock:
            now_us = time.monotonic() * MICROS
            until = max((self._blocks.get(b, 0.0) for b in blocks), default=0.0)
            booking = book(self._tats, charges, now_us, max_wait_us, until)
            if len(self._tats) > _PRUNE_AT:  # forget the limits that are free
                for key in [k for k, tat in self._tats.items() if tat < now_us]:
                    del self._tats[key]
            return booking

    def block(self, key: str, seconds: float) -> None:
        """Make every call under ``key`` wait ``seconds`` from now (never shorter).

        Args:
            key: The block key.
            seconds: The block's length.
        """
        with self._lock:
            ends = (time.monotonic() + seconds) * MICROS
            if ends > self._blocks.get(key, 0.0):
                self._blocks[key] = ends
