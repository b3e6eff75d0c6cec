"""Usage, cost and latency tracking for any LangChain chat model.

:class:`HolySheepUsageTracker` is a LangChain callback handler. Attach it to any
chat model call (``config={"callbacks": [tracker]}``) or let
:func:`holysheep_usage` attach it to every run inside a ``with`` block::

    with holysheep_usage() as usage:
        chain.invoke({"question": "..."})
    print(usage.snapshot().total_cost_usd, usage.snapshot().total_ms.p95)

What is counted, per served model and overall:

* requests (finished gateway calls, failed ones included) and errors;
* LangChain LLM-cache hits (``set_llm_cache(...)``), apart: an answer from the
  cache was not sent to the gateway, so it is no request, costs 0 and adds no
  tokens or latency samples (langchain-core marks it with ``usage_metadata
  ["total_cost"] == 0``); the totals are what the gateway billed;
* tokens: input, output, cached input (``cache_read``) and reasoning;
* cost in USD, by :func:`~langchain_holysheep.pricing.resolve_call_cost` with
  the tracker's price table: the ``response_metadata["cost_usd"]`` the model
  reported (e.g. ChatHolySheep), else a gateway cost at
  ``response_metadata["token_usage"]["cost_usd"]``, else the price table.
  Calls whose cost cannot be determined are counted as *unpriced*, with
  their tokens; they never add a silent $0;
* latency: total milliseconds from the start callback to the end (or error)
  callback, and time to first token (the first ``on_llm_new_token``, so only for
  streamed calls). Percentiles use the nearest-rank method.

The counts of each served model are one :class:`Tally` (``a + b`` adds two);
:class:`ModelUsage` and :class:`UsageSummary` are tallies with latency
percentiles. The hot path only adds a call's tally and stores its latency under
one lock; percentiles are computed by :meth:`HolySheepUsageTracker.snapshot`.
"""

# LangChain fixes the callback signatures; the arguments not needed here are
# named only when they come before run_id, the rest arrive in **kwargs.
# ruff: noqa: ARG002

from __future__ import annotations

import math
import threading
import time
from array import array
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from decimal import Decimal
from operator import add, attrgetter
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration
from langchain_core.tracers.context import register_configure_hook

