"""The API key never leaks: a canary key is driven through every public path.

repr/str/model dumps, DEBUG logs of every relevant logger, every error kind (with a
gateway that echoes the key back), tracebacks, ``dumpd``/``dumps``, pickle, the
LangSmith params, callbacks and traced runs, and the CLI's output. Any occurrence
of the canary fails the test.
"""

from __future__ import annotations

import json
import logging
import pickle
import traceback
import warnings

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.tracers.context import collect_runs

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import HolySheepError
from langchain_holysheep.testing import Fault, Reply, ToolCall

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
