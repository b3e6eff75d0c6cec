"""Rate limits the offline gateway enforces: per key, over a sliding window.

A real gateway refuses a key's request with ``429`` once the key has used its
requests or tokens in the last window; :class:`RateLimits` makes the offline
gateway do the same, so a fleet's limiter can be tested against real refusals.
A request's tokens are counted at admission, as OpenAI-compatible gateways do:
its prompt (the gateway's usual count, words plus 4 per message) plus
``max_tokens`` (or ``max_completion_tokens``) times ``n``; refused requests do
not count. Every decision is kept as a :class:`RateLimitDecision`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from langchain_holysheep.testing._replies import error_body, prompt_tokens

__all__ = [
    "RateLimitDecision",
    "RateLimits",
    "admission_tokens",
    "key_id",
]

_NO_LIMIT: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RateLimits:
    """One key's limits over a sliding window.

    Attributes:
        requests: Requests admitted per window (``None``: no limit).
        tokens: Tokens admitted per window (``None``: no limit).
        window: The window in seconds (60 for "per minute").
    """

    requests: int | None = None
    tokens: int | None = None
    window: float = 60.0

    def __post_init__(self) -> None:
        """Refuse limits that cannot be enforced.

        Raises:
            ValueError: For a limit below 1 or a window that is not positive.
        """
        for name in ("requests", "tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 or None")
        if not self.window > 0:
            raise ValueError("window must be a positive number of seconds")


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    """What the gateway decided for one chat request under rate limits.

    Attributes:
        at: When (``time.monotonic()`` of the gateway's process).
        key_id: The API key's id (the start of its SHA-256, never the key).
        model: The requested model.
        tokens: The tokens the request counted for.
        admitted: Whether it was served (``False``: answered 429).
        limit: ``"requests"`` or ``"tokens"``: the limit that refused it.
        retry_after: Seconds the 429 told the client to wait.
    """

    at: float
    key_id: str
    model: str | None
    tokens: int
    admitted: bool
    limit: Literal["requests", "tokens"] | None = None
    retry_after: float | None = None


def key_id(api_key: str) -> str:
    """A key's id in decisions: the first 12 hex digits of its SHA-256.

    Args:
        api_key: The bearer key.

    Returns:
        The id.
    """
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def admission_tokens(body: dict[str, Any]) -> int:
    """The tokens a chat request counts for at admission.

    Args:
        body: The request body.

    Returns:
        Prompt tokens plus ``max_tokens`` (or ``max_completion_tokens``) times
        ``n``.
    """
    messages = body.get("messages")
    prompt = prompt_tokens(messages) if isinstance(messages, list) else 0
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    output = limit if isinstance(limit, int) and limit > 0 else 0
    n = body.get("n")
    return prompt + output * (n if isinstance(n, int) and n > 1 else 1)


def _reset_text(seconds: float) -> str:
    """OpenAI's ``x-ratelimit-reset-*`` format: ``"1.5s"``, ``"20ms"``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


@dataclass(slots=True)
class KeyWindow:
    """One key's admitted requests in the current window."""

    limits: RateLimits
    admitted: deque[tuple[float, int]] = field(default_factory=deque)
    tokens_used: int = 0

    def _expire(self, now: float) -> None:
        horizon = now - self.limits.window
        while self.admitted and self.admitted[0][0] <= horizon:
            self.tokens_used -= self.admitted.popleft()[1]

    def _token_wait(self, now: float, cost: int, limit: int) -> float:
        if cost > limit:
            return self.limits.window
        freed = self.tokens_used + cost - limit
        for at, tokens in self.admitted:
            freed -= tokens
            if freed <= 0:
                return at + self.limits.window - now
        return self.limits.window  # pragma: no cover (freed always reaches 0)

    def decide(
        self, now: float, cost: int
    ) -> tuple[Literal["requests", "tokens"] | None, float]:
        """Admit (and count) a request, or say which limit refuses it.

        Args:
            now: The monotonic time.
            cost: The request's tokens.

        Returns:
            ``(None, 0.0)`` when admitted, else the refusing limit and the
            seconds until it would admit the request.
        """
        self._expire(now)
        limits = self.limits
        if limits.requests is not None and len(self.admitted) >= limits.requests:
            return "requests", self.admitted[0][0] + limits.window - now
        if limits.tokens is not None and self.tokens_used + cost > limits.tokens:
            return "tokens", self._token_wait(now, cost, limits.tokens)
        self.admitted.append((now, cost))
        self.tokens_used += cost
        return None, 0.0

    def headers(self, now: float) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers for the key's current window.

        Args:
            now: The monotonic time.

        Returns:
            The headers.
        """
        limits = self.limits
        reset = self.admitted[0][0] + limits.window - now if self.admitted else 0.0
        headers: dict[str, str] = {}
        for name, limit, used in (
            ("requests", limits.requests, len(self.admitted)),
            ("tokens", limits.tokens, self.tokens_used),
        ):
            if limit is not None:
                headers[f"x-ratelimit-limit-{name}"] = str(limit)
                headers[f"x-ratelimit-remaining-{name}"] = str(max(0, limit - used))
                headers[f"x-ratelimit-reset-{name}"] = _reset_text(reset)
        return headers


def refusal(
    limit: Literal["requests", "tokens"],
    limits: RateLimits,
    cost: int,
    retry_after: float,
    used: int,
) -> tuple[bytes, dict[str, str]]:
    """The 429 body and its ``Retry-After`` headers.

    Args:
        limit: The limit that refused.
        limits: The key's limits.
        cost: The request's tokens.
        retry_after: Seconds until the request would be admitted.
        used: The requests or tokens used in the window.

    Returns:
        The JSON error body and the retry headers.
    """
    allowed = (limits.requests if limit == "requests" else limits.tokens) or _NO_LIMIT
    requested = 1 if limit == "requests" else cost
    message = (
        f"Rate limit reached for {limit} per {limits.window:g}s: Limit {allowed}, "
        f"Used {used}, Requested {requested}. Please try again in "
        f"{_reset_text(retry_after)}."
    )
    if limit == "tokens" and cost > allowed:
        message = (
            f"Request too large: it needs {cost} tokens, more than the limit of "
            f"{allowed} tokens per {limits.window:g}s."
        )
    headers = {
        "retry-after": str(max(1, math.ceil(retry_after))),
        "retry-after-ms": str(max(1, math.ceil(retry_after * 1000))),
    }
    return error_body(message, limit, None, "rate_limit_exceeded"), headers


def monotonic() -> float:
    """The gateway's clock for rate limits (``time.monotonic``).

    Returns:
        Seconds.
    """
    return time.monotonic()
