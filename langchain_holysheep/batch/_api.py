"""The Python API of a bulk run: :func:`run_batch` and :func:`arun_batch`.

A run, in order: the paths are checked; the output file (the checkpoint) is
read and a torn last line cut off; the whole input is validated in one
streaming pass (a bad line refuses the run before anything is sent, naming
its line number); the budget is opened; then every line with no output line
yet is sent, by this process (:func:`~langchain_holysheep.batch._engine.arun_requests`)
or by Ray workers (``ray=True``), and each finished one is appended to the
output as one whole line, flushed. The summary says what was done, what it
cost and the exit status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

from langchain_holysheep.batch._engine import BatchSettings, arun_requests
from langchain_holysheep.batch._format import BatchInputError

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Iterator

    from pydantic import SecretStr

    from langchain_holysheep.batch._checkpoint import Checkpoint
    from langchain_holysheep.batch._summary import BatchSummary
    from langchain_holysheep.batch._types import (
        BatchRequest,
        Budget,
        LineResult,
        Progress,
    )
    from langchain_holysheep.callbacks import UsageSummary
    from langchain_holysheep.pricing import Overrides, PriceTable

__all__ = ["BatchOptions", "arun_batch", "run_batch"]


@dataclass(slots=True)
class _Run:
    """One run's paths, settings and running counts."""

    input_path: str
    output_path: str
    settings: BatchSettings
    progress: Progress | None
    total: int = 0
    already_done: int = 0
    failed_before: int = 0
    done: set[str] = field(default_factory=set)
    started: float = field(default_factory=perf_counter)

    def prepare(self) -> None:
        """Check the paths, read the checkpoint, validate the whole input."""
        from langchain_holysheep.batch._checkpoint import (  # noqa: PLC0415
            read_checkpoint,
        )
        from langchain_holysheep.batch._input import (  # noqa: PLC0415
            check_paths,
            validate_input,
        )

        check_paths(self.input_path, self.output_path)
        checkpoint = read_checkpoint(self.output_path)
        self.done = checkpoint.done
        check = _LineCheck(self.settings, checkpoint, self.input_path)
        self.total = validate_input(self.input_path, check=check)
        self.already_done = check.already_done
        self.failed_before = check.failed_before

    def pending(self) -> Iterator[BatchRequest]:
        """The lines with no output line yet, read as they are needed."""
        from langchain_holysheep.batch._input import iter_requests  # noqa: PLC0415

        return iter_requests(self.input_path, skip=self.done)


class _LineCheck:
    """What every line must satisfy before anything is sent, beyond its format."""

    def __init__(
        self, settings: BatchSettings, checkpoint: Checkpoint, path: str
    ) -> None:
        from langchain_holysheep.batch._cost import has_price  # noqa: PLC0415
        from langchain_holysheep.pricing import load_price_table  # noqa: PLC0415

        self._settings = settings
        self._done = checkpoint.done
        self._failed = checkpoint.failed
        self._path = path
        self._has_price = has_price
        self._table: PriceTable | None = (
            load_price_table(settings.prices)
            if settings.budget_usd is not None
            else None
        )
        self._priced: set[str] = set()
        self.already_done = 0
        self.failed_before = 0

    def __call__(self, request: BatchRequest) -> None:
        if request.custom_id in self._done:
            self.already_done += 1
            if request.custom_id in self._failed:
                self.failed_before += 1
        models = self._settings.models_for(request.body)
        if not models:
            raise BatchInputError(
                "the line's body names no model: set body.model, or pass a default "
                "model (--model / model=).",
                line_no=request.line_no,
                path=self._path,
            )
        if self._table is None:
            return
        for model in models:
            if model in self._priced:
                continue
            if not self._has_price(model, self._table):
                raise BatchInputError(
                    f"model {model!r} has no known price, so the budget cannot be "
                    "kept: give it one (--price MODEL=IN,OUT in USD per 1M tokens, "
                    "or --prices FILE), or run without a budget.",
                    line_no=request.line_no,
                    path=self._path,
                )
            self._priced.add(model)


def _settings(**given: Any) -> BatchSettings:
    fallbacks = given.pop("fallbacks", ())
    if isinstance(fallbacks, str):
        fallbacks = [m.strip() for m in fallbacks.split(",") if m.strip()]
    budget = given.pop("budget_usd", None)
    if budget is not None and not isinstance(budget, Decimal):
        try:
            budget = Decimal(str(budget))
        except ArithmeticError:
            raise BatchInputError(
                f"budget_usd must be an amount of USD, not {budget!r}."
            ) from None
    return BatchSettings(fallbacks=tuple(fallbacks), budget_usd=budget, **given)


