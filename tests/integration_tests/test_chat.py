"""ChatHolySheep end to end: the real openai client over HTTP to the offline gateway."""

import asyncio

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._client import ClientConfig, get_sync_client
from langchain_holysheep.errors import (
    HolySheepAuthenticationError,
    HolySheepBadRequestError,
    HolySheepConnectionError,
    HolySheepContextOverflowError,
    HolySheepInputError,
    HolySheepModelNotFoundError,
    HolySheepPermissionDeniedError,
    HolySheepRateLimitError,
    HolySheepResponseError,
    HolySheepServerError,
    HolySheepStreamError,
    HolySheepTimeoutError,
    HolySheepTruncatedStreamError,
)
from langchain_holysheep.testing import Fault, Reply
from tests.integration_tests.conftest import TEST_KEY

USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


def _join(chunks):
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    return full


# ----------------------------------------------------------------- invoke
def test_invoke_returns_text_usage_and_metadata(gw, model):
    gw.enqueue(Reply(content="Bonjour", model="mistral-small-2603-served", usage=USAGE))
    message = model.invoke([SystemMessage("translate"), HumanMessage("hello")])
    assert message.content == "Bonjour"
    assert message.usage_metadata["input_tokens"] == 11
    assert message.usage_metadata["output_tokens"] == 3
    assert message.usage_metadata["total_tokens"] == 14
    metadata = message.response_metadata
    assert metadata["model_provider"] == "holysheep"
    assert metadata["model_name"] == "mistral-small-2603-served"
    assert metadata["finish_reason"] == "stop"
    assert metadata["id"].startswith("chatcmpl-")
    assert metadata["system_fingerprint"] == "fp_offline"
    assert metadata["token_usage"]["total_tokens"] == 14


async def test_ainvoke(gw, model):
    gw.enqueue(Reply(content="async hello"))
    message = await model.ainvoke("hi")
    assert message.content == "async hello"
    assert message.usage_metadata["total_tokens"] > 0


def test_request_carries_auth_headers_query_and_body(gw, make_model):
    model = make_model(
        default_headers={"X-Team": "search"},
        default_query={"trace": "1"},
        temperature=0.1,
        max_tokens=20,
    )
    model.invoke([SystemMessage("sys"), HumanMessage("question", name="bob")])
    sent = gw.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert sent.headers["x-team"] == "search"
    assert sent.query == {"trace": "1"}
    assert sent.body == {
        "model": "mistral-small-2603",
        "temperature": 0.1,
        "max_tokens": 20,
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "question", "name": "bob"},
        ],
    }


def test_per_call_model_and_extra_body(gw, make_model):
    model = make_model(extra_body={"top_k": 3})
    model.invoke("hi", model="gpt-4.1", extra_body={"safe": True}, stop=["END"])
    body = gw.last_request.body
    assert body["model"] == "gpt-4.1"
    assert body["top_k"] == 3
    assert body["safe"] is True
    assert body["stop"] == ["END"]


async def test_a_parameter_pair_the_model_refuses_never_reaches_the_gateway(
    gw, make_model
):
    claude = make_model(model="claude-sonnet-4.5", temperature=0.2)
    with pytest.raises(HolySheepInputError, match="temperature and top_p"):
        claude.invoke("hi", top_p=0.9)
    with pytest.raises(HolySheepInputError, match="temperature and top_p"):
        await claude.ainvoke("hi", top_p=0.9)
    with pytest.raises(HolySheepInputError, match="temperature and top_p"):
        list(claude.stream("hi", top_p=0.9))
    assert gw.requests == []
    assert claude.invoke("hi").content
    assert gw.last_request.body["temperature"] == 0.2


def test_bound_parameters_reach_the_gateway(gw, model):
    model.bind(seed=42, reasoning_effort="high").invoke("hi")
    assert gw.last_request.body["seed"] == 42
    assert gw.last_request.body["reasoning_effort"] == "high"


def test_images_are_sent_in_openai_form(gw, model):
    model.invoke(
        [
            HumanMessage(
                content=[
                    {"type": "text", "text": "what is this?"},
                    {"type": "image", "url": "https://example.com/cat.png"},
                    {"type": "image", "base64": "AAAA", "mime_type": "image/png"},
                ]
            )
        ]
    )
    parts = gw.last_request.body["messages"][0]["content"]
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/cat.png"},
    }
    assert parts[2]["image_url"]["url"] == "data:image/png;base64,AAAA"


def test_reasoning_is_kept_and_becomes_a_v1_block(gw, make_model):
    gw.enqueue(Reply(content="391", reasoning="17*23 = 391"))
    message = make_model(model="deepseek-v3.2").invoke("17*23?")
    assert message.additional_kwargs["reasoning_content"] == "17*23 = 391"
    gw.enqueue(Reply(content="391", reasoning="17*23 = 391"))
    v1 = make_model(model="deepseek-v3.2", output_version="v1").invoke("17*23?")
    assert v1.content[0] == {"type": "reasoning", "reasoning": "17*23 = 391"}
    assert v1.content[1]["text"] == "391"


