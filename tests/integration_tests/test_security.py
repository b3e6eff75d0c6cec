"""The API key never leaks: a canary key is driven through every public path.

repr/str/model dumps, DEBUG logs of every relevant logger, every error kind (with a
gateway that echoes the key back), tracebacks, ``dumpd``/``dumps``, pickle, the
LangSmith params, callbacks and traced runs, and the CLI's output. Any occurrence
of the canary fails the test.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import traceback
import warnings
from urllib.parse import quote

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.tracers.context import collect_runs

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import HolySheepError
from langchain_holysheep.testing import Fault, Reply, ToolCall
from tests.modes import MODES, call

CANARY = "cr_SECRET_leak_canary_123456"
LOGGERS = ("openai", "httpx", "httpx2", "httpcore", "langchain_holysheep")


def assert_no_canary(*things: object) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else repr(thing)
        assert CANARY not in text, f"the key leaked in: {text[:300]}"
        assert CANARY[3:] not in text, f"part of the key leaked in: {text[:300]}"


@pytest.fixture
def make(gw):
    def build(**kwargs) -> ChatHolySheep:
        kwargs.setdefault("max_retries", 0)
        return ChatHolySheep(base_url=gw.base_url, api_key=CANARY, **kwargs)

    return build


class Recorder(BaseCallbackHandler):
    """Records everything every callback is given."""

    def __init__(self) -> None:
        self.seen: list[str] = []


def _recording(name):
    def method(self, *args, **kwargs):
        self.seen.append(f"{name} {args!r} {kwargs!r}")

    return method


for _name in [n for n in dir(BaseCallbackHandler) if n.startswith("on_")]:
    setattr(Recorder, _name, _recording(_name))


# ------------------------------------------------------------- the model itself


def test_model_repr_str_and_dumps_do_not_contain_the_key(make):
    model = make(temperature=0.1)
    assert_no_canary(
        repr(model),
        str(model),
        model.model_dump(),
        model.model_dump_json(),
        model.asdict(),
        model._identifying_params,
        model._default_params,
        model.lc_secrets,
        model.bind(temperature=0),
    )
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == CANARY  # the key is really there


def test_dumpd_and_dumps_reference_the_env_var_not_the_key(make):
    model = make()
    for serialized in (
        json.dumps(dumpd(model)),
        dumps(model),
        dumps(model, pretty=True),
        dumps(model.bind(stop=["x"])),
    ):
        assert_no_canary(serialized)
    assert dumpd(model)["kwargs"]["api_key"] == {
        "lc": 1,
        "type": "secret",
        "id": ["HOLYSHEEP_API_KEY"],
    }


def test_pickle_of_the_model_does_not_contain_the_key(make):
    assert CANARY.encode() not in pickle.dumps(make())


def test_ls_params_do_not_contain_the_key(make):
    model = make()
    assert_no_canary(
        model._get_ls_params(),
        model._get_ls_params(stop=["x"], model="gpt-4.1"),
        model._get_invocation_params(),
    )


# ----------------------------------------------------------- logs at DEBUG


def _drive_everything(model, gw) -> None:
    gw.enqueue(Reply(content="hello"))
    model.invoke("hi")
    gw.enqueue(Reply(content="hello there"))
    list(model.stream("hi"))
    gw.enqueue(Fault(status=401, message=f"Incorrect API key provided: {CANARY}"))
    with pytest.raises(HolySheepError):
        model.invoke("hi")
    gw.enqueue(Reply(content="a b c", error_after_chunks=1, error_message=CANARY))
    with pytest.raises(HolySheepError):
        list(model.stream("hi"))


def test_debug_logs_of_every_logger_do_not_contain_the_key(make, gw, caplog):
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    _drive_everything(make(max_retries=1), gw)
    assert caplog.records  # DEBUG logging really was on
    assert any(r.name.startswith(("openai", "httpx")) for r in caplog.records)
    for record in caplog.records:
        assert_no_canary(record.getMessage(), record.args, record.__dict__)
    assert_no_canary(caplog.text)


async def test_debug_logs_of_async_calls_do_not_contain_the_key(make, gw, caplog):
    caplog.set_level(logging.DEBUG)
    model = make()
    gw.enqueue(Reply(content="hello"), Reply(content="there"))
    await model.ainvoke("hi")
    [c async for c in model.astream("hi")]
    gw.enqueue(Fault(status=403, message=f"key {CANARY} may not use this model"))
    with pytest.raises(HolySheepError):
        await model.ainvoke("hi")
    assert caplog.records
    assert_no_canary(caplog.text, [r.__dict__ for r in caplog.records])


# -------------------------------------------------------------- every error

ECHO = f"The key {CANARY} was rejected"
ERROR_CASES = {
    "400": Fault(status=400, message=ECHO),
    "400-context": Fault(status=400, message=ECHO, code="context_length_exceeded"),
    "401": Fault(status=401, message=ECHO),
    "402": Fault(status=402, message=ECHO),
    "403": Fault(status=403, message=ECHO),
    "404": Fault(status=404, message=ECHO, code="model_not_found"),
    "409": Fault(status=409, message=ECHO),
    "422": Fault(status=422, message=ECHO),
    "429": Fault(status=429, message=ECHO, headers={"Retry-After": "3600"}),
    "500": Fault(status=500, message=ECHO),
    "502-html": Fault(
        status=502, body=f"<html>{ECHO}</html>", content_type="text/html"
    ),
    "503-in-body": Fault(status=503, body={"error": {"message": ECHO, "key": CANARY}}),
    "200-not-json": Fault(
        status=200, body=f"<html>{ECHO}</html>", content_type="text/html"
    ),
}
STREAM_CASES = {
    "in-stream-error": Reply(content="a b c", error_after_chunks=1, error_message=ECHO),
    "in-stream-error-code": Reply(
        content="a b", error_after_chunks=0, error_message="x", error_code=CANARY
    ),
}


def _error_texts(error: BaseException) -> list[object]:
    return [
        str(error),
        repr(error),
        error.args,
        getattr(error, "message", None),
        getattr(error, "body", None),
        getattr(error, "partial_text", None),
        getattr(error, "param", None),
        getattr(error, "code", None),
    ]


def _formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def _raise_for(make, gw, case: str) -> HolySheepError:
    model = make()
    if case in STREAM_CASES:
        gw.enqueue(STREAM_CASES[case])
        with pytest.raises(HolySheepError) as caught:
            list(model.stream("hi"))
    else:
        gw.enqueue(ERROR_CASES[case])
        with pytest.raises(HolySheepError) as caught:
            model.invoke("hi")
    return caught.value


ALL_CASES = [*ERROR_CASES, *STREAM_CASES]


@pytest.mark.parametrize("case", ALL_CASES)
def test_every_error_kind_masks_a_key_the_gateway_echoes(make, gw, case):
    error = _raise_for(make, gw, case)
    assert_no_canary(*_error_texts(error))


@pytest.mark.parametrize("case", ALL_CASES)
def test_error_tracebacks_do_not_contain_the_key(make, gw, case):
    """``logging.exception`` and uncaught tracebacks print ``__cause__`` too."""
    error = _raise_for(make, gw, case)
    assert_no_canary(_formatted(error))


def _http_objects_in_chain(error: BaseException) -> list[object]:
    """Every request/response an error chain carries, however deep."""
    found: list[object] = []
    current: BaseException | None = error
    while current is not None:
        for name in ("request", "response"):
            value = getattr(current, name, None)
            if value is not None:
                found.append(value)
                inner = getattr(value, "_request", None)  # a response's request
                if inner is not None:
                    found.append(inner)
        current = current.__cause__ or current.__context__
    return found


def _http_texts(thing: object) -> list[object]:
    texts: list[object] = [repr(thing), list(getattr(thing, "headers", {}).items())]
    content = getattr(thing, "content", None)
    if isinstance(content, bytes):
        texts.append(content.decode(errors="replace"))
    return texts


@pytest.mark.parametrize(
    "case", ["401", "404", "429", "500", "502-html", "503-in-body"]
)
def test_no_request_or_response_in_the_error_chain_carries_the_key(make, gw, case):
    """Error reporters and debuggers reach ``__cause__.request`` and its headers."""
    error = _raise_for(make, gw, case)
    carried = _http_objects_in_chain(error)
    assert carried, "the error chain carries no request or response"
    for thing in carried:
        assert_no_canary(*_http_texts(thing))
    assert gw.last_request.headers["authorization"] == f"Bearer {CANARY}"


def test_errors_without_a_response_do_not_contain_the_key(gw):
    timeout = ChatHolySheep(
        base_url=gw.base_url, api_key=CANARY, timeout=0.3, max_retries=0
    )
    gw.enqueue(Reply(delay_before_headers=2.0))
    with pytest.raises(HolySheepError) as timed_out:
        timeout.invoke("hi")
    refused = ChatHolySheep(
        base_url="http://127.0.0.1:9/v1", api_key=CANARY, max_retries=0
    )
    with pytest.raises(HolySheepError) as unreachable:
        refused.invoke("hi")
    for error in (timed_out.value, unreachable.value):
        assert_no_canary(*_error_texts(error), _formatted(error))
        for thing in _http_objects_in_chain(error):
            assert_no_canary(*_http_texts(thing))


# ------------------------------------------------------------ callbacks, traces


def test_callbacks_and_traced_runs_never_see_the_key(make, gw):
    model = make()
    recorder = Recorder()
    gw.enqueue(
        Reply(content="hi"),
        Reply(content="streamed reply"),
        Reply(tool_calls=[ToolCall("lookup", {"q": "x"})]),
        Fault(status=500),
    )
    tools = [{"name": "lookup", "description": "Look up.", "parameters": {}}]
    with collect_runs() as runs:
        model.invoke("hi", config={"callbacks": [recorder]})
        list(model.stream("hi", config={"callbacks": [recorder]}))
        model.bind_tools(tools).invoke("hi", config={"callbacks": [recorder]})
        with pytest.raises(HolySheepError):
            model.invoke("hi", config={"callbacks": [recorder]})
    assert len(recorder.seen) >= 8  # start/end/token/error events were recorded
    assert any(s.startswith("on_llm_error") for s in recorder.seen)
    assert_no_canary(*recorder.seen)
    assert len(runs.traced_runs) == 4
    for run in runs.traced_runs:
        assert_no_canary(run.model_dump_json(), run.serialized, run.extra)


def test_error_callbacks_and_traces_do_not_see_a_key_the_gateway_echoes(make, gw):
    recorder = Recorder()
    gw.enqueue(Fault(status=401, message=ECHO))
    with collect_runs() as runs, pytest.raises(HolySheepError):
        make().invoke("hi", config={"callbacks": [recorder]})
    assert any(s.startswith("on_llm_error") for s in recorder.seen)
    assert_no_canary(*recorder.seen, *(r.model_dump_json() for r in runs.traced_runs))


async def test_async_callbacks_and_stream_events_never_see_the_key(make, gw):
    model = make()
    recorder = Recorder()
    gw.enqueue(Reply(content="one"), Reply(content="two three"))
    await model.ainvoke("hi", config={"callbacks": [recorder]})
    events = [e async for e in model.astream_events("hi", version="v2")]
    assert recorder.seen
    assert events
    assert_no_canary(*recorder.seen, events)


# --------------------------------------------------------------------- CLI


@pytest.mark.parametrize(
    "argv",
    [["chat", "hello there"], ["models"], ["models", "--json"], ["chat", "-x", "?"]],
    ids=["chat", "models", "models-json", "bad-args"],
)
def test_cli_output_never_contains_the_key(gw, monkeypatch, capsys, argv):
    cli = pytest.importorskip("langchain_holysheep.cli")
    monkeypatch.setenv("HOLYSHEEP_API_KEY", CANARY)
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", gw.base_url)
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse errors exit
        status = exit_.code
    out, err = capsys.readouterr()
    assert out or err
    assert status in {0, 1, 2}
    assert_no_canary(out, err)


def test_cli_error_output_masks_a_key_the_gateway_echoes(gw, monkeypatch, capsys):
    cli = pytest.importorskip("langchain_holysheep.cli")
    monkeypatch.setenv("HOLYSHEEP_API_KEY", CANARY)
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", gw.base_url)
    gw.set_default(Fault(status=401, message=ECHO))
    status = cli.main(["chat", "hello"])
    out, err = capsys.readouterr()
    assert status == 1
    assert "rejected" in err
    assert_no_canary(out, err)


# ------------------------------------------------------------- plain http


@pytest.mark.parametrize(
    "url", ["http://gateway.example.com/v1", "http://10.1.2.3:8080/v1"]
)
def test_plain_http_to_a_non_loopback_host_warns(url):
    with pytest.warns(UserWarning, match="plain http") as caught:
        ChatHolySheep(base_url=url, api_key=CANARY)
    assert_no_canary(*(str(w.message) for w in caught))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v1",
        "http://localhost:8080/v1",
        "http://[::1]:8080/v1",
        "https://gateway.example.com/v1",
    ],
)
def test_https_or_loopback_base_url_does_not_warn(url):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ChatHolySheep(base_url=url, api_key=CANARY)
    assert model.base_url == url


# ------------------------------------------------------------- embeddings


def test_embeddings_repr_dumps_and_errors_do_not_contain_the_key(gw):
    from langchain_holysheep.embeddings import HolySheepEmbeddings

    embeddings = HolySheepEmbeddings(
        base_url=gw.base_url, api_key=CANARY, max_retries=0
    )
    assert len(embeddings.embed_query("hello")) > 0
    gw.enqueue(Fault(status=401, message=ECHO), endpoint="embeddings")
    with pytest.raises(HolySheepError) as caught:
        embeddings.embed_documents(["a", "b"])
    assert_no_canary(
        repr(embeddings),
        str(embeddings),
        embeddings.model_dump(),
        embeddings.model_dump_json(),
        *_error_texts(caught.value),
    )


def test_pickles_of_the_chain_and_embeddings_do_not_contain_the_key(gw, monkeypatch):
    from langchain_holysheep import HolySheepEmbeddings
    from langchain_holysheep.fallback import ChatHolySheepFallback

    primary = ChatHolySheep(base_url=gw.base_url, api_key=CANARY, max_retries=0)
    chain = primary.with_model_fallbacks(["gpt-4.1"])
    by_ids = ChatHolySheepFallback(
        models=["gpt-4.1", "deepseek-v3.2"], api_key=CANARY, base_url=gw.base_url
    )
    embeddings = HolySheepEmbeddings(base_url=gw.base_url, api_key=CANARY)
    chain.invoke("warm up: members are built")
    for thing in (chain, by_ids, embeddings):
        assert CANARY.encode() not in pickle.dumps(thing)
    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_worker_key_123456")
    clone = pickle.loads(pickle.dumps(chain))  # noqa: S301 (our own bytes)
    assert clone.invoke("hi").content == "Offline reply to: hi"
    assert gw.last_request.headers["authorization"] == "Bearer cr_worker_key_123456"


# ========================================================= every credential slot
# A recognisable value in every credential slot: the key, the URL's userinfo,
# several kinds of credential header and query parameter. Every value holds
# MARK, so one search finds any of them (percent-encoded forms too); the Basic
# token HTTP makes of the userinfo is searched for as well.

MARK = "LEAKED"
SLOTS = {
    "key": "cr_LEAKED_key_0123456789",
    "user": "userLEAKED1",
    "password": "pw/LEAKED:2",  # percent-encoded in the URL
    "helicone": "Bearer hlcLEAKED3",
    "x-api-key": "xakLEAKED4",
    "proxy-token": "pxtLEAKED5",
    "cookie": "session=ckLEAKED6",
    "cf": "Bearer cfLEAKED7",
    "sig": "sigLEAKED8",
    "token": "tokLEAKED9",
}
HEADERS = {
    "Helicone-Auth": SLOTS["helicone"],
    "X-Api-Key": SLOTS["x-api-key"],
    "x_proxy_token": SLOTS["proxy-token"],
    "Cookie": SLOTS["cookie"],
    "cf-aig-authorization": SLOTS["cf"],
    "X-Request-Source": "visible-source",
}
QUERY = {"sig": SLOTS["sig"], "access_token": SLOTS["token"], "v": "2"}
BASIC = base64.b64encode(f"{SLOTS['user']}:{SLOTS['password']}".encode()).decode()
ECHO_ALL = "echo: " + " ".join(SLOTS.values())


def userinfo_url(gw) -> str:
    user, password = (quote(SLOTS[k], safe="") for k in ("user", "password"))
    return gw.base_url.replace("http://", f"http://{user}:{password}@")


def assert_no_leak(*things: object) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else repr(thing)
        assert MARK not in text, f"a credential leaked in: {text[:400]}"
        assert BASIC not in text, f"the userinfo leaked (Basic) in: {text[:400]}"


@pytest.fixture
def relay(gw):
    """The gateway playing a relay behind basic auth (the URL's userinfo)."""
    gw.basic_auth = (SLOTS["user"], SLOTS["password"])
    return gw


def _settings(gw, url=None, **kwargs):
    return {
        "base_url": url or userinfo_url(gw),
        "api_key": SLOTS["key"],
        "default_headers": dict(HEADERS),
        "default_query": dict(QUERY),
        "max_retries": 0,
        **kwargs,
    }


def _chat(gw, url=None, **kwargs):
    return ChatHolySheep(**_settings(gw, url, **kwargs))


def _embeddings(gw, **kwargs):
    from langchain_holysheep import HolySheepEmbeddings

    return HolySheepEmbeddings(**_settings(gw, **kwargs))


def _chain_by_ids(gw, **kwargs):
    from langchain_holysheep.fallback import ChatHolySheepFallback

    return ChatHolySheepFallback(models=["gpt-4.1", "deepseek-v3.2"], **_settings(gw))


def _chain_of_models(gw, **kwargs):
    return _chat(gw, **kwargs).with_model_fallbacks(["gpt-4.1"])


CHAT_LIKE = {"chat": _chat, "chain-by-ids": _chain_by_ids, "chain": _chain_of_models}
ALL_CLASSES = {**CHAT_LIKE, "embeddings": _embeddings}


def _texts_of_error(error: BaseException) -> list[object]:
    texts: list[object] = [*_error_texts(error), _formatted(error)]
    for thing in _http_objects_in_chain(error):
        texts.extend(_http_texts(thing))
    current: BaseException | None = error
    while current is not None:
        texts.extend([repr(current), current.args, getattr(current, "__notes__", "")])
        current = current.__cause__ or current.__context__
    for inner in getattr(error, "exceptions", ()):
        texts.extend(_texts_of_error(inner))
    return texts


@pytest.mark.parametrize("build", ALL_CLASSES.values(), ids=ALL_CLASSES)
def test_repr_str_dumps_and_pickle_never_show_a_credential(relay, build):
    thing = build(relay)
    assert_no_leak(repr(thing), str(thing), dumps(thing), json.dumps(dumpd(thing)))
    assert_no_leak(dumps(thing, pretty=True))
    assert "visible-source" in repr(thing)  # other headers stay readable
    assert "X-Request-Source" in dumps(thing)


@pytest.mark.parametrize("build", CHAT_LIKE.values(), ids=CHAT_LIKE)
def test_ls_params_invocation_params_and_bindings_never_show_a_credential(relay, build):
    model = build(relay)
    assert_no_leak(
        model._get_ls_params(),
        model._get_invocation_params(),
        model._identifying_params,
        repr(model.bind(stop=["x"])),
        dumps(model.bind(stop=["x"])),
        dumps(model.bind_tools([add_numbers])),
    )


def add_numbers(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("build", CHAT_LIKE.values(), ids=CHAT_LIKE)
async def test_callbacks_traces_and_logs_never_see_a_credential(
    relay, build, mode, caplog
):
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    model = build(relay)
    recorder = Recorder()
    relay.enqueue(Reply(content="fine"))
    with collect_runs() as runs:
        answer = await call(model, mode, config={"callbacks": [recorder]})
        relay.enqueue(Fault(status=400, message=ECHO_ALL), Fault(status=400))
        with pytest.raises(HolySheepError) as caught:
            await call(model, mode, config={"callbacks": [recorder]})
    assert answer.content == "fine"
    assert any(s.startswith("on_chat_model_start") for s in recorder.seen)
    assert any(s.startswith("on_llm_error") for s in recorder.seen)
    assert any(r.name.startswith("httpx") for r in caplog.records)  # logs were on
    assert_no_leak(*recorder.seen, *_texts_of_error(caught.value))
    for run in runs.traced_runs:
        assert_no_leak(run.model_dump_json(), run.serialized, run.extra)
    for record in caplog.records:
        assert_no_leak(record.getMessage(), record.__dict__)
    assert_no_leak(caplog.text)


ECHO_FAULTS = {
    "401": Fault(status=401, message=ECHO_ALL),
    "429": Fault(status=429, message=ECHO_ALL, headers={"Set-Cookie": SLOTS["cookie"]}),
    "500-body": Fault(status=500, body={"error": {"message": ECHO_ALL, **SLOTS}}),
    "502-html": Fault(status=502, body=f"<p>{ECHO_ALL}</p>", content_type="text/html"),
    "200-not-json": Fault(status=200, body=ECHO_ALL, content_type="text/html"),
}


@pytest.mark.parametrize("case", ECHO_FAULTS)
@pytest.mark.parametrize("mode", MODES)
async def test_errors_and_their_chains_never_show_a_credential(relay, mode, case):
    relay.set_default(ECHO_FAULTS[case])
    with pytest.raises(HolySheepError) as caught:
        await call(_chat(relay), mode)
    assert_no_leak(*_texts_of_error(caught.value))


@pytest.mark.parametrize("mode", MODES)
async def test_the_chains_attempts_and_log_lines_never_show_a_credential(
    relay, mode, caplog
):
    caplog.set_level(logging.INFO, logger="langchain_holysheep")
    relay.set_default(Fault(status=503, message=ECHO_ALL))
    with pytest.raises(HolySheepError) as caught:
        await call(_chain_by_ids(relay), mode)
    assert len(caught.value.attempts) == 2
    assert_no_leak(caught.value.attempts, *_texts_of_error(caught.value))
    ours = [r for r in caplog.records if r.name.startswith("langchain_holysheep")]
    assert any("falling over" in r.getMessage() for r in ours)
    assert_no_leak(*(r.getMessage() for r in ours), *(r.__dict__ for r in ours))


@pytest.mark.parametrize("mode", MODES)
async def test_connection_errors_never_show_a_credential(mode):
    dead = _chat(None, url=_unreachable_userinfo_url())
    with pytest.raises(HolySheepError) as caught:
        await call(dead, mode)
    assert "***:***@127.0.0.1" in str(caught.value)  # the endpoint, masked
    assert_no_leak(*_texts_of_error(caught.value))


def _unreachable_userinfo_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user, password = (quote(SLOTS[k], safe="") for k in ("user", "password"))
    return f"http://{user}:{password}@127.0.0.1:{port}/v1"


async def test_embeddings_calls_errors_and_logs_never_show_a_credential(relay, caplog):
    caplog.set_level(logging.DEBUG)
    embeddings = _embeddings(relay)
    assert len(embeddings.embed_query("hello")) > 0
    assert len(await embeddings.aembed_query("hello")) > 0
    relay.enqueue(Fault(status=401, message=ECHO_ALL), endpoint="embeddings")
    with pytest.raises(HolySheepError) as caught:
        embeddings.embed_documents(["a"])
    relay.enqueue(Fault(status=500, message=ECHO_ALL), endpoint="embeddings")
    with pytest.raises(HolySheepError) as caught_async:
        await embeddings.aembed_documents(["a"])
    assert_no_leak(*_texts_of_error(caught.value), *_texts_of_error(caught_async.value))
    assert_no_leak(caplog.text, *(r.__dict__ for r in caplog.records))


def test_catalog_errors_never_show_a_credential(relay):
    from langchain_holysheep.catalog import clear_model_cache, list_models

    clear_model_cache()
    url = userinfo_url(relay)
    assert "gpt-4.1" in list_models(api_key=SLOTS["key"], base_url=url)
    # list_models() knows the key and the URL (it sends no extra headers).
    echo = f"echo: {SLOTS['key']} {SLOTS['user']} {SLOTS['password']} {BASIC}"
    relay.enqueue(Fault(status=500, message=echo), endpoint="models")
    with pytest.raises(HolySheepError) as caught:
        list_models(api_key=SLOTS["key"], base_url=url, refresh=True, max_retries=0)
    strict = _chat(relay, model="gpt-5-typo", validate_model=True)
    with pytest.raises(HolySheepError) as not_served:
        strict.invoke("hi")
    assert "***:***@" in str(not_served.value)
    clear_model_cache()
    relay.enqueue(Fault(status=500, message=ECHO_ALL), endpoint="models")
    with pytest.raises(HolySheepError) as validating:
        strict.invoke("hi")
    assert_no_leak(
        *_texts_of_error(caught.value),
        *_texts_of_error(not_served.value),
        *_texts_of_error(validating.value),
    )


def test_validation_errors_and_warnings_never_quote_a_credential():
    with pytest.raises(ValueError) as bad_scheme:
        ChatHolySheep(base_url=f"ftp://u:{SLOTS['sig']}@host/v1", api_key="x")
    with pytest.raises(ValueError) as bad_header:
        ChatHolySheep(base_url="http://[::1]/v1", default_headers={**HEADERS, "n": 1})
    with pytest.raises(ValueError) as bad_query:
        ChatHolySheep(base_url=f"https://u:p@h/v1?access_token={SLOTS['token']}")
    with pytest.warns(UserWarning, match="plain http") as caught:
        ChatHolySheep(base_url=f"http://u:{SLOTS['sig']}@relay.example/v1", api_key="x")
    assert_no_leak(
        *(str(e.value) for e in (bad_scheme, bad_header, bad_query)),
        *(e.value.errors() for e in (bad_scheme, bad_header, bad_query)),
        *(str(w.message) for w in caught),
    )
    assert "default_query" in str(bad_query.value)  # says what to do instead


def test_the_chains_validation_errors_never_quote_a_credential(gw):
    from langchain_holysheep.fallback import ChatHolySheepFallback

    member = ChatHolySheep(base_url=gw.base_url, api_key="cr_member_123456")
    with pytest.raises(ValueError) as mixed:
        ChatHolySheepFallback(models=[member, "gpt-4.1"], **_settings(gw))
    with pytest.raises(ValueError) as bad_header:
        ChatHolySheepFallback(
            models=["gpt-4.1"], **_settings(gw, default_headers={**HEADERS, "n": 1})
        )
    assert "ChatHolySheep settings" in str(mixed.value)
    for caught in (mixed, bad_header):
        assert_no_leak(str(caught.value), caught.value.errors())


# ------------------------------------------------------- the wire carries them


@pytest.mark.parametrize("mode", MODES)
async def test_the_wire_carries_every_real_value(gw, mode):
    model = _chat(gw, url=gw.base_url)
    await call(model, mode)
    sent = gw.last_request
    assert sent.headers["authorization"] == f"Bearer {SLOTS['key']}"
    for name, value in HEADERS.items():
        assert sent.headers[name.lower()] == value
    assert sent.query == QUERY


@pytest.mark.parametrize("mode", MODES)
async def test_the_wire_carries_the_userinfo_as_basic_auth(relay, mode):
    answer = await call(_chat(relay), mode)
    assert answer.content == "Offline reply to: hello"
    sent = relay.last_request
    assert sent.headers["authorization"] == f"Basic {BASIC}"
    assert sent.headers["helicone-auth"] == SLOTS["helicone"]
    assert sent.query == QUERY


def test_embeddings_and_chain_send_every_real_value(gw):
    settings = _settings(gw, url=gw.base_url)
    from langchain_holysheep import HolySheepEmbeddings
    from langchain_holysheep.fallback import ChatHolySheepFallback

    HolySheepEmbeddings(**settings).embed_query("hi")
    ChatHolySheepFallback(models=["gpt-4.1"], **settings).invoke("hi")
    for sent in gw.requests:
        assert sent.headers["authorization"] == f"Bearer {SLOTS['key']}"
        assert sent.headers["x-api-key"] == SLOTS["x-api-key"]
        assert sent.query == QUERY
    assert {r.path for r in gw.requests} == {"/v1/embeddings", "/v1/chat/completions"}


def test_a_401_with_userinfo_in_the_url_says_it_replaced_the_key(gw):
    # The gateway wants a Bearer key; the URL's userinfo sent Basic instead.
    with pytest.raises(HolySheepError, match="in place of the API key") as caught:
        _chat(gw).invoke("hi")
    assert "X-Api-Key" in str(caught.value)
    assert_no_leak(*_texts_of_error(caught.value))


# ----------------------------------------------- pickle, dumps/load, placeholders


def test_pickle_keeps_the_url_headers_and_query_but_not_the_key(relay, monkeypatch):
    from langchain_holysheep import HolySheepEmbeddings

    monkeypatch.setenv("HOLYSHEEP_API_KEY", "cr_worker_key_123456")
    for thing in (_chat(relay), _embeddings(relay), _chain_by_ids(relay)):
        data = pickle.dumps(thing)
        assert SLOTS["key"].encode() not in data
        clone = pickle.loads(data)  # noqa: S301 (our own bytes)
        if isinstance(clone, HolySheepEmbeddings):
            clone.embed_query("hi")
        else:
            clone.invoke("hi")
        sent = relay.last_request
        assert sent.headers["authorization"] == f"Basic {BASIC}"
        assert sent.headers["x-api-key"] == SLOTS["x-api-key"]
        assert sent.query == QUERY


def _secrets_map(url: str) -> dict[str, str]:
    return {
        "HOLYSHEEP_API_KEY": SLOTS["key"],
        "HOLYSHEEP_BASE_URL": url,
        "HOLYSHEEP_HEADER_HELICONE_AUTH": SLOTS["helicone"],
        "HOLYSHEEP_HEADER_X_API_KEY": SLOTS["x-api-key"],
        "HOLYSHEEP_HEADER_X_PROXY_TOKEN": SLOTS["proxy-token"],
        "HOLYSHEEP_HEADER_COOKIE": SLOTS["cookie"],
        "HOLYSHEEP_HEADER_CF_AIG_AUTHORIZATION": SLOTS["cf"],
        "HOLYSHEEP_QUERY_SIG": SLOTS["sig"],
        "HOLYSHEEP_QUERY_ACCESS_TOKEN": SLOTS["token"],
    }


def _load(text, **kwargs):
    from langchain_core.load import loads

    from langchain_holysheep.fallback import ChatHolySheepFallback

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The function `loads` is in beta")
        return loads(
            text,
            allowed_objects=[ChatHolySheep, ChatHolySheepFallback],
            valid_namespaces=["langchain_holysheep"],
            **kwargs,
        )


@pytest.fixture
def no_credential_env(monkeypatch):
    for name in _secrets_map(""):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("build", CHAT_LIKE.values(), ids=CHAT_LIKE)
def test_dumps_and_loads_restore_every_credential_from_secrets_map(
    relay, build, no_credential_env
):
    clone = _load(dumps(build(relay)), secrets_map=_secrets_map(userinfo_url(relay)))
    assert clone.invoke("hi").content == "Offline reply to: hi"
    sent = relay.last_request
    assert sent.headers["authorization"] == f"Basic {BASIC}"
    for name, value in HEADERS.items():
        assert sent.headers[name.lower()] == value
    assert sent.query == QUERY


def test_loads_restores_credentials_from_the_environment(
    relay, no_credential_env, monkeypatch
):
    text = dumps(_chat(relay))
    for name, value in _secrets_map(userinfo_url(relay)).items():
        monkeypatch.setenv(name, value)
    clone = _load(text)  # secrets_from_env=False: the model reads them itself
    clone.invoke("hi")
    assert relay.last_request.headers["cookie"] == SLOTS["cookie"]
    assert relay.last_request.query == QUERY


@pytest.mark.parametrize("missing", ["HOLYSHEEP_BASE_URL", "HOLYSHEEP_QUERY_SIG"])
@pytest.mark.parametrize("build", CHAT_LIKE.values(), ids=CHAT_LIKE)
def test_loads_without_a_credential_fails_naming_it(
    relay, build, missing, no_credential_env
):
    secrets = _secrets_map(userinfo_url(relay))
    del secrets[missing]
    with pytest.raises(ValueError, match=missing) as caught:
        _load(dumps(build(relay)), secrets_map=secrets)
    assert "secrets_map" in str(caught.value)
    assert_no_leak(str(caught.value))


@pytest.mark.parametrize(
    "settings",
    [
        {"default_headers": {"X-Api-Key": "***"}},
        {"default_query": {"sig": "***"}},
        {"base_url": "http://***:***@127.0.0.1:9/v1"},
        {"api_key": "**********"},
    ],
    ids=["header", "query", "userinfo", "key"],
)
def test_a_masked_placeholder_is_refused_at_construction(gw, settings):
    with pytest.raises(ValueError, match="masked placeholder"):
        ChatHolySheep(**{"base_url": gw.base_url, "api_key": "cr_x_123456", **settings})


@pytest.mark.parametrize("mode", MODES)
async def test_a_masked_placeholder_is_never_sent(gw, mode):
    from langchain_holysheep.errors import HolySheepInputError

    model = ChatHolySheep(base_url=gw.base_url, api_key="cr_x_123456", max_retries=0)
    # model_copy skips validation: the last gate is where the client is built.
    copy = model.model_copy(update={"default_headers": {"Helicone-Auth": "***"}})
    with pytest.raises(HolySheepInputError, match="masked placeholder"):
        await call(copy, mode)
    assert gw.requests == []


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    "argv",
    [["chat", "hello there"], ["models"], ["models", "--json"], ["chat", "-x", "?"]],
    ids=["chat", "models", "models-json", "bad-args"],
)
def test_cli_output_never_shows_a_credential(relay, monkeypatch, capsys, argv):
    cli = pytest.importorskip("langchain_holysheep.cli")
    monkeypatch.setenv("HOLYSHEEP_API_KEY", SLOTS["key"])
    monkeypatch.setenv("HOLYSHEEP_BASE_URL", userinfo_url(relay))
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse errors exit
        status = exit_.code
    out, err = capsys.readouterr()
    assert out or err
    assert status in {0, 2}
    assert_no_leak(out, err)


def test_cli_errors_never_show_a_credential(relay, monkeypatch, capsys):
    cli = pytest.importorskip("langchain_holysheep.cli")
    monkeypatch.setenv("HOLYSHEEP_API_KEY", SLOTS["key"])
    # The CLI knows the key and the URL (not the headers of the other tests).
    echo = f"echo: {SLOTS['key']} {SLOTS['user']} {SLOTS['password']} {BASIC}"
    relay.set_default(Fault(status=401, message=echo))
    status = cli.main(["chat", "--base-url", userinfo_url(relay), "hello"])
    dead = cli.main(["chat", "--base-url", _unreachable_userinfo_url(), "hello"])
    out, err = capsys.readouterr()
    assert (status, dead) == (1, 1)
    assert "echo:" in err
    assert "connection refused" in err
    assert_no_leak(out, err)
