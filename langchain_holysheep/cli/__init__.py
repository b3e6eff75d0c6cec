"""The ``holysheep`` command: ``demo``, ``chat``, ``models``, ``bench``, ``cost``.

Standard library ``argparse`` only. Every command that talks to a gateway runs
offline against the built-in :class:`~langchain_holysheep.testing.OfflineGateway`
when ``--offline`` is given or ``HOLYSHEEP_API_KEY`` is not set (and says so on
stderr); otherwise it uses the real gateway, or ``--base-url``. The key is read
from the environment only (never from a flag, which would land in shell history)
and is never printed.

Exit status: 0 on success, 1 when a request fails (``error: <message>`` on
stderr), 2 on bad arguments (a one-line message on stderr), 130 on Ctrl-C.

``holysheep demo`` runs a list of steps, :data:`DEMO_STEPS`. To add one, write
a function taking a :class:`DemoContext` and append
``DemoStep("Title", function)`` to the list; when ``ctx.gateway`` is set (offline)
script the replies the step needs first, e.g.
``ctx.gateway.enqueue(Reply(tool_calls=[ToolCall("get_weather", {...})]))``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NoReturn, TextIO

from langchain_holysheep.chat_models import DEFAULT_BASE_URL, DEFAULT_MODEL
from langchain_holysheep.pricing import (
    PriceTable,
    PriceTableError,
    load_price_table,
    monthly_cost,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import BaseMessage

    from langchain_holysheep.chat_models import ChatHolySheep
    from langchain_holysheep.testing import OfflineGateway, Reply

__all__ = [
    "DEMO_STEPS",
    "CLIError",
    "Connection",
    "DemoContext",
    "DemoStep",
    "build_parser",
    "main",
]

PROG: Final = "holysheep"
_OFFLINE_KEY: Final = "cr_offline_demo_key"
_EXIT_REQUEST_FAILED: Final = 1
_EXIT_USAGE: Final = 2
_EXIT_INTERRUPTED: Final = 130


class CLIError(Exception):
    """A problem the user can fix, reported as one line with an exit status."""

    def __init__(self, message: str, status: int = _EXIT_USAGE) -> None:
        """Create the error.

        Args:
            message: What is wrong and what to do, on one line.
            status: The process exit status.
        """
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- #
# Argument parsing
# --------------------------------------------------------------------------- #


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and exit with status 2."""
        self.exit(_EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < minimum:
        bound = (
            "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        )
        raise argparse.ArgumentTypeError(f"{bound}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, minimum=1)


def _count(text: str) -> int:
    return _whole_number(text, minimum=0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _gateway_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("gateway")
    group.add_argument(
        "--offline",
        action="store_true",
        help="use the built-in offline gateway (scripted replies); the default "
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


def build_parser() -> argparse.ArgumentParser:
    """Build the ``holysheep`` argument parser (no I/O).

    Returns:
        The parser; each sub-command sets ``handler``.
    """
    parser = _Parser(
        prog=PROG,
        description="HolySheep gateway from the command line: a demo, chat, the "
        "model catalog, a latency benchmark and a cost calculator. Reads the key "
        "from HOLYSHEEP_API_KEY; without it, runs offline.",
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", required=True
    )
    gateway = _gateway_options()

    demo = commands.add_parser(
        "demo",
        parents=[gateway],
        help="invoke, streaming, async batch, tools, structured output, "
        "fallback, RAG, then usage, cost and latency",
        description="Walk through ChatHolySheep: invoke, streaming, an async "
        "batch, a tool call, structured extraction, a model fallback and "
        "retrieval-augmented generation, then usage, cost and latency of every "
        "call. Offline, the replies (and the fallback's failure) are scripted.",
    )
    demo.add_argument("--model", default=DEFAULT_MODEL, help="model id")
    demo.set_defaults(handler=_cmd_demo)

    chat = commands.add_parser(
        "chat",
        parents=[gateway],
        help="stream an answer, then its usage, cost and latency",
        description="Send one prompt; the answer goes to stdout, then usage, cost "
        "and latency to stderr.",
    )
    chat.add_argument("prompt", help="the prompt ('-' reads it from stdin)")
    chat.add_argument("--model", default=DEFAULT_MODEL, help="model id")
    chat.add_argument("--system", help="a system message")
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole answer"
    )
    chat.add_argument("--max-tokens", type=_positive_int, help="cap the answer")
    chat.add_argument(
        "--temperature", type=float, help="sampling temperature in [0, 2]"
    )
    chat.set_defaults(handler=_cmd_chat)

    models = commands.add_parser(
        "models",
        parents=[gateway],
        help="the model catalog with prices and capabilities",
        description="List the models the gateway serves (GET /v1/models) with "
        "their prices (USD per 1M tokens) and capabilities.",
    )
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(handler=_cmd_models)

    bench = commands.add_parser(
        "bench",
        parents=[gateway],
        help="TTFT and total latency p50/p95/p99, tokens/s, errors",
        description="Stream N requests, C at a time, and report time to first "
        "token and total latency percentiles, tokens per second and errors. "
        "Progress goes to stderr.",
    )
    bench.add_argument("--model", default=DEFAULT_MODEL, help="model id")
    bench.add_argument(
        "--requests", type=_positive_int, default=20, metavar="N", help="default 20"
    )
    bench.add_argument(
        "--concurrency", type=_positive_int, default=4, metavar="C", help="default 4"
    )
    bench.add_argument(
        "--prompt",
        default="In three sentences, why do people use an LLM gateway?",
        help="the prompt sent by every request",
    )
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.set_defaults(handler=_cmd_bench)

    cost = commands.add_parser(
        "cost",
        help="monthly cost per model and the saving against a reference",
        description="Estimate the monthly cost of a workload on each model from "
        "the price table (no request is sent).",
    )
    cost.add_argument("--requests-per-month", type=_count, required=True, metavar="N")
    cost.add_argument(
        "--input-tokens", type=_count, required=True, metavar="I", help="per request"
    )
    cost.add_argument(
        "--output-tokens", type=_count, required=True, metavar="O", help="per request"
    )
    cost.add_argument(
        "--cached-input-tokens",
        type=_count,
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
    cost.set_defaults(handler=_cmd_cost)
    return parser


# --------------------------------------------------------------------------- #
# Connecting: the real gateway, --base-url, or the built-in offline one
# --------------------------------------------------------------------------- #


@dataclass
class Connection:
    """Where the commands send requests.

    Attributes:
        base_url: The gateway URL.
        api_key: The key (never printed).
        offline: Whether this is the built-in offline gateway.
        gateway: The offline gateway, when offline (scriptable by demo steps).
        timeout: Read timeout per request, in seconds.
    """

    base_url: str
    api_key: str = field(repr=False)
    offline: bool
    gateway: OfflineGateway | None = None
    timeout: float = 60.0

    def chat_model(self, model: str = DEFAULT_MODEL, **kwargs: Any) -> ChatHolySheep:
        """A ``ChatHolySheep`` pointed at this gateway.

        Args:
            model: The model id.
            **kwargs: Other ``ChatHolySheep`` fields.

        Returns:
            The model.

        Raises:
            CLIError: A field value is invalid.
        """
        from langchain_holysheep.chat_models import ChatHolySheep  # noqa: PLC0415

        try:
            return ChatHolySheep(
                model=model,
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout,
                **kwargs,
            )
        except ValueError as error:  # pydantic's ValidationError
            raise CLIError(_validation_message(error)) from None


def _validation_message(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        details = errors()
        if details:
            first = details[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            message = str(first.get("msg", error)).removeprefix("Value error, ")
            return f"{where}: {message}" if where else message
    return _one_line(str(error))


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def _connect(args: argparse.Namespace, err: TextIO) -> Iterator[Connection]:
    key = os.environ.get("HOLYSHEEP_API_KEY", "").strip()
    if args.offline and args.base_url:
        raise CLIError("--offline and --base-url cannot be combined; pick one")
    if not args.offline and not key and args.base_url:
        raise CLIError(
            "--base-url needs HOLYSHEEP_API_KEY; set it, or drop --base-url to "
            "run offline"
        )
    if args.offline or not key:
        reason = "--offline" if args.offline else "HOLYSHEEP_API_KEY is not set"
        err.write(
            f"{PROG}: OFFLINE ({reason}): using the built-in offline gateway; "
            "replies are scripted, not from a real model.\n"
        )
        from langchain_holysheep.testing import OfflineGateway  # noqa: PLC0415

        # strict_models: a wrong model id fails offline as it does online.
        with OfflineGateway(strict_models=True) as gateway:
            gateway.set_responder(_offline_responder())
            yield Connection(
                base_url=gateway.base_url,
                api_key=_OFFLINE_KEY,
                offline=True,
                gateway=gateway,
                timeout=args.timeout,
            )
        return
    base_url = args.base_url or os.environ.get("HOLYSHEEP_BASE_URL") or DEFAULT_BASE_URL
    yield Connection(
        base_url=base_url, api_key=key, offline=False, timeout=args.timeout
    )


# Scripted answers for the offline gateway: (keywords, answer). The first entry
# whose keyword appears in the prompt wins; the last one is the fallback.
_OFFLINE_ANSWERS: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (
        ("gateway", "holysheep"),
        (
            "HolySheep is an OpenAI-compatible gateway: one API key reaches GPT-4.1, "
            "Claude Sonnet 4.5, Gemini 2.5 Flash, DeepSeek V3.2 and Mistral Small. "
            "Because it speaks the OpenAI protocol, LangChain code switches models by "
            "changing one string. A gateway also gives one bill, one rate limit to "
            "watch and a fallback when a provider is down."
        ),
    ),
    (
        ("sheep", "wool"),
        (
            "Sheep are grazing animals kept for wool, milk and meat. A single fleece "
            "can weigh several kilograms, and it grows back every year. Flocks stay "
            "together because a lone sheep is an easy target."
        ),
    ),
    (
        ("haiku", "poem"),
        (
            "Tokens drift like snow,\nthe gateway counts every flake,\nthe bill stays "
            "quite small."
        ),
    ),
    (
        ("stream", "token"),
        (
            "Streaming sends the answer a few tokens at a time, so the first words "
            "appear long before the last ones are generated. The time to the first "
            "token is what a user feels as speed. Usage arrives on the final chunk."
        ),
    ),
    (
        ("capital", "france", "paris"),
        (
            "The capital of France is Paris, on the Seine, with about two million "
            "people in the city itself."
        ),
    ),
    (
        (),
        (
            "This is a scripted offline answer. With HOLYSHEEP_API_KEY set, the same "
            "command asks a real model through the HolySheep gateway. Everything else "
            "(streaming, usage, cost and latency) works exactly the same way."
        ),
    ),
)


def _prompt_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "") for p in content if isinstance(p, dict)
                )
    return ""


def _offline_responder() -> Callable[[dict[str, Any]], Reply]:
    """Answer like a model would: a fitting text, a short wait, a steady stream."""
    from langchain_holysheep.testing import Reply  # noqa: PLC0415

    counter = itertools.count()

    def respond(body: dict[str, Any]) -> Reply:
        prompt = _prompt_text(body).lower()
        answer = next(
            text
            for words, text in _OFFLINE_ANSWERS
            if not words or any(w in prompt for w in words)
        )
        # Deterministic jitter so latency percentiles differ like real ones.
        spread = (zlib.crc32(prompt.encode()) + 7 * next(counter)) % 13
        return Reply(
            content=answer,
            delay_before_headers=0.03 + spread * 0.005,
            chunk_delay=0.01,
        )

    return respond


# --------------------------------------------------------------------------- #
# Shared output helpers
# --------------------------------------------------------------------------- #


def _fmt_ms(value: object) -> str:
    return f"{value:.1f} ms" if isinstance(value, int | float) else "n/a"


def _call_summary(message: BaseMessage) -> str:
    """One line: tokens, cost and latency of a call, from its metadata."""
    metadata = message.response_metadata
    usage = getattr(message, "usage_metadata", None)
    tokens = (
        f"{usage['input_tokens']} in / {usage['output_tokens']} out tokens"
        if usage
        else "usage not reported"
    )
    cost_usd = metadata.get("cost_usd")
    if isinstance(cost_usd, int | float):
        source = (
            "gateway" if metadata.get("cost_source") == "gateway" else "price table"
        )
        cost = f"${cost_usd:.6f} ({source})"
    else:
        cost = f"unknown (no price for {metadata.get('model_name')!r})"
    latency = metadata.get("latency") or {}
    parts = [f"total {_fmt_ms(latency.get('total_ms'))}"]
    if latency.get("ttft_ms") is not None:
        parts.insert(0, f"TTFT {_fmt_ms(latency['ttft_ms'])}")
    if isinstance(tps := latency.get("output_tokens_per_s"), int | float):
        parts.append(f"{tps:.0f} tokens/s")
    return f"{tokens} | cost {cost} | {', '.join(parts)}"


def _stream_to(llm: ChatHolySheep, messages: Any, out: TextIO) -> BaseMessage:
    """Print an answer token by token; return the aggregated message."""
    full: Any = None
    for chunk in llm.stream(messages):
        if chunk.text:
            out.write(chunk.text)
            out.flush()
        full = chunk if full is None else full + chunk
    out.write("\n")
    if full is None:  # pragma: no cover - the model always yields a final chunk
        raise CLIError("the stream returned nothing", _EXIT_REQUEST_FAILED)
    message: BaseMessage = full
    return message


# --------------------------------------------------------------------------- #
# demo
# --------------------------------------------------------------------------- #


@dataclass
class DemoContext:
    """What a demo step gets.

    Attributes:
        connection: The gateway in use (``connection.chat_model(...)`` builds
            models for it).
        llm: The demo's chat model.
        out: Where to print.
        gateway: The offline gateway when running offline (script replies with
            ``gateway.enqueue(...)``), else ``None``.
    """

    connection: Connection
    llm: ChatHolySheep
    out: TextIO
    gateway: OfflineGateway | None = None

    def say(self, text: str = "") -> None:
        """Print a line.

        Args:
            text: The line.
        """
        self.out.write(f"{text}\n")
        self.out.flush()


@dataclass(frozen=True)
class DemoStep:
    """One labelled section of ``holysheep demo``.

    Attributes:
        title: The section heading.
        run: The function that shows it.
    """

    title: str
    run: Callable[[DemoContext], None]


def _demo_invoke(ctx: DemoContext) -> None:
    message = ctx.llm.invoke(
        [
            ("system", "You are a concise assistant."),
            ("human", "In two sentences, what is the HolySheep gateway?"),
        ]
    )
    ctx.say(f"llm.invoke(...) ->\n{message.text}")
    ctx.say(f"  usage: {_call_summary(message)}")


def _demo_stream(ctx: DemoContext) -> None:
    ctx.say("for chunk in llm.stream(...): print(chunk.text, end='')")
    message = _stream_to(
        ctx.llm, "Explain token streaming in three sentences.", ctx.out
    )
    ctx.say(f"  usage: {_call_summary(message)}")


def _demo_async_batch(ctx: DemoContext) -> None:
    prompts: list[LanguageModelInput] = [
        "Name the capital of France.",
        "Write a haiku about tokens.",
        "Tell me one fact about sheep.",
    ]
    ctx.say(f"await llm.abatch({len(prompts)} prompts, max_concurrency=3)")
    messages = asyncio.run(ctx.llm.abatch(prompts, config={"max_concurrency": 3}))
    for prompt, message in zip(prompts, messages, strict=True):
        ctx.say(f"- {prompt}")
        ctx.say(_arrow(message.text))
        ctx.say(f"  usage: {_call_summary(message)}")


def _arrow(text: str, indent: str = "  ") -> str:
    """The whole answer after ``->``, continuation lines aligned under it."""
    lines = text.strip().splitlines() or ["(empty answer)"]
    pad = indent + "   "
    return "\n".join([f"{indent}-> {lines[0]}", *(pad + line for line in lines[1:])])


_SCRIPTED_DELAY: Final = 0.08
"""Seconds the offline gateway waits before a scripted reply (a model would)."""


@contextlib.contextmanager
def _scripted(
    ctx: DemoContext, respond: Callable[[dict[str, Any]], Reply]
) -> Iterator[None]:
    """Offline: answer the demo model's chat requests with ``respond`` for a step.

    Online (``ctx.gateway`` is ``None``) this does nothing.
    """
    gateway = ctx.gateway
    if gateway is None:
        yield
        return
    model = ctx.llm.model_name
    gateway.set_responder(respond, model=model)
    try:
        yield
    finally:
        gateway.set_responder(None, model=model)


# The weather tool's data: the demo's tool is local and returns canned values,
# online too (the point is the round trip, not the weather).
_WEATHER: Final = {
    "paris": {"temperature_c": 18, "conditions": "light rain", "wind_kmh": 12},
    "lisbon": {"temperature_c": 24, "conditions": "sunny", "wind_kmh": 8},
}


def _weather_report(city: str) -> str:
    data = _WEATHER.get(city.strip().lower())
    if data is None:
        return json.dumps({"city": city, "error": "no demo data for this city"})
    return json.dumps({"city": city, **data})


def _demo_tool_call(ctx: DemoContext) -> None:
    from langchain_core.messages import HumanMessage  # noqa: PLC0415
    from langchain_core.tools import tool  # noqa: PLC0415

    from langchain_holysheep.testing import Reply, ToolCall  # noqa: PLC0415

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: The city name, e.g. "Paris".
        """
        return _weather_report(city)

    question = "Do I need an umbrella in Paris right now?"
    if ctx.gateway is not None:
        # Offline: the model first calls the tool, then answers from its result.
        report = json.loads(_weather_report("Paris"))
        ctx.gateway.enqueue(
            Reply(
                tool_calls=[ToolCall("get_weather", {"city": "Paris"})],
                delay_before_headers=_SCRIPTED_DELAY,
            ),
            Reply(
                content=(
                    f"Yes, take an umbrella: it is {report['temperature_c']} °C in "
                    f"Paris with {report['conditions']} and a "
                    f"{report['wind_kmh']} km/h wind."
                ),
                delay_before_headers=_SCRIPTED_DELAY,
            ),
        )
    llm = ctx.llm.bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage(question)]
    ctx.say("llm_with_tools = llm.bind_tools([get_weather])")
    ctx.say(f"llm_with_tools.invoke({question!r}) -> tool calls:")
    first = llm.invoke(messages)
    if not first.tool_calls:
        ctx.say("  (none: the model answered directly)")
        ctx.say(_arrow(first.text))
        ctx.say(f"  usage: {_call_summary(first)}")
        return
    for call in first.tool_calls:
        ctx.say(f"  {call['name']}({json.dumps(call['args'])})  id={call['id']}")
    ctx.say(f"  usage: {_call_summary(first)}")
    messages.append(first)
    for call in first.tool_calls:
        result = get_weather.invoke(call)  # a ToolCall in -> a ToolMessage out
        ctx.say(f"run the tool -> ToolMessage({result.content})")
        messages.append(result)
    final = llm.invoke(messages)
    ctx.say("send the ToolMessage back -> final answer:")
    ctx.say(_arrow(final.text))
    ctx.say(f"  usage: {_call_summary(final)}")


# Support messages for the extraction step, each with what the offline gateway
# answers for it (a real model extracts the same fields online).
_TICKETS: Final = (
    (
        (
            "Hi, Ana Silva here (ana@lisbontiles.pt). Invoice 4411 was charged twice "
            "this morning, please refund one of them today!"
        ),
        {
            "customer": "Ana Silva",
            "email": "ana@lisbontiles.pt",
            "category": "billing",
            "urgent": True,
            "summary": "Invoice 4411 was charged twice; wants one charge refunded.",
        },
    ),
    (
        (
            "hello, Tom Becker from Nordwind. Does the streaming API report token "
            "usage? No rush, just planning next quarter."
        ),
        {
            "customer": "Tom Becker",
            "email": None,
            "category": "question",
            "urgent": False,
            "summary": "Asks whether streamed responses report token usage.",
        },
    ),
)


def _structured_reply(data: dict[str, Any], body: dict[str, Any]) -> Reply:
    """Answer in the shape the request asked for: a forced tool call, or JSON."""
    from langchain_holysheep.testing import Reply, ToolCall  # noqa: PLC0415

    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return Reply(
                tool_calls=[ToolCall(name, data)],
                delay_before_headers=_SCRIPTED_DELAY,
            )
    return Reply(content=json.dumps(data), delay_before_headers=_SCRIPTED_DELAY)


def _demo_structured(ctx: DemoContext) -> None:
    from typing import Literal  # noqa: PLC0415

    from langchain_core.exceptions import (  # noqa: PLC0415
        ModelRefusalError,
        OutputParserException,
    )
    from pydantic import BaseModel, Field  # noqa: PLC0415

    class SupportTicket(BaseModel):
        """A support request, extracted from a customer's message."""

        customer: str = Field(description="The customer's full name")
        email: str | None = Field(description="Their email address, if given")
        category: Literal["billing", "bug", "question"]
        urgent: bool = Field(description="Whether they ask for a fast answer")
        summary: str = Field(description="One sentence")

    def respond(body: dict[str, Any]) -> Reply:
        prompt = _prompt_text(body)
        data = next(d for text, d in _TICKETS if text in prompt)
        return _structured_reply(data, body)

    extractor = ctx.llm.with_structured_output(SupportTicket)
    ctx.say("extractor = llm.with_structured_output(SupportTicket)")
    with _scripted(ctx, respond):
        for text, _ in _TICKETS:
            ctx.say(f"- {text}")
            try:
                ticket = extractor.invoke(text)
            except (OutputParserException, ModelRefusalError) as error:
                raise CLIError(
                    "structured extraction: the model's answer is not a valid "
                    f"SupportTicket: {_one_line(str(error))}",
                    _EXIT_REQUEST_FAILED,
                ) from None
            ctx.say(_arrow(repr(ticket)))


_PRIMARY: Final = "mistral-small-2603"
_BACKUP: Final = "gemini-2.5-flash"


def _demo_fallback(ctx: DemoContext) -> None:
    chain = ctx.connection.chat_model(_PRIMARY).with_model_fallbacks([_BACKUP])
    ctx.say(
        f"chain = ChatHolySheep(model={_PRIMARY!r}).with_model_fallbacks([{_BACKUP!r}])"
    )
    if ctx.gateway is not None:
        from langchain_holysheep.testing import Fault, Reply  # noqa: PLC0415

        ctx.say(f"offline: the gateway answers HTTP 503 for {_PRIMARY} (injected)")
        ctx.gateway.enqueue(
            Fault(status=503, delay_before_headers=_SCRIPTED_DELAY / 2), model=_PRIMARY
        )
        ctx.gateway.enqueue(
            Reply(
                content="It keeps your app answering when one model is down: the "
                "next model in the list takes the request.",
                delay_before_headers=_SCRIPTED_DELAY,
            ),
            model=_BACKUP,
        )
    else:
        ctx.say(
            "online: no failure is injected, so the primary normally answers and "
            "the list of failed attempts is empty"
        )
    message = chain.invoke("In one sentence, why use a fallback chain?")
    ctx.say("chain.invoke(...) ->")
    ctx.say(_arrow(message.text))
    metadata = message.response_metadata
    ctx.say(f"  served by: {metadata.get('model_name')}")
    attempts = metadata.get("fallback_attempts") or []
    ctx.say(f"  failed attempts: {len(attempts)}")
    for attempt in attempts:
        status = attempt.get("status_code")
        kind = attempt["error_type"] + (f" (HTTP {status})" if status else "")
        ctx.say(f"    {attempt['model']}: {kind}: {attempt['message']}")
    if attempts:
        ctx.say("  (the chain also logs a warning on stderr for each fall-over)")
    ctx.say(f"  usage: {_call_summary(message)}")


# A tiny knowledge base for the RAG step: (title, text); paragraphs are chunks.
_KNOWLEDGE: Final = (
    (
        "API keys",
        (
            "HolySheep keys start with cr_. The package reads the key from the "
            "HOLYSHEEP_API_KEY environment variable only.\n\n"
            "The key never appears in reprs, logs, traces or error messages: known "
            "key patterns are masked."
        ),
    ),
    (
        "Fallback chains",
        (
            "with_model_fallbacks tries the next model when the primary one fails "
            "with a rate limit, a server error, a timeout or a lost connection.\n\n"
            "Bad requests and authentication errors fail fast: every model would "
            "reject them too. The answer records which model served it."
        ),
    ),
    (
        "Streaming usage",
        (
            "Streamed calls request usage with stream_options and get token counts "
            "on the final chunk.\n\n"
            "So cost and latency tracking work for streamed calls as well as for "
            "plain invoke."
        ),
    ),
    (
        "Pricing",
        (
            "The price table lists US dollars per million input and output tokens "
            "for each model, gateway fee included.\n\n"
            "Override it with HOLYSHEEP_PRICES_FILE when your contract has other "
            "prices."
        ),
    ),
    (
        "Offline gateway",
        (
            "The offline gateway is a loopback server for tests and demos.\n\n"
            "It scripts replies and faults and records every request it receives."
        ),
    ),
)


def _demo_rag(ctx: DemoContext) -> None:
    from langchain_core.documents import Document  # noqa: PLC0415
    from langchain_core.vectorstores import InMemoryVectorStore  # noqa: PLC0415

    from langchain_holysheep.embeddings import HolySheepEmbeddings  # noqa: PLC0415

    chunks = [
        Document(paragraph, metadata={"title": title, "chunk": number})
        for title, text in _KNOWLEDGE
        for number, paragraph in enumerate(text.split("\n\n"), start=1)
    ]
    connection = ctx.connection
    embeddings = HolySheepEmbeddings(
        base_url=connection.base_url,
        api_key=connection.api_key,
        timeout=connection.timeout,
    )
    store = InMemoryVectorStore(embeddings)
    store.add_documents(chunks)
    ctx.say(
        f"InMemoryVectorStore(HolySheepEmbeddings(model={embeddings.model_name!r})): "
        f"{len(chunks)} chunks from {len(_KNOWLEDGE)} documents"
    )
    if ctx.gateway is not None:
        ctx.say(
            "offline: embeddings are deterministic word hashes, so retrieval "
            "matches on shared words"
        )
    question = "What happens when the primary model fails with a server error?"
    hits = store.similarity_search_with_score(question, k=2)
    ctx.say(f"store.similarity_search({question!r}, k=2) ->")
    for document, score in hits:
        meta = document.metadata
        ctx.say(f"  [{meta['title']} #{meta['chunk']}] score {score:.2f}")
    context = "\n\n".join(f"[{d.metadata['title']}] {d.page_content}" for d, _ in hits)
    if ctx.gateway is not None:
        from langchain_holysheep.testing import Reply  # noqa: PLC0415

        ctx.gateway.enqueue(
            Reply(
                content="The chain moves on to the next model in the list: a server "
                "error is one of the failures (with rate limits, timeouts and lost "
                "connections) that trigger a fallback, and the answer records "
                "which model served it [Fallback chains].",
                delay_before_headers=_SCRIPTED_DELAY,
            )
        )
    answer = ctx.llm.invoke(
        [
            (
                "system",
                (
                    "Answer from the context only, in at most two sentences, and cite "
                    "the [title] you used."
                ),
            ),
            ("human", f"Context:\n{context}\n\nQuestion: {question}"),
        ]
    )
    ctx.say("llm.invoke(context + question) ->")
    ctx.say(_arrow(answer.text))
    ctx.say(f"  usage: {_call_summary(answer)}")


DEMO_STEPS: list[DemoStep] = [
    DemoStep("Invoke", _demo_invoke),
    DemoStep("Streaming (tokens as they arrive)", _demo_stream),
    DemoStep("Async batch", _demo_async_batch),
    DemoStep("Tool call", _demo_tool_call),
    DemoStep("Structured extraction", _demo_structured),
    DemoStep("Fallback", _demo_fallback),
    DemoStep("RAG (retrieval-augmented generation)", _demo_rag),
    # The usage, cost and latency summary always runs last (it is not a step).
]
"""The demo's sections, in order (extend this list to add one)."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from langchain_holysheep.callbacks import holysheep_usage  # noqa: PLC0415

    out, err = sys.stdout, sys.stderr
    with _connect(args, err) as connection:
        llm = connection.chat_model(args.model)
        mode = (
            "OFFLINE: built-in gateway, scripted replies"
            if connection.offline
            else f"live gateway {connection.base_url}"
        )
        out.write(f"HolySheep demo ({mode}), model {args.model}\n")
        ctx = DemoContext(connection, llm, out, connection.gateway)
        with holysheep_usage() as usage:
            for number, step in enumerate(DEMO_STEPS, start=1):
                ctx.say(f"\n== {number}. {step.title} ==")
                step.run(ctx)
        ctx.say(f"\n== {len(DEMO_STEPS) + 1}. Usage, cost and latency (all calls) ==")
        ctx.say(usage.table())
        summary = usage.snapshot()
        p95 = summary.total_ms.p95 if summary.total_ms else None
        ctx.say(
            f"{summary.requests} calls, ${summary.total_cost_usd:.6f}, "
            f"p95 total latency {_fmt_ms(p95)}"
        )
    return 0


# --------------------------------------------------------------------------- #
# chat
# --------------------------------------------------------------------------- #


def _cmd_chat(args: argparse.Namespace) -> int:
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
    with _connect(args, err) as connection:
        llm = connection.chat_model(args.model, **options)
        if args.no_stream:
            message: BaseMessage = llm.invoke(messages)
            out.write(f"{message.text}\n")
        else:
            message = _stream_to(llm, messages, out)
        out.flush()
        served = message.response_metadata.get("model_name") or args.model
        err.write(f"[{served}] {_call_summary(message)}\n")
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


def _render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return " | ".join((first, *rest)).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _money(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cmd_models(args: argparse.Namespace) -> int:
    from langchain_holysheep.models import list_models  # noqa: PLC0415

    with _connect(args, sys.stderr) as connection:
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
    sys.stdout.write(_render_table(header, cells) + "\n")
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
                result.errors.append(_one_line(str(error)))
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


def _cmd_bench(args: argparse.Namespace) -> int:
    out, err = sys.stdout, sys.stderr
    with _connect(args, err) as connection:
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
        return _EXIT_REQUEST_FAILED
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
    out.write(_render_table(("", "p50", "p95", "p99"), rows) + "\n")
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
        raise CLIError(_one_line(str(error))) from None


def _cmd_cost(args: argparse.Namespace) -> int:
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
    sys.stdout.write(_render_table(header, cells) + "\n")
    return 0


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def _mask(text: str, secret: str | None) -> str:
    from langchain_holysheep.errors import mask_secrets  # noqa: PLC0415

    return mask_secrets(text, secret)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``holysheep`` command.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    secret = os.environ.get("HOLYSHEEP_API_KEY") or None
    try:
        return handler(args)
    except CLIError as error:
        message = _mask(_one_line(str(error)), secret)
        sys.stderr.write(f"{PROG} {args.command}: error: {message}\n")
        return error.status
    except Exception as error:
        # errors.py imports openai: only look at it once something failed.
        from langchain_holysheep.errors import HolySheepError  # noqa: PLC0415

        if not isinstance(error, HolySheepError):
            raise
        sys.stderr.write(f"error: {_mask(_one_line(str(error)), secret)}\n")
        return _EXIT_REQUEST_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED

