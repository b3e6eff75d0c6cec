"""``holysheep demo``: the demo's steps, :data:`DEMO_STEPS`, and the command.

To add a step, write a function taking a :class:`DemoContext` and append
``DemoStep("Title", function)`` to :data:`DEMO_STEPS`; when ``ctx.gateway`` is
set (offline) script the replies the step needs first, e.g.
``ctx.gateway.enqueue(Reply(tool_calls=[ToolCall("get_weather", {...})]))``.
The canned texts the steps use offline are in
:mod:`langchain_holysheep.cli._demo_data`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TextIO

from langchain_holysheep.cli._connect import Connection, connect, prompt_text
from langchain_holysheep.cli._demo_data import (
    FALLBACK_ANSWER,
    KNOWLEDGE,
    RAG_ANSWER,
    TICKETS,
    WEATHER,
)
from langchain_holysheep.cli._errors import EXIT_REQUEST_FAILED, CLIError
from langchain_holysheep.cli._output import call_summary, fmt_ms, one_line, stream_to

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import BaseMessage

    from langchain_holysheep.chat_models import ChatHolySheep
    from langchain_holysheep.testing import OfflineGateway, Reply

__all__ = ["DEMO_STEPS", "DemoContext", "DemoStep", "cmd_demo"]


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
    ctx.say(f"  usage: {call_summary(message)}")


def _demo_stream(ctx: DemoContext) -> None:
    ctx.say("for chunk in llm.stream(...): print(chunk.text, end='')")
    message = stream_to(ctx.llm, "Explain token streaming in three sentences.", ctx.out)
    ctx.say(f"  usage: {call_summary(message)}")


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
        ctx.say(f"  usage: {call_summary(message)}")


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


def _weather_report(city: str) -> str:
    data = WEATHER.get(city.strip().lower())
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
        ctx.say(f"  usage: {call_summary(first)}")
        return
    for call in first.tool_calls:
        ctx.say(f"  {call['name']}({json.dumps(call['args'])})  id={call['id']}")
    ctx.say(f"  usage: {call_summary(first)}")
    messages.append(first)
    for call in first.tool_calls:
        result = get_weather.invoke(call)  # a ToolCall in -> a ToolMessage out
        ctx.say(f"run the tool -> ToolMessage({result.content})")
        messages.append(result)
    final = llm.invoke(messages)
    ctx.say("send the ToolMessage back -> final answer:")
    ctx.say(_arrow(final.text))
    ctx.say(f"  usage: {call_summary(final)}")


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
        prompt = prompt_text(body)
        data = next(d for text, d in TICKETS if text in prompt)
        return _structured_reply(data, body)

    extractor = ctx.llm.with_structured_output(SupportTicket)
    ctx.say("extractor = llm.with_structured_output(SupportTicket)")
    with _scripted(ctx, respond):
        for text, _ in TICKETS:
            ctx.say(f"- {text}")
            try:
                ticket = extractor.invoke(text)
            except (OutputParserException, ModelRefusalError) as error:
                raise CLIError(
                    "structured extraction: the model's answer is not a valid "
                    f"SupportTicket: {one_line(str(error))}",
                    EXIT_REQUEST_FAILED,
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
                content=FALLBACK_ANSWER,
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
    ctx.say(f"  usage: {call_summary(message)}")


def _demo_rag(ctx: DemoContext) -> None:
    from langchain_core.documents import Document  # noqa: PLC0415
    from langchain_core.vectorstores import InMemoryVectorStore  # noqa: PLC0415

    from langchain_holysheep.embeddings import HolySheepEmbeddings  # noqa: PLC0415

    chunks = [
        Document(paragraph, metadata={"title": title, "chunk": number})
        for title, text in KNOWLEDGE
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
        f"{len(chunks)} chunks from {len(KNOWLEDGE)} documents"
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
                content=RAG_ANSWER,
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
    ctx.say(f"  usage: {call_summary(answer)}")


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


def cmd_demo(args: argparse.Namespace) -> int:
    """``holysheep demo``: run :data:`DEMO_STEPS`, then the usage summary.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status.
    """
    from langchain_holysheep.callbacks import holysheep_usage  # noqa: PLC0415

    out, err = sys.stdout, sys.stderr
    with connect(args, err) as connection:
        llm = connection.chat_model(args.model)
        mode = (
            "OFFLINE: built-in gateway, scripted replies"
            if connection.offline
            else f"live gateway {connection.shown_url}"
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
            f"p95 total latency {fmt_ms(p95)}"
        )
    return 0
