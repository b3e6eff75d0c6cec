"""A connection error says where and what to do: endpoint, cause in words, next step.

One loopback trick per cause, so no traffic leaves this machine:

* refused: a port nothing listens on;
* name not resolved: a ``.invalid`` host, failed by the resolver guard below
  (the system resolver would ask a DNS server, off loopback);
* TLS failure: ``https`` spoken to the offline gateway's plain-http port;
* proxy refused: a local proxy that answers ``CONNECT`` with 403;
* timed out while connecting: a listener whose accept queue is full, so the
  kernel drops the connection attempt.

Every cause is driven through invoke, ainvoke, stream and astream, and through
the catalog, embeddings, the fallback chain's attempts and the CLI.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import openai
import pytest

from langchain_holysheep import ChatHolySheep, HolySheepEmbeddings
from langchain_holysheep.catalog import alist_models, clear_model_cache, list_models
from langchain_holysheep.errors import (
    HolySheepConnectionError,
    HolySheepError,
    HolySheepTimeoutError,
)
from langchain_holysheep.fallback import ChatHolySheepFallback
from tests.modes import MODES, call

KEY = "cr_connection_errors_key_42"
USERINFO = "relay-user:relay-password-42"
NEXT_STEP = "HOLYSHEEP_BASE_URL"


@pytest.fixture(autouse=True)
def resolver_guard(monkeypatch):
    """``.invalid`` names fail in the resolver; any other non-loopback look-up fails.

    The test never waits for (or sends) a DNS query: ``.invalid`` is reserved
    (RFC 6761) and answered here as the resolver would, "name not known".
    """
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        looked_up.append(name)
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if name not in {"127.0.0.1", "localhost", "::1"}:
            pytest.fail(f"a test tried to resolve {name!r}: traffic would leave")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    return looked_up


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def refusing_proxy():
    """A proxy on loopback that refuses every ``CONNECT`` with 403 Forbidden."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    server.close()


