"""One member of a fallback chain, and how one call to it is made.

A :class:`Member` is a chat model with its display name and breaker, and the
one warning per setting it had to leave out. The helpers prepare a call's kwargs
(tools bound through the member's own ``bind_tools``), open its stream (or one
whole-answer chunk when it cannot stream), read the stream up to the commit
point, and name the model that served.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableBinding

from langchain_holysheep._secrets import mask_url

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator

    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatResult

    from langchain_holysheep.fallback._breaker import CircuitBreaker

__all__ = [
    "TOOL_OPTIONS",
    "Member",
    "Named",
    "annotate_chunk",
    "aopen_stream",
    "apeek",
    "model_name",
    "name_chunk",
    "open_stream",
    "peek",
    "prepare",
    "scope",
]

TOOL_OPTIONS: Final = "tool_options"
"""The bound kwarg holding the chain's ``bind_tools`` options."""
_TRACE_ONLY_KWARGS: Final = ("ls_structured_output_format", "structured_output_format")


@dataclass(slots=True)
class Member:
    """A chain member as the chain calls it."""

    name: str
    """The model id shown in metadata, logs and attempts."""
    model: BaseChatModel
    """The chat model (a ``ChatHolySheep`` runs with SDK retries off)."""
    breaker: CircuitBreaker | None
    """Its shared breaker, or ``None`` with breakers off."""
    takes_total_timeout: bool = False
    """Whether a call may pass it ``total_timeout`` (a ``ChatHolySheep``)."""
    dropped: set[str] = field(default_factory=set)
    """The settings it left out of a request so far (each warned about once)."""

    def drop_setting(self, model: str, setting: str, reason: str) -> None:
        """A setting this member cannot take was left out: warn the first time.

        The member's ``ChatHolySheep`` calls it (its ``_on_drop``) from
        :func:`~langchain_holysheep._convert.build_request`.

        Args:
            model: The model id the request named.
            setting: The request parameter left out.
            reason: Why the model cannot take it.
        """
        if setting in self.dropped:
            return
        self.dropped.add(setting)
        warnings.warn(
            f"Fallback member {model!r} cannot take {setting} ({reason}): it is "
            "left out of this member's requests; the other members still get it.",
            UserWarning,
            stacklevel=2,
        )


def scope(model: BaseChatModel) -> str:
    """The gateway a member is reached through (its breaker's scope).

    Args:
        model: The member.

    Returns:
        Its base URL (credentials masked: the scope shows in health checks and
        ``repr``), else its class's qualified name.
    """
    for name in ("base_url", "openai_api_base", "api_base", "endpoint"):
        value = getattr(model, name, None)
        if isinstance(value, str) and value:
            return mask_url(value)
    return f"{type(model).__module__}.{type(model).__qualname__}"


