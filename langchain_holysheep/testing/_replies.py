"""Scripted replies and faults for the offline gateway, and their wire rendering.

:class:`Reply`, :class:`ToolCall` and :class:`Fault` describe what the gateway
should answer; the ``render_*`` functions turn them into the exact bytes an
OpenAI-compatible server would send (a ``chat.completion`` JSON document, a
list of server-sent events, or an error response).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

__all__ = [
    "CREATED",
    "ChatPlan",
    "Fault",
    "Reply",
    "StreamScript",
    "ToolCall",
    "content_part_error",
    "dumps",
    "error_body",
    "last_user_text",
    "message_text",
    "plan_chat",
    "prompt_tokens",
    "render_chat_json",
    "render_chat_stream",
    "render_fault",
    "split_words",
]

CREATED = 1767225600
"""The fixed ``created`` timestamp of every response (2026-01-01T00:00:00Z)."""

_ARG_PIECE = 8
_WORD_PIECE = re.compile(r"\S+\s*")
_MALFORMED_EVENT = b'data: {"choices": [ {bad json\n\n'
_DONE_EVENT = b"data: [DONE]\n\n"

dumps = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON encoder used for every response body."""

_DEFAULT_MESSAGES = {
    400: "The request was invalid.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to access this resource.",
    404: "The requested resource was not found.",
    408: "The request timed out.",
    409: "The request conflicts with the current state of the resource.",
    413: "The request is too large.",
    422: "The request could not be processed.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request.",
    502: "Bad gateway: the upstream model provider returned an invalid response.",
    503: "The engine is currently overloaded. Please try again later.",
    504: "The upstream model provider timed out.",
}