@pytest.fixture
def full_backlog():
    """A port whose accept queue is full: a new connection attempt just waits."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.settimeout(0)  # non-blocking
        with contextlib.suppress(BlockingIOError):  # it completes in the queue
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


# cause -> the words the message must contain
CAUSES = {
    "refused": "connection refused by 127.0.0.1:",
    "dns": "the host name 'gateway.invalid' could not be resolved",
    "tls": "the TLS handshake with 127.0.0.1:",
    "proxy": "the proxy refused to connect to gateway.invalid:443",
    "connect-timeout": "timed out while connecting to 127.0.0.1:",
}
ADVICE = {
    "refused": "Check that the gateway is running",
    "dns": "Check the host name for typos",
    "tls": "use an http:// URL",
    "proxy": "Check the proxy settings",
    "connect-timeout": "raise connect_timeout",
}


@pytest.fixture
def unreachable(request, gw, refusing_proxy, full_backlog):
    """``(settings, shown endpoint)`` for one cause; settings build any model."""
    cause = request.param
    settings: dict = {"api_key": KEY, "max_retries": 0, "connect_timeout": 0.3}
    if cause == "refused":
        host = f"127.0.0.1:{closed_port()}"
        url = f"http://{USERINFO}@{host}/v1"
    elif cause == "dns":
        host, url = "gateway.invalid", f"https://{USERINFO}@gateway.invalid/v1"
    elif cause == "tls":
        host = f"127.0.0.1:{gw.port}"
        url = f"https://{USERINFO}@{host}/v1"
    elif cause == "proxy":
        host, url = "gateway.invalid", f"https://{USERINFO}@gateway.invalid/v1"
        settings["http_client"] = openai.DefaultHttpxClient(proxy=refusing_proxy)
        settings["http_async_client"] = openai.DefaultAsyncHttpxClient(
            proxy=refusing_proxy
        )
    else:
        host = f"127.0.0.1:{full_backlog}"
        url = f"http://{USERINFO}@{host}/v1"
    scheme = url.split(":", 1)[0]
    settings["base_url"] = url
    yield cause, settings, f"{scheme}://***:***@{host}/v1"
    for name in ("http_client", "http_async_client"):
        client = settings.get(name)
        if isinstance(client, openai.DefaultHttpxClient):
            client.close()


def assert_says_where_and_what(error: BaseException, cause: str, endpoint: str, path):
    text = str(error)
    words = CAUSES[cause]
    assert f"{endpoint}{path}" in text, text
    assert words in text, text
    assert ADVICE[cause] in text, text
    assert NEXT_STEP in text, text
    assert "relay-password" not in text
    if cause == "connect-timeout":
        assert isinstance(error, HolySheepTimeoutError)
        assert "connect_timeout=0.3 s" in text
    else:
        assert isinstance(error, HolySheepConnectionError)
        assert not isinstance(error, HolySheepTimeoutError)
    assert error.is_retryable


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unreachable", CAUSES, indirect=True)
async def test_chat_connection_error_names_endpoint_cause_and_next_step(
    unreachable, mode
):
    cause, settings, endpoint = unreachable
    with pytest.raises(HolySheepError) as caught:
        await call(ChatHolySheep(**settings), mode)
    assert_says_where_and_what(caught.value, cause, endpoint, "/chat/completions")
    assert str(caught.value).startswith("The request to the gateway ")


@pytest.mark.parametrize("unreachable", CAUSES, indirect=True)
async def test_embeddings_connection_error_names_endpoint_cause_and_next_step(
    unreachable,
):
    cause, settings, endpoint = unreachable
    embeddings = HolySheepEmbeddings(**settings)
    with pytest.raises(HolySheepError) as caught:
        embeddings.embed_query("hi")
    with pytest.raises(HolySheepError) as caught_async:
        await embeddings.aembed_query("hi")
    for error in (caught.value, caught_async.value):
        assert_says_where_and_what(error, cause, endpoint, "/embeddings")


@pytest.mark.parametrize("unreachable", ["refused", "dns", "tls"], indirect=True)
async def test_catalog_connection_error_names_endpoint_cause_and_next_step(
    unreachable,
):
    cause, settings, endpoint = unreachable
    clear_model_cache()
    lookup = {"api_key": KEY, "base_url": settings["base_url"], "max_retries": 0}
    with pytest.raises(HolySheepError) as caught:
        list_models(**lookup)
    with pytest.raises(HolySheepError) as caught_async:
        await alist_models(**lookup)
    for error in (caught.value, caught_async.value):
        assert_says_where_and_what(error, cause, endpoint, "/models")


def test_validate_model_connection_error_names_the_catalog_endpoint():
    clear_model_cache()
    url = f"http://{USERINFO}@127.0.0.1:{closed_port()}/v1"
    model = ChatHolySheep(base_url=url, api_key=KEY, max_retries=0, validate_model=True)
    with pytest.raises(HolySheepConnectionError) as caught:
        model.invoke("hi")
    assert "(GET http://***:***@127.0.0.1:" in str(caught.value)
    assert "/v1/models): connection refused" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("unreachable", CAUSES, indirect=True)
async def test_the_chains_attempts_name_endpoint_and_cause(unreachable, mode):
    cause, settings, endpoint = unreachable
    chain = ChatHolySheepFallback(
        models=["gpt-4.1", "deepseek-v3.2"], circuit_breaker=None, **settings
    )
    with pytest.raises(HolySheepError) as caught:
        await call(chain, mode)
    attempts = caught.value.attempts
    assert [a["model"] for a in attempts] == ["gpt-4.1", "deepseek-v3.2"]
    words = CAUSES[cause]
    for attempt in attempts:
        assert f"{endpoint}/chat/completions" in attempt["message"]
        assert words in attempt["message"]
        assert "relay-password" not in attempt["message"]
    assert words in str(caught.value)


@pytest.mark.parametrize("unreachable", ["refused", "dns"], indirect=True)
def test_the_cli_says_where_what_and_how_to_run_offline(
    unreachable, monkeypatch, capsys
):
    from langchain_holysheep.cli import main

    cause, settings, endpoint = unreachable
    monkeypatch.setenv("HOLYSHEEP_API_KEY", KEY)
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", settings["base_url"])
    status = main(["chat", "hello"])
    out, err = capsys.readouterr()
    assert status == 1
    assert err.startswith("error: The request to the gateway failed ")
    assert f"{endpoint}/chat/completions" in err
    assert CAUSES[cause] in err
    assert "unset HOLYSHEEP_API_KEY (or pass --offline)" in err
    assert "relay-password" not in out + err


def test_a_connection_cut_mid_stream_says_it_broke_mid_response(gw):
    from langchain_holysheep.testing import Reply

    gw.enqueue(Reply(content="one two three four", cut_after_chunks=2))
    model = ChatHolySheep(base_url=gw.base_url, api_key=KEY, max_retries=0)
    with pytest.raises(HolySheepConnectionError) as caught:
        list(model.stream("hi"))
    assert "broke mid-response" in str(caught.value)
    assert caught.value.partial_text == "one two "


def test_a_read_timeout_says_how_long_it_waited(gw):
    from langchain_holysheep.testing import Reply

    gw.enqueue(Reply(content="late", delay_before_headers=2.0))
    model = ChatHolySheep(base_url=gw.base_url, api_key=KEY, max_retries=0, timeout=0.3)
    with pytest.raises(HolySheepTimeoutError) as caught:
        model.invoke("hi")
    assert "The request to the gateway timed out (POST http://127.0.0.1:" in str(
        caught.value
    )
    assert "within 0.3 s" in str(caught.value)
    assert "raise timeout" in str(caught.value)
