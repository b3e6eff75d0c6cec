"""The batch line formats: one input line in, one output line out (pure, no I/O).

Input lines are the OpenAI Batch API's JSONL::

    {"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}}

``method`` and ``url`` may be left out; ``url`` may also be ``/chat/completions``.
:func:`parse_line` checks one line and returns its :class:`BatchRequest`, or
raises :class:`BatchInputError` naming the line, what is wrong and what to do.

Output lines are the OpenAI Batch API's output shape plus our own fields::

    {"id": "batch_req_<hex>", "custom_id": "q1",
     "response": {"status_code": 200, "request_id": "...", "body": {...}},
     "error": null, "cost_usd": 0.000012, "model": "gpt-4o-mini",
     "latency_ms": 812.4, "attempts": 1}

An error line has ``"error": {"code": ..., "message": ...}`` and a ``response``
when the gateway answered (its status code and body), else ``null``.
:func:`success_line` and :func:`error_line` build them; :func:`line_custom_id`
reads the ``custom_id`` back from an output line (``None`` for a torn line).
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any, Final

from langchain_holysheep.batch._types import CHAT_COMPLETIONS_URL, BatchRequest
from langchain_holysheep.errors import HolySheepInputError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

__all__ = [
    "ACCEPTED_URLS",
    "BatchInputError",
    "error_line",
    "line_custom_id",
    "line_status",
    "parse_line",
    "success_line",
]

ACCEPTED_URLS: Final = frozenset({CHAT_COMPLETIONS_URL, "/chat/completions"})
"""The ``url`` values an input line may give (both mean chat completions)."""

_SEPARATORS: Final = (",", ":")
_SHOWN_CHARS: Final = 60


class BatchInputError(HolySheepInputError):
    """Bad batch input or arguments: the run refuses to start, nothing is sent.

    ``str()`` reads ``"<path>:<line_no>: <message>"`` when both are known
    (``"<path>: <message>"`` or ``"line <line_no>: <message>"`` otherwise).

    Attributes:
        message: What is wrong and what to do.
        line_no: The 1-based line number it is about, if any.
        path: The file it is about, if any.
    """

    def __init__(
        self, message: str, *, line_no: int | None = None, path: str | None = None
    ) -> None:
        """Create the error.

        Args:
            message: What is wrong and what to do.
            line_no: The 1-based line number it is about, if any.
            path: The file it is about, if any.
        """
        self.message = message
        self.line_no = line_no
        self.path = path
        super().__init__(self._text())

    def _text(self) -> str:
        if self.path is not None and self.line_no is not None:
            return f"{self.path}:{self.line_no}: {self.message}"
        if self.path is not None:
            return f"{self.path}: {self.message}"
        if self.line_no is not None:
            return f"line {self.line_no}: {self.message}"
        return self.message

    def __str__(self) -> str:
        """The message, with the file and line it is about in front."""
        return self._text()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with the keyword arguments (for multi-process runs)."""
        return (_rebuild, (self.message, self.line_no, self.path))


def _rebuild(message: str, line_no: int | None, path: str | None) -> BatchInputError:
    return BatchInputError(message, line_no=line_no, path=path)


class _NotJSONError(ValueError):
    """``NaN`` or ``Infinity``: Python's reader takes them, JSON does not."""


def _no_constant(name: str) -> object:
    raise _NotJSONError(f"{name} is not a JSON number")


