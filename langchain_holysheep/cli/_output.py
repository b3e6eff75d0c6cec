"""Output shared by the commands: one-line messages, a call's summary, streaming."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from langchain_holysheep.cli._errors import EXIT_REQUEST_FAILED, CLIError

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_holysheep.chat_models import ChatHolySheep

__all__ = ["call_summary", "fmt_ms", "one_line", "stream_to"]


def one_line(text: str) -> str:
    """Fold a message's white space (newlines included) into single spaces.

    Args:
        text: The message.

    Returns:
        The message on one line.
    """
    return " ".join(text.split())


def fmt_ms(value: object) -> str:
    """Milliseconds with one decimal, or ``"n/a"``.

    Args:
        value: A number of milliseconds, or anything else when unknown.

    Returns:
        E.g. ``"81.6 ms"``.
    """
    return f"{value:.1f} ms" if isinstance(value, int | float) else "n/a"


def call_summary(message: BaseMessage) -> str:
    """One line: tokens, cost and latency of a call, from its metadata.

    Args:
        message: The call's answer (``ChatHolySheep`` put ``cost_usd``,
            ``cost_source`` and ``latency`` on its ``response_metadata``).

    Returns:
        E.g. ``"8 in / 34 out tokens | cost $0.000022 (price table) | total 97.6 ms"``.
    """
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
    parts = [f"total {fmt_ms(latency.get('total_ms'))}"]
    if latency.get("ttft_ms") is not None:
        parts.insert(0, f"TTFT {fmt_ms(latency['ttft_ms'])}")
    if isinstance(tps := latency.get("output_tokens_per_s"), int | float):
        parts.append(f"{tps:.0f} tokens/s")
    return f"{tokens} | cost {cost} | {', '.join(parts)}"


def stream_to(llm: ChatHolySheep, messages: Any, out: TextIO) -> BaseMessage:
    """Print an answer token by token; return the aggregated message.

    Args:
        llm: The model.
        messages: The input.
        out: Where the tokens go (a newline follows the answer).

    Returns:
        The chunks added up into one message.

    Raises:
        CLIError: The stream yielded nothing.
    """
    full: Any = None
    for chunk in llm.stream(messages):
        if chunk.text:
            out.write(chunk.text)
            out.flush()
        full = chunk if full is None else full + chunk
    out.write("\n")
    if full is None:  # pragma: no cover - the model always yields a final chunk
        raise CLIError("the stream returned nothing", EXIT_REQUEST_FAILED)
    message: BaseMessage = full
    return message
