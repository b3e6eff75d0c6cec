"""``HolySheepRateLimiter``: one key's request and token limits, shared by a fleet.

The limiter is a langchain-core ``BaseRateLimiter``, so any chat model takes it
(``rate_limiter=...``) and it limits their requests. ``ChatHolySheep`` does more:
it reserves each request's tokens too, together with the request, in the same
single call (see :meth:`HolySheepRateLimiter.reserve_chat`).

With a Redis URL, every process using the same Redis, API key and namespace
shares the limits: one GCRA script call per request, on Redis's clock
(``_gcra``, ``_redis``). Without one, the same rule runs in this process
(``_local``). If Redis is unreachable, calls go on under this process's share of
the limits (``limit / fleet_size``), with one warning, and Redis is tried again
later (backing off); a Redis error never fails a call.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from langchain_core.rate_limiters import BaseRateLimiter
from pydantic import SecretStr

from langchain_holysheep.ratelimit._estimate import (
    DEFAULT_MAX_TOKENS,
    choices,
    output_reservation,
    prompt_tokens,
)
from langchain_holysheep.ratelimit._gcra import MICROS, Booking, Charge
from langchain_holysheep.ratelimit._local import LocalGCRA

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

    from langchain_core.messages import BaseMessage

    from langchain_holysheep._deadline import Deadline
    from langchain_holysheep.ratelimit._redis import RedisGCRA

__all__ = [
    "REDIS_URL_ENV",
    "HolySheepRateLimiter",
    "ModelLimits",
    "afirst_step_reserved",
    "aon_response",
    "first_step_reserved",
    "key_prefix",
    "on_response",
    "reserved_by_model",
    "watching",
]

REDIS_URL_ENV: Final = "HOLYSHEEP_REDIS_URL"
"""The environment variable ``redis_url`` defaults to."""

ReserveOutput = Literal["max_tokens", "learned"]
"""How output tokens are reserved: ``max_tokens`` up front, or learned from usage."""

_MINUTE_US: Final = 60 * MICROS
_LEARNING_RATE: Final = 0.2
"""Weight of the newest answer in the learned output size (an EWMA)."""
_FIRST_BACKOFF: Final = 1.0
_MAX_BACKOFF: Final = 30.0
_logger = logging.getLogger("langchain_holysheep.ratelimit")
_T = TypeVar("_T")


class _Unset(enum.Enum):
    UNSET = enum.auto()


_FROM_ENV: Final = _Unset.UNSET

# Set while a ChatHolySheep call runs through langchain-core's machinery with
# this limiter: core's ``acquire`` is then a no-op, because the model reserves
# the request and its tokens itself in one call, once the body is known.
_MODEL_RESERVES: ContextVar[HolySheepRateLimiter | None] = ContextVar(
    "holysheep_model_reserves", default=None
)


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """Limits for one model, on top of the key's (some plans limit per model).

    Attributes:
        requests_per_minute: Requests a minute to this model (``None``: none).
        tokens_per_minute: Tokens a minute to this model (``None``: none).
    """

    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """One call's script arguments: the Redis keys, and the local twin's.

    ``settles`` lists the owed tokens (per token-limit suffix) whose
    correction the charges carry: they are paid once the call is booked.
    """

    blocks: tuple[str, ...]
    shared: tuple[Charge, ...]
    local_blocks: tuple[str, ...]
    local: tuple[Charge, ...]
    settles: tuple[tuple[str, int], ...] = ()


def _input_error(message: str) -> Exception:
    """A ``HolySheepInputError`` (imported on use: ``errors`` loads ``openai``)."""
    from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

    return HolySheepInputError(message)


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _input_error(
            f"{name} must be a number of units per minute, not {value!r}."
        )
    if not math.isfinite(value) or value <= 0:
        raise _input_error(
            f"{name} must be a positive number per minute, not {value!r}: leave it "
            "unset (None) for no limit."
        )
    return float(value)


def _model_limits(model: str, value: object) -> ModelLimits:
    if isinstance(value, ModelLimits):
        limits = value
    elif isinstance(value, Mapping):
        unknown = set(value) - {"requests_per_minute", "tokens_per_minute"}
        if unknown:
            raise _input_error(
                f"model_limits[{model!r}] has unknown keys {sorted(unknown)}: use "
                "requests_per_minute and tokens_per_minute."
            )
        limits = ModelLimits(**value)
    else:
        raise _input_error(
            f"model_limits[{model!r}] must be a ModelLimits or a dict, not "
            f"{type(value).__name__}."
        )
    return ModelLimits(
        _positive(
            f"model_limits[{model!r}].requests_per_minute", limits.requests_per_minute
        ),
        _positive(
            f"model_limits[{model!r}].tokens_per_minute", limits.tokens_per_minute
        ),
    )


def _key_secret(api_key: str | SecretStr | None) -> str:
    if isinstance(api_key, SecretStr):
        return api_key.get_secret_value()
    if api_key is None:
        return os.environ.get("HOLYSHEEP_API_KEY", "")
    return api_key


def key_prefix(api_key: str | SecretStr | None, namespace: str) -> str:
    """The Redis key prefix of an API key and a namespace (no secret in it).

    Args:
        api_key: The key (only its hash is used); ``None`` reads
            ``HOLYSHEEP_API_KEY``.
        namespace: Separates users of one Redis and one key.

    Returns:
        ``hs:{<sha256(key)[:16]>}:<namespace>:`` (the braces keep every key of
        one API key in one Redis Cluster slot).
    """
    digest = hashlib.sha256(_key_secret(api_key).encode()).hexdigest()[:16]
    return f"hs:{{{digest}}}:{namespace}:"


def _max_wait(*, blocking: bool) -> float | None:
    return None if blocking else 0.0


class HolySheepRateLimiter(BaseRateLimiter):
    """Request and token limits for one HolySheep key, shared across processes.

    Setup:
        In-process limits need nothing more. For a fleet (Celery workers,
        Kubernetes pods...) install the ``redis`` extra and point every process
        at the same Redis:

        .. code-block:: bash

            pip install -U 'langchain-holysheep[redis]'
            export HOLYSHEEP_REDIS_URL="redis://localhost:6379/0"

    Instantiate:
        .. code-block:: python

            from langchain_holysheep import ChatHolySheep, HolySheepRateLimiter

            limiter = HolySheepRateLimiter(
                requests_per_minute=300, tokens_per_minute=200_000
            )
            llm = ChatHolySheep(model="gpt-4.1", max_tokens=500, rate_limiter=limiter)

    Calls are spaced evenly (GCRA): any minute admits at most the limit, plus
    one call of slack. A call that must wait books its slot and sleeps until
    it, without asking Redis again. ``ChatHolySheep`` reserves each request's
    tokens (the prompt estimate plus ``max_tokens``, or
    ``default_max_tokens`` when unset) with the request, in one Redis call;
    other chat models are limited by requests only.

    For a gateway that counts the tokens a request actually used (not its
    ``max_tokens``), ``reserve_output="learned"`` reserves the prompt estimate
    plus the output size learned from earlier answers of the model (capped at
    ``max_tokens``), and corrects each reservation from the answer's ``usage``:
    the difference rides on this process's next call to the same limit, in the
    same single script call.

    The API key reaches Redis only as a hash (``hs:{<sha256[:16]>}:<namespace>:``
    keys, one Redis Cluster slot per key), never in a key, a value, a repr or a
    log; the Redis URL's password is masked in the repr and in logs.

    All other methods match ``BaseRateLimiter`` or are described below.
    """

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        model_limits: Mapping[str, ModelLimits | Mapping[str, float | None]]
        | None = None,
        redis_url: str | _Unset | None = _FROM_ENV,
        namespace: str = "default",
        api_key: str | SecretStr | None = None,
        fleet_size: int = 1,
        redis_timeout: float = 0.25,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        max_block: float = 60.0,
        reserve_output: ReserveOutput = "max_tokens",
    ) -> None:
        """Configure the limits; nothing connects until the first call.

        Args:
            requests_per_minute: Requests a minute for the key (``None``: none).
            tokens_per_minute: Tokens a minute for the key (``None``: none);
                counted by ``ChatHolySheep`` only.
            model_limits: Extra limits per model id, e.g.
                ``{"gpt-4.1": {"requests_per_minute": 100}}`` (``ChatHolySheep``
                only: other models' calls carry no model id to the limiter).
            redis_url: ``redis://...`` shared by the fleet. Defaults to
                ``HOLYSHEEP_REDIS_URL``; ``None`` (or neither set) limits in
                this process only.
            namespace: Separates limiters that share a Redis and a key.
            api_key: The key whose limits these are (only its hash is used).
                Defaults to ``HOLYSHEEP_API_KEY``.
            fleet_size: How many processes share the limits. Used only while
                Redis is unreachable: each process then keeps to
                ``limit / fleet_size`` on its own.
            redis_timeout: Seconds to wait for Redis before falling back.
            default_max_tokens: Output tokens reserved for a request that sets
                no ``max_tokens``.
            max_block: The longest a 429 blocks the key (or model) for every
                process, in seconds, whatever its ``Retry-After`` says.
            reserve_output: ``"max_tokens"`` (the default) reserves the
                prompt estimate plus ``max_tokens`` times ``n``, as
                OpenAI-compatible gateways count at admission. ``"learned"``
                (for gateways that count actual usage) reserves the prompt
                estimate plus the output size learned from the model's earlier
                answers (at most ``max_tokens``; before the
                first answer, ``max_tokens`` or ``default_max_tokens``), then
                corrects the reservation by what the answer's ``usage`` says
                was used; the correction is carried by this process's next
                token reservation (no extra Redis call).

        Raises:
            HolySheepInputError: For a limit that is not a positive number, a
                bad ``fleet_size``, ``redis_timeout``, ``namespace``,
                ``default_max_tokens`` or ``reserve_output``, or a malformed
                Redis URL.
            ImportError: If a Redis URL is given and redis-py (the
                ``langchain-holysheep[redis]`` extra) is not installed.
        """
        self.requests_per_minute = _positive("requests_per_minute", requests_per_minute)
        self.tokens_per_minute = _positive("tokens_per_minute", tokens_per_minute)
        self.model_limits = {
            model: _model_limits(model, value)
            for model, value in (model_limits or {}).items()
        }
        if not isinstance(namespace, str) or not namespace or namespace.isspace():
            raise _input_error(
                f"namespace must be a non-empty string, not {namespace!r}."
            )
        if (
            isinstance(fleet_size, bool)
            or not isinstance(fleet_size, int)
            or fleet_size < 1
        ):
            raise _input_error(
                "fleet_size must be a whole number of processes >= 1, not "
                f"{fleet_size!r}."
            )
        if not isinstance(redis_timeout, int | float) or not 0 < redis_timeout <= 60:  # noqa: PLR2004
            raise _input_error(
                f"redis_timeout must be seconds in (0, 60], not {redis_timeout!r}."
            )
        if (
            isinstance(default_max_tokens, bool)
            or not isinstance(default_max_tokens, int)
            or default_max_tokens < 1
        ):
            raise _input_error(
                f"default_max_tokens must be a positive whole number, not "
                f"{default_max_tokens!r}."
            )
        if not isinstance(max_block, int | float) or not 0 < max_block <= 3600:  # noqa: PLR2004
            raise _input_error(
                f"max_block must be seconds in (0, 3600], not {max_block!r}."
            )
        if reserve_output not in ("max_tokens", "learned"):
            raise _input_error(
                'reserve_output must be "max_tokens" or "learned", not '
                f"{reserve_output!r}."
            )
        self.reserve_output: ReserveOutput = reserve_output
        self.max_block = float(max_block)
        self.namespace = namespace
        self.fleet_size = fleet_size
        self.redis_timeout = float(redis_timeout)
        self.default_max_tokens = default_max_tokens
        self._prefix = key_prefix(api_key, namespace)
        url = (
            (os.environ.get(REDIS_URL_ENV) or None)
            if redis_url is _FROM_ENV
            else redis_url
        )
        if url is not None and not isinstance(url, str):
            raise _input_error(
                "redis_url must be a redis:// URL string or None, not "
                f"{type(url).__name__}."
            )
        self._redis: RedisGCRA | None = None
        self._shown_url: str | None = None
        if url:
            from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
                RedisGCRA,
                mask_url,
            )

            self._shown_url = mask_url(url)
            self._redis = RedisGCRA(url, self.redis_timeout)
        self._redis_url = url
        self._local = LocalGCRA()
        self._local_factor = fleet_size if self._redis is not None else 1
        self._state_lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = _FIRST_BACKOFF
        self._degraded = False
        # reserve_output="learned": the learned output tokens per answer, per
        # model, and the tokens owed (+) or to give back (-) per token limit.
        self._learned: dict[str, float] = {}
        self._owed: dict[str, int] = {}
        self._request_plan = self._plan(1, 0, None)

    # ------------------------------------------------------------- public
    @property
    def key_prefix(self) -> str:
        """The Redis key prefix of this key and namespace (no secret in it)."""
        return self._prefix

    @property
    def backend(self) -> str:
        """``"redis"``, ``"local"``, or ``"local (Redis unreachable)"``."""
        if self._redis is None:
            return "local"
        return "local (Redis unreachable)" if self._degraded else "redis"

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take one request slot (waiting for it when ``blocking``).

        Called by langchain-core before each chat model call. For a
        ``ChatHolySheep`` call it does nothing: the model reserves the request
        with its tokens itself (:meth:`reserve_chat`).

        Args:
            blocking: Wait for the slot; else take it only if free now.

        Returns:
            Whether the slot was taken (always ``True`` when blocking).
        """
        if _MODEL_RESERVES.get() is self:
            return True
        return _slept(self._book(self._request_plan, _max_wait(blocking=blocking)))

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """Async :meth:`acquire` (waits with ``asyncio.sleep``).

        Args:
            blocking: Wait for the slot; else take it only if free now.

        Returns:
            Whether the slot was taken (always ``True`` when blocking).
        """
        if _MODEL_RESERVES.get() is self:
            return True
        booking = await self._abook(self._request_plan, _max_wait(blocking=blocking))
        return await _aslept(booking)

    def reserve(
        self,
        *,
        tokens: int = 0,
        model: str | None = None,
        requests: int = 1,
        blocking: bool = True,
    ) -> bool:
        """Reserve ``requests`` and ``tokens`` (and ``model``'s limits) at once.

        Both are committed together or not at all, in one Redis call.

        Args:
            tokens: Tokens the call may use (prompt plus output).
            model: The model id, for its ``model_limits``.
            requests: Requests to count (0 for tokens only).
            blocking: Wait for the slot; else reserve only if free now.

        Returns:
            Whether it was reserved (always ``True`` when blocking).

        Raises:
            HolySheepInputError: If ``tokens`` exceed a tokens-per-minute limit,
                so the call could never fit in a minute.
        """
        plan = self._plan(requests, tokens, model)
        return _slept(self._book(plan, _max_wait(blocking=blocking)))

    async def areserve(
        self,
        *,
        tokens: int = 0,
        model: str | None = None,
        requests: int = 1,
        blocking: bool = True,
    ) -> bool:
        """Async :meth:`reserve`.

        Args:
            tokens: Tokens the call may use (prompt plus output).
            model: The model id, for its ``model_limits``.
            requests: Requests to count (0 for tokens only).
            blocking: Wait for the slot; else reserve only if free now.

        Returns:
            Whether it was reserved (always ``True`` when blocking).
        """
        plan = self._plan(requests, tokens, model)
        booking = await self._abook(plan, _max_wait(blocking=blocking))
        return await _aslept(booking)

    def chat_tokens(self, messages: Sequence[BaseMessage], body: dict[str, Any]) -> int:
        """The tokens a chat request reserves (0 when no token limit applies).

        Args:
            messages: The request's messages.
            body: The request body (``model``, ``max_tokens``, ``n``, ``tools``).

        Returns:
            The prompt estimate plus ``max_tokens * n`` (``default_max_tokens``
            when unset; with ``reserve_output="learned"``, the learned output
            size when it is smaller), or 0 if neither the key nor the model has
            a token limit.
        """
        if not self._limits_tokens(body.get("model")):
            return 0
        output = output_reservation(body, self.default_max_tokens)
        if self.reserve_output == "learned":
            learned = self._learned.get(body.get("model", ""))
            if learned is not None:
                output = min(output, math.ceil(learned * choices(body)))
        return prompt_tokens(messages, body) + output

    def reserve_chat(
        self,
        messages: Sequence[BaseMessage],
        body: dict[str, Any],
        *,
        deadline: Deadline | None = None,
    ) -> int:
        """Reserve one chat request and its tokens, waiting for the slot.

        ``ChatHolySheep`` calls this once per request, before sending it, and
        :meth:`settle_chat` with the answer's usage.

        Args:
            messages: The request's messages.
            body: The request body.
            deadline: The call's ``total_timeout`` deadline: the wait counts
                against it, and a slot further off than the time left is not
                waited for.

        Returns:
            The tokens reserved (for :meth:`settle_chat`).

        Raises:
            HolySheepTotalTimeoutError: The next slot is past ``deadline``
                (nothing was reserved, nothing sent).
        """
        tokens = self.chat_tokens(messages, body)
        plan = self._plan(1, tokens, body.get("model"))
        booking = self._book(plan, _time_left(deadline))
        _slept(_within(booking, deadline))
        return tokens

    async def areserve_chat(
        self,
        messages: Sequence[BaseMessage],
        body: dict[str, Any],
        *,
        deadline: Deadline | None = None,
    ) -> int:
        """Async :meth:`reserve_chat`.

        Args:
            messages: The request's messages.
            body: The request body.
            deadline: The call's ``total_timeout`` deadline (see
                :meth:`reserve_chat`).

        Returns:
            The tokens reserved (for :meth:`settle_chat`).
        """
        tokens = self.chat_tokens(messages, body)
        plan = self._plan(1, tokens, body.get("model"))
        booking = await self._abook(plan, _time_left(deadline))
        await _aslept(_within(booking, deadline))
        return tokens

    def settle_chat(
        self,
        body: dict[str, Any],
        reserved: int,
        usage: Mapping[str, Any] | None,
    ) -> None:
        """Learn from an answer's usage and owe its difference from the reservation.

        Only with ``reserve_output="learned"`` (else it does nothing). The
        model's learned output size moves towards the answer's output tokens
        per choice, and ``input + output - reserved`` tokens are owed to (or,
        negative, given back by) each token limit the request was counted
        against; this process's next token reservation on that limit carries
        the correction, in its one script call. No Redis call is made here.

        Args:
            body: The request body (its ``model`` and ``n``).
            reserved: What :meth:`reserve_chat` returned for it.
            usage: The answer's ``usage_metadata`` (``input_tokens``,
                ``output_tokens``); ``None`` leaves the reservation as counted.
        """
        if self.reserve_output != "learned" or not reserved or not usage:
            return
        input_tokens, output_tokens = (
            usage.get("input_tokens"),
            usage.get("output_tokens"),
        )
        if not isinstance(input_tokens, int) or not isinstance(output_tokens, int):
            return
        model = body.get("model", "")
        per_choice = output_tokens / choices(body)
        owed = input_tokens + output_tokens - reserved
        with self._state_lock:
            learned = self._learned.get(model)
            self._learned[model] = (
                per_choice
                if learned is None
                else learned + _LEARNING_RATE * (per_choice - learned)
            )
            if owed:
                for suffix in self._token_limits(model):
                    self._owed[suffix] = self._owed.get(suffix, 0) + owed

    def learned_output_tokens(self, model: str) -> float | None:
        """The output tokens per answer learned for ``model`` (``"learned"`` mode).

        Args:
            model: A model id.

        Returns:
            The learned size, or ``None`` before the model's first answer.
        """
        return self._learned.get(model)

    def block(self, seconds: float, model: str | None = None) -> None:
        """Hold every call of the key (or of ``model``) for ``seconds``.

        Every process's next call waits until the block ends (within one
        round trip); a block is lengthened, never shortened, and capped at
        ``max_block``. ``ChatHolySheep`` calls it on each 429 it receives.

        Args:
            seconds: How long, e.g. a 429's ``Retry-After``.
            model: Block only this model (``None``: the whole key).
        """
        if (span := self._block_span(seconds)) is None:
            return
        key = _block_key(model)
        if self._redis is not None and self._redis_due():
            try:
                self._redis.block(self._prefix + key, span)
            except Exception as error:  # noqa: BLE001 (a Redis error never fails a call)
                self._redis_failed(error)
            else:
                self._redis_answered()
                return
        self._local.block(key, span)

    async def ablock(self, seconds: float, model: str | None = None) -> None:
        """Async :meth:`block`.

        Args:
            seconds: How long, e.g. a 429's ``Retry-After``.
            model: Block only this model (``None``: the whole key).
        """
        if (span := self._block_span(seconds)) is None:
            return
        key = _block_key(model)
        if self._redis is not None and self._redis_due():
            try:
                await self._redis.ablock(self._prefix + key, span)
            except Exception as error:  # noqa: BLE001 (a Redis error never fails a call)
                self._redis_failed(error)
            else:
                self._redis_answered()
                return
        self._local.block(key, span)

    def close(self) -> None:
        """Close the Redis connections (they reopen on the next call)."""
        if self._redis is not None:
            self._redis.close()

    def __repr__(self) -> str:
        """Show the limits and where they are kept, never a secret."""
        fields = [
            f"requests_per_minute={self.requests_per_minute!r}",
            f"tokens_per_minute={self.tokens_per_minute!r}",
            f"namespace={self.namespace!r}",
            f"redis_url={self._shown_url!r}",
            f"fleet_size={self.fleet_size!r}",
            f"backend={self.backend!r}",
        ]
        if self.model_limits:
            fields.insert(2, f"model_limits={self.model_limits!r}")
        return f"HolySheepRateLimiter({', '.join(fields)})"

    # ---------------------------------------------------------- internals
    def _plan(self, requests: int, tokens: int, model: str | None) -> _Plan:
        """The keys and increments one call books (pure arithmetic)."""
        if isinstance(requests, bool) or not isinstance(requests, int) or requests < 0:
            raise _input_error(f"requests must be >= 0, not {requests!r}.")
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise _input_error(f"tokens must be >= 0, not {tokens!r}.")
        limits: list[tuple[str, float | None, int]] = [
            ("rpm", self.requests_per_minute, requests),
            ("tpm", self.tokens_per_minute, tokens),
        ]
        blocks = ["block"]
        per_model = self.model_limits.get(model) if model else None
        if model:
            blocks.append(f"m:{model}:block")
        if per_model is not None:
            limits += [
                (f"m:{model}:rpm", per_model.requests_per_minute, requests),
                (f"m:{model}:tpm", per_model.tokens_per_minute, tokens),
            ]
        shared: list[Charge] = []
        local: list[Charge] = []
        settles: list[tuple[str, int]] = []
        for suffix, limit, cost in limits:
            if limit is None or cost == 0:
                continue
            if suffix.endswith("tpm") and cost > limit:
                raise _input_error(
                    f"This request reserves about {cost} tokens, more than the "
                    f"{suffix} limit of {limit:g} tokens a minute allows: lower "
                    "max_tokens (unset, it reserves default_max_tokens="
                    f"{self.default_max_tokens}), shorten the prompt, or raise "
                    "the limit."
                )
            increment = cost * _MINUTE_US / limit
            owed = self._owed.get(suffix, 0) if self._owed else 0
            correction = owed * _MINUTE_US / limit
            if owed:
                settles.append((suffix, owed))
            shared.append(Charge(self._prefix + suffix, increment, correction))
            local.append(
                Charge(
                    suffix,
                    increment * self._local_factor,
                    correction * self._local_factor,
                )
            )
        return _Plan(
            tuple(self._prefix + b for b in blocks),
            tuple(shared),
            tuple(blocks),
            tuple(local),
            tuple(settles),
        )

    def _limits_tokens(self, model: str | None) -> bool:
        """Whether a request to ``model`` counts against any token limit."""
        return bool(self._token_limits(model or ""))

    def _token_limits(self, model: str) -> list[str]:
        """The token-limit suffixes a request to ``model`` is counted against."""
        suffixes = [] if self.tokens_per_minute is None else ["tpm"]
        per_model = self.model_limits.get(model)
        if per_model is not None and per_model.tokens_per_minute is not None:
            suffixes.append(f"m:{model}:tpm")
        return suffixes

    def _paid(self, plan: _Plan, booking: Booking) -> Booking:
        """Once ``plan`` is booked, its carried corrections are no longer owed."""
        if booking.booked and plan.settles:
            with self._state_lock:
                for suffix, owed in plan.settles:
                    left = self._owed.get(suffix, 0) - owed
                    if left:
                        self._owed[suffix] = left
                    else:
                        self._owed.pop(suffix, None)
        return booking

    def _redis_due(self) -> bool:
        """Whether to ask Redis now (not while backing off after a failure)."""
        return self._redis is not None and (
            not self._degraded or time.monotonic() >= self._retry_at
        )

    def _redis_failed(self, error: Exception) -> None:
        """Fall back to local limits; warn once per outage; back off."""
        with self._state_lock:
            self._retry_at = time.monotonic() + self._backoff
            retry_in = self._backoff
            self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            first = not self._degraded
            self._degraded = True
        if first:
            _logger.warning(
                "HolySheepRateLimiter: Redis at %s is unusable (%s); limiting "
                "in this process at 1/%d of the limits (fleet_size=%d) until it "
                "answers again (next try in %.1f s).",
                self._shown_url,
                self._describe(error),
                self.fleet_size,
                self.fleet_size,
                retry_in,
            )

    def _describe(self, error: Exception) -> str:
        from langchain_holysheep.ratelimit._redis import (  # noqa: PLC0415
            describe_error,
        )

        return describe_error(error, self._redis_url or "")

    def _redis_answered(self) -> None:
        if self._degraded:
            with self._state_lock:
                self._degraded = False
                self._backoff = _FIRST_BACKOFF
            _logger.info(
                "HolySheepRateLimiter: Redis at %s answers again; the limits are "
                "shared again.",
                self._shown_url,
            )

    def _block_span(self, seconds: float) -> float | None:
        """A block of ``seconds``, capped at ``max_block``; ``None`` if it is empty."""
        seconds = min(seconds, self.max_block)
        return seconds if seconds > 0 else None

    def _book(self, plan: _Plan, max_wait: float | None) -> Booking:
        """Book ``plan`` (on Redis, else in process); what it carried is then paid."""
        if self._redis is not None and self._redis_due():
            try:
                booking = self._redis.book(plan.blocks, plan.shared, max_wait)
            except Exception as error:  # noqa: BLE001 (a Redis error never fails a call)
                self._redis_failed(error)
            else:
                self._redis_answered()
                return self._paid(plan, booking)
        local = self._local.book(plan.local_blocks, plan.local, max_wait)
        return self._paid(plan, local)

    async def _abook(self, plan: _Plan, max_wait: float | None) -> Booking:
        """Async :meth:`_book` (the Redis call awaited)."""
        if self._redis is not None and self._redis_due():
            try:
                booking = await self._redis.abook(plan.blocks, plan.shared, max_wait)
            except Exception as error:  # noqa: BLE001 (a Redis error never fails a call)
                self._redis_failed(error)
            else:
                self._redis_answered()
                return self._paid(plan, booking)
        local = self._local.book(plan.local_blocks, plan.local, max_wait)
        return self._paid(plan, local)


def _block_key(model: str | None) -> str:
    return f"m:{model}:block" if model else "block"


def _time_left(deadline: Deadline | None) -> float | None:
    """The longest wait a booking may take: what is left of the deadline."""
    return None if deadline is None else max(deadline.left(), 0.0)


def _within(booking: Booking, deadline: Deadline | None) -> Booking:
    """``booking``, or the timeout error when its slot was past ``deadline``."""
    if booking.booked or deadline is None:
        return booking
    from langchain_holysheep.errors import (  # noqa: PLC0415
        HolySheepTotalTimeoutError,
    )

    raise HolySheepTotalTimeoutError(deadline.seconds, limiter_wait=booking.wait)


def _slept(booking: Booking) -> bool:
    if booking.booked and booking.wait > 0:
        time.sleep(booking.wait)
    return booking.booked


async def _aslept(booking: Booking) -> bool:
    if booking.booked and booking.wait > 0:
        await asyncio.sleep(booking.wait)
    return booking.booked


# ------------------------------------------------ ChatHolySheep's scope of core
@contextmanager
def reserved_by_model(limiter: HolySheepRateLimiter) -> Iterator[None]:
    """Within this block, ``limiter.acquire`` leaves the counting to the model.

    Args:
        limiter: The model's limiter.

    Yields:
        Nothing.
    """
    token = _MODEL_RESERVES.set(limiter)
    try:
        yield
    finally:
        _MODEL_RESERVES.reset(token)


def first_step_reserved(
    limiter: HolySheepRateLimiter, chunks: Iterator[_T]
) -> Iterator[_T]:
    """Run a core stream's first step (where it acquires) in the model's scope.

    Args:
        limiter: The model's limiter.
        chunks: langchain-core's stream, not started.

    Yields:
        The stream's chunks, unchanged.
    """
    close = getattr(chunks, "close", None)
    try:
        with reserved_by_model(limiter):
            first = next(chunks, _END)
        if first is _END:
            return
        yield first
        yield from chunks
    finally:
        if close is not None:
            close()


async def afirst_step_reserved(
    limiter: HolySheepRateLimiter, chunks: AsyncIterator[_T]
) -> AsyncIterator[_T]:
    """Async :func:`first_step_reserved`.

    Args:
        limiter: The model's limiter.
        chunks: langchain-core's async stream, not started.

    Yields:
        The stream's chunks, unchanged.
    """
    aclose = getattr(chunks, "aclose", None)
    try:
        with reserved_by_model(limiter):
            first = await anext(chunks, _END)
        if first is _END:
            return
        yield first
        async for chunk in chunks:
            yield chunk
    finally:
        if aclose is not None:
            await aclose()


_END: Final[Any] = object()


# ------------------------------------------------------- 429s: the fleet block
# While a ChatHolySheep request with a HolySheepRateLimiter is on the wire, the
# limiter and model are in this variable; the HTTP clients' response hooks
# (installed by ``_client``) turn each 429 they see, including those the SDK
# retries by itself, into a block.
_WATCH: ContextVar[tuple[HolySheepRateLimiter, str] | None] = ContextVar(
    "holysheep_rate_limit_watch", default=None
)
_NO_WATCH: Final = nullcontext()
_DEFAULT_BLOCK: Final = 1.0
_RATE_LIMITED: Final = 429


class _Watch:
    __slots__ = ("_token", "_value")

    def __init__(self, value: tuple[HolySheepRateLimiter, str]) -> None:
        self._value = value

    def __enter__(self) -> None:
        self._token = _WATCH.set(self._value)

    def __exit__(self, *exc: object) -> None:
        _WATCH.reset(self._token)


def watching(
    limiter: HolySheepRateLimiter | None, model: str
) -> AbstractContextManager[None]:
    """Within this block, a 429 for ``model`` blocks ``limiter``'s key.

    Args:
        limiter: The model's limiter (``None``: nothing to do).
        model: The requested model.

    Returns:
        A context manager.
    """
    return _NO_WATCH if limiter is None else _Watch((limiter, model))


def _block_scope(body: bytes, model: str) -> str | None:
    """The model if the 429's message names it (a per-model limit), else ``None``."""
    return model if model and model.encode() in body else None


def _seconds_to_wait(headers: Any) -> float | None:
    """The 429's wait; adds ``retry-after-ms`` from ``x-ratelimit-reset-*``.

    The SDK's own retry reads only ``retry-after(-ms)``: when a gateway sends
    just OpenAI's reset headers, the SDK's retry waits for them too.
    """
    from langchain_holysheep.errors import retry_after_seconds  # noqa: PLC0415

    seconds = retry_after_seconds(headers)
    if (
        seconds is not None
        and "retry-after-ms" not in headers
        and "retry-after" not in headers
    ):
        headers["retry-after-ms"] = str(math.ceil(seconds * 1000))
    return seconds


def on_response(response: Any) -> None:
    """The sync HTTP clients' response hook: a 429 blocks the fleet.

    Args:
        response: The ``httpx`` response (headers received).
    """
    if response.status_code != _RATE_LIMITED:
        return
    seconds = _seconds_to_wait(response.headers)
    watch = _WATCH.get()
    if watch is not None:
        limiter, model = watch
        scope = _block_scope(response.read(), model)
        limiter.block(_DEFAULT_BLOCK if seconds is None else seconds, scope)


async def aon_response(response: Any) -> None:
    """The async HTTP clients' response hook (see :func:`on_response`).

    Args:
        response: The ``httpx`` response (headers received).
    """
    if response.status_code != _RATE_LIMITED:
        return
    seconds = _seconds_to_wait(response.headers)
    watch = _WATCH.get()
    if watch is not None:
        limiter, model = watch
        scope = _block_scope(await response.aread(), model)
        await limiter.ablock(_DEFAULT_BLOCK if seconds is None else seconds, scope)
