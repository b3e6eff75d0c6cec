"""Pure conversions between LangChain messages and the Chat Completions wire format.

No client, no I/O, no ``self``: every function takes plain data and returns plain
data (or LangChain message objects), so each edge case is a one-line table test.
:func:`build_request` assembles a whole chat request body and applies the
model's request rules (from the capability table) before anything is sent.
The stream converter keeps its running state in :class:`StreamState`, shared by
the sync and async stream loops.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
)
from langchain_core.messages.ai import (
    InputTokenDetails,
    OutputTokenDetails,
    UsageMetadata,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langchain_holysheep._profiles import (
    keeps_cache_control,
    keeps_thought_signatures,
)

if TYPE_CHECKING:
    from collections.abc import Container, Mapping, Sequence

    from langchain_core.messages import content as types

    from langchain_holysheep._profiles import Capabilities
    from langchain_holysheep.errors import (
        HolySheepInputError,
        HolySheepUnsupportedInputError,
    )

__all__ = [
    "PROVIDER",
    "THOUGHT_SIGNATURES",
    "OnDrop",
    "StreamState",
    "build_request",
    "completion_to_result",
    "encode_body",
    "estimate_message_tokens",
    "estimate_text_tokens",
    "input_error",
    "json_instead_of_events",
    "message_to_dict",
    "messages_to_dicts",
    "no_token_ids",
    "says_nothing",
    "translate_content",
    "translate_content_chunk",
    "unsupported_error",
    "usage_to_metadata",
]

PROVIDER: Final = "holysheep"
_REASONING_KEYS: Final = ("reasoning_content", "reasoning")
# The list form of reasoning some gateways use (OpenRouter's ``reasoning_details``):
# entry type -> the key holding its text. Encrypted entries carry no text.
_REASONING_DETAIL_TEXT: Final = {
    "reasoning.text": "text",
    "reasoning.summary": "summary",
}
THOUGHT_SIGNATURES: Final = "thought_signatures"
"""The ``additional_kwargs`` key of an answer's Gemini thought signatures, by
tool call id (sent back to Gemini models with those calls on the next turn)."""
# Content block types that carry no text for the API and are sent another way
# (tool calls go in ``tool_calls``; reasoning is echoed only where a model needs it).
_AI_BLOCKS_SENT_ELSEWHERE: Final = frozenset(
    {"tool_call", "tool_call_chunk", "invalid_tool_call", "reasoning", "thinking"}
)
_PASSTHROUGH_PART_TYPES: Final = frozenset({"image_url", "input_audio", "refusal"})
_PART_NAMES: Final = {"image_url": "image", "input_audio": "audio", "file": "file"}
_SHOWN_VALUE: Final = 80  # longer block values (base64 data) are not echoed


def input_error(message: str) -> HolySheepInputError:
    """A ``HolySheepInputError`` to raise: a request refused before it is sent.

    The package's one way to build it without importing ``openai`` (which the
    error tree needs) until something is actually refused.

    Args:
        message: What is wrong and how to fix it.

    Returns:
        The error (the caller raises it, ``from`` a cause where there is one).
    """
    from langchain_holysheep.errors import HolySheepInputError  # noqa: PLC0415

    return HolySheepInputError(message)


def unsupported_error(
    message: str, *, model: object, setting: str
) -> HolySheepUnsupportedInputError:
    """A ``HolySheepUnsupportedInputError``: ``model`` cannot take ``setting``.

    Like :func:`input_error`, for what one model cannot take but another might
    (a fallback chain then asks its next member).

    Args:
        message: What is wrong and how to fix it (names the model).
        model: The model id.
        setting: What it cannot take (a parameter name or a content-part type).

    Returns:
        The error (the caller raises it).
    """
    from langchain_holysheep.errors import (  # noqa: PLC0415
        HolySheepUnsupportedInputError,
    )

    name = model if isinstance(model, str) else None
    return HolySheepUnsupportedInputError(message, model=name, setting=setting)


def _input_error(message: str) -> NoReturn:
    raise input_error(message)


def _response_error(message: str, body: object) -> NoReturn:
    from langchain_holysheep.errors import HolySheepResponseError  # noqa: PLC0415

    raise HolySheepResponseError(message, body=body)


def _error_payload(data: Mapping[str, Any]) -> NoReturn:
    """Raise the gateway's error object (sent with a 200) for the error mapper."""
    from langchain_holysheep.errors import ErrorPayloadError  # noqa: PLC0415

    error = data.get("error")
    text = error.get("message") if isinstance(error, dict) else error
    raise ErrorPayloadError(f"The gateway answered with an error: {text}", body=data)


def _is_error_payload(data: Mapping[str, Any]) -> bool:
    error = data.get("error")
    return isinstance(error, dict) or (isinstance(error, str) and bool(error))


# --------------------------------------------------------------------------- #
# LangChain messages -> request
# --------------------------------------------------------------------------- #


def _text_part(block: Mapping[str, Any], *, cache_control: bool) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block.get("text", "")}
    if cache_control and "cache_control" in block:  # Claude prompt caching
        part["cache_control"] = block["cache_control"]
    return part


def _file_part(block: Mapping[str, Any]) -> dict[str, Any]:
    """A LangChain ``file`` block (v1 or v0) as the Chat Completions file part."""
    if block.get("source_type") == "base64" or "base64" in block:
        data = block.get("data") if "source_type" in block else block.get("base64")
        mime_type = block.get("mime_type")
        if not isinstance(data, str) or not isinstance(mime_type, str):
            _input_error(
                "A base64 file block needs its data and a mime_type, e.g. "
                "{'type': 'file', 'base64': '...', 'mime_type': 'application/pdf', "
                "'filename': 'report.pdf'}."
            )
        extras = block.get("extras") or block.get("metadata") or {}
        filename = block.get("filename") or extras.get("filename")
        if not isinstance(filename, str) or not filename:
            _input_error(
                "A base64 file block needs a filename (the API asks for one with "
                "file_data): add 'filename': 'report.pdf' to the block."
            )
        return {
            "type": "file",
            "file": {
                "file_data": f"data:{mime_type};base64,{data}",
                "filename": filename,
            },
        }
    file_id = block.get("id") if block.get("source_type") == "id" else None
    file_id = block.get("file_id", file_id)
    if isinstance(file_id, str) and file_id:
        return {"type": "file", "file": {"file_id": file_id}}
    if "url" in block or block.get("source_type") == "url":
        _input_error(
            "Chat Completions cannot fetch a file from a URL: download it and send "
            "it as base64 (with mime_type and filename), or upload it and pass "
            "its file_id."
        )
    _input_error(
        "A file block needs base64 data (with mime_type and filename) or a "
        f"file_id. Block: {_block_summary(block)}"
    )