_DEFAULT_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool (function) call the scripted assistant makes.

    Attributes:
        name: The function name.
        arguments: A dict (sent JSON-encoded) or a string sent verbatim, so a
            test can send arguments that are not valid JSON.
        id: The tool-call id; defaults to ``call_offline_<request>_<position>``.
        thought_signature: A Gemini thought signature, sent as the call's
            ``extra_content.google.thought_signature`` (in the first stream
            delta of the call when streaming).
    """

    name: str
    arguments: str | dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    thought_signature: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments exactly as they are put on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return dumps(self.arguments)


@dataclass(kw_only=True, slots=True)
class Reply:
    """A scripted assistant answer for ``POST /v1/chat/completions``.

    Every field is optional. With no ``content``, no ``tool_calls`` and no
    ``refusal``, the gateway answers ``"Offline reply to: <last user text>"``.
    Stream knobs count *delta chunks*: the events carrying reasoning, content,
    refusal or tool-call deltas (the initial ``role`` event is not counted).

    Attributes:
        content: The assistant text.
        reasoning: Sent as ``reasoning_content`` (see ``reasoning_format``).
        reasoning_format: The field the reasoning is sent in:
            ``"reasoning_content"`` (DeepSeek and most gateways), ``"reasoning"``
            or ``"reasoning_details"`` (the list form OpenRouter uses:
            ``[{"type": "reasoning.text", "text": ..., "index": 0}]``).
        tool_calls: Tool calls made by the assistant.
        refusal: Sent as ``message.refusal``.
        finish_reason: Defaults to ``"tool_calls"`` with tool calls, else
            ``"stop"``.
        model: The model name in the response (default: the requested one).
        omit_model: Leave ``model`` out of the response (and of every stream
            chunk), as some gateways do.
        usage: Keys that override the computed usage (nested dicts merge).
        cost_usd: When set, ``usage.cost_usd`` carries it.
        chunks: Stream the content in exactly this many pieces. Text shorter
            than ``chunks`` characters is padded with ``"tok "`` words.
        id: The completion id (default ``chatcmpl-offline-<counter>``).
        system_fingerprint: Defaults to ``"fp_offline"``.
        created: The ``created`` timestamp (default 2026-01-01T00:00:00Z).
        logprobs: ``None`` follows the request's ``logprobs`` flag; ``True``
            or ``False`` forces per-word log-probabilities on or off.
        delay_before_headers: Seconds to wait before answering (JSON or SSE).
        chunk_delay: Seconds to sleep between server-sent events.
        cut_after_chunks: Close the TCP connection abruptly after this many
            delta chunks, without finishing the chunked body.
        malformed_chunk_at: Replace the data of the Nth event (1-based,
            counting the initial role event) with invalid JSON.
        error_after_chunks: After this many delta chunks, send an ``error``
            event and end the stream cleanly (no finish chunk, no ``[DONE]``).
        error_message: The message of that error event.
        error_code: The code of that error event.
        omit_done: Do not send ``data: [DONE]``.
        omit_finish_reason: Do not send the chunk carrying ``finish_reason``.
        omit_tool_call_index: Tool-call deltas carry no ``index`` (a Gemini
            quirk).
        stop_at_max_tokens: Stop the answer where the request's
            ``max_tokens`` (or ``max_completion_tokens``) runs out, as a model
            does, counting one token per piece (a word, or a tool-call argument
            piece): reasoning, then content, then refusal, then tool calls use
            up the budget, and a cut answer ends with ``finish_reason: "length"``
            (a cut-off JSON answer, an answer that reasoned until the limit).
        error_type: The ``type`` of the ``error_after_chunks`` error event.
    """

    content: str | None = None
    reasoning: str | None = None
    reasoning_format: Literal["reasoning_content", "reasoning", "reasoning_details"] = (
        "reasoning_content"
    )
    tool_calls: list[ToolCall] | None = None
    refusal: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    omit_model: bool = False
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    chunks: int | None = None
    id: str | None = None
    system_fingerprint: str | None = None
    created: int | None = None
    logprobs: bool | None = None
    delay_before_headers: float = 0.0
    chunk_delay: float = 0.0
    cut_after_chunks: int | None = None
    malformed_chunk_at: int | None = None
    error_after_chunks: int | None = None
    error_message: str = "The upstream model failed mid-stream."
    error_code: str | None = None
    omit_done: bool = False
    omit_finish_reason: bool = False
    omit_tool_call_index: bool = False
    stop_at_max_tokens: bool = False
    error_type: str = "server_error"

    def __post_init__(self) -> None:
        """Reject knob values that cannot be honoured."""
        if self.chunks is not None and self.chunks < 1:
            raise ValueError("Reply.chunks must be at least 1")
        for name in ("cut_after_chunks", "error_after_chunks"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Reply.{name} must not be negative")
        if self.malformed_chunk_at is not None and self.malformed_chunk_at < 1:
            raise ValueError("Reply.malformed_chunk_at is 1-based")


@dataclass(kw_only=True, slots=True)
class Fault:
    """A scripted failure: an HTTP error, a verbatim body or a dropped socket.

    Attributes:
        status: The HTTP status code.
        message: The error message; ``None`` picks a typical one for the status.
        type: The error type; ``None`` picks a typical one for the status
            (``invalid_request_error`` for most 4xx, ``server_error`` for 5xx,
            and for a 200: ``Fault(status=200, ...)`` sends the error object
            with a success status, as some gateways do).
        code: The error code.
        param: The error param.
        body: When given, sent verbatim instead of the OpenAI error document
            (``str`` is UTF-8 encoded, ``dict``/``list`` JSON-encoded).
        content_type: The ``Content-Type`` of the response.
        headers: Extra response headers, e.g. ``{"Retry-After": "1"}``.
        delay_before_headers: Seconds to wait before answering.
        close_connection: Read the request, then close the socket without
            sending any response (the client sees a connection error).
        repeat: How many consecutive requests this fault answers when queued.
    """

    status: int = 500
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    body: str | bytes | dict[str, Any] | list[Any] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay_before_headers: float = 0.0
    close_connection: bool = False
    repeat: int = 1

    def __post_init__(self) -> None:
        """Reject a fault that would never be sent."""
        if self.repeat < 1:
            raise ValueError("Fault.repeat must be at least 1")
        if not 100 <= self.status <= 999:  # noqa: PLR2004
            raise ValueError("Fault.status must be an HTTP status code")


@dataclass(slots=True)
class ChatPlan:
    """Everything needed to render one chat completion, computed once."""

    id: str
    created: int
    model: str | None
    fingerprint: str
    content: str | None
    content_pieces: list[str]
    reasoning: str | None
    reasoning_pieces: list[str]
    refusal: str | None
    refusal_pieces: list[str]
    tool_calls: list[tuple[str, str, str, list[str]]]
    signatures: dict[str, str]
    reasoning_format: str
    finish_reason: str
    usage: dict[str, Any]
    n: int
    logprobs: bool
    top_logprobs: int


@dataclass(slots=True)
class StreamScript:
    r"""The server-sent events of one streamed reply.

    Attributes:
        events: Each event as ``data: ...\n\n`` bytes, in order.
        cut_after: When set, write only this many events, then drop the
            connection without ending the chunked body.
    """

    events: list[bytes]
    cut_after: int | None


def split_words(text: str) -> list[str]:
    """Split text into one piece per word, each keeping its trailing space.

    Args:
        text: The text to split.

    Returns:
        Pieces whose concatenation is exactly ``text`` (empty text: no piece).
    """
    if not text:
        return []
    pieces: list[str] = _WORD_PIECE.findall(text)
    if not pieces:
        return [text]
    lead = len(text) - len(text.lstrip())
    if lead:
        pieces[0] = text[:lead] + pieces[0]
    return pieces


def _split_exact(text: str, n: int) -> list[str]:
    if len(text) < n:
        if text and not text[-1].isspace():
            text += " "
        missing = n - len(text)
        text += "tok " * math.ceil(missing / 4)
    size = len(text)
    return [text[i * size // n : (i + 1) * size // n] for i in range(n)]


def message_text(message: object) -> str:
    """Return the text of one chat message (list content: text parts, spaced).

    Args:
        message: A message dict from the request.

    Returns:
        The message text, or ``""`` when it has none.
    """
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return " ".join(parts)
    return ""


_PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


def _part_problem(part: object, role: object) -> str | None:
    """Why one content part would be refused by the API, or ``None``."""
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        return "each content part must be an object with a 'type'."
    kind = part["type"]
    if kind not in _PART_TYPES or (kind == "refusal" and role != "assistant"):
        allowed = ", ".join(repr(t) for t in _PART_TYPES)
        return f"Invalid value: {kind!r}. Supported values are: {allowed}."
    inner = part.get(kind)
    if kind in {"text", "refusal"}:
        return None if isinstance(inner, str) else f"a {kind} part needs {kind!r}."
    if kind == "image_url":
        ok = isinstance(inner, dict) and isinstance(inner.get("url"), str)
        return None if ok else "an image_url part needs image_url.url."
    if kind == "input_audio":
        ok = isinstance(inner, dict) and all(
            isinstance(inner.get(k), str) for k in ("data", "format")
        )
        return None if ok else "an input_audio part needs input_audio.data and .format."
    ok = isinstance(inner, dict) and (
        isinstance(inner.get("file_id"), str)
        or str(inner.get("file_data", "")).startswith("data:")
    )
    return (
        None
        if ok
        else "a file part needs file.file_data (a data: URL) or file.file_id."
    )


def content_part_error(messages: list[Any]) -> tuple[str, str] | None:
    """Check the content parts of a chat request as the OpenAI API does.

    Args:
        messages: The request's ``messages``.

    Returns:
        ``(message, param)`` for the first malformed part (for example a
        LangChain ``file`` block sent unconverted), or ``None`` if all are valid.
    """
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            problem = _part_problem(part, message.get("role"))
            if problem is not None:
                param = f"messages[{i}].content[{j}]"
                return f"Invalid content part {param}: {problem}", param
    return None


def last_user_text(messages: list[Any]) -> str:
    """Return the text of the last ``user`` message.

    Args:
        messages: The request's ``messages``.

    Returns:
        Its text, or ``""`` when there is no user message.
    """
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    """Count prompt tokens: per message, its words plus 4.

    Args:
        messages: The request's ``messages``.

    Returns:
        The prompt token count.
    """
    return sum(len(message_text(m).split()) + 4 for m in messages)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = {**current, **value}
        else:
            merged[key] = value
    return merged


def _plan_calls(
    reply: Reply, seq: int
) -> tuple[list[tuple[str, str, str, list[str]]], dict[str, str]]:
    """The tool calls as (id, name, arguments, pieces), and their signatures."""
    calls: list[tuple[str, str, str, list[str]]] = []
    signatures: dict[str, str] = {}
    for i, call in enumerate(reply.tool_calls or ()):
        args = call.arguments_json
        pieces = [args[j : j + _ARG_PIECE] for j in range(0, len(args), _ARG_PIECE)]
        call_id = call.id or f"call_offline_{seq}_{i}"
        calls.append((call_id, call.name, args, pieces))
        if call.thought_signature is not None:
            signatures[call_id] = call.thought_signature
    return calls, signatures


def plan_chat(reply: Reply, body: dict[str, Any], seq: int) -> ChatPlan:
    """Compute the content, pieces and usage of a reply to one request.

    Args:
        reply: The scripted reply.
        body: The parsed request body.
        seq: A per-gateway request counter used for default ids.

    Returns:
        The plan both renderers use, so JSON and SSE answers agree.
    """
    messages: list[Any] = body.get("messages") or []
    content = reply.content
    if content is None and not reply.tool_calls and reply.refusal is None:
        content = f"Offline reply to: {last_user_text(messages)}"
    if content is None:
        content_pieces: list[str] = []
    elif reply.chunks is not None:
        content_pieces = _split_exact(content, reply.chunks)
        content = "".join(content_pieces)
    else:
        content_pieces = split_words(content)
    reasoning_pieces = split_words(reply.reasoning or "")
    refusal_pieces = split_words(reply.refusal or "")
    calls, signatures = _plan_calls(reply, seq)
    reasoning, refusal, cut = reply.reasoning, reply.refusal, False
    if reply.stop_at_max_tokens:
        budget = _Budget.of(body)
        reasoning_pieces = budget(reasoning_pieces)
        content_pieces = budget(content_pieces)
        refusal_pieces = budget(refusal_pieces)
        calls = budget.calls(calls)
        if cut := budget.cut:
            content = None if content is None else "".join(content_pieces)
            reasoning = None if reasoning is None else "".join(reasoning_pieces)
            refusal = "".join(refusal_pieces) or None
    requested_n = body.get("n")
    n = requested_n if isinstance(requested_n, int) and requested_n > 1 else 1
    pieces_count = (
        len(content_pieces)
        + len(reasoning_pieces)
        + len(refusal_pieces)
        + sum(len(c[3]) for c in calls)
    )
    prompt = prompt_tokens(messages)
    completion = pieces_count * n
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": len((reasoning or "").split()) * n
        },
    }
    if reply.usage:
        usage = _merge(usage, reply.usage)
        if "total_tokens" not in reply.usage:
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if reply.cost_usd is not None:
        usage["cost_usd"] = reply.cost_usd
    wants_logprobs = (
        bool(body.get("logprobs")) if reply.logprobs is None else reply.logprobs
    )
    top = body.get("top_logprobs")
    model = body.get("model")
    return ChatPlan(
        id=reply.id or f"chatcmpl-offline-{seq}",
        created=CREATED if reply.created is None else reply.created,
        model=None
        if reply.omit_model
        else reply.model or (model if isinstance(model, str) else "offline"),
        fingerprint=reply.system_fingerprint or "fp_offline",
        content=content,
        content_pieces=content_pieces,
        reasoning=reasoning,
        reasoning_pieces=reasoning_pieces,
        refusal=refusal,
        refusal_pieces=refusal_pieces,
        tool_calls=calls,
        signatures=signatures,
        reasoning_format=reply.reasoning_format,
        finish_reason=reply.finish_reason
        or ("length" if cut else "tool_calls" if calls else "stop"),
        usage=usage,
        n=n,
        logprobs=wants_logprobs,
        top_logprobs=min(max(top, 0), 20) if isinstance(top, int) else 0,
    )


class _Budget:
    """The tokens left of a request's ``max_tokens`` (``stop_at_max_tokens``)."""

    __slots__ = ("cut", "left")

    def __init__(self, tokens: int | None) -> None:
        self.left = tokens
        self.cut = False

    @classmethod
    def of(cls, body: dict[str, Any]) -> _Budget:
        """The budget a request sets (none: nothing is cut)."""
        tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        return cls(tokens if isinstance(tokens, int) and tokens >= 0 else None)

    def __call__(self, pieces: list[str]) -> list[str]:
        """The pieces that fit, one token each; the rest is cut."""
        if self.left is None:
            return pieces
        kept = pieces[: self.left]
        self.left -= len(kept)
        self.cut = self.cut or len(kept) < len(pieces)
        return kept

    def calls(
        self, calls: list[tuple[str, str, str, list[str]]]
    ) -> list[tuple[str, str, str, list[str]]]:
        """The tool calls that start within the budget, their arguments cut."""
        kept = []
        for call_id, name, arguments, pieces in calls:
            if self.left == 0 and pieces:
                self.cut = True
                break
            fitting = self(pieces)
            kept.append((call_id, name, "".join(fitting) or arguments, fitting))
        return kept