def model_name(model: BaseChatModel) -> str:
    """A member's model id, for metadata and logs.

    Args:
        model: The member.

    Returns:
        Its model id, else its class name.
    """
    for name in ("model_name", "model", "model_id"):
        value = getattr(model, name, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


def prepare(
    model: BaseChatModel, kwargs: dict[str, Any]
) -> tuple[BaseChatModel, dict[str, Any]]:
    """The model and kwargs for one member: tools bound by its own bind_tools.

    Args:
        model: The member.
        kwargs: The call's kwargs (with the chain's bound tools, if any).

    Returns:
        The model to call and the kwargs to call it with.

    Raises:
        TypeError: If the member's ``bind_tools`` returns no chat model binding.
    """
    call_kwargs = {k: v for k, v in kwargs.items() if k not in _TRACE_ONLY_KWARGS}
    if TOOL_OPTIONS not in call_kwargs:
        return model, call_kwargs
    options = call_kwargs.pop(TOOL_OPTIONS)
    bound = model.bind_tools(call_kwargs.pop("tools", []), **options)
    if not isinstance(bound, RunnableBinding) or not isinstance(
        bound.bound, BaseChatModel
    ):
        msg = (
            f"{type(model).__name__}.bind_tools returned {type(bound).__name__}, "
            "not a chat model binding; the fallback chain cannot call it."
        )
        raise TypeError(msg)
    extra = {k: v for k, v in bound.kwargs.items() if k not in _TRACE_ONLY_KWARGS}
    return bound.bound, {**extra, **call_kwargs}


def open_stream(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> Generator[ChatGenerationChunk, None, None]:
    """A member's stream (one whole-answer chunk if it does not stream).

    Args:
        model: The member's model, from :func:`prepare`.
        messages: The conversation.
        stop: Stop sequences.
        kwargs: The call's kwargs, from :func:`prepare`.

    Yields:
        The member's chunks.
    """
    if model._should_stream(async_api=False, **{**kwargs, "stream": True}):  # noqa: SLF001
        if model.rate_limiter:
            model.rate_limiter.acquire(blocking=True)
        yield from model._stream(messages, stop=stop, **kwargs)  # noqa: SLF001
    else:
        yield _to_chunk(model._generate_with_cache(messages, stop=stop, **kwargs))  # noqa: SLF001


async def aopen_stream(
    model: BaseChatModel,
    messages: list[BaseMessage],
    stop: list[str] | None,
    kwargs: dict[str, Any],
) -> AsyncGenerator[ChatGenerationChunk, None]:
    """The async twin of :func:`open_stream` (the same arguments and chunks)."""
    if model._should_stream(async_api=True, **{**kwargs, "stream": True}):  # noqa: SLF001
        if model.rate_limiter:
            await model.rate_limiter.aacquire(blocking=True)
        async for chunk in model._astream(messages, stop=stop, **kwargs):  # noqa: SLF001
            yield chunk
    else:
        result = await model._agenerate_with_cache(messages, stop=stop, **kwargs)  # noqa: SLF001
        yield _to_chunk(result)


def peek(chunks: Iterator[ChatGenerationChunk]) -> list[ChatGenerationChunk]:
    """Read up to and including the first chunk that carries output.

    Args:
        chunks: A member's stream.

    Returns:
        The chunks read (the stream commits on the last one, if any).
    """
    buffered = []
    for chunk in chunks:
        buffered.append(chunk)
        if _has_output(chunk):
            break
    return buffered


async def apeek(
    chunks: AsyncIterator[ChatGenerationChunk],
) -> list[ChatGenerationChunk]:
    """The async twin of :func:`peek`."""
    buffered = []
    async for chunk in chunks:
        buffered.append(chunk)
        if _has_output(chunk):
            break
    return buffered


class Named:
    """Passes chunks through, noting whether any names the serving model."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        """Start with no chunk seen."""
        self.seen = False

    def __call__(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        """Note ``chunk``'s ``model_name`` and return it unchanged."""
        if not self.seen and "model_name" in chunk.message.response_metadata:
            self.seen = True
        return chunk


def name_chunk(name: str) -> ChatGenerationChunk:
    """An empty last chunk naming the model, for streams that do not name it.

    ``model_name`` is set only where no chunk has it: chunk metadata strings
    concatenate when chunks are added.

    Args:
        name: The member's model id.

    Returns:
        The chunk.
    """
    return ChatGenerationChunk(
        message=AIMessageChunk(content="", response_metadata={"model_name": name})
    )


def annotate_chunk(
    chunk: ChatGenerationChunk | None, attempts: list[dict[str, Any]]
) -> None:
    """Put the earlier attempts on a committed stream's first chunk.

    Args:
        chunk: The first chunk, if the stream had any.
        attempts: The failed attempts before this member.
    """
    if chunk is not None:
        chunk.message.response_metadata["fallback_attempts"] = attempts


def _has_output(chunk: ChatGenerationChunk) -> bool:
    """Whether a stream chunk commits the stream (text, reasoning or tool call)."""
    message = chunk.message
    if message.content:
        return True
    if isinstance(message, AIMessageChunk) and message.tool_call_chunks:
        return True
    return bool(message.additional_kwargs.get("reasoning_content"))


def _to_chunk(result: ChatResult) -> ChatGenerationChunk:
    """One chunk carrying a whole answer (for members that cannot stream)."""
    generation = result.generations[0]
    message = generation.message
    tool_call_chunks = [
        {
            "name": call["name"],
            "args": json.dumps(call["args"]),
            "id": call.get("id"),
            "index": i,
            "type": "tool_call_chunk",
        }
        for i, call in enumerate(getattr(message, "tool_calls", None) or [])
    ]
    chunk = AIMessageChunk(
        content=message.content,
        additional_kwargs=message.additional_kwargs,
        response_metadata=message.response_metadata,
        usage_metadata=getattr(message, "usage_metadata", None),
        tool_call_chunks=tool_call_chunks,
        id=message.id,
        chunk_position="last",
    )
    return ChatGenerationChunk(
        message=chunk, generation_info=generation.generation_info
    )
