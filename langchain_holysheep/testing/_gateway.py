"""The offline gateway: a loopback OpenAI-compatible HTTP server.

:class:`OfflineGateway` runs a standard-library ``ThreadingHTTPServer`` in a
background thread. It serves ``/v1/chat/completions`` (JSON and server-sent
events), ``/v1/models`` and ``/v1/embeddings``, answers with scripted
:class:`~langchain_holysheep.testing.Reply` and
:class:`~langchain_holysheep.testing.Fault` objects, and records every request
it receives as a :class:`RecordedRequest`.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, Final, Literal, Self
from urllib.parse import parse_qsl, urlsplit

from langchain_holysheep.testing._embeddings import render_embeddings
from langchain_holysheep.testing._limits import (
    KeyWindow,
    RateLimitDecision,
    RateLimits,
    admission_tokens,
    key_id,
    monotonic,
    refusal,
)
from langchain_holysheep.testing._replies import (
    CREATED,
    Fault,
    Reply,
    StreamScript,
    content_part_error,
    dumps,
    error_body,
    plan_chat,
    render_chat_json,
    render_chat_stream,
    render_fault,
)

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DEFAULT_MODELS",
    "Endpoint",
    "OfflineGateway",
    "RecordedRequest",
    "Responder",
]

DEFAULT_MODELS: Final[tuple[str, ...]] = (
    "mistral-small-2603",
    "gpt-4.1",
    "claude-sonnet-4.5",
    "gemini-2.5-flash",
    "deepseek-v3.2",
    "text-embedding-3-small",
)
"""Model ids served by ``GET /v1/models`` unless told otherwise."""

Endpoint = Literal["chat", "embeddings", "models"]
"""The endpoints a queued reply or fault can apply to."""

Responder = Callable[[dict[str, Any]], "Reply | Fault | None"]
"""A function answering a chat request body "as a model would"."""

_ENDPOINTS: Final = frozenset({"chat", "embeddings", "models"})
_STREAM_OPTIONS_ERROR: Final = error_body(
    "Unrecognized request argument supplied: stream_options",
    "invalid_request_error",
    "stream_options",
)
_PHRASES: Final = {s.value: s.phrase for s in HTTPStatus}
_LAST_CHUNK: Final = b"0\r\n\r\n"
_MAX_CHUNK_LINE: Final = 1024


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request received by the gateway.

    Attributes:
        method: The HTTP method, e.g. ``"POST"``.
        path: The path without the query string, e.g. ``"/v1/chat/completions"``.
        query: The query parameters (last value wins).
        headers: The request headers, with lower-cased names.
        body: The JSON body when it parsed to an object, else ``None``.
        raw_body: The body bytes as received.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_body: bytes

    @property
    def model(self) -> str | None:
        """The ``model`` field of the body, if any."""
        model = self.body.get("model") if self.body else None
        return model if isinstance(model, str) else None

    def content_parts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The content parts of every message of a chat request, in order.

        Args:
            kind: Only parts of this ``type`` (``"file"``, ``"image_url"``...).

        Returns:
            The parts as sent (messages whose content is a string have none).
        """
        messages = self.body.get("messages") if self.body else None
        if not isinstance(messages, list):
            return []
        parts = [
            part
            for message in messages
            if isinstance(message, dict) and isinstance(message.get("content"), list)
            for part in message["content"]
            if isinstance(part, dict)
        ]
        return [p for p in parts if kind is None or p.get("type") == kind]

    @property
    def cache_control_parts(self) -> list[dict[str, Any]]:
        """The content parts that carry a ``cache_control`` hint, in order."""
        return [part for part in self.content_parts() if "cache_control" in part]


@dataclass(slots=True)
class _Slot:
    item: Reply | Fault
    remaining: int