from langchain_holysheep._text_table import render_table
from langchain_holysheep.pricing import (
    PriceTable,
    load_price_table,
    resolve_call_cost,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from uuid import UUID

    from langchain_core.outputs import LLMResult

    from langchain_holysheep.pricing import Cost

__all__ = [
    "HolySheepUsageTracker",
    "ModelUsage",
    "Percentiles",
    "Tally",
    "UsageSummary",
    "holysheep_usage",
    "summarize",
]

UNKNOWN_MODEL = "unknown"
_NANO = Decimal("1e-9")
_ZERO = Decimal(0)
_MAX_REMEMBERED_RUNS = 16_384


# ------------------------------------------------------------------ summaries


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency percentiles in milliseconds, nearest-rank method.

    The p-th percentile of ``n`` sorted samples is the sample at 1-based rank
    ``ceil(p / 100 * n)``: always a value that was actually observed.

    Attributes:
        count: Number of samples.
        p50: Median.
        p95: 95th percentile.
        p99: 99th percentile.
        mean: Arithmetic mean.
        max: Largest sample.
    """

    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> Percentiles | None:
        """Compute percentiles of some samples (``None`` when there are none).

        Args:
            samples: Latencies in milliseconds, any order.

        Returns:
            The percentiles, or ``None`` for an empty sequence.
        """
        n = len(samples)
        if n == 0:
            return None
        ordered = sorted(samples)

        def rank(p: int) -> float:
            return ordered[max(1, math.ceil(p * n / 100)) - 1]

        return cls(
            count=n,
            p50=rank(50),
            p95=rank(95),
            p99=rank(99),
            mean=math.fsum(ordered) / n,
            max=ordered[-1],
        )


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts of some calls; ``a + b`` counts the calls of both.

    Attributes:
        requests: Finished gateway calls, failed ones included.
        errors: Failed calls.
        cache_hits: Answers from the LangChain LLM cache: not sent to the
            gateway, so not in ``requests``, tokens or cost (they cost 0).
        input_tokens: Input tokens (cached ones included).
        output_tokens: Output tokens (reasoning ones included).
        cached_tokens: Cached input tokens (``cache_read``).
        reasoning_tokens: Reasoning tokens.
        priced_requests: Successful calls with a known cost.
        gateway_priced_requests: Of those, calls priced by the gateway itself.
        unpriced_requests: Successful calls whose cost is unknown (no price
            for the model, or no usage reported).
        unpriced_input_tokens: Input tokens of the unpriced calls.
        unpriced_output_tokens: Output tokens of the unpriced calls.
        cost: Exact sum of the known costs, in USD.
    """

    requests: int = 0
    errors: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    priced_requests: int = 0
    gateway_priced_requests: int = 0
    unpriced_requests: int = 0
    unpriced_input_tokens: int = 0
    unpriced_output_tokens: int = 0
    cost: Decimal = _ZERO

    def __add__(self, other: Tally) -> Tally:
        """The counts of the calls of both tallies (a plain :class:`Tally`)."""
        if not isinstance(other, Tally):
            return NotImplemented
        return Tally(*map(add, _counts(self), _counts(other)))

    @property
    def cost_usd(self) -> float | None:
        """Known costs summed and rounded to 1e-9 USD; ``None`` if none was priced."""
        return float(self.cost.quantize(_NANO)) if self.priced_requests else None


_counts = attrgetter(*(f.name for f in fields(Tally)))
"""A tally's values in field order (``Tally(*_counts(t))`` copies ``t``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelUsage(Tally):
    """Usage of one served model: its :class:`Tally` plus latency percentiles.

    Attributes:
        model: Served model name (``"unknown"`` when no name was reported).
        ttft_ms: Time-to-first-token percentiles (streamed calls only).
        total_ms: Total latency percentiles.
    """

    model: str
    ttft_ms: Percentiles | None
    total_ms: Percentiles | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageSummary(Tally):
    """A consistent snapshot of a :class:`HolySheepUsageTracker`.

    The :class:`Tally` of every call (``requests``, ``errors``, tokens,
    ``unpriced_*``: successful calls whose cost is unknown and *not* in
    ``total_cost_usd``), plus:

    Attributes:
        cost_by_model: Known cost per served model; models with no priced call
            are absent (not ``0.0``).
        by_model: Everything above, per served model.
        ttft_ms: Time-to-first-token percentiles over all models.
        total_ms: Total latency percentiles over all models.
    """

    cost_by_model: dict[str, float]
    by_model: dict[str, ModelUsage]
    ttft_ms: Percentiles | None
    total_ms: Percentiles | None

    @property
    def total_cost_usd(self) -> float:
        """Sum of all known costs (see ``unpriced_requests``), rounded to 1e-9 USD."""
        return float(self.cost.quantize(_NANO))

    @property
    def cost_is_complete(self) -> bool:
        """Whether every successful call had a known cost."""
        return self.unpriced_requests == 0

    @property
    def unpriced_models(self) -> tuple[str, ...]:
        """Served models with at least one unpriced call."""
        return tuple(m for m, u in self.by_model.items() if u.unpriced_requests)

    def table(self) -> str:
        """Render a fixed-width text table, one row per model plus a total.

        Returns:
            The table; cost is in USD, latencies are ``p50/p95/p99`` in ms.
        """
        header = (
            "model",
            "requests",
            "errors",
            "input",
            "output",
            "cached",
            "reasoning",
            "cost USD",
            "total ms p50/p95/p99",
            "TTFT ms p50/p95/p99",
        )
        rows = [_row(usage.model, usage) for usage in self.by_model.values()]
        out = render_table(header, rows, total=_row("TOTAL", self))
        if self.cache_hits:
            out += (
                f"\n* {self.cache_hits} answer(s) came from the LangChain cache: "
                "not sent to the gateway, not in the counts, cost 0"
            )
        if self.unpriced_requests:
            out += (
                f"\n* {self.unpriced_requests} call(s) with unknown cost are not in "
                f"the cost ({self.unpriced_input_tokens} input / "
                f"{self.unpriced_output_tokens} output tokens): "
                f"{', '.join(self.unpriced_models)}; add a price to the price table"
            )
        return out

    def __str__(self) -> str:
        """The :meth:`table`."""
        return self.table()


def _fmt_ms(p: Percentiles | None) -> str:
    if p is None:
        return "-"
    return f"{p.p50:.1f}/{p.p95:.1f}/{p.p99:.1f}"


def _row(name: str, u: ModelUsage | UsageSummary) -> tuple[str, ...]:
    cost_usd = u.cost_usd
    if cost_usd is None:
        cost_cell = "n/a*" if u.unpriced_requests else "-"
    else:
        cost_cell = f"{cost_usd:.6f}" + ("*" if u.unpriced_requests else "")
    return (
        name,
        str(u.requests),
        str(u.errors),
        str(u.input_tokens),
        str(u.output_tokens),
        str(u.cached_tokens),
        str(u.reasoning_tokens),
        cost_cell,
        _fmt_ms(u.total_ms),
        _fmt_ms(u.ttft_ms),
    )


def summarize(
    tallies: Mapping[str, Tally],
    total_ms: Mapping[str, Sequence[float]],
    ttft_ms: Mapping[str, Sequence[float]] | None = None,
) -> UsageSummary:
    """A :class:`UsageSummary` of per-model tallies and latency samples.

    Args:
        tallies: The counts of each served model.
        total_ms: Each model's total latency samples, in milliseconds.
        ttft_ms: Each model's time-to-first-token samples, if any.

    Returns:
        The summary: one :class:`ModelUsage` per model (sorted by name), the
        total, and percentiles per model and overall.
    """
    by_model: dict[str, ModelUsage] = {}
    all_total: list[float] = []
    all_ttft: list[float] = []
    total = _NO_CALLS
    for name in sorted(tallies):
        model_total = total_ms.get(name, ())
        model_ttft = () if ttft_ms is None else ttft_ms.get(name, ())
        all_total.extend(model_total)
        all_ttft.extend(model_ttft)
        usage = by_model[name] = ModelUsage(
            *_counts(tallies[name]),
            model=name,
            ttft_ms=Percentiles.from_samples(model_ttft),
            total_ms=Percentiles.from_samples(model_total),
        )
        total += usage
    return UsageSummary(
        *_counts(total),
        cost_by_model={
            u.model: u.cost_usd for u in by_model.values() if u.cost_usd is not None
        },
        by_model=by_model,
        ttft_ms=Percentiles.from_samples(all_ttft),
        total_ms=Percentiles.from_samples(all_total),
    )


# ------------------------------------------------------------------ internals


class _Run:
    """An in-flight call."""

    __slots__ = ("model", "start", "ttft_ms")

    def __init__(self, start: float, model: str | None) -> None:
        self.start = start
        self.model = model
        self.ttft_ms: float | None = None


class _Latencies:
    """Latency samples of one model, in milliseconds (appended under the lock)."""

    __slots__ = ("total_ms", "ttft_ms")

    def __init__(self) -> None:
        self.total_ms: array[float] = array("d")
        self.ttft_ms: array[float] = array("d")

    def copy(self) -> _Latencies:
        new = _Latencies()
        new.total_ms.extend(self.total_ms)
        new.ttft_ms.extend(self.ttft_ms)
        return new


_NO_CALLS = Tally()
_FAILED_CALL = Tally(requests=1, errors=1)
_CACHE_HIT = Tally(cache_hits=1)


def _call_tally(usage: Mapping[str, Any] | None, cost: Cost | None) -> Tally:
    """The tally of one successful call: its usage and its cost (``None``: unknown)."""
    input_tokens = output_tokens = cached = reasoning = 0
    if usage:
        input_tokens = _int(usage.get("input_tokens"))
        output_tokens = _int(usage.get("output_tokens"))
        cached = _int((usage.get("input_token_details") or {}).get("cache_read"))
        reasoning = _int((usage.get("output_token_details") or {}).get("reasoning"))
    unpriced = cost is None
    return Tally(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        priced_requests=0 if cost is None else 1,
        gateway_priced_requests=int(cost is not None and cost.source == "gateway"),
        unpriced_requests=int(unpriced),
        unpriced_input_tokens=input_tokens if unpriced else 0,
        unpriced_output_tokens=output_tokens if unpriced else 0,
        cost=_ZERO if cost is None else cost.usd_decimal,
    )


def _failed_fallback_models(response: LLMResult) -> list[str]:
    """Models a fallback chain tried and that failed before the one that served.

    ``ChatHolySheepFallback`` lists them in ``response_metadata["fallback_attempts"]``;
    counting them keeps the tracker's error count honest for chains.
    """
    message = _first_message(response)
    attempts = (
        (message.response_metadata or {}).get("fallback_attempts") if message else None
    )
    if not isinstance(attempts, list):
        return []
    return [
        str(attempt.get("model") or UNKNOWN_MODEL)
        for attempt in attempts
        if isinstance(attempt, dict)
    ]


def _is_llm_cache_hit(usage: Mapping[str, Any] | None) -> bool:
    """Whether an answer came from the LangChain LLM cache, not the gateway.

    langchain-core zeroes the cost of a cache hit by setting
    ``usage_metadata["total_cost"] = 0``; nothing else sets that key.
    """
    return usage is not None and "total_cost" in usage and usage["total_cost"] == 0


def _int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def _model_hint(
    metadata: Mapping[str, Any] | None, invocation_params: object
) -> str | None:
    if metadata:
        name = metadata.get("ls_model_name")
        if isinstance(name, str) and name:
            return name
    if isinstance(invocation_params, dict):
        for key in ("ls_model_name", "model", "model_name"):
            name = invocation_params.get(key)
            if isinstance(name, str) and name:
                return name
    return None


def _first_message(response: LLMResult) -> BaseMessage | None:
    try:
        generation = response.generations[0][0]
    except IndexError:
        return None
    if isinstance(generation, ChatGeneration) and isinstance(
        generation.message, BaseMessage
    ):
        return generation.message
    return None


# ------------------------------------------------------------------ tracker


class HolySheepUsageTracker(BaseCallbackHandler):
    """Aggregate requests, tokens, cost and latency across LangChain calls.

    Thread-safe and asyncio-safe: every update happens under one
    ``threading.Lock`` and only stores numbers; percentiles are computed when you
    call :meth:`snapshot`. ``run_inline`` is ``True`` so async runs call it
    directly instead of through a thread pool. Events are keyed by ``run_id`` and
    a run is counted once even if the tracker receives its events twice (e.g.
    attached both by :func:`holysheep_usage` and explicitly).

    Example:
        ```python
        tracker = HolySheepUsageTracker()
        model.invoke("hi", config={"callbacks": [tracker]})
        print(tracker.table())
        ```
    """

    run_inline: bool = True
    raise_error: bool = False
    # Only model events are needed; LangChain skips the ones a handler ignores.
    ignore_chain = ignore_agent = ignore_retriever = ignore_retry = True
    ignore_custom_event = True

    def __init__(self, price_table: PriceTable | None = None) -> None:
        """Create an empty tracker.

        Args:
            price_table: Prices used when a response carries no cost of its own;
                defaults to :func:`~langchain_holysheep.pricing.load_price_table`
                ``()`` (which honours ``HOLYSHEEP_PRICES_FILE``), loaded once.
        """
        super().__init__()
        self.price_table: PriceTable = (
            load_price_table() if price_table is None else price_table
        )
        self._lock = threading.Lock()
        self._runs: dict[UUID, _Run] = {}
        self._finished: OrderedDict[UUID, None] = OrderedDict()
        self._tallies: dict[str, Tally] = {}
        self._latencies: dict[str, _Latencies] = {}

    # -- callbacks -------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the clock for a chat model call."""
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the clock for a (text completion) LLM call."""
        self._start(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        """Record the time to the first streamed chunk of a call."""
        now = time.perf_counter()
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.ttft_ms is None:
                run.ttft_ms = (now - run.start) * 1000.0

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Count a finished call: tokens, cost and latency."""
        finished = self._finish(run_id)
        if finished is None:
            return
        run, now = finished
        model, tally = self._outcome(response, None if run is None else run.model)
        if tally is _CACHE_HIT:  # no gateway call: no latency, no failed members
            with self._lock:
                self._count(model, tally, None, now)
            return
        failed = _failed_fallback_models(response)
        with self._lock:
            for failed_model in failed:  # a fallback chain's members that failed first
                self._count(failed_model, _FAILED_CALL, None, now)
            self._count(model, tally, run, now)

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Count a failed call and its latency."""
        finished = self._finish(run_id)
        if finished is None:
            return
        run, now = finished
        model = (run.model if run is not None else None) or UNKNOWN_MODEL
        with self._lock:
            self._count(model, _FAILED_CALL, run, now)

    # -- reading ---------------------------------------------------------------

    def snapshot(self) -> UsageSummary:
        """A consistent copy of the totals, with percentiles computed.

        Returns:
            The summary; later calls do not change it.
        """
        with self._lock:
            tallies = dict(self._tallies)
            latencies = {name: lat.copy() for name, lat in self._latencies.items()}
        return summarize(
            tallies,
            {name: lat.total_ms for name, lat in latencies.items()},
            {name: lat.ttft_ms for name, lat in latencies.items()},
        )

    def reset(self) -> None:
        """Forget all totals and samples. Calls in flight are counted when they end."""
        with self._lock:
            self._tallies.clear()
            self._latencies.clear()

    def table(self) -> str:
        """The current totals as a fixed-width text table (see UsageSummary.table).

        Returns:
            The rendered table.
        """
        return self.snapshot().table()

    def __str__(self) -> str:
        """The :meth:`table`."""
        return self.table()

    def __repr__(self) -> str:
        """Short description with the request count and total cost."""
        summary = self.snapshot()
        return (
            f"HolySheepUsageTracker(requests={summary.requests}, "
            f"errors={summary.errors}, total_cost_usd={summary.total_cost_usd})"
        )

    # -- helpers ---------------------------------------------------------------

    def _start(
        self,
        run_id: UUID,
        metadata: Mapping[str, Any] | None,
        invocation_params: object,
    ) -> None:
        now = time.perf_counter()
        model = _model_hint(metadata, invocation_params)
        with self._lock:
            if run_id not in self._runs and run_id not in self._finished:
                self._runs[run_id] = _Run(now, model)

    def _finish(self, run_id: UUID) -> tuple[_Run | None, float] | None:
        """Mark a run finished now.

        Returns:
            ``None`` when the run was already counted, else its start record
            (``None`` when its start was not seen) and the time it finished.
        """
        now = time.perf_counter()
        with self._lock:
            if run_id in self._finished:
                return None
            self._finished[run_id] = None
            if len(self._finished) > _MAX_REMEMBERED_RUNS:
                self._finished.popitem(last=False)
            return self._runs.pop(run_id, None), now

    def _count(self, model: str, tally: Tally, run: _Run | None, now: float) -> None:
        """Add a finished call's tally and latency (the caller holds the lock)."""
        self._tallies[model] = self._tallies.get(model, _NO_CALLS) + tally
        if run is None:
            return
        samples = self._latencies.get(model)
        if samples is None:
            samples = self._latencies[model] = _Latencies()
        samples.total_ms.append((now - run.start) * 1000.0)
        if run.ttft_ms is not None:
            samples.ttft_ms.append(run.ttft_ms)

    def _outcome(self, response: LLMResult, hint: str | None) -> tuple[str, Tally]:
        """The served model of a finished call and its tally (outside the lock)."""
        message = _first_message(response)
        metadata: Mapping[str, Any] = {}
        usage: Mapping[str, Any] | None = None
        if message is not None:
            metadata = message.response_metadata or {}
            usage = getattr(message, "usage_metadata", None)
        served = metadata.get("model_name") or metadata.get("model")
        if not (isinstance(served, str) and served) and response.llm_output:
            served = response.llm_output.get("model_name")
        model = served if isinstance(served, str) and served else hint
        if _is_llm_cache_hit(usage):
            return model or UNKNOWN_MODEL, _CACHE_HIT
        try:
            cost = resolve_call_cost(model, usage, metadata, self.price_table)
        except ValueError:  # a token count that is not a whole number >= 0
            cost = None
        return model or UNKNOWN_MODEL, _call_tally(usage, cost)


# ------------------------------------------------------------------ context hook

_hook_vars: list[ContextVar[HolySheepUsageTracker | None]] = []
_hook_vars_lock = threading.Lock()


def _free_hook_var() -> ContextVar[HolySheepUsageTracker | None]:
    """A registered context variable that is unset in the current context.

    One variable per nesting level is registered with LangChain, once, and then
    reused, so nested ``with holysheep_usage()`` blocks each see every call while
    the number of registered hooks stays bounded.
    """
    with _hook_vars_lock:
        for existing in _hook_vars:
            if existing.get() is None:
                return existing
        var: ContextVar[HolySheepUsageTracker | None] = ContextVar(
            f"holysheep_usage_tracker_{len(_hook_vars)}", default=None
        )
        register_configure_hook(var, inheritable=True)
        _hook_vars.append(var)
        return var


@contextmanager
def holysheep_usage(
    price_table: PriceTable | None = None,
    *,
    tracker: HolySheepUsageTracker | None = None,
) -> Iterator[HolySheepUsageTracker]:
    """Track every LangChain model call made inside a ``with`` block.

    The tracker is registered as an inheritable LangChain callback through a
    context variable, so it sees sync and async calls made in this context
    (including tasks created inside the block). Threads you start yourself do not
    inherit the context: run them with ``contextvars.copy_context().run`` or pass
    the tracker explicitly in ``config={"callbacks": [tracker]}``.

    Args:
        price_table: Prices for the new tracker (default: the packaged table).
        tracker: Reuse an existing tracker instead of creating one.

    Yields:
        The tracker.

    Raises:
        ValueError: Both ``price_table`` and ``tracker`` were given.

    Example:
        ```python
        with holysheep_usage() as usage:
            chain.invoke({"topic": "sheep"})
        s = usage.snapshot()
        print(f"${s.total_cost_usd:.6f}, p95 {s.total_ms.p95:.0f} ms")
        ```
    """
    if tracker is not None and price_table is not None:
        raise ValueError("pass either price_table or tracker, not both")
    handler = tracker if tracker is not None else HolySheepUsageTracker(price_table)
    var = _free_hook_var()
    token = var.set(handler)
    try:
        yield handler
    finally:
        var.reset(token)