def _block_summary(block: Mapping[str, Any]) -> str:
    """The block's keys and short values (base64 data is not echoed in full)."""
    return repr(
        {k: v if len(repr(v)) < _SHOWN_VALUE else "..." for k, v in block.items()}
    )


def _content_part(
    block: str | Mapping[str, Any], role: str, *, cache_control: bool = True
) -> dict[str, Any] | None:
    """Convert one content block; ``None`` means "not sent in ``content``".

    ``cache_control=False`` strips prompt-caching hints (for non-Claude models).
    """
    if isinstance(block, str):
        return {"type": "text", "text": block}
    kind = block.get("type")
    if kind == "text":
        return _text_part(block, cache_control=cache_control)
    if role == "assistant" and kind in _AI_BLOCKS_SENT_ELSEWHERE:
        return None
    part = _media_part(kind, block, role)
    if not cache_control:
        part.pop("cache_control", None)
    elif "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _media_part(kind: object, block: Mapping[str, Any], role: str) -> dict[str, Any]:
    """A non-text block as its wire part (a fresh dict), or an input error."""
    if kind == "image_url":
        url = block.get("image_url")
        return (
            {**block, "image_url": {"url": url}}
            if isinstance(url, str)
            else dict(block)
        )
    if kind in _PASSTHROUGH_PART_TYPES or (
        kind == "file" and isinstance(block.get("file"), dict)  # already wire form
    ):
        return dict(block)
    if kind == "file":
        return _file_part(block)
    if kind in {"image", "audio"}:
        from langchain_core.messages.block_translators.openai import (  # noqa: PLC0415
            convert_to_openai_data_block,
        )

        try:
            return convert_to_openai_data_block(dict(block))
        except (KeyError, ValueError) as error:
            _input_error(
                f"Cannot send this {kind} block: {error}. "
                f"Block: {_block_summary(block)}"
            )
    _input_error(
        f"Content block type {kind!r} cannot be sent in a {role} message. "
        "Use text, image_url, or LangChain image/file/audio blocks."
    )


def _content(
    content: str | list[str | dict[str, Any]], role: str, *, cache_control: bool
) -> Any:
    if isinstance(content, str):
        return content
    parts = [
        p
        for b in content
        if (p := _content_part(b, role, cache_control=cache_control)) is not None
    ]
    if role in {"assistant", "tool", "system"} and all(
        p.get("type") == "text" and "cache_control" not in p for p in parts
    ):
        # These roles take plain strings everywhere; some backends reject parts.
        return "".join(p["text"] for p in parts)
    return parts


def _tool_call_dict(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
    }


def _invalid_tool_call_dict(call: InvalidToolCall) -> dict[str, Any]:
    return {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": call["args"] or ""},
    }


def _assistant_dict(
    message: AIMessage,
    *,
    echo_reasoning: bool,
    cache_control: bool,
    echo_thought_signatures: bool,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "role": "assistant",
        "content": _content(message.content, "assistant", cache_control=cache_control),
    }
    calls = [_tool_call_dict(c) for c in message.tool_calls]
    calls += [_invalid_tool_call_dict(c) for c in message.invalid_tool_calls]
    if calls:
        result["tool_calls"] = calls
        if not result["content"]:
            result["content"] = None
        if echo_thought_signatures:
            _attach_thought_signatures(calls, message.additional_kwargs)
    if echo_reasoning and (reasoning := _reasoning_to_echo(message)) is not None:
        result["reasoning_content"] = reasoning
    return result


def _attach_thought_signatures(
    calls: list[dict[str, Any]], additional_kwargs: Mapping[str, Any]
) -> None:
    """Give each wire tool call its Gemini thought signature back, if it had one."""
    signatures = additional_kwargs.get(THOUGHT_SIGNATURES)
    if not isinstance(signatures, dict) or not signatures:
        return
    for call in calls:
        signature = signatures.get(call["id"])
        if isinstance(signature, str):
            call["extra_content"] = {"google": {"thought_signature": signature}}