def _token_logprob(piece: str, top: int) -> dict[str, Any]:
    token_bytes = list(piece.encode())
    alternatives = [{"token": piece, "logprob": -0.1, "bytes": token_bytes}]
    alternatives += [
        {"token": f"alt{j}", "logprob": -2.0 - j, "bytes": list(f"alt{j}".encode())}
        for j in range(1, top)
    ]
    return {
        "token": piece,
        "logprob": -0.1,
        "bytes": token_bytes,
        "top_logprobs": alternatives[:top],
    }


def render_chat_json(plan: ChatPlan) -> bytes:
    """Render a non-streamed ``chat.completion`` document.

    Args:
        plan: The reply plan.

    Returns:
        The JSON body.
    """
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.content,
        "refusal": plan.refusal,
    }
    if plan.reasoning is not None:
        message.update(_reasoning_field(plan, plan.reasoning))
    if plan.tool_calls:
        message["tool_calls"] = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": name, "arguments": a},
                **_signature_field(plan, cid),
            }
            for cid, name, a, _ in plan.tool_calls
        ]
    logprobs = None
    if plan.logprobs:
        logprobs = {
            "content": [
                _token_logprob(p, plan.top_logprobs) for p in plan.content_pieces
            ],
            "refusal": None,
        }
    document: dict[str, Any] = {
        "id": plan.id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": plan.fingerprint,
        "choices": [
            {
                "index": i,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": plan.finish_reason,
            }
            for i in range(plan.n)
        ],
        "usage": plan.usage,
    }
    if plan.model is None:
        del document["model"]
    return dumps(document).encode()