async def _run(
    run: _Run, *, ray: bool, ray_address: str | None, ray_workers: int | None
) -> BatchSummary:
    """Send every pending line and write its output line; the summary."""
    from langchain_holysheep.batch._budget import make_budget  # noqa: PLC0415
    from langchain_holysheep.batch._checkpoint import OutputWriter  # noqa: PLC0415
    from langchain_holysheep.batch._summary import (  # noqa: PLC0415
        BatchSummary,
        UsageCounter,
    )

    settings = run.settings
    key = settings.api_key.get_secret_value() if settings.api_key else None
    budget = (
        None
        if ray
        else make_budget(
            settings.budget_usd,
            redis_url=settings.redis_url,
            namespace=settings.namespace,
            api_key=key,
        )
    )
    counter = UsageCounter()
    succeeded = failed = 0
    progress = run.progress
    if progress is not None:
        progress.start(run.total, run.already_done)

    with OutputWriter(run.output_path) as writer:

        def on_result(result: LineResult) -> None:
            nonlocal succeeded, failed
            writer.write(result.line)
            counter.add(result)
            if result.ok:
                succeeded += 1
            else:
                failed += 1
            if progress is not None:
                progress.advance(result)

        try:
            if ray:
                stats = await asyncio.to_thread(
                    _run_on_ray,
                    run.pending(),
                    settings,
                    on_result,
                    ray_address,
                    ray_workers,
                )
            else:
                stats = await arun_requests(
                    run.pending(), settings, on_result=on_result, budget=budget
                )
        finally:
            usage = counter.summary()
            if progress is not None:
                progress.finish(usage)
    spent = await _spent(budget, usage)
    finished = run.already_done + succeeded + failed
    return BatchSummary(
        total=run.total,
        already_done=run.already_done,
        succeeded=succeeded,
        failed=failed,
        unsent=run.total - finished,
        spent_usd=spent,
        budget_usd=settings.budget_usd,
        budget_stopped=stats.budget_stopped,
        usage=usage,
        elapsed_s=perf_counter() - run.started,
        output_path=run.output_path,
        failed_before=run.failed_before,
    )


def _run_on_ray(
    requests: Iterable[BatchRequest],
    settings: BatchSettings,
    on_result: Any,
    address: str | None,
    workers: int | None,
) -> Any:
    from langchain_holysheep.batch._ray import run_on_ray  # noqa: PLC0415

    return run_on_ray(
        requests,
        settings,
        on_result=on_result,
        budget_usd=settings.budget_usd,
        address=address,
        workers=workers,
    )


async def _spent(budget: Budget | None, usage: UsageSummary) -> Decimal:
    from langchain_holysheep.batch._types import nano_to_usd  # noqa: PLC0415

    if budget is not None:
        return nano_to_usd(await budget.spent_nano())
    return Decimal(str(usage.cost_usd or 0))


class BatchOptions(TypedDict, total=False):
    """The keyword options of :func:`run_batch` and :func:`arun_batch`.

    Attributes:
        model: The model for lines whose ``body`` names none.
        fallbacks: Models to try, in order, when a line's model fails.
        concurrency: Requests in flight at once (per process or Ray worker).
        retries: Extra rounds over the models after a retryable failure.
        requests_per_minute: The key's request limit.
        tokens_per_minute: The key's token limit.
        redis_url: Share limits, 429 blocks, circuit breakers and the budget
            with every worker on this Redis (``HOLYSHEEP_REDIS_URL`` is read by
            the CLI, not here).
        namespace: Separates runs sharing a Redis and a key.
        budget_usd: The most the run may spend, in USD.
        prices: Price overrides for models the price table lacks.
        api_key: The key (default: ``HOLYSHEEP_API_KEY``).
        base_url: The gateway (default: ``HOLYSHEEP_BASE_URL``, else public).
        timeout: Seconds to wait for each answer.
        ray: Run on Ray workers (``langchain-holysheep[ray]``).
        ray_address: The Ray cluster (``None``: start a local one).
        ray_workers: Ray workers to start (``None``: one per CPU, at most 8).
        progress: A progress display (``None``: none).
    """

    model: str | None
    fallbacks: Iterable[str]
    concurrency: int
    retries: int
    requests_per_minute: float | None
    tokens_per_minute: float | None
    redis_url: str | None
    namespace: str
    budget_usd: Decimal | float | str | None
    prices: Overrides | None
    api_key: SecretStr | None
    base_url: str | None
    timeout: float
    ray: bool
    ray_address: str | None
    ray_workers: int | None
    progress: Progress | None


_RUN_OPTIONS: Final = frozenset({"ray", "ray_address", "ray_workers", "progress"})


async def arun_batch(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    **options: Unpack[BatchOptions],
) -> BatchSummary:
    """Async :func:`run_batch` (for code already in an event loop).

    Args:
        input_path: The requests, one JSON object a line.
        output_path: Where each answer (or error) is appended as a line.
        **options: As :func:`run_batch`.

    Returns:
        The run's summary.
    """
    given = dict(options)
    unknown = set(given) - set(BatchOptions.__annotations__)
    if unknown:
        raise BatchInputError(f"Unknown run_batch options: {sorted(unknown)}.")
    run_options: dict[str, Any] = {k: given.pop(k) for k in _RUN_OPTIONS & set(given)}
    run = _Run(
        str(input_path),
        str(output_path),
        _settings(**given),
        run_options.get("progress"),
    )
    await asyncio.to_thread(run.prepare)
    return await _run(
        run,
        ray=bool(run_options.get("ray", False)),
        ray_address=run_options.get("ray_address"),
        ray_workers=run_options.get("ray_workers"),
    )


def run_batch(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    **options: Unpack[BatchOptions],
) -> BatchSummary:
    """Run a bulk job: every line of ``input_path`` answered in ``output_path``.

    Both files are OpenAI Batch API JSONL. The output is the checkpoint: run
    the same call again after a crash and only lines with no output line yet
    are sent; a finished run sends nothing.

    Args:
        input_path: The requests, one JSON object a line.
        output_path: Where each answer (or error) is appended as a line.
        **options: See :class:`BatchOptions` (model, fallbacks, concurrency,
            limits, redis_url, budget_usd, prices, ray, progress, ...).

    Returns:
        The run's summary; ``exit_status`` is what the CLI exits with.

    Raises:
        BatchInputError: Bad input or settings: nothing was sent.
        HolySheepMissingAPIKeyError: No key is configured: nothing was sent.
    """
    return asyncio.run(arun_batch(input_path, output_path, **options))
