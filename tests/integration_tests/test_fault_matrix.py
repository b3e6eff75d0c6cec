"""The fault matrix: one test per fault, each pinning the documented outcome.

A fault that both the sync and the async API can meet runs in each mode
(``tests.modes``): the outcome must not depend on the entry point.

Real HTTP against the offline gateway on 127.0.0.1; attempts are counted from the
gateway's request log. Stalls use short timeouts, so nothing can hang the suite:
the only clock checks are generous "did not hang" ceilings, never exact timings.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from langchain_core.exceptions import ContextOverflowError, ModelRateLimitError

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import (
    HolySheepAuthenticationError,
    HolySheepConnectionError,
    HolySheepContextOverflowError,
    HolySheepModelNotFoundError,
    HolySheepPermissionDeniedError,
    HolySheepRateLimitError,
    HolySheepResponseError,
    HolySheepServerError,
    HolySheepStreamError,
    HolySheepTimeoutError,
    HolySheepTruncatedStreamError,
)
from langchain_holysheep.testing import Fault, OfflineGateway, Reply
from tests.modes import INVOKES, MODES, STREAMS, call, collect

KEY = "cr_fault_matrix_key_0123456789"
NO_HANG = 30.0  # seconds: a ceiling that only a hang would break
CHAT = "/v1/chat/completions"


def chat_attempts(gw) -> int:
    return sum(1 for r in gw.requests if r.path == CHAT)


@pytest.fixture
def make(gw):
    def build(**kwargs) -> ChatHolySheep:
        kwargs.setdefault("max_retries", 2)
        return ChatHolySheep(base_url=gw.base_url, api_key=KEY, **kwargs)

    return build


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------- 429 rate limit


@pytest.mark.parametrize("mode", INVOKES)
async def test_429_with_retry_after_1_is_retried_and_answers(gw, make, mode):
    gw.enqueue(Fault(status=429, headers={"Retry-After": "1"}), Reply(content="ok"))
    assert (await call(make(), mode, "hi")).content == "ok"
    assert chat_attempts(gw) == 2


def test_429_with_retry_after_over_the_cap_raises_at_once(gw, make):
    gw.set_default(Fault(status=429, headers={"Retry-After": "3600"}))
    start = time.monotonic()
    with pytest.raises(HolySheepRateLimitError) as caught:
        make(max_retries=2).invoke("hi")
    assert time.monotonic() - start < NO_HANG
    error = caught.value
    assert error.retry_after == 3600
    assert isinstance(error, ModelRateLimitError)
    assert isinstance(error, openai.RateLimitError)
    assert error.is_retryable
    assert chat_attempts(gw) == 1  # the SDK does not wait an hour, nor retry


# ------------------------------------------------------------------ 5xx errors

HTML_502 = "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500),
        Fault(status=502, body=HTML_502, content_type="text/html"),
        Fault(status=503),
    ],
    ids=["500", "502-html", "503"],
)
def test_5xx_then_success_is_retried_and_answers(gw, make, fault):
    gw.enqueue(fault, Reply(content="recovered"))
    assert make().invoke("hi").content == "recovered"
    assert chat_attempts(gw) == 2


@pytest.mark.parametrize("mode", INVOKES)
@pytest.mark.parametrize("retries", [1, 2])
async def test_500_forever_raises_server_error_after_max_retries(
    gw, make, mode, retries
):
    gw.set_default(Fault(status=500))
    with pytest.raises(HolySheepServerError) as caught:
        await call(make(max_retries=retries), mode, "hi")
    assert caught.value.status_code == 500
    assert caught.value.is_retryable
    assert chat_attempts(gw) == 1 + retries  # one try + the retries


def test_502_html_forever_keeps_status_and_does_not_parse_html(gw, make):
    gw.set_default(Fault(status=502, body=HTML_502, content_type="text/html"))
    with pytest.raises(HolySheepServerError) as caught:
        make(max_retries=0).invoke("hi")
    assert caught.value.status_code == 502
    assert chat_attempts(gw) == 1


# ----------------------------------------------------------------- 401 and 403


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, HolySheepAuthenticationError), (403, HolySheepPermissionDeniedError)],
)
def test_401_403_raise_at_once_without_retry_and_without_the_key(
    gw, make, status, error_type
):
    gw.set_default(
        Fault(status=status, message=f"Key {KEY} is not valid for this request.")
    )
    with pytest.raises(error_type) as caught:
        make(max_retries=2).invoke("hi")
    error = caught.value
    assert chat_attempts(gw) == 1
    assert not error.is_retryable
    for text in (str(error), repr(error), str(error.body), error.message):
        assert KEY not in text
    assert "not valid" in str(error)  # the gateway's message survives, masked


@pytest.mark.parametrize(
    ("key", "hinted"),
    [("sk-proj-openai0123456789", True), ("cr_revoked_key_0123456789", False)],
)
def test_401_says_when_the_key_is_not_a_holysheep_key(key, hinted):
    """An OpenAI key pasted into HOLYSHEEP_API_KEY is the usual cause of a 401."""
    with OfflineGateway(api_key="cr_the_right_key_0123456789") as gateway:
        model = ChatHolySheep(base_url=gateway.base_url, api_key=key, max_retries=0)
        with pytest.raises(HolySheepAuthenticationError) as caught:
            model.invoke("hi")
    message = str(caught.value)
    assert ("start with 'cr_'" in message) is hinted
    assert key not in message
    assert "openai0123456789" not in message


# ---------------------------------------------------------- 404 unknown model


def test_404_unknown_model_raises_model_not_found_with_suggestions(gw, make):
    gw.strict_models = True
    with pytest.raises(HolySheepModelNotFoundError) as caught:
        make(model="mistral-small-2063").invoke("hi")
    error = caught.value
    assert "mistral-small-2603" in error.suggestions
    assert "mistral-small-2063" in str(error)
    assert not error.is_retryable


# -------------------------------------------------------- 400 context overflow


def test_400_context_length_exceeded_is_detected_by_code_and_not_retried(gw, make):
    # The message alone does not say "context": only the code identifies it.
    gw.set_default(
        Fault(status=400, message="Request too large.", code="context_length_exceeded")
    )
    with pytest.raises(HolySheepContextOverflowError) as caught:
        make(max_retries=2).invoke("hi")
    assert isinstance(caught.value, ContextOverflowError)
    assert isinstance(caught.value, openai.BadRequestError)
    assert chat_attempts(gw) == 1


# ----------------------------------------------------------------- timeouts


@pytest.mark.parametrize("mode", INVOKES)
async def test_no_response_headers_within_the_timeout_raises_timeout(gw, make, mode):
    gw.enqueue(Reply(content="too late", delay_before_headers=3.0))
    start = time.monotonic()
    with pytest.raises(HolySheepTimeoutError) as caught:
        await call(make(timeout=0.5, max_retries=0), mode, "hi")
    assert time.monotonic() - start < NO_HANG
    assert isinstance(caught.value, HolySheepConnectionError)
    assert caught.value.is_retryable
    assert chat_attempts(gw) == 1


def test_stream_stalled_before_first_chunk_raises_timeout(gw, make):
    gw.enqueue(Reply(content="one two three", chunk_delay=3.0))
    with pytest.raises(HolySheepTimeoutError):
        list(make(timeout=0.5, max_retries=0).stream("hi"))


class _StallingHandler(BaseHTTPRequestHandler):
    """Streams two content chunks, then stalls until the test lets it go."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()

    def log_message(self, format, *args):  # noqa: A002
        """Stay silent."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for text in ("Hello ", "world"):
            event = (
                'data: {"id":"c1","object":"chat.completion.chunk","model":"m",'
                f'"choices":[{{"index":0,"delta":{{"content":"{text}"}},'
                '"finish_reason":null}]}\n\n'
            ).encode()
            self.wfile.write(b"%x\r\n%b\r\n" % (len(event), event))
            self.wfile.flush()
        self.release.wait(10)


@pytest.fixture
def stalling_server():
    # The offline gateway's chunk_delay is uniform, so a stall *after* some
    # content needs this tiny server (still real HTTP on loopback).
    handler = type("Handler", (_StallingHandler,), {"release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    handler.release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", STREAMS)
async def test_stall_between_stream_chunks_raises_timeout_keeping_partial_text(
    stalling_server, mode
):
    model = ChatHolySheep(
        base_url=stalling_server, api_key=KEY, timeout=0.5, max_retries=0
    )
    received = []
    start = time.monotonic()
    with pytest.raises(HolySheepTimeoutError) as caught:
        await collect(model, mode, received)
    assert time.monotonic() - start < NO_HANG
    assert [chunk.content for chunk in received] == ["Hello ", "world"]
    assert caught.value.partial_text == "Hello world"


# ------------------------------------------------------------ broken streams


@pytest.mark.parametrize("mode", STREAMS)
async def test_connection_cut_mid_stream_raises_connection_error_not_short_answer(
    gw, make, mode
):
    gw.enqueue(Reply(content="one two three four five six", cut_after_chunks=3))
    received = []
    with pytest.raises(HolySheepConnectionError) as caught:
        await collect(make(), mode, received)
    assert "".join(chunk.content for chunk in received) == "one two three "
    assert caught.value.partial_text == "one two three "
    assert chat_attempts(gw) == 1  # a failure mid-stream is never retried


@pytest.mark.parametrize("mode", INVOKES)
async def test_connection_cut_mid_stream_under_invoke_with_stream_true(gw, make, mode):
    gw.enqueue(Reply(content="one two three four five six", cut_after_chunks=3))
    with pytest.raises(HolySheepConnectionError) as caught:
        await call(make(), mode, "hi", stream=True)
    assert caught.value.partial_text == "one two three "


def test_connection_cut_mid_stream_under_invoke_with_streaming(gw, make):
    gw.enqueue(Reply(content="one two three four five six", cut_after_chunks=2))
    with pytest.raises(HolySheepConnectionError):
        make(streaming=True).invoke("hi")


@pytest.mark.parametrize("mode", STREAMS)
async def test_malformed_json_chunk_raises_error_naming_the_chunk(gw, make, mode):
    # Event 1 is the role preamble, 2 is "one ", 3 is the bad one.
    gw.enqueue(Reply(content="one two three", malformed_chunk_at=3))
    with pytest.raises(HolySheepResponseError, match="bad json") as caught:
        await collect(make(), mode, [])
    assert "bad json" in str(caught.value)
    assert "bad json" in str(caught.value.body)
    assert caught.value.partial_text == "one "


@pytest.mark.parametrize("mode", STREAMS)
async def test_error_payload_inside_200_stream_raises_typed_error_with_message(
    gw, make, mode
):
    gw.enqueue(
        Reply(
            content="one two three",
            error_after_chunks=2,
            error_message="Upstream provider overloaded",
        )
    )
    with pytest.raises(HolySheepStreamError, match="overloaded") as caught:
        await collect(make(), mode, [])
    assert "Upstream provider overloaded" in str(caught.value)
    assert caught.value.partial_text == "one two "
    assert chat_attempts(gw) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_stream_without_done_or_finish_reason_raises_truncated(gw, make, mode):
    gw.enqueue(Reply(content="one two three", omit_done=True, omit_finish_reason=True))
    streamed = {"stream": True} if mode in INVOKES else {}  # invoke, but streamed
    with pytest.raises(HolySheepTruncatedStreamError) as caught:
        await call(make(), mode, "hi", **streamed)
    assert caught.value.partial_text == "one two three"


def test_stream_with_finish_reason_but_no_done_is_complete(gw, make):
    gw.enqueue(Reply(content="one two", omit_done=True))
    chunks = list(make().stream("hi"))
    assert "".join(c.content for c in chunks) == "one two"
    assert chunks[-1].response_metadata["finish_reason"] == "stop"


# ------------------------------------------------------- gateway unreachable


def _counting_clients(counter: list[str]):
    """A sync and an async HTTP client that note each request they send."""

    def hook(request) -> None:
        counter.append(str(request.url))

    async def ahook(request) -> None:
        hook(request)

    return (
        openai.DefaultHttpxClient(event_hooks={"request": [hook]}),
        openai.DefaultAsyncHttpxClient(event_hooks={"request": [ahook]}),
    )


@pytest.mark.parametrize("mode", INVOKES)
async def test_connection_refused_raises_connection_error_after_retries(mode):
    attempts: list[str] = []
    http_client, http_async_client = _counting_clients(attempts)
    async with http_async_client:
        with http_client:
            model = ChatHolySheep(
                base_url=f"http://127.0.0.1:{free_port()}/v1",
                api_key=KEY,
                max_retries=2,
                connect_timeout=1.0,
                http_client=http_client,
                http_async_client=http_async_client,
            )
            with pytest.raises(HolySheepConnectionError) as caught:
                await call(model, mode, "hi")
    assert not isinstance(caught.value, HolySheepTimeoutError)
    assert caught.value.is_retryable
    assert len(attempts) == 3
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("mode", INVOKES)
async def test_gateway_restarted_between_two_calls_second_call_succeeds(mode):
    port = free_port()
    with OfflineGateway(port=port) as first:
        model = ChatHolySheep(base_url=first.base_url, api_key=KEY, max_retries=0)
        first.enqueue(Reply(content="before"))
        assert (await call(model, mode, "hi")).content == "before"
    with OfflineGateway(port=port) as second:
        second.enqueue(Reply(content="after"))
        assert (await call(model, mode, "hi")).content == "after"
        assert len(second.requests) == 1
