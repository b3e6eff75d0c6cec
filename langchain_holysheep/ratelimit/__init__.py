"""Rate limits for one HolySheep key, shared by every process on one Redis.

:class:`HolySheepRateLimiter` is a langchain-core ``BaseRateLimiter``: requests
per minute for any chat model, and tokens per minute too for ``ChatHolySheep``.
See ``docs/fleet.md``.
"""

from langchain_holysheep.ratelimit._estimate import DEFAULT_MAX_TOKENS
from langchain_holysheep.ratelimit.limiter import (
    REDIS_URL_ENV,
    HolySheepRateLimiter,
    ModelLimits,
)

__all__ = ["DEFAULT_MAX_TOKENS", "REDIS_URL_ENV", "HolySheepRateLimiter", "ModelLimits"]