def _thought_signature(call: Mapping[str, Any]) -> str | None:
    """A wire tool call's Gemini thought signature, if it carries one."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _reasoning_to_echo(message: AIMessage) -> str | None:
    """The reasoning of an assistant turn, from ``additional_kwargs`` or blocks.

    ``output_version="v1"`` messages keep their reasoning as ``reasoning``
    content blocks rather than in ``additional_kwargs``.
    """
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str):
        return reasoning
    if isinstance(message.content, str):
        return None
    parts = [
        block["reasoning"]
        for block in message.content
        if isinstance(block, dict)
        and block.get("type") == "reasoning"
        and isinstance(block.get("reasoning"), str)
    ]
    return "".join(parts) if parts else None


def message_to_dict(
    message: BaseMessage,
    *,
    echo_reasoning: bool = False,
    cache_control: bool = True,
    echo_thought_signatures: bool = False,
) -> dict[str, Any]:
    """Convert one LangChain message to a Chat Completions message.

    Args:
        message: The message.
        echo_reasoning: Send an assistant turn's ``reasoning_content`` back (some
            thinking models require it on the next turn; others reject it).
        cache_control: Keep ``cache_control`` hints on content parts (Claude
            prompt caching); ``False`` strips them.
        echo_thought_signatures: Send an assistant turn's Gemini thought
            signatures back on its tool calls (``extra_content.google``); for
            other models they are dropped.

    Returns:
        The wire-format message.

    Raises:
        HolySheepInputError: If the message type or a content block cannot be sent.
    """
    result: dict[str, Any]
    keep = cache_control
    if isinstance(message, HumanMessage):
        result = {
            "role": "user",
            "content": _content(message.content, "user", cache_control=keep),
        }
    elif isinstance(message, AIMessage):
        result = _assistant_dict(
            message,
            echo_reasoning=echo_reasoning,
            cache_control=keep,
            echo_thought_signatures=echo_thought_signatures,
        )
    elif isinstance(message, SystemMessage):
        role = message.additional_kwargs.get("__openai_role__", "system")
        result = {
            "role": role,
            "content": _content(message.content, "system", cache_control=keep),
        }
    elif isinstance(message, ToolMessage):
        result = {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": _content(message.content, "tool", cache_control=keep),
        }
    elif isinstance(message, ChatMessage):
        result = {
            "role": message.role,
            "content": _content(message.content, "user", cache_control=keep),
        }
    elif isinstance(message, FunctionMessage):
        result = {"role": "function", "name": message.name, "content": message.text}
    else:
        _input_error(
            f"{type(message).__name__} cannot be sent to the chat completions API. "
            "Use SystemMessage, HumanMessage, AIMessage, ToolMessage or ChatMessage."
        )
    if message.name and "name" not in result:
        result["name"] = message.name
    return result


_SHORT_ID: Final = re.compile(r"[A-Za-z0-9]{9}")
_BASE62: Final = string.digits + string.ascii_letters


def short_tool_call_id(call_id: str) -> str:
    """The id to send for ``call_id`` to a model that takes 9-character ids only.

    Mistral's API accepts a tool call id only if it is 9 letters or digits; a
    conversation that another model started (``call_…``, ``toolu_…`` ids, after
    a fallback for instance) is refused with a 400. An id that is already valid
    is kept; any other becomes 9 base-62 characters of its SHA-256, the same on
    every call, so the assistant's call and the tool's answer still match. Two
    ids collide with a probability of about 1 in 10^16.

    Args:
        call_id: The tool call id as LangChain holds it.

    Returns:
        A 9-character id of letters and digits.
    """
    if _SHORT_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def _shorten_tool_call_ids(wire_messages: list[dict[str, Any]]) -> None:
    """Rewrite every tool call id in (freshly built) wire messages in place."""
    for message in wire_messages:
        for call in message.get("tool_calls") or ():
            if isinstance(call.get("id"), str):
                call["id"] = short_tool_call_id(call["id"])
        if isinstance(message.get("tool_call_id"), str):
            message["tool_call_id"] = short_tool_call_id(message["tool_call_id"])


def messages_to_dicts(
    messages: Sequence[BaseMessage],
    *,
    echo_reasoning: bool = False,
    short_tool_call_ids: bool = False,
    cache_control: bool = True,
    echo_thought_signatures: bool = False,
) -> list[dict[str, Any]]:
    """Convert a conversation, refusing an empty one.

    Args:
        messages: The conversation.
        echo_reasoning: See :func:`message_to_dict`.
        echo_thought_signatures: See :func:`message_to_dict`.
        short_tool_call_ids: Send tool call ids as :func:`short_tool_call_id`
            makes them (for models that accept 9-character ids only).
        cache_control: See :func:`message_to_dict`.

    Returns:
        The wire-format messages.

    Raises:
        HolySheepInputError: If there are no messages or one cannot be sent.
    """
    if not messages:
        _input_error("Cannot call the model with an empty list of messages.")
    wire = [
        message_to_dict(
            m,
            echo_reasoning=echo_reasoning,
            cache_control=cache_control,
            echo_thought_signatures=echo_thought_signatures,
        )
        for m in messages
    ]
    if short_tool_call_ids:
        _shorten_tool_call_ids(wire)
    return wire


def encode_body(body: Mapping[str, Any]) -> bytes:
    """Serialise a request body to compact UTF-8 JSON, once.

    The SDK's generic ``post(content=...)`` sends these bytes as they are: it
    neither deep-copies nor re-encodes the body (measured: ~6% of a call), and
    retries replay the same bytes.

    Args:
        body: The request body.

    Returns:
        The JSON document.

    Raises:
        HolySheepInputError: If a value cannot be sent as JSON (an object, NaN).
    """
    try:
        text = json.dumps(
            body, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        _input_error(
            f"The request cannot be sent as JSON: {error}. Pass only JSON values "
            "(str, number, bool, None, lists, dicts) in extra_body, model_kwargs "
            "and per-call parameters."
        )
    return text.encode()


OnDrop = Callable[[str, str, str], None]
"""Told ``(model, setting, reason)`` when a fallback member drops a setting."""


def build_request(
    params: Mapping[str, Any],
    call_kwargs: dict[str, Any],
    messages: Sequence[BaseMessage],
    capabilities: Callable[[object], Capabilities | None],
    *,
    stream: bool,
    stop: list[str] | None = None,
    extra_body: Mapping[str, Any] | None = None,
    stream_usage: bool = True,
    no_stream_options: Container[str] = (),
    on_drop: OnDrop | None = None,
) -> dict[str, Any]:
    """Build a chat request body and check it against the model's rules.

    The body is the model's parameters, then the per-call ones, then the
    conversation, then ``extra_body`` (the model's, then the call's), so a
    per-call value wins and ``extra_body`` has the last word.

    The model's rules (its row in the capability table; an unknown model has
    none): reasoning is echoed or stripped, tool call ids are shortened,
    ``cache_control`` hints are kept for Claude only, and what the model cannot
    take is refused. Two settings can be left out without changing what is
    asked (``top_p`` next to ``temperature`` for a model that takes one of
    them, ``parallel_tool_calls`` for a model without it): with ``on_drop``
    (a fallback chain's member) they are removed and reported to it; without
    (a bare model) they are refused like the rest.

    Args:
        params: The model's own request parameters (``"model"`` included).
        call_kwargs: The per-call parameters. ``extra_body``, ``stream_usage``
            and ``stream`` are taken out of it (it is the call's own dict).
        messages: The conversation.
        capabilities: Looks a model id up in the capability table (see
            :func:`~langchain_holysheep._profiles.get_capabilities`); the
            body's model (a per-call one wins) decides the rules.
        stream: Build a streaming request (``stream`` and, with
            ``stream_usage``, ``stream_options.include_usage``).
        stop: Stop sequences of the call (they replace the model's).
        extra_body: The model's extra JSON fields.
        stream_usage: The model's default for asking a stream for its usage.
        no_stream_options: Model ids whose gateway rejected ``stream_options``
            (never sent to them again).
        on_drop: Drop the droppable settings the model cannot take, and call
            this with ``(model, setting, reason)`` for each (``None``: refuse).

    Returns:
        The JSON body, ready for :func:`encode_body`.

    Raises:
        HolySheepInputError: Before anything is sent: ``n > 1`` on a stream,
            or a message that cannot be sent.
        HolySheepUnsupportedInputError: Before anything is sent, for what the
            model cannot take: an image, audio or file part it does not
            accept, or (without ``on_drop``) both ``temperature`` and
            ``top_p``, or ``parallel_tool_calls``.
    """
    extra = {**(extra_body or {}), **(call_kwargs.pop("extra_body", None) or {})}
    stream_usage = call_kwargs.pop("stream_usage", stream_usage)
    call_kwargs.pop("stream", None)
    body = {**params, **call_kwargs}
    if stop is not None:
        body["stop"] = stop
    if stream:
        if (body.get("n") or 1) > 1:
            _input_error("n > 1 cannot be streamed; call invoke() for several choices.")
        body["stream"] = True
        if stream_usage and body["model"] not in no_stream_options:
            body["stream_options"] = {"include_usage": True}
    model = body["model"]
    known = capabilities(model)
    body["messages"] = messages_to_dicts(
        messages,
        echo_reasoning=known is not None and known.echo_reasoning,
        short_tool_call_ids=known is not None and known.short_tool_call_ids,
        cache_control=keeps_cache_control(model, known),
        echo_thought_signatures=keeps_thought_signatures(model, known),
    )
    body.update(extra)
    if known is not None:
        _apply_rules(body, known, on_drop)
    return body


def _apply_rules(
    body: dict[str, Any], known: Capabilities, on_drop: OnDrop | None
) -> None:
    """Refuse (or, with ``on_drop``, drop) what the model cannot take."""
    model = body["model"]
    for setting, refusal, reason in _droppable(body, known):
        if on_drop is None:
            raise unsupported_error(refusal, model=model, setting=setting)
        del body[setting]
        on_drop(model, setting, reason)
    if known.refused_parts:
        _refuse_parts(body["messages"], known.refused_parts, model)


def _droppable(
    body: Mapping[str, Any], known: Capabilities
) -> list[tuple[str, str, str]]:
    """The settings in ``body`` the model cannot take but can do without.

    Each as ``(setting, refusal for a bare model, reason for a member)``.
    """
    model = body["model"]
    found = []
    if known.one_sampling_parameter and None not in (
        body.get("temperature"),
        body.get("top_p"),
    ):
        found.append(
            (
                "top_p",
                (
                    f"{model} does not accept temperature and top_p in the same "
                    "request (its API answers 400). Set only one of them."
                ),
                "it takes temperature or top_p, not both",
            )
        )
    if not known.parallel_tool_calls and body.get("parallel_tool_calls") is not None:
        found.append(
            (
                "parallel_tool_calls",
                (
                    f"Model {model!r} does not accept parallel_tool_calls; leave "
                    "it unset (tool results can still be handled one by one)."
                ),
                "its API does not take the parameter",
            )
        )
    return found


def _refuse_parts(
    wire_messages: list[dict[str, Any]], refused: Container[str], model: str
) -> None:
    """Raise on the first content part of a type the model cannot take."""
    for position, message in enumerate(wire_messages, start=1):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            kind = part.get("type")
            if kind in refused:
                what = _PART_NAMES[kind]
                raise unsupported_error(
                    f"Model {model!r} cannot take {what} input (message "
                    f"{position}, role {message.get('role')!r}, has a {kind!r} "
                    f"part), so nothing was sent. Remove the {what}, or send it "
                    f"to a model that takes {what}s (see each model's profile).",
                    model=model,
                    setting=kind,
                )


# --------------------------------------------------------------------------- #
# Token estimates (offline: no tokenizer, no download)
# --------------------------------------------------------------------------- #


def estimate_message_tokens(
    messages: Sequence[BaseMessage], tools: Sequence[Any] | None = None
) -> int:
    """Estimate a prompt's tokens, offline, for every model behind the gateway.

    langchain-core's ``count_tokens_approximately`` (about four characters a
    token, plus a few per message): what ``trim_messages`` and context budgets
    need, with no tokenizer (``tiktoken``, ``transformers``) and no network.

    Args:
        messages: The conversation.
        tools: Tools bound to the call, in any form ``bind_tools`` takes
            (counted by the size of their JSON schemas).

    Returns:
        The approximate number of input tokens.
    """
    from langchain_core.messages.utils import (  # noqa: PLC0415
        count_tokens_approximately,
    )
    from langchain_core.utils.function_calling import (  # noqa: PLC0415
        convert_to_openai_tool,
    )

    schemas: list[Any] | None = (
        [convert_to_openai_tool(t) for t in tools] if tools else None
    )
    return count_tokens_approximately(messages, tools=schemas)


def estimate_text_tokens(text: str) -> int:
    """Estimate the tokens of ``text``, offline (as :func:`estimate_message_tokens`).

    Args:
        text: Any text.

    Returns:
        The approximate number of tokens.
    """
    from langchain_core.messages.utils import (  # noqa: PLC0415
        count_tokens_approximately,
    )

    return count_tokens_approximately([HumanMessage(text)], extra_tokens_per_message=0)


def no_token_ids(owner: str) -> NotImplementedError:
    """The error ``get_token_ids`` raises: there are no token ids offline.

    The models behind the gateway each have their own tokenizer, none of which
    ships with this package, and fetching one is a download this package never
    makes (langchain-core's fallback would load GPT-2 through ``transformers``).

    Args:
        owner: The class name the error names.

    Returns:
        The error, to raise.
    """
    return NotImplementedError(
        f"{owner} has no offline tokenizer (the models behind the gateway each "
        "use their own), so it has no token ids. Count tokens with "
        "get_num_tokens() or get_num_tokens_from_messages() (an offline "
        "estimate), or pass custom_get_token_ids=... to the model."
    )


# --------------------------------------------------------------------------- #
# Response -> LangChain messages
# --------------------------------------------------------------------------- #


def _first_count(*candidates: object) -> int | None:
    """The first candidate that is a token count (an int, not a bool)."""
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _input_details(
    usage: Mapping[str, Any], prompt_details: Mapping[str, Any]
) -> InputTokenDetails | None:
    """Cache reads and cache writes, under the names gateways report them by.

    Reads: ``prompt_tokens_details.cached_tokens`` (OpenAI), else
    ``cache_read_input_tokens`` (Anthropic-style relays). Writes:
    ``prompt_tokens_details.cache_write_tokens`` (OpenRouter, the SDK) or
    ``.cache_creation_tokens``, else ``cache_creation_input_tokens``
    (Anthropic-style relays). Both are taken as part of ``prompt_tokens``.
    """
    read = _first_count(
        prompt_details.get("cached_tokens"), usage.get("cache_read_input_tokens")
    )
    write = _first_count(
        prompt_details.get("cache_write_tokens"),
        prompt_details.get("cache_creation_tokens"),
        usage.get("cache_creation_input_tokens"),
    )
    if read is None and write is None:
        return None
    details = InputTokenDetails()
    if read is not None:
        details["cache_read"] = read
    if write is not None:
        details["cache_creation"] = write
    return details


def usage_to_metadata(usage: Mapping[str, Any]) -> UsageMetadata:
    """Convert the API's ``usage`` object to LangChain's ``UsageMetadata``.

    Args:
        usage: ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and the
            optional ``prompt_tokens_details``/``completion_tokens_details``
            (and the cache counts some relays report at the top level).

    Returns:
        Usage with ``cache_read``, ``cache_creation`` (cache writes) and
        ``reasoning`` details where reported.
    """
    input_tokens = usage.get("prompt_tokens") or 0
    output_tokens = usage.get("completion_tokens") or 0
    metadata = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=usage.get("total_tokens") or input_tokens + output_tokens,
    )
    prompt_details = usage.get("prompt_tokens_details") or {}
    if (details := _input_details(usage, prompt_details)) is not None:
        metadata["input_token_details"] = details
    completion_details = usage.get("completion_tokens_details") or {}
    if (reasoning := completion_details.get("reasoning_tokens")) is not None:
        metadata["output_token_details"] = OutputTokenDetails(reasoning=reasoning)
    return metadata


def _parse_tool_calls(
    raw_calls: list[dict[str, Any]],
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls:
        function = raw.get("function") or {}
        name = function.get("name")
        arguments = function.get("arguments")
        problem: str | None = None
        try:
            args = json.loads(arguments) if arguments else {}
        except (json.JSONDecodeError, TypeError) as error:
            args, problem = None, f"Arguments are not valid JSON: {error}"
        if problem is None and not isinstance(args, dict):
            problem = "Arguments are not a JSON object"
        if isinstance(args, dict) and problem is None and isinstance(name, str):
            valid.append(
                ToolCall(name=name, args=args, id=raw.get("id"), type="tool_call")
            )
        else:
            invalid.append(
                InvalidToolCall(
                    name=name,
                    args=arguments,
                    id=raw.get("id"),
                    error=problem or "Tool call has no function name",
                    type="invalid_tool_call",
                )
            )
    return valid, invalid


def _reasoning_of(message: Mapping[str, Any]) -> str | None:
    """The reasoning text of a message or delta, in whichever form it came."""
    for key in _REASONING_KEYS:
        value = message.get(key)
        if isinstance(value, str):
            return value
    details = message.get("reasoning_details")
    return _reasoning_details_text(details) if details else None


def _reasoning_details_text(details: object) -> str | None:
    """The text of ``reasoning_details`` entries (``reasoning.text``/``.summary``)."""
    if not isinstance(details, list):
        return None
    parts = []
    for entry in details:
        if not isinstance(entry, dict):
            continue
        key = _REASONING_DETAIL_TEXT.get(str(entry.get("type")))
        if key is not None and isinstance(text := entry.get(key), str):
            parts.append(text)
    return "".join(parts) if parts else None


def _signatures_by_call(raw_calls: list[dict[str, Any]]) -> dict[str, str]:
    """The Gemini thought signatures of an answer's tool calls, by call id."""
    found = {}
    for call in raw_calls:
        if (signature := _thought_signature(call)) is not None and isinstance(
            call_id := call.get("id"), str
        ):
            found[call_id] = signature
    return found


def _response_metadata(
    data: Mapping[str, Any], usage: Any, requested_model: str | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "model_provider": PROVIDER,
        "model_name": data.get("model") or requested_model,
        "id": data.get("id"),
        "system_fingerprint": data.get("system_fingerprint"),
    }
    if usage is not None:
        metadata["token_usage"] = usage
    return metadata


def _choice_to_generation(
    choice: Mapping[str, Any], base_metadata: Mapping[str, Any], usage: Any
) -> ChatGeneration:
    message = choice.get("message")
    if not isinstance(message, dict):
        _response_error("A choice in the response has no message.", choice)
    additional_kwargs: dict[str, Any] = {}
    if (reasoning := _reasoning_of(message)) is not None:
        additional_kwargs["reasoning_content"] = reasoning
    if details := message.get("reasoning_details"):
        additional_kwargs["reasoning_details"] = details
    if message.get("refusal"):
        additional_kwargs["refusal"] = message["refusal"]
    raw_calls = message.get("tool_calls") or []
    if raw_calls:
        additional_kwargs["tool_calls"] = raw_calls
        if signatures := _signatures_by_call(raw_calls):
            additional_kwargs[THOUGHT_SIGNATURES] = signatures
    tool_calls, invalid_tool_calls = _parse_tool_calls(raw_calls)
    finish_reason = choice.get("finish_reason")
    response_metadata = {**base_metadata, "finish_reason": finish_reason}
    generation_info: dict[str, Any] = {"finish_reason": finish_reason}
    if choice.get("logprobs") is not None:
        response_metadata["logprobs"] = generation_info["logprobs"] = choice["logprobs"]
    ai_message = AIMessage(
        content=message.get("content") or "",
        additional_kwargs=additional_kwargs,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid_tool_calls,
        response_metadata=response_metadata,
        usage_metadata=usage_to_metadata(usage) if usage else None,
        id=base_metadata.get("id"),
    )
    return ChatGeneration(message=ai_message, generation_info=generation_info)


def completion_to_result(
    data: object, requested_model: str | None = None, *, allow_empty: bool = False
) -> ChatResult:
    """Convert a parsed ``chat.completion`` body to a ``ChatResult``.

    Args:
        data: The decoded JSON body (anything: it is validated here).
        requested_model: The model id that was asked for: the ``model_name``
            when the body names no model (some gateways leave it out).
        allow_empty: Return an answer that says nothing (see
            :func:`says_nothing`) instead of raising.

    Returns:
        One generation per choice, with usage and response metadata.

    Raises:
        HolySheepResponseError: If the body is not a chat completion (an HTML
            page, plain text, no ``choices``, ...). A body that is an error
            object (``{"error": {...}}``) raises the error it stands for once
            :func:`~langchain_holysheep.errors.translate_errors` maps it.
        HolySheepEmptyAnswerError: A choice has no text, no tool call and no
            refusal, unless ``allow_empty``.
    """
    if not isinstance(data, dict):
        snippet = str(data)[:200]
        _response_error(
            f"The gateway's response is not a JSON chat completion: {snippet!r}. "
            "Check that base_url points at the gateway's /v1 endpoint.",
            data,
        )
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        if _is_error_payload(data):
            _error_payload(data)
        _response_error("The gateway returned a chat completion with no choices.", data)
    usage = data.get("usage")
    base_metadata = _response_metadata(data, usage, requested_model)
    generations = [_choice_to_generation(c, base_metadata, usage) for c in choices]
    if not allow_empty:
        for generation in generations:
            message = generation.message
            if isinstance(message, AIMessage) and says_nothing(message):
                raise _empty_answer(
                    message.response_metadata.get("finish_reason"), message
                )
    llm_output = {
        "token_usage": usage,
        "model_name": base_metadata["model_name"],
        "system_fingerprint": data.get("system_fingerprint"),
        "id": data.get("id"),
    }
    return ChatResult(generations=generations, llm_output=llm_output)


def says_nothing(message: AIMessage) -> bool:
    """Whether an answer has no text, no tool call and no refusal.

    Whitespace is no text. A ``content_filter`` finish counts as a refusal (the
    provider withheld the answer; see :func:`translate_content`).

    Args:
        message: A whole answer.

    Returns:
        ``True`` for an empty answer.
    """
    content = message.content
    if isinstance(content, str):
        if content and not content.isspace():
            return False
    elif message.text.strip():
        return False
    return not (
        message.tool_calls
        or message.invalid_tool_calls
        or message.additional_kwargs.get("refusal")
        or message.response_metadata.get("finish_reason") == "content_filter"
    )


def _empty_answer(finish_reason: object, response: AIMessage | None) -> Exception:
    from langchain_holysheep.errors import HolySheepEmptyAnswerError  # noqa: PLC0415

    if finish_reason == "length":
        why = (
            "finish_reason 'length': it used up max_tokens before answering, "
            "perhaps while reasoning; raise max_tokens"
        )
    else:
        why = (
            f"finish_reason {finish_reason!r}; usually a passing fault upstream: "
            "retry, or let a fallback chain ask another model"
        )
    msg = (
        f"The model answered with no text, no tool call and no refusal ({why}). "
        "Set allow_empty_answer=True to get the empty message instead."
    )
    return HolySheepEmptyAnswerError(
        msg, finish_reason=finish_reason, response=response
    )


def json_instead_of_events(data: object) -> NoReturn:
    """Raise for a streaming request answered with a JSON body, not events.

    Args:
        data: The decoded body.

    Raises:
        HolySheepResponseError: Always: an error object is raised as the error
            it stands for (once mapped); anything else says what came back.
    """
    if isinstance(data, dict) and _is_error_payload(data):
        _error_payload(data)
    _response_error(
        "The gateway answered a streaming request with a JSON body instead of an "
        f"event stream: {str(data)[:200]!r}. Use invoke(), or check that the "
        "gateway supports streaming.",
        data,
    )


# --------------------------------------------------------------------------- #
# Stream chunks -> LangChain chunks
# --------------------------------------------------------------------------- #


class _ToolCallIndexer:
    """Gives every streamed tool-call delta an ``index``, synthesizing missing ones.

    Some backends (Gemini through compatible endpoints) omit ``index``. Then a
    delta with a new ``id`` starts the next call, a known ``id`` continues its
    call, and a delta with neither continues the last call, so parallel calls
    never merge into one invalid JSON string.
    """

    __slots__ = ("by_id", "ids", "last", "next")

    def __init__(self) -> None:
        self.by_id: dict[str, int] = {}
        self.ids: dict[int, str] = {}
        self.last: int | None = None
        self.next = 0

    def index_of(self, call: Mapping[str, Any]) -> int:
        call_id = call.get("id")
        index = call.get("index")
        if not isinstance(index, int):
            if isinstance(call_id, str) and call_id in self.by_id:
                index = self.by_id[call_id]
            elif call_id or self.last is None:
                index = self.next
            else:
                index = self.last
        if isinstance(call_id, str) and call_id:
            self.by_id.setdefault(call_id, index)
            self.ids.setdefault(index, call_id)
        self.last = index
        self.next = max(self.next, index + 1)
        return index


def _tool_call_chunks(
    raw_calls: list[dict[str, Any]], indexer: _ToolCallIndexer
) -> list[ToolCallChunk]:
    chunks = []
    for call in raw_calls:
        function = call.get("function") or {}
        chunks.append(
            tool_call_chunk(
                name=function.get("name"),
                args=function.get("arguments"),
                id=call.get("id"),
                index=indexer.index_of(call),
            )
        )
    return chunks


class StreamState:
    """What a stream has said so far: enough to finish it, or to report it cut.

    Feed each decoded SSE payload to :meth:`feed`; it returns the chunk to yield
    (or ``None`` for chunks that carry nothing, such as the role preamble). At the
    end, :meth:`last_chunk` returns the final chunk with the finish reason, usage
    and response metadata, or reports the stream as truncated.
    """

    __slots__ = (
        "finish_reason",
        "id",
        "logprobs",
        "model_name",
        "refused",
        "requested_model",
        "system_fingerprint",
        "text_parts",
        "tool_indexer",
        "usage",
    )

    def __init__(self, requested_model: str | None = None) -> None:
        """Start with nothing seen.

        Args:
            requested_model: The model id that was asked for: the final
                chunk's ``model_name`` when no chunk names a model.
        """
        self.id: str | None = None
        self.model_name: str | None = None
        self.requested_model = requested_model
        self.system_fingerprint: str | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.logprobs: list[Any] = []
        self.text_parts: list[str] = []
        self.tool_indexer = _ToolCallIndexer()
        self.refused = False

    def partial_text(self) -> str:
        """The content streamed so far (for errors that keep ``partial_text``)."""
        return "".join(self.text_parts)

    def feed(self, data: object) -> ChatGenerationChunk | None:
        """Take one decoded stream payload.

        Args:
            data: One ``chat.completion.chunk`` (already JSON-decoded).

        Returns:
            The chunk to hand to the caller, or ``None`` if it carries nothing.

        Raises:
            HolySheepResponseError: If the payload is not a chunk object.
        """
        if not isinstance(data, dict):
            _response_error(f"Unexpected stream payload: {str(data)[:200]!r}", data)
        self._note_metadata(data)
        choices = data.get("choices")
        if not choices:
            return None
        choice = choices[0]
        if reason := choice.get("finish_reason"):
            self.finish_reason = reason
        if logprobs := choice.get("logprobs"):
            self.logprobs.extend(logprobs.get("content") or ())
        delta = choice.get("delta")
        return self._delta_chunk(delta) if delta else None

    def _note_metadata(self, data: dict[str, Any]) -> None:
        if self.id is None:
            self.id = data.get("id")
            self.model_name = data.get("model")
        if fingerprint := data.get("system_fingerprint"):
            self.system_fingerprint = fingerprint
        if usage := data.get("usage"):
            self.usage = usage

    def _delta_chunk(self, delta: dict[str, Any]) -> ChatGenerationChunk | None:
        content = delta.get("content") or ""
        reasoning = _reasoning_of(delta)
        raw_calls = delta.get("tool_calls")
        refusal = delta.get("refusal")
        details = delta.get("reasoning_details")
        if not (content or reasoning or raw_calls or refusal or details):
            return None
        if content:
            self.text_parts.append(content)
        # Only fields that carry something are passed: a plain text chunk (the
        # common case) then validates two fields instead of four; the result is
        # the same message, since the others default to empty.
        fields: dict[str, Any] = {}
        if reasoning:
            fields["additional_kwargs"] = {"reasoning_content": reasoning}
        if refusal and isinstance(refusal, str):
            fields.setdefault("additional_kwargs", {})["refusal"] = refusal
            self.refused = True
        if details:
            fields.setdefault("additional_kwargs", {})["reasoning_details"] = details
        if raw_calls:
            chunks = _tool_call_chunks(raw_calls, self.tool_indexer)
            fields["tool_call_chunks"] = chunks
            if signatures := self._signatures(raw_calls, chunks):
                fields.setdefault("additional_kwargs", {})[THOUGHT_SIGNATURES] = (
                    signatures
                )
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                response_metadata={"model_provider": PROVIDER},
                **fields,
            )
        )

    def _signatures(
        self, raw_calls: list[dict[str, Any]], chunks: list[ToolCallChunk]
    ) -> dict[str, str]:
        """Thought signatures in tool-call deltas, by the id of their call."""
        found = {}
        for call, chunk in zip(raw_calls, chunks, strict=True):
            if (signature := _thought_signature(call)) is None:
                continue
            index = chunk.get("index")
            call_id = chunk.get("id") or (
                self.tool_indexer.ids.get(index) if isinstance(index, int) else None
            )
            if call_id:
                found[call_id] = signature
        return found

    @property
    def complete(self) -> bool:
        """Whether the stream reported how it finished (a finish reason)."""
        return self.finish_reason is not None

    @property
    def said_nothing(self) -> bool:
        """Whether the stream had no text, no tool call and no refusal.

        As :func:`says_nothing` decides for a whole answer (read at the end, so
        no chunk pays for it).
        """
        return not (
            any(not part.isspace() for part in self.text_parts)
            or self.tool_indexer.next
            or self.refused
            or self.finish_reason == "content_filter"
        )

    def last_chunk(
        self, request: Any, *, allow_empty: bool = False
    ) -> ChatGenerationChunk:
        """:meth:`finish` a stream the model completed; report one that was cut.

        Args:
            request: The stream's HTTP request (the error carries it).
            allow_empty: Finish a stream that said nothing instead of raising.

        Returns:
            The final chunk (see :meth:`finish`).

        Raises:
            HolySheepTruncatedStreamError: No ``finish_reason`` arrived; the
                text received so far is on the error as ``partial_text``.
            HolySheepEmptyAnswerError: The stream said nothing (see
                :attr:`said_nothing`), unless ``allow_empty``.
        """
        if not self.complete:
            from langchain_holysheep.errors import (  # noqa: PLC0415
                HolySheepTruncatedStreamError,
            )

            msg = (
                "The stream ended before the model finished (no finish_reason): "
                f"{len(self.partial_text())} characters were received and are kept "
                "in error.partial_text. Retry the request."
            )
            raise HolySheepTruncatedStreamError(msg, request, body=None)
        if not allow_empty and self.said_nothing:
            raise _empty_answer(self.finish_reason, None)
        return self.finish()

    def finish(self) -> ChatGenerationChunk:
        """Return the final chunk carrying finish reason, usage and metadata.

        Returns:
            An empty-content chunk marked ``chunk_position="last"``.
        """
        response_metadata: dict[str, Any] = {
            "model_provider": PROVIDER,
            "model_name": self.model_name or self.requested_model,
            "id": self.id,
            "system_fingerprint": self.system_fingerprint,
            "finish_reason": self.finish_reason,
        }
        if self.usage is not None:
            response_metadata["token_usage"] = self.usage
        generation_info: dict[str, Any] = {"finish_reason": self.finish_reason}
        if self.logprobs:
            response_metadata["logprobs"] = {"content": self.logprobs}
            generation_info["logprobs"] = {"content": self.logprobs}
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                response_metadata=response_metadata,
                usage_metadata=usage_to_metadata(self.usage) if self.usage else None,
                chunk_position="last",
            ),
            generation_info=generation_info,
        )


