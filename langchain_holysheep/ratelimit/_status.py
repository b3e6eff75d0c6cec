"""What a fleet's Redis holds right now: limits, blocks and circuit breakers.

Read by ``holysheep status``. Every number is on Redis's clock. A limit's key
holds when it is next free (its TAT): the time *booked ahead* of now, which a
known limit turns into units used (``ahead * limit / 60 s``) and remaining in
the coming minute. Keys expire by themselves, so an idle limiter has none: all
its limits are free.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from langchain_holysheep.ratelimit._gcra import MICROS

__all__ = [
    "BlockState",
    "BreakerState",
    "FleetStatus",
    "LimitState",
    "parse_limit_key",
    "read_fleet_status",
]

_LIMIT_REST: Final = re.compile(
    r"^(?P<ns>.+?):(?P<rest>rpm|tpm|block|m:.+:(?:rpm|tpm|block))$"
)
_BREAKER_KEY: Final = re.compile(
    r"^hs:cb:\{(?P<gw>[0-9a-f]+)\}:(?P<ns>.+):(?P<model>[^:]+)$"
)
_SCAN_COUNT: Final = 500


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit with calls booked ahead.

    Attributes:
        namespace: The limiter's namespace.
        limit: ``"rpm"``, ``"tpm"``, ``"m:<model>:rpm"`` or ``"m:<model>:tpm"``.
        ahead: Seconds of calls booked ahead of now.
    """

    namespace: str
    limit: str
    ahead: float


@dataclass(frozen=True, slots=True)
class BlockState:
    """A block a 429 set.

    Attributes:
        namespace: The limiter's namespace.
        model: The blocked model, or ``None`` for the whole key.
        ends_in: Seconds until it ends.
    """

    namespace: str
    model: str | None
    ends_in: float


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One shared circuit breaker.

    Attributes:
        namespace: The breaker policy's namespace.
        model: The model id.
        gateway: The gateway's id (the start of its URL's SHA-256).
        state: ``"closed"``, ``"open"`` or ``"half_open"``.
        failures: Consecutive retryable failures.
        trips: Times it opened since the last success.
        retry_in: Seconds until an open circuit lets a trial through.
    """

    namespace: str
    model: str
    gateway: str
    state: str
    failures: int
    trips: int
    retry_in: float


@dataclass(frozen=True, slots=True)
class FleetStatus:
    """Everything ``holysheep status`` shows.

    Attributes:
        redis_url: The Redis URL, password masked.
        key_prefix: The key's prefix (``hs:{<sha256[:16]>}:``).
        redis_time: Redis's clock, in seconds since the epoch.
        limits: Limits with calls booked ahead.
        blocks: Blocks in force.
        breakers: Shared circuit breakers.
    """

    redis_url: str
    key_prefix: str
    redis_time: float
    limits: list[LimitState] = field(default_factory=list)
    blocks: list[BlockState] = field(default_factory=list)
    breakers: list[BreakerState] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data.

        Returns:
            A dict of plain values.
        """
        return asdict(self)


def parse_limit_key(rest: str) -> tuple[str, str] | None:
    """Split what follows a key's prefix into (namespace, limit).

    Args:
        rest: E.g. ``"default:m:gpt-4.1:rpm"``.

    Returns:
        ``("default", "m:gpt-4.1:rpm")``, or ``None`` if it is not a limiter key.
    """
    match = _LIMIT_REST.match(rest)
    return None if match is None else (match["ns"], match["rest"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_fleet_status(
    url: str, *, api_key: str, namespace: str | None = None, timeout: float = 2.0
) -> FleetStatus:
    """Read the fleet's limiter and breaker state from Redis.

    Args:
        url: The Redis URL.
        api_key: The key whose limits to show (only its hash is used).
        namespace: Only this namespace (``None``: all).
        timeout: Seconds to wait for Redis.

    Returns:
        The status.
    """
    from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
        mask_url,
        sync_client,
    )

    client = sync_client(url, timeout)
    try:
        seconds, micros = client.time()
        now_us = seconds * MICROS + micros
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        prefix = f"hs:{{{digest}}}:"
        status = FleetStatus(mask_url(url), prefix, now_us / MICROS)
        pattern = f"{prefix}{namespace}:*" if namespace else f"{prefix}*"
        for key in sorted(_text(k) for k in client.scan_iter(pattern, _SCAN_COUNT)):
            parsed = parse_limit_key(key.removeprefix(prefix))
            value = client.get(key)
            if parsed is None or value is None:
                continue
            space, limit = parsed
            ahead = max(0.0, (float(value) - now_us) / MICROS)
            if limit.endswith("block"):
                model = limit[2:-6] if limit.startswith("m:") else None
                if ahead > 0:
                    status.blocks.append(BlockState(space, model, ahead))
            elif ahead > 0:
                status.limits.append(LimitState(space, limit, ahead))
        breakers = f"hs:cb:*:{namespace}:*" if namespace else "hs:cb:*"
        for key in sorted(_text(k) for k in client.scan_iter(breakers, _SCAN_COUNT)):
            match = _BREAKER_KEY.match(key)
            fields = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
            if match is None or not fields:
                continue
            state = fields.get("state", "closed")
            left = max(0.0, (float(fields.get("until", 0)) - now_us) / MICROS)
            status.breakers.append(
                BreakerState(
                    namespace=match["ns"],
                    model=match["model"],
                    gateway=match["gw"],
                    state=state,
                    failures=int(fields.get("failures", 0)),
                    trips=int(fields.get("trips", 0)),
                    retry_in=left if state == "open" else 0.0,
                )
            )
    finally:
        client.close()
    return status