@dataclass(slots=True)
class _State:
    queues: dict[tuple[str, str | None], deque[_Slot]] = field(default_factory=dict)
    defaults: dict[tuple[str, str | None], Reply | Fault] = field(default_factory=dict)
    responders: dict[str | None, Responder] = field(default_factory=dict)
    rejects: set[str | None] = field(default_factory=set)
    log: list[RecordedRequest] = field(default_factory=list)
    rate_limits: dict[str | None, RateLimits] = field(default_factory=dict)
    windows: dict[str, KeyWindow] = field(default_factory=dict)
    rate_log: list[RateLimitDecision] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], gateway: OfflineGateway) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.gateway = gateway
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (a DNS look-up); skip it.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay silent: clients that hang up mid-response are expected."""

    def drop_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
            self.connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HolySheepOffline/1.0"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Stay silent."""

    def do_GET(self) -> None:
        """Serve a GET request."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve a POST request."""
        self._dispatch("POST")

    # -- plumbing ----------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                line = self.rfile.readline(_MAX_CHUNK_LINE)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(_MAX_CHUNK_LINE) not in {b"\r\n", b""}:
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(_MAX_CHUNK_LINE)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _head(
        self,
        status: int,
        content_type: str,
        extra: str,
        length: int | None,
    ) -> bytes:
        phrase = _PHRASES.get(status, "Unknown")
        framing = (
            "Transfer-Encoding: chunked\r\n"
            if length is None
            else f"Content-Length: {length}\r\n"
        )
        closing = "Connection: close\r\n" if self.close_connection else ""
        return (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\n"
            f"{framing}x-request-id: req_offline_{self._seq}\r\n{extra}"
            f"{self._rate_headers}{closing}\r\n"
        ).encode("latin-1")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.wfile.write(self._head(status, content_type, extra, len(body)) + body)

    def _error(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        self._send(status, error_body(message, type_, param, code))

    def _dispatch(self, method: str) -> None:
        gateway = self.server.gateway
        self._seq = next(gateway._counter)  # noqa: SLF001
        self._rate_headers = ""
        self._api_key = ""
        try:
            raw = self._read_body()
            split = urlsplit(self.path)
            body: dict[str, Any] | None = None
            parsed: object = None
            bad_json = False
            if raw:
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    bad_json = True
                if isinstance(parsed, dict):
                    body = parsed
            record = RecordedRequest(
                method=method,
                path=split.path,
                query=dict(parse_qsl(split.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw_body=raw,
            )
            gateway._record(record)  # noqa: SLF001
            self._route(gateway, record, bad_json=bad_json)
        except (BrokenPipeError, ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - report bugs to the client
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(
                    500, f"Offline gateway internal error: {exc!r}", "server_error"
                )

    def _route(
        self, gateway: OfflineGateway, record: RecordedRequest, *, bad_json: bool
    ) -> None:
        if not self._authorised(gateway, record):
            return
        path = record.path.rstrip("/")
        method = record.method
        if path == "/v1/models" or path.startswith("/v1/models/"):
            if method != "GET":
                self._error(405, f"Method {method} not allowed on {record.path}.")
                return
            self._models(gateway, path)
            return
        if path not in {"/v1/chat/completions", "/v1/embeddings"}:
            self._error(
                404,
                f"Invalid URL ({method} {record.path})",
                param=None,
                code="unknown_url",
            )
            return
        if method != "POST":
            self._error(405, f"Method {method} not allowed on {record.path}.")
            return
        if record.body is None:
            message = (
                "We could not parse the JSON body of your request. The OpenAI API "
                "expects a JSON payload."
                if bad_json or not record.raw_body
                else "The request body must be a JSON object."
            )
            self._error(400, message)
            return
        if path == "/v1/embeddings":
            self._embeddings(gateway, record.body)
        else:
            self._chat(gateway, record.body)

    def _authorised(self, gateway: OfflineGateway, record: RecordedRequest) -> bool:
        header = record.headers.get("authorization", "")
        if gateway.basic_auth is not None:
            pair = ":".join(gateway.basic_auth).encode()
            if header == f"Basic {base64.b64encode(pair).decode()}":
                return True
            self._error(
                401,
                "This relay requires HTTP basic auth: put user:password@ in the "
                "base URL.",
                "authentication_error",
                code="invalid_basic_auth",
            )
            return False
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            self._error(
                401,
                "You didn't provide an API key. You need to provide your API key in "
                "an Authorization header using Bearer auth (i.e. Authorization: "
                "Bearer YOUR_KEY).",
                "authentication_error",
                code="missing_api_key",
            )
            return False
        self._api_key = key
        if gateway.api_key is not None and key != gateway.api_key:
            shown = f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"  # noqa: PLR2004
            self._error(
                401,
                f"Incorrect API key provided: {shown}.",
                "authentication_error",
                code="invalid_api_key",
            )
            return False
        return True

    def _check_model(self, gateway: OfflineGateway, model: str) -> bool:
        if gateway.strict_models and model not in gateway.models:
            self._send(404, _model_not_found(model))
            return False
        return True

    def _fault(self, fault: Fault) -> None:
        if fault.delay_before_headers > 0:
            time.sleep(fault.delay_before_headers)
        if fault.close_connection:
            self.close_connection = True
            return
        body, content_type = render_fault(fault)
        self._send(fault.status, body, content_type, fault.headers)

    # -- endpoints ---------------------------------------------------------

    def _models(self, gateway: OfflineGateway, path: str) -> None:
        item = gateway._pick("models", None)  # noqa: SLF001
        if isinstance(item, Fault):
            self._fault(item)
            return
        if item is not None and item.delay_before_headers > 0:
            time.sleep(item.delay_before_headers)
        models = list(gateway.models)
        if path == "/v1/models":
            data = [_model_entry(m) for m in models]
            self._send(200, dumps({"object": "list", "data": data}).encode())
            return
        model = path.removeprefix("/v1/models/")
        if model in models or not gateway.strict_models:
            self._send(200, dumps(_model_entry(model)).encode())
            return
        self._check_model(gateway, model)

    def _embeddings(self, gateway: OfflineGateway, body: dict[str, Any]) -> None:
        model = body.get("model")
        if isinstance(model, str) and not self._check_model(gateway, model):
            return
        item = gateway._pick("embeddings", model if isinstance(model, str) else None)  # noqa: SLF001
        if isinstance(item, Fault):
            self._fault(item)
            return
        if item is not None and item.delay_before_headers > 0:
            time.sleep(item.delay_before_headers)
        status, payload = render_embeddings(body)
        self._send(status, payload)

    def _chat_error(
        self, gateway: OfflineGateway, body: dict[str, Any]
    ) -> tuple[int, bytes] | None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return 400, error_body(
                "you must provide a model parameter", "invalid_request_error"
            )
        if (error := _messages_error(body.get("messages"))) is not None:
            return 400, error
        if gateway.strict_models and model not in gateway.models:
            return 404, _model_not_found(model)
        if body.get("stream_options") is not None and gateway._rejects(model):  # noqa: SLF001
            return 400, _STREAM_OPTIONS_ERROR
        return None

    def _chat(self, gateway: OfflineGateway, body: dict[str, Any]) -> None:
        error = self._chat_error(gateway, body)
        if error is not None:
            self._send(*error)
            return
        if not self._admitted(gateway, body):
            return
        item = gateway._pick("chat", body["model"], body)  # noqa: SLF001
        if isinstance(item, Fault):
            self._fault(item)
            return
        reply = item or Reply()
        plan = plan_chat(reply, body, self._seq)
        if reply.delay_before_headers > 0:
            time.sleep(reply.delay_before_headers)
        if body.get("stream") is True:
            options = body.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            self._stream(render_chat_stream(plan, reply, include_usage=usage), reply)
        else:
            self._send(200, render_chat_json(plan))

    def _admitted(self, gateway: OfflineGateway, body: dict[str, Any]) -> bool:
        """Apply the key's rate limits; answer 429 (and say so) when refused."""
        decision, window = gateway._rate_decide(self._api_key, body)  # noqa: SLF001
        if window is None:
            return True
        extra = window.headers(decision.at)
        if decision.admitted:
            self._rate_headers = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            return True
        assert decision.limit is not None  # noqa: S101 (refused by a limit)
        assert decision.retry_after is not None  # noqa: S101
        used = (
            len(window.admitted) if decision.limit == "requests" else window.tokens_used
        )
        payload, retry = refusal(
            decision.limit, window.limits, decision.tokens, decision.retry_after, used
        )
        self._send(429, payload, headers={**retry, **extra})
        return False

    def _stream(self, script: StreamScript, reply: Reply) -> None:
        events = script.events
        if script.cut_after is not None:
            events = events[: script.cut_after]
        head = self._head(200, "text/event-stream; charset=utf-8", "", None)
        framed = [b"%x\r\n%b\r\n" % (len(e), e) for e in events]
        if script.cut_after is None:
            framed.append(_LAST_CHUNK)
        write = self.wfile.write
        if reply.chunk_delay > 0:
            write(head)
            for index, frame in enumerate(framed):
                if index:
                    time.sleep(reply.chunk_delay)
                write(frame)
        else:
            write(head + b"".join(framed))
        if script.cut_after is not None:
            # No terminating chunk: the client sees an incomplete chunked body.
            self.close_connection = True


def _messages_error(messages: object) -> bytes | None:
    """The 400 body for missing, empty or malformed ``messages``, or ``None``."""
    if messages is None:
        return error_body(
            "Missing required parameter: 'messages'.",
            "invalid_request_error",
            "messages",
            "missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        return error_body(
            f"{messages!r} is too short - 'messages'",
            "invalid_request_error",
            "messages",
            "empty_array",
        )
    if (problem := content_part_error(messages)) is not None:
        message, param = problem
        return error_body(message, "invalid_request_error", param, "invalid_value")
    return None


def _model_not_found(model: str) -> bytes:
    return error_body(
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model",
        "model_not_found",
    )


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "holysheep"}


class OfflineGateway:
    """A loopback OpenAI-compatible server for offline tests and benchmarks.

    Example:
        >>> with OfflineGateway() as gw:  # doctest: +SKIP
        ...     gw.enqueue(Reply(content="Hello!"))
        ...     # point any OpenAI-compatible client at gw.base_url

    Attributes:
        host: The interface to listen on.
        api_key: The key required in ``Authorization: Bearer <key>``; ``None``
            accepts any non-empty key (a missing key is always a 401).
        basic_auth: ``(user, password)`` to play a relay behind HTTP basic
            auth: requests must carry ``Authorization: Basic`` with exactly
            these (what a ``base_url`` of ``http://user:password@host/v1``
            sends) instead of a Bearer key. ``None`` (the default): Bearer.
        models: The model ids served by ``GET /v1/models``.
        strict_models: When true, chat and embeddings requests for a model not
            in ``models`` get a 404 ``model_not_found`` error.
        log_requests: When false, requests are not recorded (for long-running
            benchmark servers whose log nobody reads).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        models: list[str] | None = None,
        *,
        strict_models: bool = False,
        log_requests: bool = True,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        """Configure the gateway; call :meth:`start` (or use ``with``) to serve.

        Args:
            host: The interface to listen on.
            port: The port to listen on; ``0`` picks a free port.
            api_key: The key the gateway requires, or ``None`` for any key.
            models: Model ids for ``GET /v1/models`` (default
                ``DEFAULT_MODELS``).
            strict_models: Reject unknown models with a 404.
            log_requests: Record requests in :attr:`requests`.
            basic_auth: Require HTTP basic auth with ``(user, password)``
                instead of a Bearer key.
        """
        self.host = host
        self.basic_auth = basic_auth
        self._port = port
        self.api_key = api_key
        self.models: list[str] = list(DEFAULT_MODELS if models is None else models)
        self.strict_models = strict_models
        self.log_requests = log_requests
        self._lock = threading.Lock()
        self._state = _State()
        self._counter = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Self:
        """Start serving in a background thread (no-op when already running).

        Returns:
            The gateway itself.
        """
        with self._lock:
            if self._server is not None:
                return self
            server = _Server((self.host, self._port), self)
            self._port = server.server_port
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"holysheep-offline-gateway:{self._port}",
                daemon=True,
            )
            self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (no-op when not running)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        """Start the gateway.

        Returns:
            The running gateway.
        """
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the gateway."""
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the gateway is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port (the real one once started, even when created with 0)."""
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:8787/v1``.

        Raises:
            RuntimeError: If the gateway was created with port 0 and never
                started, so it has no port yet.
        """
        if self._port == 0:
            raise RuntimeError("start the gateway before asking for its base_url")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/v1"

    # -- scripting ---------------------------------------------------------

    def enqueue(
        self,
        *items: Reply | Fault,
        model: str | None = None,
        endpoint: Endpoint = "chat",
    ) -> None:
        """Queue replies or faults, consumed first-in first-out, one per request.

        A :class:`Fault` with ``repeat=N`` answers N requests before it is
        consumed. Requests for ``model`` use its own queue before the shared
        one. On the ``embeddings`` and ``models`` endpoints only faults (and
        a reply's ``delay_before_headers``) matter; a queued reply there just
        lets the request through.

        Args:
            *items: The replies and faults, in order.
            model: Only answer requests for this model (``None``: any model).
            endpoint: ``"chat"``, ``"embeddings"`` or ``"models"``.

        Raises:
            ValueError: If ``endpoint`` is unknown.
            TypeError: If an item is not a ``Reply`` or ``Fault``.
        """
        _check_endpoint(endpoint)
        slots = [
            _Slot(_check_item(i), i.repeat if isinstance(i, Fault) else 1)
            for i in items
        ]
        with self._lock:
            self._state.queues.setdefault((endpoint, model), deque()).extend(slots)

    def set_default(
        self,
        item: Reply | Fault | None,
        model: str | None = None,
        *,
        endpoint: Endpoint = "chat",
    ) -> None:
        """Set what to answer when the queues are empty.

        Args:
            item: The reply or fault, or ``None`` to remove the default.
            model: Only for requests for this model (``None``: any model).
            endpoint: ``"chat"``, ``"embeddings"`` or ``"models"``.
        """
        _check_endpoint(endpoint)
        with self._lock:
            if item is None:
                self._state.defaults.pop((endpoint, model), None)
            else:
                self._state.defaults[(endpoint, model)] = _check_item(item)

    def set_responder(self, fn: Responder | None, model: str | None = None) -> None:
        """Answer chat requests with a function when nothing is queued.

        The function receives the parsed request body and returns a
        :class:`Reply` or :class:`Fault` (or ``None`` to fall back to the
        default). It runs on the server thread; if it raises, the client gets
        a 500 error naming the exception.

        Args:
            fn: The responder, or ``None`` to remove it.
            model: Only for requests for this model (``None``: any model).
        """
        with self._lock:
            if fn is None:
                self._state.responders.pop(model, None)
            else:
                self._state.responders[model] = fn

    def reject_stream_options(self, model: str | None = None) -> None:
        """Answer 400 to chat requests for ``model`` that carry ``stream_options``.

        This mimics providers that do not know the parameter.

        Args:
            model: The model to reject it for (``None``: every model).
        """
        with self._lock:
            self._state.rejects.add(model)

    def set_rate_limits(
        self, limits: RateLimits | None, api_key: str | None = None
    ) -> None:
        """Enforce request and token limits on chat requests, per key.

        Each key has its own sliding window. A request over a limit is answered
        ``429`` with ``Retry-After``, ``retry-after-ms`` and OpenAI's error body;
        every answer to a limited key carries ``x-ratelimit-*`` headers. See
        :attr:`rate_limit_log` for what was admitted and refused.

        Args:
            limits: The limits, or ``None`` to remove them.
            api_key: Only for this key (``None``: for every key without limits
                of its own, each key counted separately).
        """
        with self._lock:
            state = self._state
            if limits is None:
                state.rate_limits.pop(api_key, None)
            else:
                state.rate_limits[api_key] = limits
            state.windows.clear()

    @property
    def rate_limit_log(self) -> list[RateLimitDecision]:
        """Every rate-limit decision (admitted or refused), in arrival order."""
        with self._lock:
            return list(self._state.rate_log)

    def reset(self) -> None:
        """Clear queues, defaults, responders, rejects, rate limits and the logs."""
        with self._lock:
            self._state = _State()

    def pending(self, endpoint: Endpoint = "chat", model: str | None = None) -> int:
        """Count the queued items left for an endpoint and model.

        Args:
            endpoint: The endpoint.
            model: The model queue (``None``: the shared queue).

        Returns:
            The number of queued items (a repeating fault counts once).
        """
        with self._lock:
            return len(self._state.queues.get((endpoint, model), ()))

    # -- inspection --------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._state.log)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request.

        Raises:
            LookupError: If no request has been received.
        """
        with self._lock:
            if not self._state.log:
                raise LookupError("the offline gateway has received no request")
            return self._state.log[-1]

    # -- used by the handler -------------------------------------------------

    def _record(self, record: RecordedRequest) -> None:
        if not self.log_requests:
            return
        with self._lock:
            self._state.log.append(record)

    def _rate_decide(
        self, api_key: str, body: dict[str, Any]
    ) -> tuple[RateLimitDecision, KeyWindow | None]:
        with self._lock:
            state = self._state
            limits = state.rate_limits.get(api_key) or state.rate_limits.get(None)
            kid = key_id(api_key)
            model = body.get("model")
            cost = admission_tokens(body)
            now = monotonic()
            if limits is None:
                decision = RateLimitDecision(now, kid, model, cost, admitted=True)
                return decision, None
            window = state.windows.get(kid)
            if window is None or window.limits is not limits:
                window = state.windows[kid] = KeyWindow(limits)
            refused, retry_after = window.decide(now, cost)
            decision = RateLimitDecision(
                now,
                kid,
                model if isinstance(model, str) else None,
                cost,
                admitted=refused is None,
                limit=refused,
                retry_after=None if refused is None else retry_after,
            )
            state.rate_log.append(decision)
            return decision, window

    def _rejects(self, model: str) -> bool:
        rejects = self._state.rejects
        return bool(rejects) and (model in rejects or None in rejects)

    def _pick(
        self, endpoint: str, model: str | None, body: dict[str, Any] | None = None
    ) -> Reply | Fault | None:
        with self._lock:
            state = self._state
            keys = (
                ((endpoint, model), (endpoint, None)) if model else ((endpoint, None),)
            )
            for key in keys:
                queue = state.queues.get(key)
                if queue:
                    slot = queue[0]
                    slot.remaining -= 1
                    if slot.remaining <= 0:
                        queue.popleft()
                    return slot.item
            chain: list[Responder | Reply | Fault] = []
            for scope in (model, None) if model else (None,):
                responder = state.responders.get(scope) if endpoint == "chat" else None
                if responder is not None:
                    chain.append(responder)
                default = state.defaults.get((endpoint, scope))
                if default is not None:
                    chain.append(default)
        for candidate in chain:
            if isinstance(candidate, Reply | Fault):
                return candidate
            answer = candidate(body or {})
            if answer is not None:
                return _check_item(answer)
        return None


def _check_endpoint(endpoint: str) -> None:
    if endpoint not in _ENDPOINTS:
        raise ValueError(
            f"endpoint must be one of {sorted(_ENDPOINTS)}, not {endpoint!r}"
        )


def _check_item(item: object) -> Reply | Fault:
    if not isinstance(item, Reply | Fault):
        raise TypeError(f"expected a Reply or a Fault, got {type(item).__name__}")
    return item
