"""GCRA, the rate rule both backends apply: the Lua script and its Python twin.

GCRA (the generic cell rate algorithm) keeps one number per limit, its
*theoretical arrival time* (TAT): the moment the limit is free again. A limit of
``L`` units per minute has an emission interval ``T = 60 s / L`` per unit; a call
costing ``c`` units may start once every limit it touches is free
(``start = max(now, block end, TAT of each limit)``) and then pushes each of those
TATs to ``start + c * T``. So calls are spaced evenly, and any window of one minute
admits at most ``L`` units plus the cost of one call (the only slack).

A call that must wait is not refused: it *books* its future slot (the TATs move
on from that slot) and is told how long to wait, so the caller sleeps once and
never polls. A call that may not wait that long (``max_wait``) changes nothing.

A charge may also carry a *correction*: units an earlier call used beyond (or,
negative, short of) what it reserved, learned only from its answer. It moves
that limit's TAT first (a live TAT only, one that has not expired: a key lives
until a second after its TAT; an expired one is idle, so the earlier call's
units are already past), so the correction rides on the next call's
round trip and is committed with it, or not at all.

:data:`GCRA_SCRIPT` runs this on Redis, atomically, on Redis's own clock
(``TIME``), in one round trip; :func:`book` is the same rule in pure Python for
the in-process backend (times in microseconds in both).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BLOCK_SCRIPT",
    "GCRA_SCRIPT",
    "GCRA_SHA1",
    "MICROS",
    "Booking",
    "Charge",
    "book",
]

MICROS: Final = 1_000_000
"""Microseconds per second: the time unit of the script and of :func:`book`."""

# KEYS[1..ARGV[2]]: block keys (each holds the end of a block, in µs of Redis's
# clock); the other KEYS: one TAT key per limit; for the k-th of them (from 1),
# ARGV[1 + 2k] is its increment and ARGV[2 + 2k] its correction, in µs.
# ARGV[1]: the longest wait the caller accepts, in µs (negative: any wait).
# Returns {1, wait_µs} when booked (TATs committed), {0, wait_µs} when the wait
# is longer than ARGV[1] (nothing written).
GCRA_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nblocks = tonumber(ARGV[2])
local start = now
for i = 1, #KEYS do
  local v = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if i > nblocks and v > 0 then v = v + tonumber(ARGV[2 * (i - nblocks) + 2]) end
  if v > start then start = v end
end
local wait = start - now
local max_wait = tonumber(ARGV[1])
if max_wait >= 0 and wait > max_wait then return {0, wait} end
for i = nblocks + 1, #KEYS do
  local tat = start + tonumber(ARGV[2 * (i - nblocks) + 1])
  redis.call('SET', KEYS[i], string.format('%.0f', tat),
             'PX', math.floor((tat - now) / 1000) + 1000)
end
return {1, wait}
"""
"""The GCRA script: block check, every TAT, commit all or none, in one call."""

GCRA_SHA1: Final = hashlib.sha1(GCRA_SCRIPT.encode(), usedforsecurity=False).hexdigest()
"""The script's SHA-1, for ``EVALSHA``."""


# KEYS[1]: a block key; ARGV[1]: the block's length in µs. Lengthens the block
# to now + ARGV[1] on Redis's clock, never shortens it (a shorter 429 arriving
# later keeps the longer block). Returns 1 if it lengthened the block.
BLOCK_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local length = tonumber(ARGV[1])
local ends = now + length
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if ends <= current then return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', ends),
           'PX', math.floor(length / 1000) + 1000)
return 1
"""
"""The block script: every call of the key (or model) waits until it ends."""


@dataclass(frozen=True, slots=True)
class Charge:
    """What one call costs against one limit.

    Attributes:
        key: The limit's key suffix, e.g. ``"rpm"`` or ``"m:gpt-4.1:tpm"``.
        increment_us: ``cost * emission interval``, in microseconds: how far
            the call moves the limit's TAT.
        correction_us: Earlier calls' units beyond (negative: short of) what
            they reserved, times the emission interval: applied to a live TAT
            before this call is placed.
    """

    key: str
    increment_us: float
    correction_us: float = 0.0


@dataclass(frozen=True, slots=True)
class Booking:
    """The answer to one call.

    Attributes:
        booked: Whether the slot was booked (the limits now count the call).
        wait: Seconds until the slot (``0.0``: go now). When ``booked`` is
            false, the wait that was too long.
    """

    booked: bool
    wait: float


def book(
    tats: dict[str, float],
    charges: tuple[Charge, ...],
    now_us: float,
    max_wait_us: float,
    block_until_us: float = 0.0,
) -> Booking:
    """Apply GCRA to ``tats`` in place: the Python twin of :data:`GCRA_SCRIPT`.

    Args:
        tats: Each limit's TAT in microseconds (missing: free), updated when the
            call is booked.
        charges: What the call costs against each limit.
        now_us: The current time in microseconds (on the clock of ``tats``).
        max_wait_us: The longest acceptable wait; negative accepts any wait.
        block_until_us: The end of a block (a 429 the whole key waits out).

    Returns:
        Whether the call was booked, and its wait.
    """
    start = max(now_us, block_until_us)
    for charge in charges:
        tat = tats.get(charge.key, 0.0)
        if charge.key in tats and tat + MICROS > now_us:  # live, as on Redis
            tat += charge.correction_us
        start = max(start, tat)
    wait = start - now_us
    if 0 <= max_wait_us < wait:
        return Booking(booked=False, wait=wait / MICROS)
    for charge in charges:
        tats[charge.key] = start + charge.increment_us
    return Booking(booked=True, wait=wait / MICROS)
