"""The ``holysheep`` command: ``demo``, ``chat``, ``models``, ``bench``, ``cost``, ...

Standard library ``argparse`` only. Every command that talks to a gateway runs
offline against the built-in :class:`~langchain_holysheep.testing.OfflineGateway`
when ``--offline`` is given or ``HOLYSHEEP_API_KEY`` is not set (and says so on
stderr); otherwise it uses the real gateway, or ``--base-url``. The key is read
from the environment only (never from a flag, which would land in shell history)
and is never printed.

Exit status: 0 on success, 1 when a request fails (``error: <message>`` on
stderr), 2 on bad arguments (a one-line message on stderr), 130 on Ctrl-C.

This module holds the parser and :func:`main` (the one place errors become exit
statuses). The rest of the package:

* :mod:`~langchain_holysheep.cli._connect`: choosing the offline or the live
  gateway, and the offline responder;
* :mod:`~langchain_holysheep.cli.commands`: ``chat``, ``models``, ``bench``, ``cost``;
* :mod:`~langchain_holysheep.cli.status`: ``status`` (the fleet's limits, blocks
  and breakers, from Redis);
* :mod:`~langchain_holysheep.cli.batch`: ``batch`` (a resumable bulk run of a
  JSONL file of chat requests);
* :mod:`~langchain_holysheep.cli.demo`: ``demo`` and its steps, :data:`DEMO_STEPS`
  (to add a step, append a :class:`DemoStep` to it);
* :mod:`~langchain_holysheep.cli._demo_data`: the canned texts and data;
* :mod:`~langchain_holysheep.cli._output` and :mod:`~langchain_holysheep.cli._errors`:
  the output helpers, :class:`CLIError` and the exit statuses.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from langchain_holysheep.chat_models import DEFAULT_BASE_URL, DEFAULT_MODEL
from langchain_holysheep.cli._args import count, positive_int
from langchain_holysheep.cli._connect import Connection
from langchain_holysheep.cli._errors import (
    EXIT_INTERRUPTED,
    EXIT_REQUEST_FAILED,
    EXIT_USAGE,
    PROG,
    CLIError,
)
from langchain_holysheep.cli._output import one_line
from langchain_holysheep.cli.batch import (
    BATCH_DESCRIPTION,
    BATCH_OFFLINE_HELP,
    BATCH_SUMMARY,
    add_batch_arguments,
    cmd_batch,
)
from langchain_holysheep.cli.commands import cmd_bench, cmd_chat, cmd_cost, cmd_models
from langchain_holysheep.cli.demo import DEMO_STEPS, DemoContext, DemoStep, cmd_demo
from langchain_holysheep.cli.status import cmd_status

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "DEMO_STEPS",
    "CLIError",
    "Connection",
    "DemoContext",
    "DemoStep",
    "build_parser",
    "main",
]


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and exit with status 2.

        The message quotes arguments, so credentials in them are masked.
        """
        from langchain_holysheep._secrets import mask_text  # noqa: PLC0415

        message = mask_text(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _gateway_options(offline_help: str | None = None) -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("gateway")
    group.add_argument(
        "--offline",
        action="store_true",
        help=offline_help
        or "use the built-in offline gateway (scripted replies); the default "
        "when HOLYSHEEP_API_KEY is not set",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="gateway URL (default: HOLYSHEEP_BASE_URL, else "
        f"{DEFAULT_BASE_URL}); needs HOLYSHEEP_API_KEY",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="read timeout per request (default: 60)",
    )
    return parent


def _add_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    summary: str,
    description: str,
    gateway: _Parser | None = None,
    model: bool = False,
) -> _Parser:
    """Add a sub-command, with the options it shares with others.

    Args:
        commands: The sub-parsers.
        name: The command's name.
        handler: What runs it (returns the exit status).
        summary: The one line ``holysheep --help`` shows.
        description: The command's ``--help`` text.
        gateway: The shared gateway options, for commands that send requests.
        model: Whether it takes ``--model``.

    Returns:
        The command's parser, to add its own arguments to.
    """
    command = commands.add_parser(
        name,
        parents=[] if gateway is None else [gateway],
        help=summary,
        description=description,
    )
    if model:
        command.add_argument("--model", default=DEFAULT_MODEL, help="model id")
    command.set_defaults(handler=handler)
    return command