class _Events:
    """Builds ``chat.completion.chunk`` events from precomputed JSON pieces."""

    __slots__ = ("head", "indices", "tail")

    def __init__(self, plan: ChatPlan, *, include_usage: bool) -> None:
        model = "" if plan.model is None else f'"model":{dumps(plan.model)},'
        self.head = (
            f'{{"id":{dumps(plan.id)},"object":"chat.completion.chunk",'
            f'"created":{plan.created},{model}'
            f'"system_fingerprint":{dumps(plan.fingerprint)},"choices":['
        )
        self.tail = ',"usage":null}' if include_usage else "}"
        self.indices = range(plan.n)

    def __call__(
        self, delta: str, finish: str | None = None, logprobs: str = "null"
    ) -> bytes:
        reason = "null" if finish is None else dumps(finish)
        choices = ",".join(
            f'{{"index":{i},"delta":{delta},"logprobs":{logprobs},'
            f'"finish_reason":{reason}}}'
            for i in self.indices
        )
        return f"data: {self.head}{choices}]{self.tail}\n\n".encode()

    def usage(self, usage: dict[str, Any]) -> bytes:
        return f'data: {self.head}],"usage":{dumps(usage)}}}\n\n'.encode()


def _reasoning_field(plan: ChatPlan, text: str) -> dict[str, Any]:
    """The reasoning as the reply's ``reasoning_format`` puts it on the wire."""
    if plan.reasoning_format == "reasoning_details":
        return {
            "reasoning_details": [
                {
                    "type": "reasoning.text",
                    "text": text,
                    "index": 0,
                    "format": "unknown",
                }
            ]
        }
    return {plan.reasoning_format: text}


