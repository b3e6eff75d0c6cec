"""``holysheep batch``: send every request of a JSONL file, resumably.

The input is the OpenAI Batch API's JSONL (one ``{"custom_id", "body"}`` chat
completions request per line); answers are appended to ``--output`` in the
OpenAI Batch output shape, and the output file is the checkpoint: a second run
sends only the lines it does not answer yet. The run itself is
:func:`langchain_holysheep.batch._api.run_batch`; this module is its arguments
(:func:`add_batch_arguments`) and :func:`cmd_batch`.

Unlike the other commands, ``batch`` never goes offline by itself: without
``HOLYSHEEP_API_KEY`` it refuses (scripted answers would land in the output and
count as done), unless ``--offline`` asks for the built-in offline gateway.
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.batch._types import EXIT_INPUT
from langchain_holysheep.cli._args import count, positive_int
from langchain_holysheep.cli._connect import connect
from langchain_holysheep.cli._errors import CLIError

if TYPE_CHECKING:
    from langchain_holysheep.pricing import ModelPrice

__all__ = [
    "BATCH_DESCRIPTION",
    "BATCH_EPILOG",
    "BATCH_OFFLINE_HELP",
    "BATCH_SUMMARY",
    "add_batch_arguments",
    "cmd_batch",
]

DEFAULT_CONCURRENCY: Final = 16
DEFAULT_RETRIES: Final = 3
DEFAULT_NAMESPACE: Final = "batch"

BATCH_SUMMARY: Final = (
    "send every chat request of a JSONL file (OpenAI Batch format), resumably"
)
BATCH_DESCRIPTION: Final = (
    "Send each line of INPUT (OpenAI Batch API JSONL: one "
    '{"custom_id": ..., "body": {chat completions request}} per line) and append '
    "one answer line per request to --output (the OpenAI Batch output shape, plus "
    "cost_usd, model, latency_ms and attempts). The whole input is checked first: "
    "a bad line stops the run before anything is sent. The output file is the "
    "checkpoint: run the same command again after a crash or Ctrl-C and only the "
    "lines it does not answer yet are sent (error lines count as answered: delete "
    "them to retry them). Reads the key from HOLYSHEEP_API_KEY."
)
BATCH_OFFLINE_HELP: Final = (
    "send to the built-in offline gateway (scripted answers, written to the "
    "output like real ones); never the default: without HOLYSHEEP_API_KEY and "
    "without --offline, batch refuses to start"
)
BATCH_EPILOG: Final = (
    "exit status: 0 every line answered; 1 some lines are error lines; 2 bad input "
    "or arguments (nothing sent); 3 the budget stopped the run (run again with a "
    "larger --budget-usd to go on); 130 interrupted (run again to go on)."
)


def _usd(text: str, *, what: str, zero: bool) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise argparse.ArgumentTypeError(
            f"expected {what} in USD like 12.50, got {text!r}"
        ) from None
    if not value.is_finite() or value < 0 or (value == 0 and not zero):
        bound = "not be negative" if zero else "be more than 0"
        raise argparse.ArgumentTypeError(f"{what} must {bound}, got {text!r}")
    return value


def _budget(text: str) -> Decimal:
    return _usd(text, what="a budget", zero=False)


def _price(text: str) -> tuple[str, Decimal, Decimal]:
    """``MODEL=IN,OUT`` (USD per 1M input and output tokens)."""
    model, equals, prices = text.rpartition("=")
    parts = prices.split(",")
    if not equals or not model.strip() or len(parts) != 2:  # noqa: PLR2004
        raise argparse.ArgumentTypeError(
            f"expected MODEL=IN,OUT (USD per 1M input and output tokens, e.g. "
            f"gpt-4o-mini=0.15,0.60), got {text!r}"
        )
    what = f"the price of {model.strip()!r}"
    return (
        model.strip(),
        _usd(parts[0], what=what, zero=True),
        _usd(parts[1], what=what, zero=True),
    )


def _models(text: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in text.split(","))
    if not all(models):
        raise argparse.ArgumentTypeError(
            f"expected model ids separated by commas (m2,m3), got {text!r}"
        )
    return models


def add_batch_arguments(command: argparse.ArgumentParser) -> None:
    """Add ``holysheep batch``'s own arguments to its parser.

    The gateway options (``--offline``, ``--base-url``, ``--timeout``) come
    from the parser's parents, as for the other commands.

    Args:
        command: The ``batch`` sub-command's parser.
    """
    command.epilog = BATCH_EPILOG
    command.add_argument(
        "input", metavar="INPUT.jsonl", help="the requests, one JSON object a line"
    )
    command.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT.jsonl",
        help="where answers are appended (created if missing; also the checkpoint "
        "a re-run resumes from; must not be INPUT)",
    )
    send = command.add_argument_group("requests")
    send.add_argument(
        "--model",
        metavar="MODEL",
        help="the model for lines whose body names none (default: each line's "
        "body.model)",
    )
    send.add_argument(
        "--fallbacks",
        type=_models,
        default=(),
        metavar="M2,M3",
        help="models to try in turn when a line's model fails (default: none)",
    )
    send.add_argument(
        "--concurrency",
        type=positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default: {DEFAULT_CONCURRENCY})",
    )
    send.add_argument(
        "--retries",
        type=count,
        default=DEFAULT_RETRIES,
        metavar="N",
        help="extra rounds over the model and its fallbacks after a retryable "
        "failure (429, 5xx, timeouts) before the line becomes an error line "
        f"(default: {DEFAULT_RETRIES})",
    )
    limits = command.add_argument_group("rate limits and sharing")
    limits.add_argument(
        "--requests-per-minute",
        type=positive_int,
        metavar="R",
        help="cap on requests per minute (default: no cap)",
    )
    limits.add_argument(
        "--tokens-per-minute",
        type=positive_int,
        metavar="T",
        help="cap on tokens per minute, prompt estimate plus max_tokens "
        "(default: no cap)",
    )
    limits.add_argument(
        "--redis-url",
        metavar="URL",
        default=os.environ.get("HOLYSHEEP_REDIS_URL") or None,
        help="Redis that shares the limits, 429 blocks, breakers and budget with "
        "other runs and workers (default: HOLYSHEEP_REDIS_URL, else none: "
        "in-process only)",
    )
    limits.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help="Redis key namespace of the shared limits and budget "
        f"(default: {DEFAULT_NAMESPACE})",
    )
    money = command.add_argument_group("budget and prices")
    money.add_argument(
        "--budget-usd",
        type=_budget,
        metavar="X",
        help="stop sending before spending more than X USD (each request "
        "reserves its worst case first; exit status 3 when it stops the run; "
        "default: no budget)",
    )
    money.add_argument(
        "--prices",
        metavar="FILE",
        help="a JSON price file overriding the packaged price table (default: "
        "HOLYSHEEP_PRICES_FILE, else the packaged table)",
    )
    money.add_argument(
        "--price",
        type=_price,
        action="append",
        default=[],
        metavar="MODEL=IN,OUT",
        help="the price of MODEL in USD per 1M input and output tokens, e.g. "
        "gpt-4o-mini=0.15,0.60; repeatable; wins over --prices and "
        "HOLYSHEEP_PRICES_FILE (default: none)",
    )
    ray = command.add_argument_group("Ray")
    ray.add_argument(
        "--ray",
        action="store_true",
        help="run the requests on Ray workers, a local Ray unless --ray-address "
        "(needs the [ray] extra; default: off, one process)",
    )
    ray.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="the Ray cluster to join, e.g. ray://head:10001 or auto (needs "
        "--ray; default: start a local Ray)",
    )
    ray.add_argument(
        "--ray-workers",
        type=positive_int,
        metavar="N",
        help="Ray workers to run the requests on, each with --concurrency in "
        "flight (needs --ray; default: one per CPU, at most 8)",
    )
    command.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress display and no usage table on stderr (default: a live "
        "bar on a terminal, else a line every few seconds; the table at the end)",
    )


def _prices(args: argparse.Namespace) -> dict[str, Any] | str | None:
    """``--prices`` and ``--price`` as the overrides ``load_price_table`` takes.

    Raises:
        CLIError: The price file is unreadable or invalid (status 2).
    """
    from langchain_holysheep.pricing import (  # noqa: PLC0415
        PRICES_FILE_ENV_VAR,
        PriceTable,
        PriceTableError,
        load_price_table,
    )

    entries: list[tuple[str, Decimal, Decimal]] = args.price
    if not entries:
        prices: str | None = args.prices
        if prices is not None:
            try:
                load_price_table(prices)
            except PriceTableError as error:
                raise CLIError(f"--prices: {error}", EXIT_INPUT) from None
        return prices
    # The --price entries go over the price file (--prices, else the
    # environment's), as that file goes over the packaged table.
    base = args.prices or os.environ.get(PRICES_FILE_ENV_VAR, "").strip() or None
    merged: dict[str, ModelPrice | dict[str, Decimal]] = {}
    if base is not None:
        try:
            merged.update(PriceTable([]).with_overrides(base).as_dict())
        except PriceTableError as error:
            raise CLIError(f"--prices: {error}", EXIT_INPUT) from None
    for model, input_price, output_price in entries:
        merged = {k: v for k, v in merged.items() if k.lower() != model.lower()}
        merged[model] = {
            "input_per_million": input_price,
            "output_per_million": output_price,
        }
    try:
        load_price_table(merged)
    except PriceTableError as error:
        raise CLIError(f"--price: {error}", EXIT_INPUT) from None
    return merged


def _check(args: argparse.Namespace) -> None:
    """The rules between arguments that argparse cannot say (status 2)."""
    for flag, value in (
        ("--ray-address", args.ray_address),
        ("--ray-workers", args.ray_workers),
    ):
        if value is not None and not args.ray:
            raise CLIError(f"{flag} is for --ray runs: add --ray", EXIT_INPUT)
    if args.offline and args.base_url:
        raise CLIError(
            "--offline and --base-url cannot be combined; pick one", EXIT_INPUT
        )
    if not args.offline and not os.environ.get("HOLYSHEEP_API_KEY", "").strip():
        raise CLIError(
            "HOLYSHEEP_API_KEY is not set: set it to send the batch (or pass "
            "--offline to try the command on the built-in offline gateway, "
            "whose scripted answers land in the output)",
            EXIT_INPUT,
        )


def cmd_batch(args: argparse.Namespace) -> int:
    """``holysheep batch``: run the batch, print one summary line.

    Args:
        args: The parsed arguments.

    Returns:
        The run's exit status (0, 1 or 3; see ``BATCH_EPILOG``).

    Raises:
        CLIError: Bad input or arguments (status 2; nothing was sent).
    """
    _check(args)
    prices = _prices(args)

    from pydantic import SecretStr  # noqa: PLC0415

    from langchain_holysheep.batch._api import (  # noqa: PLC0415
        run_batch,
    )
    from langchain_holysheep.batch._format import BatchInputError  # noqa: PLC0415

    err = sys.stderr
    progress = None
    if not args.quiet:
        from langchain_holysheep.batch._progress import (  # noqa: PLC0415
            make_progress,
        )

        progress = make_progress(err)
    with connect(args, err) as connection:
        try:
            summary = run_batch(
                args.input,
                args.output,
                model=args.model,
                fallbacks=args.fallbacks,
                concurrency=args.concurrency,
                retries=args.retries,
                requests_per_minute=args.requests_per_minute,
                tokens_per_minute=args.tokens_per_minute,
                redis_url=args.redis_url,
                namespace=args.namespace,
                budget_usd=args.budget_usd,
                prices=prices,
                api_key=SecretStr(connection.api_key),
                base_url=connection.base_url,
                timeout=connection.timeout,
                ray=args.ray,
                ray_address=args.ray_address,
                ray_workers=args.ray_workers,
                progress=progress,
            )
        except BatchInputError as error:
            raise CLIError(str(error), EXIT_INPUT) from None
    sys.stdout.write(f"{summary.message()}\n")
    sys.stdout.flush()
    status: int = summary.exit_status
    return status