def build_parser() -> argparse.ArgumentParser:
    """Build the ``holysheep`` argument parser (no I/O).

    Returns:
        The parser; each sub-command sets ``handler``.
    """
    parser = _Parser(
        prog=PROG,
        description="HolySheep gateway from the command line: a demo, chat, the "
        "model catalog, a latency benchmark, a cost calculator and resumable bulk "
        "runs. Reads the key "
        "from HOLYSHEEP_API_KEY; without it, runs offline.",
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    gateway = _gateway_options()

    _add_command(
        commands,
        "demo",
        cmd_demo,
        gateway=gateway,
        model=True,
        summary="invoke, streaming, async batch, tools, structured output, "
        "fallback, RAG, then usage, cost and latency",
        description="Walk through ChatHolySheep: invoke, streaming, an async "
        "batch, a tool call, structured extraction, a model fallback and "
        "retrieval-augmented generation, then usage, cost and latency of every "
        "call. Offline, the replies (and the fallback's failure) are scripted.",
    )

    chat = _add_command(
        commands,
        "chat",
        cmd_chat,
        gateway=gateway,
        model=True,
        summary="stream an answer, then its usage, cost and latency",
        description="Send one prompt; the answer goes to stdout, then usage, cost "
        "and latency to stderr.",
    )
    chat.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    chat.add_argument("--system", help="a system message")
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole answer"
    )
    chat.add_argument("--max-tokens", type=positive_int, help="cap the answer")
    chat.add_argument(
        "--temperature", type=float, help="sampling temperature in [0, 2]"
    )

    models = _add_command(
        commands,
        "models",
        cmd_models,
        gateway=gateway,
        summary="the model catalog with prices and capabilities",
        description="List the models the gateway serves (GET /v1/models) with "
        "their prices (USD per 1M tokens) and capabilities.",
    )
    models.add_argument("--json", action="store_true", help="print JSON")

    bench = _add_command(
        commands,
        "bench",
        cmd_bench,
        gateway=gateway,
        model=True,
        summary="TTFT and total latency p50/p95/p99, tokens/s, errors",
        description="Stream N requests, C at a time, and report time to first "
        "token and total latency percentiles, tokens per second and errors. "
        "Progress goes to stderr.",
    )
    bench.add_argument(
        "--requests", type=positive_int, default=20, metavar="N", help="default 20"
    )
    bench.add_argument(
        "--concurrency", type=positive_int, default=4, metavar="C", help="default 4"
    )
    bench.add_argument(
        "--prompt",
        default="In three sentences, why do people use an LLM gateway?",
        help="the prompt sent by every request",
    )
    bench.add_argument("--json", action="store_true", help="print JSON")

    cost = _add_command(
        commands,
        "cost",
        cmd_cost,
        summary="monthly cost per model and the saving against a reference",
        description="Estimate the monthly cost of a workload on each model from "
        "the price table (no request is sent).",
    )
    cost.add_argument("--requests-per-month", type=count, required=True, metavar="N")
    cost.add_argument(
        "--input-tokens", type=count, required=True, metavar="I", help="per request"
    )
    cost.add_argument(
        "--output-tokens", type=count, required=True, metavar="O", help="per request"
    )
    cost.add_argument(
        "--cached-input-tokens",
        type=count,
        default=0,
        metavar="C",
        help="of the input tokens, how many are cache reads (default 0)",
    )
    cost.add_argument(
        "--models", nargs="+", metavar="MODEL", help="default: every priced model"
    )
    cost.add_argument(
        "--reference",
        metavar="MODEL",
        help="compare against this model (default: the most expensive one)",
    )
    cost.add_argument("--prices", metavar="FILE", help="a JSON file overriding prices")
    cost.add_argument("--json", action="store_true", help="print JSON")

    status = _add_command(
        commands,
        "status",
        cmd_status,
        summary="the fleet's rate limits, 429 blocks and circuit breakers (Redis)",
        description="Read the state HolySheepRateLimiter and shared circuit "
        "breakers keep in Redis: each limit's calls booked ahead (and, given the "
        "limits, used and remaining in the coming minute), any 429 block and "
        "until when, and every breaker. Limits are those of HOLYSHEEP_API_KEY "
        "(only its hash is used). No request is sent to the gateway.",
    )
    status.add_argument(
        "--redis-url", metavar="URL", help="default: HOLYSHEEP_REDIS_URL"
    )
    status.add_argument("--namespace", help="only this namespace (default: all)")
    status.add_argument(
        "--requests-per-minute",
        type=positive_int,
        metavar="N",
        help="the key's request limit, to show used and remaining",
    )
    status.add_argument(
        "--tokens-per-minute",
        type=positive_int,
        metavar="N",
        help="the key's token limit, to show used and remaining",
    )
    status.add_argument("--json", action="store_true", help="print JSON")

    batch = _add_command(
        commands,
        "batch",
        cmd_batch,
        gateway=_gateway_options(BATCH_OFFLINE_HELP),
        summary=BATCH_SUMMARY,
        description=BATCH_DESCRIPTION,
    )
    add_batch_arguments(batch)
    return parser


_OFFLINE_HINT = (
    " To try the command without a gateway, unset HOLYSHEEP_API_KEY (or pass "
    "--offline): it then runs against the built-in offline gateway."
)


def _credentials(args: argparse.Namespace) -> tuple[str, ...]:
    """The key and the gateway URL's credentials, from the flags and environment."""
    from langchain_holysheep._secrets import credential_values  # noqa: PLC0415

    return credential_values(
        api_key=os.environ.get("HOLYSHEEP_API_KEY") or None,
        base_url=getattr(args, "base_url", None)
        or os.environ.get("HOLYSHEEP_BASE_URL"),
    )


def _mask(text: str, values: tuple[str, ...]) -> str:
    from langchain_holysheep._secrets import mask_text  # noqa: PLC0415

    return mask_text(text, values)


def _request_failed(error: Exception, values: tuple[str, ...]) -> str:
    """The line a failed request prints; a connection error says how to go offline."""
    from langchain_holysheep.errors import HolySheepConnectionError  # noqa: PLC0415

    message = _mask(one_line(str(error)), values)
    if isinstance(error, HolySheepConnectionError):
        message += _OFFLINE_HINT
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``holysheep`` command.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CLIError as error:
        message = _mask(one_line(str(error)), _credentials(args))
        sys.stderr.write(f"{PROG} {args.command}: error: {message}\n")
        return error.status
    except Exception as error:
        # errors.py imports openai: only look at it once something failed.
        from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

        if not isinstance(error, HolySheepError):
            raise
        sys.stderr.write(f"error: {_request_failed(error, _credentials(args))}\n")
        return EXIT_REQUEST_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