# --------------------------------------------------------------------------- #
# Standard content blocks (``message.content_blocks``, ``output_version="v1"``)
# --------------------------------------------------------------------------- #


def _refusal_blocks(message: BaseMessage) -> list[types.ContentBlock]:
    refusal = message.additional_kwargs.get("refusal")
    if isinstance(refusal, str) and refusal:
        return [{"type": "refusal", "refusal": refusal}]
    if message.response_metadata.get("finish_reason") == "content_filter":
        return [
            {"type": "refusal", "refusal": "", "extras": {"category": "content_filter"}}
        ]
    return []


def _leading_blocks(message: BaseMessage) -> list[types.ContentBlock]:
    """The reasoning and text blocks of a message with string content."""
    if not isinstance(message.content, str):
        # Content that is already a list of blocks: core's best-effort parsing.
        raise NotImplementedError
    blocks: list[types.ContentBlock] = []
    reasoning = message.additional_kwargs.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        blocks.append({"type": "reasoning", "reasoning": reasoning})
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    return blocks


def _call_blocks(
    calls: Sequence[ToolCall], invalid: Sequence[InvalidToolCall]
) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = [
        {"type": "tool_call", "name": c["name"], "args": c["args"], "id": c.get("id")}
        for c in calls
    ]
    blocks.extend(
        {
            "type": "invalid_tool_call",
            "name": c.get("name"),
            "args": c.get("args"),
            "id": c.get("id"),
            "error": c.get("error"),
        }
        for c in invalid
    )
    return blocks