def _signature_field(plan: ChatPlan, call_id: str) -> dict[str, Any]:
    """A tool call's ``extra_content`` with its thought signature, if it has one."""
    signature = plan.signatures.get(call_id)
    if signature is None:
        return {}
    return {"extra_content": {"google": {"thought_signature": signature}}}


def _delta_events(plan: ChatPlan, reply: Reply, event: _Events) -> list[bytes]:
    deltas = [event(dumps(_reasoning_field(plan, p))) for p in plan.reasoning_pieces]
    for piece in plan.content_pieces:
        logprobs = "null"
        if plan.logprobs:
            entry = dumps(_token_logprob(piece, plan.top_logprobs))
            logprobs = f'{{"content":[{entry}],"refusal":null}}'
        deltas.append(event(f'{{"content":{dumps(piece)}}}', logprobs=logprobs))
    deltas += [event(f'{{"refusal":{dumps(p)}}}') for p in plan.refusal_pieces]
    for index, (cid, name, _, pieces) in enumerate(plan.tool_calls):
        at = "" if reply.omit_tool_call_index else f'"index":{index},'
        extra = _signature_field(plan, cid)
        signed = f',"extra_content":{dumps(extra["extra_content"])}' if extra else ""
        deltas.append(
            event(
                f'{{"tool_calls":[{{{at}"id":{dumps(cid)},"type":"function",'
                f'"function":{{"name":{dumps(name)},"arguments":""}}{signed}}}]}}'
            )
        )
        deltas += [
            event(f'{{"tool_calls":[{{{at}"function":{{"arguments":{dumps(p)}}}}}]}}')
            for p in pieces
        ]
    return deltas


