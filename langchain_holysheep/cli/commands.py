"""The ``chat``, ``models``, ``bench`` and ``cost`` commands.

Each ``cmd_*`` function takes the parsed arguments and returns the exit status;
a problem the user can fix is raised as :class:`~langchain_holysheep.cli.CLIError`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from langchain_holysheep._text_table import render_table
from langchain_holysheep.cli._connect import Connection, connect
from langchain_holysheep.cli._errors import EXIT_REQUEST_FAILED, CLIError
from langchain_holysheep.cli._output import call_summary, one_line, stream_to
from langchain_holysheep.pricing import (
    PriceTable,
    PriceTableError,
    load_price_table,
    monthly_cost,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from langchain_core.messages import BaseMessage

    from langchain_holysheep.chat_models import ChatHolySheep

__all__ = ["cmd_bench", "cmd_chat", "cmd_cost", "cmd_models"]


def cmd_chat(args: argparse.Namespace) -> int:
    """``holysheep chat``: the answer on stdout, its usage, cost and latency on stderr.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status.

    Raises:
        CLIError: The prompt is empty or an option is invalid.
    """
    out, err = sys.stdout, sys.stderr
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise CLIError("the prompt is empty")
    messages: list[tuple[str, str]] = []
    if args.system:
        messages.append(("system", args.system))
    messages.append(("human", prompt))
    options: dict[str, Any] = {}
    if args.max_tokens is not None:
        options["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        options["temperature"] = args.temperature
    with connect(args, err) as connection:
        llm = connection.chat_model(args.model, **options)
        if args.no_stream:
            message: BaseMessage = llm.invoke(messages)
            out.write(f"{message.text}\n")
        else:
            message = stream_to(llm, messages, out)
        out.flush()
        served = message.response_metadata.get("model_name") or args.model
        err.write(f"[{served}] {call_summary(message)}\n")
    return 0


# --------------------------------------------------------------------------- #
# models
# --------------------------------------------------------------------------- #


def _flag(value: object) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


def _catalog_rows(connection: Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    table = load_price_table()
    rows = []
    for model in ids:
        price = table.get(model)
        profile = dict(connection.chat_model(model).profile or {})
        rows.append(
            {
                "id": model,
                "input_per_million": price.input_per_million if price else None,
                "output_per_million": price.output_per_million if price else None,
                "cached_input_per_million": (
                    price.cached_input_per_million if price else None
                ),
                "price_source": price.source if price else None,
                "max_input_tokens": profile.get("max_input_tokens"),
                "tool_calling": profile.get("tool_calling"),
                "structured_output": profile.get("structured_output"),
                "reasoning": profile.get("reasoning_output"),
                "image_inputs": profile.get("image_inputs"),
            }
        )
    return rows


def _money(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def cmd_models(args: argparse.Namespace) -> int:
    """``holysheep models``: the catalog with prices and capabilities.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status.
    """
    from langchain_holysheep.catalog import list_models  # noqa: PLC0415

    with connect(args, sys.stderr) as connection:
        ids = list_models(
            api_key=connection.api_key,
            base_url=connection.base_url,
            timeout=connection.timeout,
            refresh=True,
        )
        rows = _catalog_rows(connection, ids)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    header = (
        "model",
        "in $/1M",
        "out $/1M",
        "cached $/1M",
        "context",
        "tools",
        "structured",
        "reasoning",
        "images",
    )
    cells = [
        (
            r["id"],
            _money(r["input_per_million"]),
            _money(r["output_per_million"]),
            _money(r["cached_input_per_million"]),
            f"{r['max_input_tokens']:,}" if r["max_input_tokens"] else "-",
            _flag(r["tool_calling"]),
            _flag(r["structured_output"]),
            _flag(r["reasoning"]),
            _flag(r["image_inputs"]),
        )
        for r in rows
    ]
    sys.stdout.write(render_table(header, cells) + "\n")
    sys.stdout.write(
        f"{len(rows)} models. Prices: USD per 1M tokens, gateway fee included "
        f"(as of {load_price_table().as_of}); '-' = not known.\n"
    )
    return 0


# --------------------------------------------------------------------------- #
# bench
# --------------------------------------------------------------------------- #


@dataclass
class _BenchResult:
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    done: int = 0


class _Progress:
    """Progress on stderr: one updating line on a terminal, else a few lines."""

    def __init__(self, total: int, err: TextIO) -> None:
        self.total = total
        self.err = err
        self.tty = err.isatty()
        self.every = max(1, total // 4)

    def update(self, result: _BenchResult) -> None:
        text = f"bench: {result.done}/{self.total} done, {len(result.errors)} errors"
        if self.tty:
            self.err.write(f"\r{text}")
        elif result.done % self.every == 0 or result.done == self.total:
            self.err.write(f"{text}\n")
        else:
            return
        self.err.flush()

    def close(self) -> None:
        if self.tty:
            self.err.write("\n")
            self.err.flush()


async def _bench_run(
    llm: ChatHolySheep, args: argparse.Namespace, progress: _Progress
) -> _BenchResult:
    from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

    result = _BenchResult()
    semaphore = asyncio.Semaphore(args.concurrency)

    async def one() -> None:
        async with semaphore:
            last: Any = None
            try:
                async for chunk in llm.astream(args.prompt):
                    last = chunk
            except HolySheepError as error:
                result.errors.append(one_line(str(error)))
            else:
                latency = last.response_metadata.get("latency") or {}
                if latency.get("ttft_ms") is not None:
                    result.ttft_ms.append(latency["ttft_ms"])
                result.total_ms.append(latency["total_ms"])
                if latency.get("output_tokens_per_s") is not None:
                    result.tokens_per_s.append(latency["output_tokens_per_s"])
                if last.usage_metadata:
                    result.output_tokens += last.usage_metadata["output_tokens"]
            result.done += 1
            progress.update(result)

    await asyncio.gather(*(one() for _ in range(args.requests)))
    return result


def _pct(samples: list[float]) -> dict[str, float] | None:
    from langchain_holysheep.callbacks import Percentiles  # noqa: PLC0415

    p = Percentiles.from_samples(samples)
    return None if p is None else {"p50": p.p50, "p95": p.p95, "p99": p.p99}


def cmd_bench(args: argparse.Namespace) -> int:
    """``holysheep bench``: latency percentiles, tokens per second and errors.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status: 1 when a request failed.
    """
    out, err = sys.stdout, sys.stderr
    with connect(args, err) as connection:
        llm = connection.chat_model(args.model, max_retries=0)
        err.write(
            f"bench: {args.requests} streamed requests to {args.model}, "
            f"{args.concurrency} at a time\n"
        )
        progress = _Progress(args.requests, err)
        started = time.perf_counter()
        try:
            result = asyncio.run(_bench_run(llm, args, progress))
        finally:
            progress.close()
        wall = time.perf_counter() - started
    report = {
        "model": args.model,
        "offline": connection.offline,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "errors": len(result.errors),
        "wall_s": round(wall, 3),
        "requests_per_s": round(args.requests / wall, 2) if wall > 0 else None,
        "ttft_ms": _pct(result.ttft_ms),
        "total_ms": _pct(result.total_ms),
        "tokens_per_s": _pct(result.tokens_per_s),
        "output_tokens": result.output_tokens,
        "aggregate_tokens_per_s": round(result.output_tokens / wall, 1)
        if wall > 0
        else None,
    }
    if args.json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        _print_bench(report, out)
    if result.errors:
        err.write(
            f"error: {len(result.errors)} of {args.requests} requests failed; "
            f"first: {result.errors[0]}\n"
        )
        return EXIT_REQUEST_FAILED
    return 0


def _print_bench(report: dict[str, Any], out: TextIO) -> None:
    where = "offline gateway" if report["offline"] else "gateway"
    out.write(
        f"model {report['model']} ({where}): {report['requests']} requests, "
        f"concurrency {report['concurrency']}, {report['errors']} errors, "
        f"{report['wall_s']:.2f} s wall ({report['requests_per_s']} req/s)\n"
    )
    rows = []
    for label, key, unit in (
        ("TTFT", "ttft_ms", "ms"),
        ("total", "total_ms", "ms"),
        ("output", "tokens_per_s", "tokens/s"),
    ):
        p = report[key]
        cells = ("-", "-", "-") if p is None else tuple(f"{p[k]:.1f}" for k in p)
        rows.append((f"{label} ({unit})", *cells))
    out.write(render_table(("", "p50", "p95", "p99"), rows) + "\n")
    out.write(
        f"{report['output_tokens']} output tokens in total, "
        f"{report['aggregate_tokens_per_s']} tokens/s overall\n"
    )


# --------------------------------------------------------------------------- #
# cost
# --------------------------------------------------------------------------- #


def _cost_table(args: argparse.Namespace) -> PriceTable:
    try:
        return load_price_table(args.prices) if args.prices else load_price_table()
    except PriceTableError as error:
        raise CLIError(one_line(str(error))) from None


def cmd_cost(args: argparse.Namespace) -> int:
    """``holysheep cost``: a workload's monthly cost per model (no request sent).

    Args:
        args: The parsed arguments.

    Returns:
        The exit status.

    Raises:
        CLIError: A model has no price, or the token counts do not add up.
    """
    if args.cached_input_tokens > args.input_tokens:
        raise CLIError(
            "--cached-input-tokens cannot exceed --input-tokens (cached tokens "
            "are part of the input)"
        )
    table = _cost_table(args)
    models = list(dict.fromkeys(args.models or table.models()))
    if args.reference and args.reference not in models:
        models.append(args.reference)
    unknown = [m for m in models if m not in table]
    if unknown:
        raise CLIError(
            f"no price for {', '.join(map(repr, unknown))}; priced models: "
            f"{', '.join(table.models())} (add prices with --prices FILE)"
        )
    costs: dict[str, float] = {}
    for model in models:
        cost = monthly_cost(
            model,
            args.requests_per_month,
            args.input_tokens,
            args.output_tokens,
            table,
            cached_input_tokens=args.cached_input_tokens,
        )
        if cost is not None:  # every model was checked above
            costs[model] = cost.usd
    reference = args.reference or max(costs, key=lambda m: costs[m])
    ref_cost = costs[reference]
    rows = []
    for model in models:
        price = table[model]
        saving = ref_cost - costs[model]
        rows.append(
            {
                "model": price.model,
                "input_per_million": price.input_per_million,
                "output_per_million": price.output_per_million,
                "monthly_usd": costs[model],
                "saving_usd": round(saving, 9),
                "saving_pct": round(100 * saving / ref_cost, 2) if ref_cost else None,
                "reference": model == reference,
            }
        )
    rows.sort(key=lambda r: r["monthly_usd"])
    if args.json:
        document = {
            "requests_per_month": args.requests_per_month,
            "input_tokens": args.input_tokens,
            "output_tokens": args.output_tokens,
            "cached_input_tokens": args.cached_input_tokens,
            "reference": reference,
            "prices_as_of": table.as_of,
            "models": rows,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return 0
    sys.stdout.write(
        f"{args.requests_per_month:,} requests/month x ({args.input_tokens:,} input "
        f"+ {args.output_tokens:,} output tokens); prices in USD per 1M tokens, "
        f"as of {table.as_of}\n"
    )
    cells = [
        (
            r["model"],
            _money(r["input_per_million"]),
            _money(r["output_per_million"]),
            _money(r["monthly_usd"]),
            "reference"
            if r["reference"]
            else f"{_money(r['saving_usd'])} ({r['saving_pct']:.1f}%)"
            if r["saving_pct"] is not None
            else _money(r["saving_usd"]),
        )
        for r in rows
    ]
    header = ("model", "in $/1M", "out $/1M", "USD/month", f"saving vs {reference}")
    sys.stdout.write(render_table(header, cells) + "\n")
    return 0