def test_logprobs_when_asked(gw, make_model):
    message = make_model(logprobs=True, top_logprobs=2).invoke("hi")
    assert gw.last_request.body["logprobs"] is True
    assert message.response_metadata["logprobs"]["content"]


def test_n_choices(gw, make_model):
    result = make_model(n=2).generate([[HumanMessage("hi")]])
    assert len(result.generations[0]) == 2


def test_batch(gw, model):
    answers = model.batch(["a", "b", "c"], config={"max_concurrency": 2})
    assert [a.content for a in answers] == [
        "Offline reply to: a",
        "Offline reply to: b",
        "Offline reply to: c",
    ]


async def test_abatch_with_max_concurrency(gw, model):
    answers = await model.abatch(
        [f"q{i}" for i in range(8)], config={"max_concurrency": 3}
    )
    assert [a.content for a in answers] == [f"Offline reply to: q{i}" for i in range(8)]


# ----------------------------------------------------------------- stream
def test_stream_tokens_then_usage_on_last_chunk(gw, model):
    gw.enqueue(Reply(content="one two three four", usage=USAGE))
    chunks = list(model.stream("count"))
    texts = [c.content for c in chunks if c.content]
    assert texts == ["one ", "two ", "three ", "four"]
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert chunks[-1].chunk_position == "last"
    assert chunks[-1].usage_metadata["total_tokens"] == 14
    full = _join(chunks)
    assert full.content == "one two three four"
    assert full.usage_metadata["total_tokens"] == 14
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["model_name"] == "mistral-small-2603"
    assert gw.last_request.body["stream_options"] == {"include_usage": True}


async def test_astream(gw, model):
    gw.enqueue(Reply(content="a b c", reasoning="thinking"))
    chunks = [c async for c in model.astream("x")]
    full = _join(chunks)
    assert full.content == "a b c"
    assert full.additional_kwargs["reasoning_content"] == "thinking"
    assert full.usage_metadata["output_tokens"] > 0


def test_stream_usage_off_sends_no_stream_options(gw, make_model):
    chunks = list(make_model(stream_usage=False).stream("x"))
    assert "stream_options" not in gw.last_request.body
    assert _join(chunks).usage_metadata is None


def test_streaming_true_streams_under_invoke(gw, make_model):
    gw.enqueue(Reply(content="streamed answer", usage=USAGE))
    message = make_model(streaming=True).invoke("x")
    assert gw.last_request.body["stream"] is True
    assert message.content == "streamed answer"
    assert message.usage_metadata["total_tokens"] == 14


def test_stream_options_rejection_is_retried_once_and_remembered(gw, make_model):
    gw.reject_stream_options("picky-model")
    model = make_model(model="picky-model")
    first = _join(list(model.stream("x")))
    assert first.content.startswith("Offline reply")
    sent = [r.body for r in gw.requests]
    assert "stream_options" in sent[0]
    assert "stream_options" not in sent[1]
    list(model.stream("again"))
    assert "stream_options" not in gw.last_request.body
    assert len(gw.requests) == 3


async def test_astream_stream_options_rejection(gw, make_model):
    gw.reject_stream_options("picky-async")
    chunks = [c async for c in make_model(model="picky-async").astream("x")]
    assert _join(chunks).content.startswith("Offline reply")
    assert len(gw.requests) == 2


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault(status=401, message="bad key"), HolySheepAuthenticationError),
        (Fault(status=403, message="not allowed"), HolySheepPermissionDeniedError),
        (Fault(status=400, message="bad temperature"), HolySheepBadRequestError),
        (
            Fault(status=400, code="context_length_exceeded", message="too long"),
            HolySheepContextOverflowError,
        ),
        (Fault(status=404, code="model_not_found"), HolySheepModelNotFoundError),
        (Fault(status=429, headers={"Retry-After": "7"}), HolySheepRateLimitError),
        (Fault(status=503), HolySheepServerError),
        (
            Fault(status=200, body="<html>oops</html>", content_type="text/html"),
            HolySheepResponseError,
        ),
        (Fault(status=200, body={"id": "x", "choices": []}), HolySheepResponseError),
    ],
)
def test_http_errors_are_typed(gw, model, fault, error_type):
    gw.enqueue(fault)
    with pytest.raises(error_type) as caught:
        model.invoke("hi")
    assert TEST_KEY not in str(caught.value)


async def test_async_errors_are_typed(gw, model):
    gw.enqueue(Fault(status=429, headers={"Retry-After": "2"}))
    with pytest.raises(HolySheepRateLimitError) as caught:
        await model.ainvoke("hi")
    assert caught.value.retry_after == 2.0


def test_server_errors_are_retried_by_the_sdk(gw, make_model):
    gw.enqueue(
        Fault(status=503, headers={"Retry-After": "0"}),
        Fault(status=500, headers={"Retry-After": "0"}),
    )
    message = make_model(max_retries=2).invoke("hi")
    assert message.content == "Offline reply to: hi"
    assert len(gw.requests) == 3