def translate_content(message: AIMessage) -> list[types.ContentBlock]:
    """The standard content blocks of an answer from the gateway.

    Registered for the ``holysheep`` provider, so ``message.content_blocks``
    and ``output_version="v1"`` use it: reasoning, text, tool calls (valid and
    invalid), then a ``refusal`` block for ``message.refusal`` (or a
    ``content_filter`` finish, with ``extras.category``), which langchain's
    ``ModelRefusalMiddleware`` looks for.

    Args:
        message: An answer whose ``content`` is a string (list content is left
            to langchain-core's best-effort parsing).

    Returns:
        The blocks, in that order.

    Raises:
        NotImplementedError: The content is already a list (core falls back).
    """
    blocks = _leading_blocks(message)
    blocks += _call_blocks(message.tool_calls, message.invalid_tool_calls)
    return blocks + _refusal_blocks(message)


def translate_content_chunk(message: AIMessageChunk) -> list[types.ContentBlock]:
    """The standard content blocks of a streamed chunk (see :func:`translate_content`).

    Tool calls are ``tool_call_chunk`` blocks until the chunk is the aggregate
    of a whole stream (``chunk_position="last"``).

    Args:
        message: A chunk with string content.

    Returns:
        The blocks.

    Raises:
        NotImplementedError: The content is already a list (core falls back).
    """
    blocks = _leading_blocks(message)
    if message.chunk_position == "last":
        blocks += _call_blocks(message.tool_calls, message.invalid_tool_calls)
    else:
        for piece in message.tool_call_chunks:
            block: types.ToolCallChunk = {
                "type": "tool_call_chunk",
                "id": piece.get("id"),
                "name": piece.get("name"),
                "args": piece.get("args"),
            }
            if (index := piece.get("index")) is not None:
                block["index"] = index
            blocks.append(block)
    return blocks + _refusal_blocks(message)


def _register_translator() -> None:
    """Register the block translator, as langchain-core's own providers do.

    Runs once, when this module is first imported (by the chat model): the
    registry is already loaded by then, so ``import langchain_holysheep`` stays
    as cheap as before.
    """
    from langchain_core.messages.block_translators import (  # noqa: PLC0415
        register_translator,
    )

    register_translator(PROVIDER, translate_content, translate_content_chunk)


_register_translator()
