"""How many tokens a chat request reserves before it is sent (pure).

OpenAI-compatible gateways count a request against a tokens-per-minute limit at
admission as its prompt plus its ``max_tokens`` (times ``n``). The prompt is
estimated offline by the package's one estimate, ``_convert.estimate_message_tokens``
(langchain-core's ``count_tokens_approximately``: about four characters a token,
plus a few per message, tools included), the one ``get_num_tokens_from_messages``
uses, so nothing is downloaded and no tokenizer is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep._convert import estimate_message_tokens

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.messages import BaseMessage

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "choices",
    "output_reservation",
    "prompt_tokens",
    "request_tokens",
]

DEFAULT_MAX_TOKENS: Final = 1024
"""Output tokens reserved for a request that sets no ``max_tokens``."""


def output_reservation(body: dict[str, Any], default_max_tokens: int) -> int:
    """The output tokens a request may produce: ``max_tokens * n``.

    Args:
        body: The chat request body.
        default_max_tokens: Used when the body sets neither ``max_tokens`` nor
            ``max_completion_tokens``.

    Returns:
        The output tokens to reserve.
    """
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    per_choice = limit if isinstance(limit, int) and limit > 0 else default_max_tokens
    return per_choice * choices(body)


def request_tokens(
    messages: Sequence[BaseMessage], body: dict[str, Any], default_max_tokens: int
) -> int:
    """The tokens a request reserves: the prompt estimate plus the output's.

    Args:
        messages: The request's messages.
        body: The chat request body (its ``tools``, ``max_tokens`` and ``n``).
        default_max_tokens: Output reservation when ``max_tokens`` is unset.

    Returns:
        The tokens to reserve against tokens-per-minute limits.
    """
    return prompt_tokens(messages, body) + output_reservation(body, default_max_tokens)


def prompt_tokens(messages: Sequence[BaseMessage], body: dict[str, Any]) -> int:
    """The prompt's estimated tokens: its messages and the body's ``tools``.

    Args:
        messages: The request's messages.
        body: The chat request body (its ``tools``).

    Returns:
        The offline estimate of the input tokens.
    """
    tools = body.get("tools")
    return estimate_message_tokens(messages, tools if isinstance(tools, list) else None)


def choices(body: dict[str, Any]) -> int:
    """How many answers a request asks for (its ``n``, at least 1).

    Args:
        body: The chat request body.

    Returns:
        ``n`` when it is a whole number above 1, else 1.
    """
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