def _kind(value: object) -> str:
    """A JSON value's kind in words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _shown(value: object) -> str:
    """A short quote of a value the user gave, for messages."""
    text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return text


def parse_line(text: str, line_no: int) -> BatchRequest:
    """Check one input line and return its request.

    Args:
        text: The line (without its newline).
        line_no: Its 1-based line number, for messages.

    Returns:
        The request: its ``custom_id``, the ``body`` as given, ``line_no``.

    Raises:
        BatchInputError: The line is not a JSON object, has no ``custom_id``
            string, names another endpoint or method, or its body is not a
            chat-completions request that can be answered whole.
    """
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except _NotJSONError as error:
        raise BatchInputError(
            f"not valid JSON ({error}): each line must be one JSON object",
            line_no=line_no,
        ) from None
    except json.JSONDecodeError as error:
        raise BatchInputError(
            f"not valid JSON ({error.msg} at column {error.colno}): each line "
            'must be one JSON object like {"custom_id": "q1", "body": '
            '{"messages": [...]}}',
            line_no=line_no,
        ) from None
    if not isinstance(data, dict):
        raise BatchInputError(
            f"expected a JSON object, got {_kind(data)}: each line must be one "
            'object with "custom_id" and "body"',
            line_no=line_no,
        )
    custom_id = _custom_id(data, line_no)
    _check_endpoint(data, line_no)
    body = data.get("body")
    if "body" not in data:
        raise BatchInputError(
            'no "body": give the chat-completions request as "body": '
            '{"model": ..., "messages": [...]}',
            line_no=line_no,
        )
    if not isinstance(body, dict):
        raise BatchInputError(
            f'"body" must be a JSON object (the chat-completions request), got '
            f"{_kind(body)}",
            line_no=line_no,
        )
    _check_body(body, line_no)
    return BatchRequest(custom_id=custom_id, body=body, line_no=line_no)


def _custom_id(data: Mapping[str, Any], line_no: int) -> str:
    if "custom_id" not in data:
        raise BatchInputError(
            'no "custom_id": every line needs its own "custom_id" string (it '
            "names the answer in the output)",
            line_no=line_no,
        )
    custom_id = data["custom_id"]
    if not isinstance(custom_id, str) or not custom_id:
        got = "an empty string" if custom_id == "" else _kind(custom_id)
        raise BatchInputError(
            f'"custom_id" must be a non-empty string, got {got}',
            line_no=line_no,
        )
    return custom_id


def _check_endpoint(data: Mapping[str, Any], line_no: int) -> None:
    method = data.get("method", "POST")
    if not isinstance(method, str) or method.upper() != "POST":
        raise BatchInputError(
            f'"method" must be "POST", got {_shown(method)}: chat completions are '
            'POST requests (or leave "method" out)',
            line_no=line_no,
        )
    url = data.get("url", CHAT_COMPLETIONS_URL)
    if url not in ACCEPTED_URLS:
        raise BatchInputError(
            f'"url" {_shown(url)} is not chat completions: holysheep batch sends '
            f'chat completions only ("url": "{CHAT_COMPLETIONS_URL}", or leave it '
            "out)",
            line_no=line_no,
        )


def _check_body(body: Mapping[str, Any], line_no: int) -> None:
    model = body.get("model")
    if "model" in body and (not isinstance(model, str) or not model):
        raise BatchInputError(
            f'"body.model" must be a model id string, got {_shown(model)}: give '
            "one, or leave it out and pass the model to the run (--model)",
            line_no=line_no,
        )
    if "messages" not in body:
        raise BatchInputError(
            'the body has no "messages": give the conversation as "messages": '
            '[{"role": "user", "content": "..."}]',
            line_no=line_no,
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise BatchInputError(
            f'"body.messages" must be a list of messages, got {_kind(messages)}',
            line_no=line_no,
        )
    if not messages:
        raise BatchInputError(
            '"body.messages" is empty: give at least one message, e.g. '
            '{"role": "user", "content": "..."}',
            line_no=line_no,
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BatchInputError(
                f'"body.messages[{index}]" must be an object with "role" and '
                f'"content", got {_kind(message)}',
                line_no=line_no,
            )
    stream = body.get("stream")
    if stream is not None and stream is not False:
        raise BatchInputError(
            f'"body.stream" is {_shown(stream)}: batch answers are whole, not '
            'streamed; drop "stream" or set it to false',
            line_no=line_no,
        )


def _dump(fields: Mapping[str, Any]) -> str:
    # ASCII only: a lone surrogate from a "\\ud800" escape still writes.
    return json.dumps(fields, separators=_SEPARATORS)


def _usd_text(cost_usd: Decimal | None) -> str:
    """The cost as a JSON number in plain notation (``0.000058``, not ``5.8e-05``)."""
    if cost_usd is None:
        return "null"
    if not cost_usd.is_finite():
        msg = f"cost_usd must be a finite amount, got {cost_usd}"
        raise ValueError(msg)
    return format(cost_usd, "f")


def _line(
    request: BatchRequest,
    *,
    response: Mapping[str, Any] | None,
    error: Mapping[str, Any] | None,
    model: str | None,
    cost_usd: Decimal | None,
    latency_ms: float,
    attempts: int,
) -> str:
    head = _dump(
        {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": request.custom_id,
            "response": response,
            "error": error,
        }
    )
    tail = _dump(
        {"model": model, "latency_ms": round(latency_ms, 3), "attempts": attempts}
    )
    # The cost is spliced in as exact decimal text, between the two objects.
    return f'{head[:-1]},"cost_usd":{_usd_text(cost_usd)},{tail[1:]}\n'


def success_line(
    request: BatchRequest,
    body: Mapping[str, Any],
    *,
    request_id: str | None,
    model: str,
    cost_usd: Decimal | None,
    latency_ms: float,
    attempts: int,
) -> str:
    """The output line of an answered request.

    Args:
        request: The input line's request.
        body: The completion the gateway sent (JSON-ready).
        request_id: The gateway's request id, if it sent one.
        model: The model that answered.
        cost_usd: What the request cost, or ``None`` when unknown.
        latency_ms: From the first attempt to the answer.
        attempts: Requests sent for this line.

    Returns:
        One compact JSON object and its newline.
    """
    return _line(
        request,
        response={"status_code": 200, "request_id": request_id, "body": body},
        error=None,
        model=model,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        attempts=attempts,
    )


def error_line(
    request: BatchRequest,
    *,
    code: str,
    message: str,
    status_code: int | None,
    body: Mapping[str, Any] | None,
    request_id: str | None,
    model: str | None,
    cost_usd: Decimal | None,
    latency_ms: float,
    attempts: int,
) -> str:
    """The output line of a request that failed.

    Args:
        request: The input line's request.
        code: A short error code (e.g. ``"rate_limit_exceeded"``).
        message: What went wrong (no credentials in it).
        status_code: The gateway's HTTP status, or ``None`` when it sent no
            answer (a connection error, a timeout, a refusal before sending).
        body: The gateway's error body, if it sent one.
        request_id: The gateway's request id, if it sent one.
        model: The model last tried, if any.
        cost_usd: What the request cost, or ``None`` when unknown.
        latency_ms: From the first attempt to the failure.
        attempts: Requests sent for this line.

    Returns:
        One compact JSON object and its newline; ``response`` is ``null``
        when there is no status code.
    """
    response = (
        None
        if status_code is None
        else {"status_code": status_code, "request_id": request_id, "body": body}
    )
    return _line(
        request,
        response=response,
        error={"code": code, "message": message},
        model=model,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        attempts=attempts,
    )


def line_custom_id(text: str) -> str | None:
    """The ``custom_id`` of an output line.

    Args:
        text: The line (with or without its newline).

    Returns:
        Its ``custom_id``, or ``None`` when the line is not a whole JSON object
        with a ``custom_id`` string (a torn line).
    """
    status = line_status(text)
    return None if status is None else status[0]


def line_status(text: str) -> tuple[str, bool] | None:
    """The ``custom_id`` of an output line and whether it is a success.

    Args:
        text: The line (with or without its newline).

    Returns:
        ``(custom_id, ok)``, ``ok`` false for an error line (an ``error`` that
        is not ``null``); ``None`` when the line is not a whole JSON object
        with a ``custom_id`` string (a torn line).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return None
    return custom_id, data.get("error") is None
