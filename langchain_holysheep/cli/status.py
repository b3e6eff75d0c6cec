"""``holysheep status``: the fleet's limiter and breaker state, read from Redis."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from langchain_holysheep._text_table import render_table
from langchain_holysheep.cli._errors import EXIT_REQUEST_FAILED, CLIError

if TYPE_CHECKING:
    import argparse

    from langchain_holysheep.ratelimit._status import FleetStatus, LimitState

__all__ = ["cmd_status"]

_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class _LimitRow:
    """A limit as shown: booked ahead, and used/remaining when the limit is known."""

    namespace: str
    limit: str
    booked_ahead_s: float
    per_minute: int | None
    used: float | None
    remaining: float | None


def _limit_row(state: LimitState, args: argparse.Namespace) -> _LimitRow:
    per_minute: int | None = None
    if state.limit == "rpm":
        per_minute = args.requests_per_minute
    elif state.limit == "tpm":
        per_minute = args.tokens_per_minute
    used = None
    if per_minute is not None:
        used = round(min(per_minute, state.ahead * per_minute / _MINUTE), 1)
    return _LimitRow(
        namespace=state.namespace,
        limit=state.limit,
        booked_ahead_s=round(state.ahead, 3),
        per_minute=per_minute,
        used=used,
        remaining=None if used is None else round(per_minute - used, 1),  # type: ignore[operator]
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _read(url: str, namespace: str | None) -> FleetStatus:
    from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415
    from langchain_holysheep.ratelimit._redis import mask_url  # noqa: PLC0415
    from langchain_holysheep.ratelimit._status import (  # noqa: PLC0415
        read_fleet_status,
    )

    api_key = os.environ.get("HOLYSHEEP_API_KEY", "")
    try:
        return read_fleet_status(url, api_key=api_key, namespace=namespace)
    except (ImportError, HolySheepInputError) as error:
        raise CLIError(str(error)) from None
    except Exception as error:  # noqa: BLE001 (any Redis failure is reported)
        raise CLIError(
            f"cannot read Redis at {mask_url(url)} ({type(error).__name__}: {error})",
            EXIT_REQUEST_FAILED,
        ) from None


def _write_tables(status: FleetStatus, limits: list[_LimitRow], out: TextIO) -> None:
    when = datetime.fromtimestamp(status.redis_time, UTC).isoformat(timespec="seconds")
    out.write(f"Redis {status.redis_url} at {when}; key {status.key_prefix}\n\n")
    if limits:
        header = ("namespace", "limit", "booked ahead", "per min", "used", "remaining")
        rows = [
            (
                r.namespace,
                r.limit,
                f"{r.booked_ahead_s:.3f} s",
                _number(r.per_minute),
                _number(r.used),
                _number(r.remaining),
            )
            for r in limits
        ]
        out.write(render_table(header, rows) + "\n\n")
    else:
        out.write("Limits: all free (nothing booked ahead).\n\n")
    if status.blocks:
        blocks = [
            (b.namespace, b.model or "(whole key)", f"{b.ends_in:.1f} s")
            for b in status.blocks
        ]
        out.write(render_table(("namespace", "blocked", "ends in"), blocks) + "\n\n")
    else:
        out.write("Blocks: none (no 429 is being waited out).\n\n")
    if status.breakers:
        columns = (
            "model",
            "namespace",
            "gateway",
            "state",
            "failures",
            "trips",
            "retry",
        )
        breakers = [
            (
                b.model,
                b.namespace,
                b.gateway,
                b.state,
                str(b.failures),
                str(b.trips),
                f"{b.retry_in:.1f} s" if b.state == "open" else "-",
            )
            for b in status.breakers
        ]
        out.write(render_table(columns, breakers) + "\n")
    else:
        out.write("Circuit breakers: none in Redis (all closed).\n")


def cmd_status(args: argparse.Namespace) -> int:
    """``holysheep status``: limits, blocks and breakers from the fleet's Redis.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status.

    Raises:
        CLIError: Without a Redis URL, or when Redis cannot be read.
    """
    url = args.redis_url or os.environ.get("HOLYSHEEP_REDIS_URL")
    if not url:
        raise CLIError("no Redis to read: set HOLYSHEEP_REDIS_URL or pass --redis-url")
    status = _read(url, args.namespace)
    limits = [_limit_row(state, args) for state in status.limits]
    if args.json:
        data = status.to_dict()
        data["limits"] = [asdict(row) for row in limits]
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        _write_tables(status, limits, sys.stdout)
    return 0
