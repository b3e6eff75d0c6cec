"""The only calls into the ``openai`` SDK: JSON requests and SSE streams.

Every function sends one request through an SDK client with ``cast_to=object``
(the hot path skips the SDK's typed response models), inside
:func:`~langchain_holysheep.errors.translate_errors`, so whatever the SDK raises
leaves as a :class:`~langchain_holysheep.errors.HolySheepError` with the
client's credentials (key, URL userinfo, credential headers and query) masked
out. A request body is encoded once, by
:func:`~langchain_holysheep._convert.encode_body`. The caller's ``parse`` reads
the decoded response inside the same translation, so an error about a bad
response masks a key the gateway echoed, like any other.

No retries, caching or parsing rules live here: callers decide those. The
iteration of an opened stream is the caller's too (it keeps the partial text),
through :func:`stream_events`/:func:`astream_events`.

A call with a ``total_timeout`` passes its
:class:`~langchain_holysheep._deadline.Deadline`: each SDK call here runs with it
as the current deadline (so the transport caps every socket wait and the SDK's
retries at it), each wait for a stream event too, and the translation turns a
timeout past it into a ``HolySheepTotalTimeoutError``. Without one (the usual
case), nothing of this runs.

Two things only the sender knows are added here: where the request went, on an
error object a gateway sent with status 200 (so the mapped error carries it),
and whether a streaming request was answered with a JSON body instead of
events (read, then judged by ``_convert.json_instead_of_events``).
This module imports ``openai`` and the error tree only when a request is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from langchain_holysheep._client import client_credentials
from langchain_holysheep._convert import encode_body, json_instead_of_events
from langchain_holysheep._deadline import Deadline, within

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Mapping
    from contextlib import AbstractContextManager

    import httpx2
    import openai

__all__ = [
    "aget_json",
    "aopen_sse",
    "apost_json",
    "apost_json_with_request_id",
    "astream_events",
    "get_json",
    "open_sse",
    "post_json",
    "stream_events",
]

_T = TypeVar("_T")


def _translated(
    client: openai.OpenAI | openai.AsyncOpenAI, deadline: Deadline | None = None
) -> AbstractContextManager[None]:
    """``translate_errors`` masking what ``client`` sends (read only on an error)."""
    from langchain_holysheep.errors import translate_errors  # noqa: PLC0415

    return translate_errors(
        client.api_key,
        credentials=lambda: client_credentials(client),
        deadline=deadline,
    )


def post_json(
    client: openai.OpenAI,
    path: str,
    body: Mapping[str, Any],
    options: openai.RequestOptions,
    parse: Callable[[Any], _T],
    *,
    deadline: Deadline | None = None,
) -> _T:
    """``POST`` a JSON body and return the response as ``parse`` reads it.

    Args:
        client: The shared SDK client (its key is masked out of errors).
        path: The path under the client's base URL, e.g. ``"/chat/completions"``.
        body: The JSON body.
        options: Per-request SDK options (``timeout``, ``max_retries``).
        parse: Turns the decoded JSON body into the result. It runs inside the
            same error translation, so an error it raises is masked too.
        deadline: The call's ``total_timeout`` deadline, if it has one.

    Returns:
        What ``parse`` returns.

    Raises:
        HolySheepError: The request or ``parse`` failed.
    """
    with _translated(client, deadline):
        with within(deadline):
            data = client.post(
                path, content=encode_body(body), cast_to=object, options=options
            )
        return _parse(parse, data, client, path)


async def apost_json(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    options: openai.RequestOptions,
    parse: Callable[[Any], _T],
    *,
    deadline: Deadline | None = None,
) -> _T:
    """Async :func:`post_json`, through an async client."""
    with _translated(client, deadline):
        with within(deadline):
            data = await client.post(
                path, content=encode_body(body), cast_to=object, options=options
            )
        return _parse(parse, data, client, path)


async def apost_json_with_request_id(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    options: openai.RequestOptions,
    parse: Callable[[Any], _T],
) -> tuple[_T, str | None]:
    """:func:`apost_json`, also returning the gateway's ``x-request-id`` header.

    For the bulk runs, whose output lines carry the request id as the OpenAI
    Batch API's do. The answer is read as the SDK reads it for ``cast_to=object``
    (JSON when the content type says so, else the text, which ``parse`` refuses).

    Returns:
        What ``parse`` returns, and the request id (``None`` if none was sent).
    """
    import httpx2  # noqa: PLC0415 (loaded with openai by then)

    with _translated(client, None):
        response = await client.post(
            path, content=encode_body(body), cast_to=httpx2.Response, options=options
        )
        data = response.json() if _is_json(response) else response.text
        return (
            _parse(parse, data, client, path),
            response.headers.get("x-request-id"),
        )


def get_json(
    client: openai.OpenAI,
    path: str,
    options: openai.RequestOptions,
    parse: Callable[[Any], _T],
) -> _T:
    """``GET`` a path and return the response as ``parse`` reads it.

    As :func:`post_json`, without a body (the catalog's ``/models``).
    """
    with _translated(client):
        return parse(client.get(path, cast_to=object, options=options))


async def aget_json(
    client: openai.AsyncOpenAI,
    path: str,
    options: openai.RequestOptions,
    parse: Callable[[Any], _T],
) -> _T:
    """Async :func:`get_json`, through an async client."""
    with _translated(client):
        return parse(await client.get(path, cast_to=object, options=options))


def open_sse(
    client: openai.OpenAI,
    path: str,
    body: Mapping[str, Any],
    options: openai.RequestOptions,
    *,
    deadline: Deadline | None = None,
) -> openai.Stream[object]:
    """``POST`` a JSON body and open the server-sent-event stream it answers with.

    Only opening is translated here: the caller iterates the stream (decoded
    events, through :func:`stream_events`) inside its own ``translate_errors``,
    keeping the partial text.

    Args:
        client: The shared SDK client (its key is masked out of errors).
        path: The path under the client's base URL, e.g. ``"/chat/completions"``.
        body: The JSON body (with ``"stream": true``).
        options: Per-request SDK options (``timeout``, ``max_retries``).
        deadline: The call's ``total_timeout`` deadline, if it has one.

    Returns:
        The open stream; close it when done.

    Raises:
        HolySheepError: The request failed before the first event.
    """
    import openai  # noqa: PLC0415

    with _translated(client, deadline), within(deadline):
        stream = client.post(
            path,
            content=encode_body(body),
            cast_to=object,
            options=options,
            stream=True,
            stream_cls=openai.Stream[object],
        )
        response = stream.response
        if _is_json(response):
            _refuse_json(response.read(), response.request)
        return stream


async def aopen_sse(
    client: openai.AsyncOpenAI,
    path: str,
    body: Mapping[str, Any],
    options: openai.RequestOptions,
    *,
    deadline: Deadline | None = None,
) -> openai.AsyncStream[object]:
    """Async :func:`open_sse`, through an async client (``await stream.close()``)."""
    import openai  # noqa: PLC0415

    with _translated(client, deadline), within(deadline):
        stream = await client.post(
            path,
            content=encode_body(body),
            cast_to=object,
            options=options,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )
        response = stream.response
        if _is_json(response):
            _refuse_json(await response.aread(), response.request)
        return stream


def stream_events(
    stream: openai.Stream[object], deadline: Deadline | None
) -> Iterator[object]:
    """The decoded events of an open stream, each wait bounded by ``deadline``.

    Iterate it inside ``translate_errors(..., deadline=deadline)``: a deadline
    that passes raises ``openai.APITimeoutError``, which that translation turns
    into ``HolySheepTotalTimeoutError`` with the partial text.

    Args:
        stream: The stream :func:`open_sse` opened.
        deadline: The call's deadline; ``None`` returns the SDK's own iterator.

    Returns:
        The events.
    """
    if deadline is None:
        return iter(stream)
    return _events_within(stream, deadline)


def _events_within(
    stream: openai.Stream[object], deadline: Deadline
) -> Iterator[object]:
    import openai  # noqa: PLC0415

    events = iter(stream)
    while True:
        if deadline.expired:
            raise openai.APITimeoutError(request=stream.response.request)
        with within(deadline):  # set for the wait only, never across the yield
            try:
                event = next(events)
            except StopIteration:
                return
        yield event


def astream_events(
    stream: openai.AsyncStream[object], deadline: Deadline | None
) -> AsyncIterator[object]:
    """Async :func:`stream_events`."""
    if deadline is None:
        return stream.__aiter__()
    return _aevents_within(stream, deadline)


async def _aevents_within(
    stream: openai.AsyncStream[object], deadline: Deadline
) -> AsyncIterator[object]:
    import openai  # noqa: PLC0415

    events = stream.__aiter__()
    while True:
        if deadline.expired:
            raise openai.APITimeoutError(request=stream.response.request)
        with within(deadline):
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                return
        yield event


def _parse(
    parse: Callable[[Any], _T],
    data: object,
    client: openai.OpenAI | openai.AsyncOpenAI,
    path: str,
) -> _T:
    """``parse(data)``; an error object sent with a 200 learns where it was sent."""
    try:
        return parse(data)
    except Exception as error:
        # Imported only on the error path: the hot path pays nothing here.
        import httpx2  # noqa: PLC0415

        from langchain_holysheep.errors import ErrorPayloadError  # noqa: PLC0415

        if isinstance(error, ErrorPayloadError):
            url = client.base_url.join(path.lstrip("/"))
            error.request = httpx2.Request("POST", url)
        raise


def _is_json(response: httpx2.Response) -> bool:
    """Whether a streaming request was answered with JSON rather than events."""
    return "json" in response.headers.get("content-type", "")


def _refuse_json(content: bytes, request: httpx2.Request) -> None:
    """Raise for a JSON answer to a streaming request (an error object, mostly).

    A body that does not decode is left alone: it is read as events (the
    response keeps what was read), for gateways that label events as JSON.
    """
    import json  # noqa: PLC0415

    from langchain_holysheep.errors import ErrorPayloadError  # noqa: PLC0415

    try:
        data = json.loads(content)
    except ValueError:
        return
    try:
        json_instead_of_events(data)
    except ErrorPayloadError as payload:
        payload.request = request
        raise
