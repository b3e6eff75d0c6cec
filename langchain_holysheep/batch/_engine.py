"""One process's share of a bulk run: send requests, a bounded number at a time.

:func:`arun_requests` pulls validated
:class:`~langchain_holysheep.batch._types.BatchRequest` lines from an iterator
(so the input is never held whole), keeps at most ``concurrency`` of them in
flight, and hands each finished one to ``on_result`` as a
:class:`~langchain_holysheep.batch._types.LineResult` (its output line already
encoded). What happens to one request, in order:

1. its models: the line's ``body.model`` (else the run's ``model``), then the
   run's ``fallbacks``; a model whose circuit breaker is open is skipped;
2. for each model tried: the budget reserves the request's worst case (a
   reservation that does not fit stops the run: this request and the ones
   not yet taken stay unanswered, for the next run), the rate limiter books
   its request and tokens (shared through Redis with ``redis_url``, and so are
   the 429 blocks and breakers), then the request is sent as the line gave it,
   with only ``model`` set;
3. an answer settles the budget to its actual cost; an error settles it to
   nothing (gateways do not bill errors). A retryable error (429, 5xx,
   timeouts, an empty answer) falls over to the next model; once every model
   has failed, the round is retried after the server's ``Retry-After`` (else a
   jittered backoff), up to ``retries`` more rounds. A model that is not
   served (404) falls over too, but is not retried;
4. anything else (400, 401, context overflow, a refusal) is final: an error
   line, written at once, and the run goes on.

The request is sent through the package's own client pool and error mapping
(``_http.apost_json``), so every error is a ``HolySheepError`` with the key
masked, and the body written to the output is the completion exactly as the
gateway returned it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from decimal import Decimal
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep._settings import GatewaySettings
from langchain_holysheep.batch._format import BatchInputError, error_line, success_line
from langchain_holysheep.batch._types import LineResult, nano_to_usd

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import openai
    from pydantic import SecretStr

    from langchain_holysheep._client import ClientConfig
    from langchain_holysheep.batch._types import BatchRequest, Budget
    from langchain_holysheep.fallback._breaker import CircuitBreaker
    from langchain_holysheep.pricing import Overrides, PriceTable
    from langchain_holysheep.ratelimit.limiter import HolySheepRateLimiter

__all__ = ["BatchSettings", "RunStats", "arun_requests"]

_CHAT_PATH: Final = "/chat/completions"
_MAX_COOLDOWN_WAIT: Final = 30.0
"""The longest one pause for open circuits lasts before the breakers are asked again."""


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How a bulk run sends its requests (one value shared by every worker).

    Attributes:
        model: The model for lines whose ``body`` names none.
        fallbacks: Models to try, in order, when the line's model fails.
        concurrency: Requests in flight at once, per process.
        retries: Extra rounds over the models after every one failed with a
            retryable error.
        requests_per_minute: The key's request limit (``None``: none).
        tokens_per_minute: The key's token limit (``None``: none).
        redis_url: Shares the limits, 429 blocks, circuit breakers and budget
            with every process using the same Redis, key and namespace.
        namespace: Separates runs sharing a Redis and a key.
        budget_usd: The most the run may spend (``None``: no budget).
        prices: Price overrides (``pricing.load_price_table``'s argument).
        api_key: The key (``None``: ``HOLYSHEEP_API_KEY``).
        base_url: The gateway (``None``: ``HOLYSHEEP_BASE_URL``, else public).
        timeout: Seconds to wait for each answer.
        retry_backoff: Base of the jittered exponential wait between rounds.
        max_retry_wait: The longest wait between rounds; a ``Retry-After``
            over it ends the request's retries.
    """

    model: str | None = None
    fallbacks: tuple[str, ...] = ()
    concurrency: int = 16
    retries: int = 3
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    redis_url: str | None = field(default=None, repr=False)
    namespace: str = "batch"
    budget_usd: Decimal | None = None
    prices: Overrides | None = None
    api_key: SecretStr | None = field(default=None, repr=False)
    base_url: str | None = field(default=None, repr=False)
    timeout: float = 120.0
    retry_backoff: float = 0.5
    max_retry_wait: float = 60.0

    def __post_init__(self) -> None:
        """Refuse settings a run cannot keep to, before anything is sent."""
        _whole("concurrency", self.concurrency, minimum=1)
        _whole("retries", self.retries, minimum=0)
        for name in ("timeout", "retry_backoff", "max_retry_wait"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BatchInputError(f"{name} must be a number of seconds.")
            if value <= 0:
                raise BatchInputError(f"{name} must be more than 0 seconds.")
        if self.budget_usd is not None and not (
            isinstance(self.budget_usd, Decimal) and self.budget_usd > 0
        ):
            raise BatchInputError(
                "budget_usd must be a Decimal amount of USD above 0 (or None)."
            )
        for model in (self.model, *self.fallbacks):
            if model is not None and (not isinstance(model, str) or not model.strip()):
                raise BatchInputError(
                    f"Model ids must be non-empty strings, not {model!r}."
                )

    def models_for(self, body: Mapping[str, Any]) -> list[str]:
        """The models a line is tried on, in order, without repeats.

        Args:
            body: The line's request body.

        Returns:
            The line's own model (else the run's), then the fallbacks.
        """
        first = body.get("model") or self.model
        models = [first] if isinstance(first, str) and first else []
        models += [m for m in self.fallbacks if m not in models]
        return models


@dataclass(frozen=True, slots=True)
class RunStats:
    """What one :func:`arun_requests` call did.

    Attributes:
        written: Requests finished and handed to ``on_result``.
        sent: Requests sent to the gateway (retries and fallbacks included).
        budget_stopped: Whether the budget refused a reservation, ending the run.
    """

    written: int
    sent: int
    budget_stopped: bool


def _whole(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BatchInputError(
            f"{name} must be a whole number >= {minimum}, not {value!r}."
        )


@dataclass(slots=True)
class _Line:
    """One request's running account over its attempts."""

    request: BatchRequest
    started: float = field(default_factory=perf_counter)
    attempts: int = 0
    cost_nano: int = 0
    priced: bool = True
    error: Exception | None = None
    model: str | None = None

    def latency_ms(self) -> float:
        return (perf_counter() - self.started) * 1000.0

    def cost_usd(self) -> Decimal | None:
        return nano_to_usd(self.cost_nano) if self.priced else None


@dataclass(frozen=True, slots=True)
class _Answer:
    """A completion the gateway sent: its body and what it says of itself."""

    body: dict[str, Any]
    cost_nano: int
    priced: bool
    refusal: str | None
    empty: bool
    request_id: str | None = None


class _Gateway(GatewaySettings):
    """The run's connection settings: the chat model's own fields and checks.

    ``max_retries`` is 0: the engine retries itself, so that every retry
    books the rate limiter and the budget again.
    """

    def pool_key(self) -> ClientConfig:
        """The shared client pool these settings use."""
        return self._client_config(None)

    def options(self) -> openai.RequestOptions:
        """The per-request SDK options (timeouts, no SDK retries)."""
        return self._request_options()


class _BudgetSpent(Exception):  # noqa: N818 (a signal, not an error)
    """The budget refused a reservation: the request stays unanswered."""


class _Sender:
    """Sends requests for one run in one event loop (see the module docstring)."""

    def __init__(
        self,
        settings: BatchSettings,
        budget: Budget | None,
        client: openai.AsyncOpenAI,
        options: openai.RequestOptions,
        scope: str,
    ) -> None:
        from langchain_holysheep.pricing import load_price_table  # noqa: PLC0415

        self.settings = settings
        self.budget = budget
        self.stopped = False
        self.budget_error: Exception | None = None
        self.sent = 0
        self._client = client
        self._options = options
        self._scope = scope
        self._table: PriceTable = load_price_table(settings.prices)
        self._limiter = _limiter(settings)
        self._breakers: dict[str, CircuitBreaker] = {}

    @classmethod
    async def open(cls, settings: BatchSettings, budget: Budget | None) -> _Sender:
        """Build the sender: the gateway settings, checked, and this loop's client."""
        from langchain_holysheep._client import get_async_client  # noqa: PLC0415

        given: dict[str, Any] = {"timeout": settings.timeout, "max_retries": 0}
        if settings.api_key is not None:
            given["api_key"] = settings.api_key
        if settings.base_url is not None:
            given["base_url"] = settings.base_url
        gateway = _Gateway(**given)
        client = await get_async_client(gateway.pool_key())
        return cls(settings, budget, client, gateway.options(), gateway.base_url)

    async def send(self, request: BatchRequest) -> LineResult | None:
        """Send one request until it has its output line.

        Args:
            request: The validated input line.

        Returns:
            Its result, or ``None`` when the budget stopped the run first.
        """
        line = _Line(request)
        models = self.settings.models_for(request.body)
        if not models:
            return self._failed(line)
        try:
            for round_no in range(self.settings.retries + 1):
                answer, wait = await self._round(line, models)
                if answer is not None:
                    return self._answered(line, answer)
                if line.error is not None and not _retryable(line.error):
                    break
                if round_no == self.settings.retries:
                    break
                delay = self._delay(wait, round_no)
                if delay is None:
                    break
                await asyncio.sleep(delay)
        except _BudgetSpent:
            self.stopped = True
            return None
        return self._failed(line)

    async def _round(
        self, line: _Line, models: list[str]
    ) -> tuple[_Answer | None, float | None]:
        """Try each model once; the answer, or the wait the failures asked for."""
        from langchain_holysheep.errors import HolySheepCircuitOpenError  # noqa: PLC0415
        from langchain_holysheep.fallback._policy import (  # noqa: PLC0415
            is_fallback_error,
            retry_after,
        )

        wait: float | None = None
        for model in models:
            breaker = self._breaker(model)
            if (closed_for := breaker.acquire()) is not None:
                wait = _sooner(wait, min(max(closed_for, 0.05), _MAX_COOLDOWN_WAIT))
                if line.error is None:
                    line.error = HolySheepCircuitOpenError(model, closed_for)
                continue
            line.model = model
            try:
                answer = await self._attempt(line, model, breaker)
            except _BudgetSpent:
                breaker.release()
                raise
            except Exception as error:  # noqa: BLE001 (every failure is judged below)
                line.error = error
                if not is_fallback_error(error):
                    return None, None
                wait = _sooner(wait, retry_after(error))
                continue
            if answer.empty:
                line.error = _empty_answer_error(model)
                continue
            return answer, None
        return None, wait

    async def _attempt(
        self, line: _Line, model: str, breaker: CircuitBreaker
    ) -> _Answer:
        """Reserve, send and settle one request to one model."""
        from langchain_holysheep._http import (  # noqa: PLC0415
            apost_json_with_request_id,
        )
        from langchain_holysheep.batch._cost import worst_case_nano  # noqa: PLC0415
        from langchain_holysheep.fallback._policy import (  # noqa: PLC0415
            is_retryable,
            retry_after,
        )
        from langchain_holysheep.ratelimit.limiter import watching  # noqa: PLC0415

        body = {**line.request.body, "model": model}
        reserved = 0
        if self.budget is not None:
            reserved = worst_case_nano(body, model, self._table)
            if not await self._reserve(reserved):
                raise _BudgetSpent
        try:
            await self._limiter.areserve(tokens=_request_tokens(body), model=model)
            line.attempts += 1
            self.sent += 1
            with watching(self._limiter, model):
                answer, request_id = await apost_json_with_request_id(
                    self._client, _CHAT_PATH, body, self._options, self._reader(model)
                )
            answer = replace(answer, request_id=request_id)
        except BaseException as error:
            await self._settle(reserved, 0)
            if isinstance(error, Exception) and is_retryable(error):
                breaker.record_failure(retry_after(error))
            else:
                breaker.release()
            raise
        await self._settle(reserved, answer.cost_nano)
        line.cost_nano += answer.cost_nano
        line.priced = line.priced and answer.priced
        breaker.record_success()
        return answer

    async def _reserve(self, nano: int) -> bool:
        """Reserve on the budget; a budget that cannot answer stops the run."""
        from langchain_holysheep.batch._budget import (  # noqa: PLC0415
            BudgetUnavailableError,
        )

        assert self.budget is not None  # noqa: S101 (only called with one)
        try:
            return await self.budget.reserve(nano)
        except BudgetUnavailableError as error:
            self.budget_error = error
            return False

    async def _settle(self, reserved: int, actual: int) -> None:
        """Settle on the budget; if it cannot answer, keep the answer and stop."""
        from langchain_holysheep.batch._budget import (  # noqa: PLC0415
            BudgetUnavailableError,
        )

        if self.budget is None:
            return
        try:
            await self.budget.settle(reserved, actual)
        except BudgetUnavailableError as error:
            self.budget_error = error
            self.stopped = True

    def _reader(self, model: str) -> Callable[[object], _Answer]:
        """How a completion from ``model`` is read (inside the error mapping)."""
        from langchain_holysheep._convert import (  # noqa: PLC0415
            completion_to_result,
            says_nothing,
        )
        from langchain_holysheep.batch._cost import actual_nano  # noqa: PLC0415

        table = self._table

        def read(data: object) -> _Answer:
            # Validates the body: an error object sent with a 200 raises the
            # error it stands for, anything not a completion a response error.
            result = completion_to_result(data, model, allow_empty=True)
            assert isinstance(data, dict)  # noqa: S101 (checked just above)
            cost, priced = actual_nano(model, data, table)
            messages = [g.message for g in result.generations]
            refusal = next(
                (
                    str(m.additional_kwargs["refusal"])
                    for m in messages
                    if m.additional_kwargs.get("refusal")
                ),
                None,
            )
            empty = refusal is None and any(
                says_nothing(m)  # type: ignore[arg-type]
                for m in messages
            )
            return _Answer(data, cost, priced, refusal, empty)

        return read

    def _answered(self, line: _Line, answer: _Answer) -> LineResult:
        """The output line of an answer (a refusal is an error line)."""
        body = answer.body
        served = body.get("model")
        model = served if isinstance(served, str) else line.model
        usage = body.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        common: dict[str, Any] = {
            "request_id": answer.request_id,
            "model": model,
            "cost_usd": line.cost_usd(),
            "latency_ms": round(line.latency_ms(), 3),
            "attempts": line.attempts,
        }
        if answer.refusal is not None:
            text = error_line(
                line.request,
                code="refusal",
                message=f"The model refused: {answer.refusal}",
                status_code=200,
                body=body,
                **common,
            )
        else:
            text = success_line(line.request, body, **common)
        return LineResult(
            custom_id=line.request.custom_id,
            line=text,
            ok=answer.refusal is None,
            model=model,
            cost_nano=line.cost_nano,
            priced=line.priced,
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            latency_ms=common["latency_ms"],
            attempts=line.attempts,
        )

    def _failed(self, line: _Line) -> LineResult:
        """The error line of a request that got no answer."""
        from langchain_holysheep.fallback._policy import status_code  # noqa: PLC0415

        error = line.error or _no_model_error(line.request)
        latency = round(line.latency_ms(), 3)
        body = getattr(error, "body", None)
        text = error_line(
            line.request,
            code=_error_code(error),
            message=str(error),
            status_code=status_code(error),
            body=body if isinstance(body, dict) else None,
            request_id=_request_id(error),
            model=line.model,
            cost_usd=line.cost_usd(),
            latency_ms=latency,
            attempts=line.attempts,
        )
        return LineResult(
            custom_id=line.request.custom_id,
            line=text,
            ok=False,
            model=line.model,
            cost_nano=line.cost_nano,
            priced=line.priced,
            latency_ms=latency,
            attempts=line.attempts,
        )

    def _breaker(self, model: str) -> CircuitBreaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            from langchain_holysheep.fallback._breaker import (  # noqa: PLC0415
                CircuitBreakerPolicy,
            )
            from langchain_holysheep.fallback._shared import (  # noqa: PLC0415
                get_circuit_breaker,
            )

            policy = CircuitBreakerPolicy(
                redis_url=self.settings.redis_url,
                redis_namespace=self.settings.namespace,
            )
            breaker = get_circuit_breaker(model, self._scope, policy)
            self._breakers[model] = breaker
        return breaker

    def _delay(self, wait: float | None, round_no: int) -> float | None:
        from langchain_holysheep.fallback._policy import retry_delay  # noqa: PLC0415

        return retry_delay(
            wait,
            round_no,
            backoff=self.settings.retry_backoff,
            cap=self.settings.max_retry_wait,
        )


def _limiter(settings: BatchSettings) -> HolySheepRateLimiter:
    """The run's limiter: its limits, and the 429 blocks every request obeys.

    A limiter with no limits still holds a 429's block (for this process, or
    for the fleet with ``redis_url``), so one 429 quiets the whole run.
    """
    from langchain_holysheep.ratelimit.limiter import (  # noqa: PLC0415
        HolySheepRateLimiter,
    )

    return HolySheepRateLimiter(
        requests_per_minute=settings.requests_per_minute,
        tokens_per_minute=settings.tokens_per_minute,
        redis_url=settings.redis_url,
        namespace=settings.namespace,
        api_key=settings.api_key,
    )


def _request_tokens(body: Mapping[str, Any]) -> int:
    """The tokens a request books against a tokens-per-minute limit."""
    from langchain_holysheep.batch._cost import prompt_tokens_bound  # noqa: PLC0415
    from langchain_holysheep.ratelimit._estimate import (  # noqa: PLC0415
        DEFAULT_MAX_TOKENS,
        output_reservation,
    )

    # The bound, not the estimate: a request never counts for more at the
    # gateway than it booked here, so a limit at the gateway's is never passed.
    return prompt_tokens_bound(body) + output_reservation(
        dict(body), DEFAULT_MAX_TOKENS
    )


def _sooner(wait: float | None, other: float | None) -> float | None:
    if other is None:
        return wait
    return other if wait is None else min(wait, other)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _retryable(error: Exception) -> bool:
    from langchain_holysheep.errors import HolySheepModelNotFoundError  # noqa: PLC0415
    from langchain_holysheep.fallback._policy import is_retryable  # noqa: PLC0415

    return is_retryable(error) and not isinstance(error, HolySheepModelNotFoundError)


def _empty_answer_error(model: str) -> Exception:
    from langchain_holysheep.errors import HolySheepEmptyAnswerError  # noqa: PLC0415

    return HolySheepEmptyAnswerError(
        f"{model!r} answered with no text, no tool call and no refusal "
        "(usually a passing fault upstream): retried, or asked of the next model."
    )


def _no_model_error(request: BatchRequest) -> Exception:
    return BatchInputError(
        f"custom_id {request.custom_id!r} names no model: set body.model on the "
        "line, or --model for the run.",
        line_no=request.line_no,
    )


_CODES: Final = {
    "HolySheepRateLimitError": "rate_limit_exceeded",
    "HolySheepServerError": "server_error",
    "HolySheepTimeoutError": "timeout",
    "HolySheepTotalTimeoutError": "timeout",
    "HolySheepConnectionError": "connection_error",
    "HolySheepModelNotFoundError": "model_not_found",
    "HolySheepContextOverflowError": "context_length_exceeded",
    "HolySheepAuthenticationError": "invalid_api_key",
    "HolySheepPermissionDeniedError": "permission_denied",
    "HolySheepBadRequestError": "invalid_request_error",
    "HolySheepUnprocessableEntityError": "invalid_request_error",
    "HolySheepEmptyAnswerError": "empty_answer",
    "HolySheepCircuitOpenError": "circuit_open",
    "BatchInputError": "invalid_request_error",
}


def _error_code(error: Exception) -> str:
    """The gateway's own error code if it sent one, else ours for the error's kind."""
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        return code
    for kind in type(error).__mro__:
        if (ours := _CODES.get(kind.__name__)) is not None:
            return ours
    return "error"


def _request_id(error: Exception) -> str | None:
    request_id = getattr(error, "request_id", None)
    return request_id if isinstance(request_id, str) else None


async def arun_requests(
    requests: Iterable[BatchRequest],
    settings: BatchSettings,
    *,
    on_result: Callable[[LineResult], None],
    budget: Budget | None = None,
) -> RunStats:
    """Send ``requests``, at most ``settings.concurrency`` at a time.

    Requests are taken from the iterator only as a slot frees up, so a
    generator over a file of any size runs in bounded memory. ``on_result``
    is called in this event loop, once per finished request, as it finishes.

    Args:
        requests: Validated input lines.
        settings: How to send them.
        on_result: Receives each request's result (the output line in it).
        budget: The run's budget, if any.

    Returns:
        What was written and sent, and whether the budget ended the run.

    Raises:
        HolySheepMissingAPIKeyError: No key is configured (nothing is sent).
        BudgetUnavailableError: A shared budget's Redis stopped answering: the
            requests in flight finished and were handed over, no more were sent.
        BatchInputError: A model id with no price while a budget is set.
    """
    sender = await _Sender.open(settings, budget)
    pending: Iterator[BatchRequest] = iter(requests)
    written = 0

    async def worker() -> None:
        nonlocal written
        while not sender.stopped:
            request = next(pending, None)
            if request is None:
                return
            result = await sender.send(request)
            if result is None:
                return
            written += 1
            on_result(result)

    async with asyncio.TaskGroup() as group:
        for _ in range(settings.concurrency):
            group.create_task(worker())
    if sender.budget_error is not None:
        # A shared budget whose Redis stopped answering: nothing more was
        # sent, what was answered is written; say so rather than overspend.
        raise sender.budget_error
    return RunStats(written=written, sent=sender.sent, budget_stopped=sender.stopped)