def render_chat_stream(
    plan: ChatPlan, reply: Reply, *, include_usage: bool
) -> StreamScript:
    """Render a streamed reply as server-sent events, applying the knobs.

    Args:
        plan: The reply plan.
        reply: The reply (for its stream knobs).
        include_usage: Whether the request asked for a final usage chunk.

    Returns:
        The events to send and where to cut the connection, if anywhere.
    """
    event = _Events(plan, include_usage=include_usage)
    deltas = _delta_events(plan, reply, event)
    events = [event('{"role":"assistant","content":""}')]
    if reply.error_after_chunks is not None:
        events += deltas[: reply.error_after_chunks]
        error = {
            "error": {
                "message": reply.error_message,
                "type": reply.error_type,
                "param": None,
                "code": reply.error_code,
            }
        }
        events.append(f"data: {dumps(error)}\n\n".encode())
    else:
        events += deltas
        if not reply.omit_finish_reason:
            events.append(event("{}", plan.finish_reason))
        if include_usage:
            events.append(event.usage(plan.usage))
        if not reply.omit_done:
            events.append(_DONE_EVENT)
    if reply.malformed_chunk_at is not None and reply.malformed_chunk_at <= len(events):
        events[reply.malformed_chunk_at - 1] = _MALFORMED_EVENT
    cut = None
    if reply.cut_after_chunks is not None:
        cut = min(1 + reply.cut_after_chunks, len(events))
    return StreamScript(events=events, cut_after=cut)


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> bytes:
    """Render an OpenAI-style error document.

    Args:
        message: The error message.
        type_: The error type.
        param: The offending parameter.
        code: The error code.

    Returns:
        The JSON body.
    """
    error = {"message": message, "type": type_, "param": param, "code": code}
    return dumps({"error": error}).encode()


def render_fault(fault: Fault) -> tuple[bytes, str]:
    """Render the body of a fault.

    Args:
        fault: The fault.

    Returns:
        The body bytes and their content type.
    """
    body = fault.body
    if isinstance(body, bytes):
        return body, fault.content_type
    if isinstance(body, str):
        return body.encode(), fault.content_type
    if body is not None:
        return dumps(body).encode(), fault.content_type
    status = fault.status
    message = fault.message
    if message is None:
        message = _DEFAULT_MESSAGES.get(status)
        if message is None:
            try:
                message = HTTPStatus(status).phrase
            except ValueError:
                message = f"HTTP {status}"
    type_ = fault.type
    if type_ is None:
        # An error object sent with a 2xx/3xx is a gateway's way of reporting an
        # upstream failure; 4xx are the client's fault, 5xx the server's.
        client_error = 400 <= status < 500  # noqa: PLR2004
        type_ = _DEFAULT_TYPES.get(
            status, "invalid_request_error" if client_error else "server_error"
        )
    return error_body(message, type_, fault.param, fault.code), fault.content_type