def test_key_echoed_by_gateway_is_masked(gw, model):
    gw.enqueue(Fault(status=401, message=f"Incorrect API key provided: {TEST_KEY}"))
    with pytest.raises(HolySheepAuthenticationError) as caught:
        model.invoke("hi")
    assert TEST_KEY not in str(caught.value)
    assert TEST_KEY not in str(caught.value.body)


def test_timeout_before_headers(gw, make_model):
    gw.enqueue(Reply(delay_before_headers=2.0))
    with pytest.raises(HolySheepTimeoutError):
        make_model(timeout=0.3).invoke("hi")


def test_connection_refused():
    model = ChatHolySheep(
        base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY, max_retries=0
    )
    with pytest.raises(HolySheepConnectionError):
        model.invoke("hi")


def test_error_payload_inside_stream(gw, model):
    gw.enqueue(
        Reply(
            content="a b c d", error_after_chunks=2, error_message="upstream exploded"
        )
    )
    with pytest.raises(HolySheepStreamError, match="upstream exploded") as caught:
        list(model.stream("x"))
    assert caught.value.partial_text == "a b "


def test_truncated_stream_is_an_error_not_a_short_answer(gw, model):
    gw.enqueue(Reply(content="a b c", omit_finish_reason=True, omit_done=True))
    with pytest.raises(HolySheepTruncatedStreamError) as caught:
        list(model.stream("x"))
    assert caught.value.partial_text == "a b c"


def test_stream_with_finish_reason_but_no_done_is_complete(gw, model):
    gw.enqueue(Reply(content="a b", omit_done=True))
    assert _join(list(model.stream("x"))).content == "a b"


async def test_async_truncated_stream(gw, model):
    gw.enqueue(Reply(content="a b c", omit_finish_reason=True, omit_done=True))
    with pytest.raises(HolySheepTruncatedStreamError):
        async for _ in model.astream("x"):
            pass


def test_connection_cut_mid_stream(gw, model):
    gw.enqueue(Reply(content="a b c d e", cut_after_chunks=2))
    with pytest.raises(HolySheepConnectionError) as caught:
        list(model.stream("x"))
    assert caught.value.partial_text == "a b "


def test_malformed_chunk_names_the_chunk(gw, model):
    gw.enqueue(Reply(content="a b c", malformed_chunk_at=3))
    with pytest.raises(HolySheepResponseError, match="not valid JSON"):
        list(model.stream("x"))


def test_stall_between_chunks_times_out(gw, make_model):
    gw.enqueue(Reply(content="a b c", chunk_delay=1.0))
    with pytest.raises(HolySheepTimeoutError):
        list(make_model(timeout=0.3).stream("x"))


# ----------------------------------------------------------------- clients
def test_models_with_the_same_settings_share_one_pool(gw, make_model):
    first, second = make_model(), make_model(model="gpt-4.1", timeout=5)
    first.invoke("a")
    second.invoke("b")
    config = first._client_config(None)
    assert config == second._client_config(None)
    assert get_sync_client(config) is get_sync_client(second._client_config(None))
    assert TEST_KEY not in repr(config)


def test_different_keys_get_different_pools(gw):
    one = ClientConfig.create(base_url=gw.base_url, api_key="cr_one_1234567")
    two = ClientConfig.create(base_url=gw.base_url, api_key="cr_two_1234567")
    assert one != two
    assert get_sync_client(one) is not get_sync_client(two)


def test_async_works_across_event_loops(gw, model):
    """Regression: a cached AsyncClient from a closed loop broke ChatOpenAI."""

    async def call():
        return await model.ainvoke("hi")

    assert asyncio.run(call()).content == "Offline reply to: hi"
    assert asyncio.run(call()).content == "Offline reply to: hi"


def test_close_then_reuse(gw, model):
    model.invoke("a")
    model.close()
    assert model.invoke("b").content == "Offline reply to: b"


async def test_aclose_then_reuse(gw, model):
    await model.ainvoke("a")
    await model.aclose()
    assert (await model.ainvoke("b")).content == "Offline reply to: b"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_openai_account_ids_from_the_environment_are_not_sent(gw, monkeypatch, mode):
    """Regression: the SDK sent OPENAI_ORG_ID/OPENAI_PROJECT_ID to the gateway."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-private")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_private")
    model = ChatHolySheep(  # a key of its own: a fresh pool, built with the env set
        base_url=gw.base_url, api_key=f"cr_account_ids_{mode}_123456", max_retries=0
    )
    if mode == "sync":
        model.invoke("hi")
    else:
        asyncio.run(model.ainvoke("hi"))
    headers = gw.last_request.headers
    assert "openai-organization" not in headers
    assert "openai-project" not in headers
    assert headers["authorization"].startswith("Bearer cr_account_ids_")


def test_a_parameter_that_is_not_json_fails_before_sending(gw, model):
    with pytest.raises(HolySheepInputError, match="cannot be sent as JSON"):
        model.invoke("hi", extra_body={"when": object()})
    assert gw.requests == []
