"""What a batch request may cost before it is sent, and what it cost after.

The worst case (:func:`worst_case_nano`) is what a budget reserves: an upper
bound of the prompt plus the most the answer may be, at the model's price from
the price table (:mod:`langchain_holysheep.pricing`).

* Prompt: the UTF-8 bytes of everything the request sends as input, in JSON
  (``messages``, and ``tools``, ``functions``, ``tool_choice`` and
  ``response_format`` when set), plus :data:`REQUEST_OVERHEAD_TOKENS`, plus
  :data:`MEDIA_PART_TOKENS` for each content part that is not text (an image,
  audio or file part, whose tokens its bytes do not bound). No tokenizer makes
  more tokens than bytes, so this is above any model's count (and above the
  package's offline estimate, about four characters a token, which text in
  Chinese or code can pass several times over); it is only pessimistic, and
  only matters for the last reservations of a budget.
* Answer: ``max_completion_tokens`` or ``max_tokens`` (the larger, when both
  are set) times ``n``; when neither is set, the model's largest answer
  (``_profiles``), else :data:`DEFAULT_MAX_OUTPUT_TOKENS`. Set ``max_tokens``
  to keep reservations small.
* Price: input tokens at the highest of the model's input, cached-input and
  cache-write prices, output tokens at its output price.

A model without a price cannot be reserved for: :func:`worst_case_nano`
raises :class:`~langchain_holysheep.batch._format.BatchInputError` naming it
(give its price, or run without a budget).

The actual cost (:func:`actual_nano`) follows :func:`pricing.resolve_call_cost`,
the package's one cost rule: the gateway's reported cost, else the answer's
usage at the table price.
"""

from __future__ import annotations

import json
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.batch._format import BatchInputError
from langchain_holysheep.batch._types import usd_to_nano

if TYPE_CHECKING:
    from collections.abc import Mapping

    from langchain_holysheep.pricing import PriceTable

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "MEDIA_PART_TOKENS",
    "REQUEST_OVERHEAD_TOKENS",
    "actual_nano",
    "has_price",
    "output_tokens_bound",
    "prompt_tokens_bound",
    "worst_case_nano",
]

DEFAULT_MAX_OUTPUT_TOKENS: Final = 65_536
"""Output tokens reserved when a request sets no limit and its model's is unknown."""

MEDIA_PART_TOKENS: Final = 4_096
"""Tokens reserved per image, audio or file part (on top of its bytes)."""

REQUEST_OVERHEAD_TOKENS: Final = 64
"""Tokens reserved per request for what the chat format adds around messages."""

_MILLION: Final = Decimal(1_000_000)
_EXACT: Final = Context(prec=60)
_INPUT_FIELDS: Final = ("messages", "tools", "functions", "tool_choice")


def has_price(model: str, table: PriceTable) -> bool:
    """Whether the price table knows ``model`` (exactly, else ignoring case).

    Args:
        model: The model id.
        table: The price table.

    Returns:
        Whether a budget can reserve for it.
    """
    return table.get(model) is not None


def _media_parts(messages: object) -> int:
    """How many content parts of the messages are not text."""
    if not isinstance(messages, list):
        return 0
    count = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(
                1
                for part in content
                if not (isinstance(part, dict) and part.get("type") in {"text", None})
            )
    return count


def prompt_tokens_bound(body: Mapping[str, Any]) -> int:
    """An upper bound of a request's input tokens (see the module docstring).

    Args:
        body: The chat-completions request body.

    Returns:
        Input tokens no model counts more of.
    """
    sent = {name: body[name] for name in _INPUT_FIELDS if name in body}
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in {
        "text",
        "json_object",
    }:
        sent["response_format"] = response_format
    text = json.dumps(sent, ensure_ascii=False, separators=(",", ":"), default=str)
    return (
        len(text.encode())
        + REQUEST_OVERHEAD_TOKENS
        + MEDIA_PART_TOKENS * _media_parts(body.get("messages"))
    )


def _limit(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def output_tokens_bound(body: Mapping[str, Any], model: str) -> int:
    """The most output tokens a request may be billed for (all ``n`` answers).

    Args:
        body: The chat-completions request body.
        model: The model it goes to (for its largest answer when unset).

    Returns:
        ``max_completion_tokens``/``max_tokens`` (or the default) times ``n``.
    """
    from langchain_holysheep._profiles import get_capabilities  # noqa: PLC0415
    from langchain_holysheep.ratelimit._estimate import choices  # noqa: PLC0415

    limits = [
        v
        for v in (
            _limit(body.get("max_completion_tokens")),
            _limit(body.get("max_tokens")),
        )
        if v is not None
    ]
    if limits:
        per_answer = max(limits)
    else:
        capabilities = get_capabilities(model)
        known = None if capabilities is None else capabilities.max_output_tokens
        per_answer = known or DEFAULT_MAX_OUTPUT_TOKENS
    return per_answer * choices(dict(body))


def _decimal(price: float) -> Decimal:
    """A table price exactly (a float through its shortest repr, as the table)."""
    return Decimal(str(price))


def _no_price(model: str) -> BatchInputError:
    return BatchInputError(
        f"model {model!r} has no price in the price table, and a budget needs one "
        "to know what each request may cost: give it with "
        f"--price {model}=IN,OUT (USD per 1M input and output tokens) or "
        "--prices FILE (prices= in run_batch), or run without a budget"
    )


def worst_case_nano(body: Mapping[str, Any], model: str, table: PriceTable) -> int:
    """What a request may cost at most, in nano-dollars (what a budget reserves).

    Args:
        body: The chat-completions request body.
        model: The model it goes to.
        table: The price table (with the run's overrides).

    Returns:
        The worst case, rounded up to a whole nano-dollar.

    Raises:
        BatchInputError: The table has no price for ``model``.
    """
    price = table.get(model) if isinstance(model, str) and model else None
    if price is None:
        raise _no_price(model)
    prompt = prompt_tokens_bound(body)
    output = output_tokens_bound(body, model)
    input_per_million = max(
        _decimal(p)
        for p in (
            price.input_per_million,
            price.cached_input_per_million,
            price.cache_write_per_million,
        )
        if p is not None
    )
    usd = _EXACT.divide(
        _EXACT.add(
            _EXACT.multiply(Decimal(prompt), input_per_million),
            _EXACT.multiply(Decimal(output), _decimal(price.output_per_million)),
        ),
        _MILLION,
    )
    return usd_to_nano(usd)


def actual_nano(
    model: str, body: Mapping[str, Any], table: PriceTable
) -> tuple[int, bool]:
    """What an answer cost, in nano-dollars, and whether that is known.

    Args:
        model: The model the request asked for (priced when the answer's
            served id, e.g. a dated one, has no price).
        body: The answer body (a chat completion, with its ``usage``).
        table: The price table (with the run's overrides).

    Returns:
        ``(cost, True)`` from the gateway's reported cost or the usage at the
        table price; ``(0, False)`` when neither is known.
    """
    from langchain_holysheep._convert import usage_to_metadata  # noqa: PLC0415
    from langchain_holysheep.pricing import resolve_call_cost  # noqa: PLC0415

    usage = body.get("usage")
    if not isinstance(usage, dict):
        return 0, False
    served = body.get("model")
    served_model = served if isinstance(served, str) and served else model
    try:
        cost = resolve_call_cost(
            served_model,
            usage_to_metadata(usage),
            {"token_usage": usage},
            table,
            requested_model=model,
        )
    except ValueError:  # a token count that is not a whole number >= 0
        return 0, False
    if cost is None:
        return 0, False
    return usd_to_nano(cost.usd_decimal), True
