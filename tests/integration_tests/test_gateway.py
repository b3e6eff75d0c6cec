"""Tests of the offline gateway itself, over real loopback HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from langchain_holysheep.testing import (
    DEFAULT_MODELS,
    Fault,
    OfflineGateway,
    RecordedRequest,
    Reply,
    ToolCall,
    embed_text,
)

USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def gw(holysheep_gateway):
    return holysheep_gateway


@pytest.fixture
def client(gw):
    with openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0) as c:
        yield c


def raw(gw, method, path, body=None, *, headers=None, key="k"):
    """One request on a fresh connection: (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    try:
        all_headers = {"Content-Type": "application/json"}
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        all_headers.update(headers or {})
        payload = body if isinstance(body, bytes | None) else json.dumps(body)
        conn.request(method, path, payload, all_headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def chat(gw, **body):
    body.setdefault("model", "gpt-4.1")
    body.setdefault("messages", USER)
    return raw(gw, "POST", "/v1/chat/completions", body)


def sse(data):
    """Parse SSE bytes into a list of decoded payloads ('[DONE]' kept as str)."""
    events = []
    for block in data.split(b"\n\n"):
        if not block:
            continue
        assert block.startswith(b"data: "), block
        payload = block[len(b"data: ") :].decode()
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def content_deltas(events):
    return [
        e["choices"][0]["delta"]["content"]
        for e in events
        if isinstance(e, dict)
        and e.get("choices")
        and e["choices"][0]["delta"].get("content")
    ]


# -- chat: JSON -----------------------------------------------------------------


def test_json_reply_defaults(gw, client):
    result = client.chat.completions.create(model="gpt-4.1", messages=USER)
    assert result.object == "chat.completion"
    assert result.model == "gpt-4.1"
    assert result.system_fingerprint == "fp_offline"
    assert result.id.startswith("chatcmpl-offline-")
    choice = result.choices[0]
    assert choice.message.content == "Offline reply to: hello there"
    assert choice.finish_reason == "stop"
    assert result.usage is not None
    # prompt: 2 words + 4; completion: 5 words ("Offline reply to: hello there").
    assert result.usage.prompt_tokens == 6
    assert result.usage.completion_tokens == 5
    assert result.usage.total_tokens == 11
    assert result.usage.prompt_tokens_details.cached_tokens == 0
    assert result.usage.completion_tokens_details.reasoning_tokens == 0


def test_default_reply_uses_full_last_user_text_and_joins_parts(gw, client):
    long_text = " ".join(f"word{i}" for i in range(300))
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": long_text}]},
    ]
    result = client.chat.completions.create(model="m", messages=messages)
    assert result.choices[0].message.content == f"Offline reply to: {long_text}"
    multi = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look at"},
                {"type": "image_url", "image_url": {"url": "data:,"}},
                {"type": "text", "text": "this"},
            ],
        }
    ]
    result = client.chat.completions.create(model="m", messages=multi)
    assert result.choices[0].message.content == "Offline reply to: look at this"


FILE_PART = {
    "type": "file",
    "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"},
}


def test_well_formed_content_parts_are_accepted_and_recorded(gw, client):
    cached = {"type": "text", "text": "ctx", "cache_control": {"type": "ephemeral"}}
    audio = {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}
    messages = [
        {"role": "system", "content": [cached]},
        {"role": "user", "content": [{"type": "text", "text": "read"}, FILE_PART]},
        {
            "role": "user",
            "content": [audio, {"type": "file", "file": {"file_id": "f"}}],
        },
    ]
    client.chat.completions.create(model="m", messages=messages)
    sent = gw.last_request
    assert sent.content_parts("file") == [FILE_PART, messages[2]["content"][1]]
    assert [p["type"] for p in sent.content_parts()] == [
        "text",
        "text",
        "file",
        "input_audio",
        "file",
    ]
    assert sent.cache_control_parts == [cached]


@pytest.mark.parametrize(
    ("part", "problem"),
    [
        (  # a LangChain file block that was never converted
            {"type": "file", "base64": "JVBER", "mime_type": "application/pdf"},
            "a file part needs file.file_data",
        ),
        ({"type": "image", "url": "https://x/cat.png"}, "Invalid value: 'image'"),
        ({"type": "image_url", "image_url": {}}, "image_url.url"),
        ({"type": "input_audio", "input_audio": {"data": "x"}}, "input_audio.data"),
        ({"type": "refusal", "refusal": "no"}, "Invalid value: 'refusal'"),
        ("just a string", "must be an object"),
    ],
)
def test_malformed_content_parts_get_the_apis_400(gw, client, part, problem):
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="m", messages=messages)
    assert problem in info.value.message
    assert info.value.param == "messages[0].content[1]"
    assert gw.last_request.content_parts("text") == [{"type": "text", "text": "x"}]


def test_scripted_reply_fields(gw, client):
    gw.enqueue(
        Reply(
            content="Bonjour",
            model="served-model",
            finish_reason="length",
            usage={"prompt_tokens": 100, "completion_tokens_details": {"x": 1}},
            cost_usd=0.0012,
            id="chatcmpl-fixed",
            system_fingerprint="fp_custom",
            created=123,
        )
    )
    result = client.chat.completions.create(model="gpt-4.1", messages=USER, n=2)
    assert result.id == "chatcmpl-fixed"
    assert result.created == 123
    assert result.model == "served-model"
    assert result.system_fingerprint == "fp_custom"
    assert [c.index for c in result.choices] == [0, 1]
    assert {c.message.content for c in result.choices} == {"Bonjour"}
    assert result.choices[0].finish_reason == "length"
    usage = result.usage.model_dump()
    assert usage["prompt_tokens"] == 100
    assert usage["completion_tokens"] == 2  # one word, two choices
    assert usage["total_tokens"] == 102
    assert usage["cost_usd"] == 0.0012
    assert usage["completion_tokens_details"]["x"] == 1
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_refusal_and_reasoning_json(gw, client):
    gw.enqueue(Reply(refusal="I can't help with that."))
    message = client.chat.completions.create(model="m", messages=USER).choices[0]
    assert message.message.content is None
    assert message.message.refusal == "I can't help with that."
    gw.enqueue(Reply(content="42", reasoning="six times seven"))
    status, _, body = chat(gw)
    assert status == 200
    document = json.loads(body)
    assert document["choices"][0]["message"]["reasoning_content"] == "six times seven"
    assert document["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    assert document["usage"]["completion_tokens"] == 4


def test_tool_calls_json(gw, client):
    gw.enqueue(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="call_1"),
                ToolCall("broken", "{not json"),
            ]
        )
    )
    result = client.chat.completions.create(model="m", messages=USER)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls[0].id == "call_1"
    assert calls[1].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert calls[1].function.arguments == "{not json"


def test_logprobs_on_request(gw):
    gw.enqueue(Reply(content="a b c"))
    _, _, body = chat(gw, logprobs=True, top_logprobs=2)
    entries = json.loads(body)["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in entries] == ["a ", "b ", "c"]
    assert entries[0]["bytes"] == list(b"a ")
    assert len(entries[0]["top_logprobs"]) == 2
    _, _, body = chat(gw)
    assert json.loads(body)["choices"][0]["logprobs"] is None


# -- chat: streaming ------------------------------------------------------------


def test_sse_order_framing_and_done(gw):
    gw.enqueue(
        Reply(
            content="one two three",
            reasoning="hmm ok",
            tool_calls=[ToolCall("f", {"a": 1})],
        )
    )
    status, headers, body = chat(gw, stream=True)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Transfer-Encoding"] == "chunked"
    events = sse(body)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    kinds = []
    for chunk in chunks[1:-1]:
        (key,) = chunk["choices"][0]["delta"]
        kinds.append(key)
    n_reason, n_content = kinds.count("reasoning_content"), kinds.count("content")
    assert kinds[:n_reason] == ["reasoning_content"] * 2
    assert kinds[n_reason : n_reason + n_content] == ["content"] * 3
    assert set(kinds[n_reason + n_content :]) == {"tool_calls"}
    first_call = chunks[6]["choices"][0]["delta"]["tool_calls"][0]
    assert first_call["index"] == 0
    assert first_call["type"] == "function"
    assert first_call["function"] == {"name": "f", "arguments": ""}
    last = chunks[-1]["choices"][0]
    assert last["delta"] == {}
    assert last["finish_reason"] == "tool_calls"
    assert content_deltas(events) == ["one ", "two ", "three"]


def test_stream_include_usage_chunk(gw, client):
    status, _, body = chat(gw, stream=True, stream_options={"include_usage": True})
    assert status == 200
    events = sse(body)
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 5
    assert all(e["usage"] is None for e in events[:-2])
    stream = client.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].usage.total_tokens == 11
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Offline reply to: hello there"


def test_chunk_count_exact_and_padded(gw, client):
    gw.enqueue(Reply(content="abcdefghij", chunks=3), Reply(content="hi", chunks=5))
    _, _, body = chat(gw, stream=True)
    pieces = content_deltas(sse(body))
    assert len(pieces) == 3
    assert "".join(pieces) == "abcdefghij"
    stream = client.chat.completions.create(
        model="m", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices]
    pieces = [p for p in pieces if p]
    assert len(pieces) == 5
    assert "".join(pieces).startswith("hi tok")
    assert chunks[-1].usage.completion_tokens == 5
    gw.enqueue(Reply(content="hi", chunks=5))
    result = client.chat.completions.create(model="m", messages=USER)
    assert result.choices[0].message.content == "".join(pieces)
    assert result.usage.completion_tokens == 5


def test_stream_reasoning_and_tool_calls_via_openai(gw, client):
    gw.enqueue(
        Reply(
            reasoning="let me think",
            tool_calls=[
                ToolCall("search", {"query": "weather in Paris today"}),
                ToolCall("noop", "{}"),
            ],
        )
    )
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    reasoning, args, names, ids, finish = "", {}, {}, {}, None
    with stream:
        for chunk in stream:
            delta = chunk.choices[0].delta
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            for call in delta.tool_calls or []:
                args[call.index] = args.get(call.index, "") + (
                    call.function.arguments or ""
                )
                if call.function.name:
                    names[call.index] = call.function.name
                if call.id:
                    ids[call.index] = call.id
            finish = chunk.choices[0].finish_reason or finish
    assert reasoning == "let me think"
    assert names == {0: "search", 1: "noop"}
    assert json.loads(args[0]) == {"query": "weather in Paris today"}
    assert args[1] == "{}"
    assert len(set(ids.values())) == 2
    assert finish == "tool_calls"


def test_tool_call_arguments_streamed_in_small_pieces(gw):
    gw.enqueue(Reply(tool_calls=[ToolCall("f", {"text": "x" * 40})]))
    _, _, body = chat(gw, stream=True)
    pieces = [
        e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for e in sse(body)[1:-2]
    ]
    assert pieces[0] == ""
    assert len(pieces) > 4
    assert all(0 < len(p) <= 8 for p in pieces[1:])


def test_omit_model(gw):
    gw.enqueue(Reply(content="a", omit_model=True))
    _, _, body = chat(gw)
    assert "model" not in json.loads(body)
    gw.enqueue(Reply(content="a b", omit_model=True))
    _, _, body = chat(gw, stream=True, stream_options={"include_usage": True})
    events = sse(body)[:-1]
    assert len(events) > 3
    assert all("model" not in e for e in events)
    _, _, body = chat(gw)
    assert json.loads(body)["model"] == "gpt-4.1"


def test_reasoning_formats(gw):
    for form in ("reasoning_content", "reasoning"):
        gw.enqueue(Reply(content="a", reasoning="why so", reasoning_format=form))
        _, _, body = chat(gw)
        assert json.loads(body)["choices"][0]["message"][form] == "why so"
    gw.enqueue(
        Reply(content="a", reasoning="why so", reasoning_format="reasoning_details")
    )
    _, _, body = chat(gw)
    message = json.loads(body)["choices"][0]["message"]
    assert "reasoning_content" not in message
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": "why so", "index": 0, "format": "unknown"}
    ]
    gw.enqueue(
        Reply(content="a", reasoning="why so", reasoning_format="reasoning_details")
    )
    _, _, body = chat(gw, stream=True)
    deltas = [e["choices"][0]["delta"] for e in sse(body)[1:-2]]
    texts = [
        d["reasoning_details"][0]["text"] for d in deltas if "reasoning_details" in d
    ]
    assert texts == ["why ", "so"]


def test_tool_call_thought_signature(gw):
    calls = [ToolCall("f", {"a": 1}, thought_signature="sig"), ToolCall("g")]
    gw.enqueue(Reply(tool_calls=calls))
    _, _, body = chat(gw)
    first, second = json.loads(body)["choices"][0]["message"]["tool_calls"]
    assert first["extra_content"] == {"google": {"thought_signature": "sig"}}
    assert "extra_content" not in second
    gw.enqueue(Reply(tool_calls=calls))
    _, _, body = chat(gw, stream=True)
    signed = [
        c
        for e in sse(body)[:-1]
        for c in e["choices"][0]["delta"].get("tool_calls") or ()
        if "extra_content" in c
    ]
    assert len(signed) == 1
    assert signed[0]["function"]["name"] == "f"
    assert signed[0]["extra_content"]["google"]["thought_signature"] == "sig"


def test_omit_tool_call_index(gw):
    gw.enqueue(Reply(tool_calls=[ToolCall("f", {"a": 1})], omit_tool_call_index=True))
    _, _, body = chat(gw, stream=True)
    deltas = [
        e["choices"][0]["delta"]["tool_calls"][0]
        for e in sse(body)[:-1]
        if e["choices"][0]["delta"].get("tool_calls")
    ]
    assert deltas
    assert all("index" not in d for d in deltas)
    gw.enqueue(Reply(tool_calls=[ToolCall("f", {"a": 1})]))
    _, _, body = chat(gw, stream=True)
    assert '"index":0,"id"' in body.decode()


def test_stream_logprobs(gw):
    gw.enqueue(Reply(content="a b"))
    _, _, body = chat(gw, stream=True, logprobs=True)
    events = sse(body)
    with_content = [e for e in events[1:-1] if e["choices"][0]["delta"].get("content")]
    tokens = [e["choices"][0]["logprobs"]["content"][0]["token"] for e in with_content]
    assert tokens == ["a ", "b"]


def test_chunk_delay_writes_events_separately(gw, client):
    gw.enqueue(Reply(content="a b c", chunk_delay=0.02))
    started = time.perf_counter()
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "a b c"
    assert time.perf_counter() - started >= 0.1  # 6 gaps of 20 ms


def test_stream_n_choices(gw):
    _, _, body = chat(gw, stream=True, n=2)
    events = sse(body)
    assert [c["index"] for c in events[1]["choices"]] == [0, 1]


# -- faults -----------------------------------------------------------------------


def test_fault_status_headers_and_body(gw, client):
    gw.enqueue(
        Fault(
            status=429,
            message="Slow down",
            code="rate_limit_exceeded",
            headers={"Retry-After": "1"},
        )
    )
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.body == {
        "message": "Slow down",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    gw.enqueue(Fault(status=503))
    status, _, body = chat(gw)
    assert status == 503
    error = json.loads(body)["error"]
    assert error["type"] == "server_error"
    assert error["message"]
    status, _, _ = chat(gw)
    assert status == 200


def test_fault_html_and_verbatim_bodies(gw, client):
    gw.enqueue(
        Fault(status=502, body="<html>Bad gateway</html>", content_type="text/html")
    )
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=USER)
    assert info.value.status_code == 502
    assert "<html>Bad gateway</html>" in info.value.response.text
    gw.enqueue(
        Fault(status=200, body="<html>oops</html>", content_type="text/html"),
        Fault(status=200, body={"id": "x", "object": "chat.completion", "choices": []}),
        Fault(status=500, body=b"\xff\xfe raw"),
    )
    status, headers, body = chat(gw)
    assert (status, headers["Content-Type"], body) == (
        200,
        "text/html",
        b"<html>oops</html>",
    )
    status, _, body = chat(gw)
    assert status == 200
    assert json.loads(body)["choices"] == []
    assert chat(gw)[2] == b"\xff\xfe raw"


def test_fault_repeat(gw):
    gw.enqueue(Fault(status=500, repeat=2), Reply(content="finally"))
    assert chat(gw)[0] == 500
    assert gw.pending() == 2
    assert chat(gw)[0] == 500
    status, _, body = chat(gw)
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "finally"
    assert gw.pending() == 0


def test_delay_before_headers(gw):
    gw.enqueue(Reply(content="late", delay_before_headers=0.3))
    with (
        openai.OpenAI(
            base_url=gw.base_url, api_key="k", max_retries=0, timeout=0.1
        ) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(model="m", messages=USER)
    gw.enqueue(Fault(status=500, delay_before_headers=0.15))
    started = time.perf_counter()
    assert chat(gw)[0] == 500
    assert time.perf_counter() - started >= 0.15


def test_close_connection_is_a_connection_error(gw, client):
    gw.enqueue(Fault(close_connection=True))
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model="m", messages=USER)
    assert not isinstance(info.value, openai.APITimeoutError)
    assert client.chat.completions.create(model="m", messages=USER).choices


def test_cut_mid_stream(gw, client):
    gw.enqueue(Reply(content="a b c d e f", cut_after_chunks=2))
    received = []
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        received.extend(chunk.choices[0].delta.content for chunk in stream)
    assert received == ["", "a ", "b "]
    gw.enqueue(Reply(content="a b c d e f", cut_after_chunks=2))
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    try:
        conn.request(
            "POST",
            "/v1/chat/completions",
            json.dumps({"model": "m", "messages": USER, "stream": True}),
            {"Authorization": "Bearer k"},
        )
        response = conn.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()


def test_malformed_chunk(gw, client):
    gw.enqueue(Reply(content="a b c", malformed_chunk_at=3))
    _, _, body = chat(gw, stream=True)
    blocks = body.split(b"\n\n")
    assert blocks[2] == b'data: {"choices": [ {bad json'
    gw.enqueue(Reply(content="a b c", malformed_chunk_at=3))
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(json.JSONDecodeError):
        list(stream)


def test_error_event_mid_stream(gw, client):
    gw.enqueue(
        Reply(content="a b c d", error_after_chunks=2, error_code="upstream_error")
    )
    _, _, body = chat(gw, stream=True)
    events = sse(body)
    assert content_deltas(events) == ["a ", "b "]
    assert events[-1] == {
        "error": {
            "message": "The upstream model failed mid-stream.",
            "type": "server_error",
            "param": None,
            "code": "upstream_error",
        }
    }
    gw.enqueue(Reply(content="a b c d", error_after_chunks=1, error_message="boom"))
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        list(stream)


def test_omit_done_and_finish_reason(gw, client):
    gw.enqueue(Reply(content="a b", omit_done=True))
    events = sse(chat(gw, stream=True)[2])
    assert "[DONE]" not in events
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    gw.enqueue(Reply(content="a b", omit_done=True, omit_finish_reason=True))
    events = sse(chat(gw, stream=True)[2])
    assert all(e["choices"][0]["finish_reason"] is None for e in events)
    assert content_deltas(events) == ["a ", "b"]
    gw.enqueue(Reply(content="a b", omit_done=True, omit_finish_reason=True))
    stream = client.chat.completions.create(model="m", messages=USER, stream=True)
    chunks = list(stream)
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None]


# -- scripting ------------------------------------------------------------------


def test_per_model_queue_and_defaults(gw, client):
    gw.enqueue(Reply(content="for gpt"), model="gpt-4.1")
    gw.enqueue(Reply(content="for anyone"))
    gw.set_default(Reply(content="claude default"), model="claude-sonnet-4.5")
    gw.set_default(Reply(content="global default"))

    def ask(model):
        result = client.chat.completions.create(model=model, messages=USER)
        return result.choices[0].message.content

    assert ask("claude-sonnet-4.5") == "for anyone"
    assert ask("gpt-4.1") == "for gpt"
    assert ask("gpt-4.1") == "global default"
    assert ask("claude-sonnet-4.5") == "claude default"
    gw.set_default(Fault(status=503))
    with pytest.raises(openai.InternalServerError):
        ask("gpt-4.1")
    gw.set_default(None)
    assert ask("gpt-4.1") == "Offline reply to: hello there"


def test_responder_agent_loop(gw, client):
    def responder(body):
        last = body["messages"][-1]
        if last["role"] == "tool":
            return Reply(content=f"The weather is {last['content']}.")
        return Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})])

    gw.set_responder(responder)
    gw.enqueue(Reply(content="queued first"))
    messages = [{"role": "user", "content": "weather?"}]
    first = client.chat.completions.create(model="m", messages=messages)
    assert first.choices[0].message.content == "queued first"
    second = client.chat.completions.create(model="m", messages=messages)
    call = second.choices[0].message.tool_calls[0]
    messages += [
        second.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    third = client.chat.completions.create(model="m", messages=messages)
    assert third.choices[0].message.content == "The weather is sunny."
    assert gw.last_request.body["messages"][-1]["tool_call_id"] == call.id


def test_responder_errors_become_500(gw):
    def responder(body):
        raise RuntimeError("responder bug")

    gw.set_responder(responder, model="buggy")
    status, _, body = chat(gw, model="buggy")
    assert status == 500
    assert "responder bug" in json.loads(body)["error"]["message"]
    assert chat(gw, model="fine")[0] == 200


def test_reject_stream_options(gw, client):
    gw.reject_stream_options("mistral-small-2603")
    status, _, body = chat(
        gw,
        model="mistral-small-2603",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert status == 400
    assert json.loads(body) == {
        "error": {
            "message": "Unrecognized request argument supplied: stream_options",
            "type": "invalid_request_error",
            "param": "stream_options",
            "code": None,
        }
    }
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="mistral-small-2603",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    assert chat(gw, model="mistral-small-2603", stream=True)[0] == 200
    assert chat(gw, model="gpt-4.1", stream_options={"include_usage": True})[0] == 200


def test_enqueue_validation(gw):
    with pytest.raises(TypeError):
        gw.enqueue("not a reply")
    with pytest.raises(ValueError, match="endpoint"):
        gw.enqueue(Reply(), endpoint="completions")
    with pytest.raises(ValueError, match="chunks"):
        Reply(chunks=0)
    with pytest.raises(ValueError, match="repeat"):
        Fault(repeat=0)


def test_reset_clears_everything(gw):
    gw.enqueue(Fault(status=500))
    gw.enqueue(Fault(status=500), endpoint="embeddings")
    gw.set_default(Fault(status=501))
    gw.set_responder(lambda body: Fault(status=502))
    gw.reject_stream_options()
    chat(gw, model="x")
    assert gw.requests
    gw.reset()
    assert gw.requests == []
    with pytest.raises(LookupError):
        _ = gw.last_request
    assert chat(gw, stream_options={"include_usage": True})[0] == 200
    assert chat(gw)[0] == 200
    status, _, _ = raw(gw, "POST", "/v1/embeddings", {"model": "e", "input": "x"})
    assert status == 200


# -- request log, auth, routing -------------------------------------------------


def test_request_log(gw, client):
    client.chat.completions.create(
        model="gpt-4.1", messages=USER, temperature=0.5, extra_query={"trace": "1"}
    )
    client.models.list()
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    requests = gw.requests
    assert [(r.method, r.path) for r in requests] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("POST", "/v1/embeddings"),
    ]
    first = requests[0]
    assert isinstance(first, RecordedRequest)
    assert first.query == {"trace": "1"}
    assert first.headers["authorization"] == "Bearer k"
    assert first.headers["content-type"] == "application/json"
    assert first.body == {"model": "gpt-4.1", "messages": USER, "temperature": 0.5}
    assert json.loads(first.raw_body) == first.body
    assert first.model == "gpt-4.1"
    assert requests[1].body is None
    assert requests[1].raw_body == b""
    assert gw.last_request == requests[2]
    with pytest.raises(AttributeError):
        first.path = "/x"


def test_auth(gw):
    status, _, body = raw(
        gw, "POST", "/v1/chat/completions", {"model": "m", "messages": USER}, key=None
    )
    assert status == 401
    assert json.loads(body)["error"]["code"] == "missing_api_key"
    assert raw(gw, "GET", "/v1/models", key="")[0] == 401
    assert raw(gw, "GET", "/v1/models", key="anything")[0] == 200
    gw.api_key = "cr_secret_key_123"
    status, _, body = raw(gw, "GET", "/v1/models", key="cr_wrong_key_999")
    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    assert "cr_wrong_key_999" not in body.decode()
    with (
        openai.OpenAI(base_url=gw.base_url, api_key="wrong", max_retries=0) as c,
        pytest.raises(openai.AuthenticationError),
    ):
        c.models.list()
    with openai.OpenAI(
        base_url=gw.base_url, api_key="cr_secret_key_123", max_retries=0
    ) as c:
        assert c.chat.completions.create(model="m", messages=USER).choices
    assert len(gw.requests) == 6  # rejected requests are logged too


def test_basic_auth_plays_a_relay_behind_http_basic_auth(gw):
    gw.basic_auth = ("alice", "s3cret")
    assert raw(gw, "GET", "/v1/models", key="a-bearer-key")[0] == 401
    wrong = base64.b64encode(b"alice:wrong").decode()
    status, _, body = raw(
        gw, "GET", "/v1/models", key=None, headers={"Authorization": f"Basic {wrong}"}
    )
    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_basic_auth"
    with openai.OpenAI(
        base_url=gw.base_url.replace("http://", "http://alice:s3cret@"),
        api_key="ignored",
        max_retries=0,
    ) as client:
        assert client.chat.completions.create(model="m", messages=USER).choices
    right = base64.b64encode(b"alice:s3cret").decode()
    assert gw.last_request.headers["authorization"] == f"Basic {right}"


def test_bad_requests(gw):
    status, _, body = raw(gw, "POST", "/v1/nowhere", {"a": 1})
    assert status == 404
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = raw(gw, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400
    assert "parse" in json.loads(body)["error"]["message"]
    assert raw(gw, "POST", "/v1/chat/completions", b"[1, 2]")[0] == 400
    status, _, body = raw(gw, "POST", "/v1/chat/completions", {"messages": USER})
    assert status == 400
    assert "model" in json.loads(body)["error"]["message"]
    status, _, body = chat(gw, messages=[])
    assert status == 400
    assert json.loads(body)["error"]["param"] == "messages"
    assert raw(gw, "GET", "/v1/chat/completions")[0] == 405


def test_models_list_and_strict_models(gw, client):
    assert [m.id for m in client.models.list()] == list(DEFAULT_MODELS)
    assert client.models.retrieve("gpt-4.1").owned_by == "holysheep"
    gw.models = ["only-model"]
    assert [m.id for m in client.models.list()] == ["only-model"]
    assert chat(gw, model="unknown")[0] == 200
    gw.strict_models = True
    status, _, body = chat(gw, model="unknown")
    assert status == 404
    assert json.loads(body) == {
        "error": {
            "message": "The model `unknown` does not exist or you do not have "
            "access to it.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("unknown")
    assert chat(gw, model="only-model")[0] == 200
    gw.enqueue(Fault(status=500), endpoint="models")
    with pytest.raises(openai.InternalServerError):
        client.models.list()


# -- embeddings -------------------------------------------------------------------


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_float_and_base64(gw, client):
    texts = ["The cat sat on the mat.", "", "Quantum physics!"]
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=texts, encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert floats.usage.prompt_tokens == 8
    assert floats.model == "text-embedding-3-small"
    for text, item in zip(texts, floats.data, strict=True):
        assert len(item.embedding) == 256
        assert item.embedding == embed_text(text)
        assert math.isclose(cosine(item.embedding, item.embedding), 1.0, rel_tol=1e-6)
    assert floats.data[1].embedding[0] == 1.0
    # The SDK asks for base64 by default and decodes it.
    decoded = client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert [d.embedding for d in decoded.data] == [d.embedding for d in floats.data]
    status, _, body = raw(
        gw,
        "POST",
        "/v1/embeddings",
        {"model": "e", "input": "hello world", "encoding_format": "base64"},
    )
    assert status == 200
    packed = base64.b64decode(json.loads(body)["data"][0]["embedding"])
    assert list(struct.unpack("<256f", packed)) == embed_text("hello world")


def test_embeddings_dimensions_tokens_and_similarity(gw, client):
    result = client.embeddings.create(
        model="e", input=["a b", "c"], dimensions=64, encoding_format="float"
    )
    assert [len(d.embedding) for d in result.data] == [64, 64]
    tokens = client.embeddings.create(
        model="e", input=[[1, 2, 3]], encoding_format="float"
    )
    assert tokens.data[0].embedding == embed_text("1 2 3")
    assert embed_text("Hello, WORLD") == embed_text("hello world")
    cat = embed_text("the cat sat on the mat")
    assert cosine(cat, embed_text("a cat on a mat")) > cosine(
        cat, embed_text("quantum physics lecture notes")
    )
    assert cosine(cat, embed_text("cat")) > 0.2
    with pytest.raises(ValueError, match="dimensions"):
        embed_text("x", 0)


def test_embeddings_limits_and_faults(gw):
    status, _, body = raw(
        gw, "POST", "/v1/embeddings", {"model": "e", "input": ["x"] * 2049}
    )
    assert status == 400
    assert json.loads(body)["error"]["param"] == "input"
    status, _, body = raw(
        gw, "POST", "/v1/embeddings", {"model": "e", "input": "w " * 8193}
    )
    assert status == 400
    assert json.loads(body)["error"]["code"] == "context_length_exceeded"
    assert raw(gw, "POST", "/v1/embeddings", {"model": "e", "input": []})[0] == 400
    assert (
        raw(
            gw, "POST", "/v1/embeddings", {"model": "e", "input": "x", "dimensions": 0}
        )[0]
        == 400
    )
    assert raw(gw, "POST", "/v1/embeddings", {"input": "x"})[0] == 400
    gw.enqueue(Fault(status=429, headers={"Retry-After": "2"}), endpoint="embeddings")
    status, headers, _ = raw(gw, "POST", "/v1/embeddings", {"model": "e", "input": "x"})
    assert (status, headers["Retry-After"]) == (429, "2")
    assert chat(gw)[0] == 200  # the chat queue was not touched


# -- transport ----------------------------------------------------------------------


def test_keep_alive_reuses_connection(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    try:
        body = json.dumps({"model": "m", "messages": USER})
        headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
        sockets = set()
        for stream in (False, True, False):
            payload = json.dumps({"model": "m", "messages": USER, "stream": stream})
            conn.request("POST", "/v1/chat/completions", payload, headers)
            response = conn.getresponse()
            assert response.status == 200
            assert response.read()
            sockets.add(id(conn.sock))
        conn.request("GET", "/v1/models", headers=headers)
        assert conn.getresponse().read()
        conn.request("POST", "/v1/chat/completions", body, headers)
        assert conn.getresponse().status == 200
        sockets.add(id(conn.sock))
        assert len(sockets) == 1
    finally:
        conn.close()


def test_concurrent_requests(gw, client):
    gw.set_responder(lambda body: Reply(content=body["messages"][0]["content"]))

    def work(i):
        out = []
        for j in range(4):
            text = f"thread {i} request {j}"
            messages = [{"role": "user", "content": text}]
            if j % 2:
                stream = client.chat.completions.create(
                    model="m", messages=messages, stream=True
                )
                out.append("".join(c.choices[0].delta.content or "" for c in stream))
            else:
                result = client.chat.completions.create(model="m", messages=messages)
                out.append(result.choices[0].message.content)
        return out == [f"thread {i} request {j}" for j in range(4)]

    with ThreadPoolExecutor(max_workers=50) as pool:
        assert all(pool.map(work, range(50)))
    assert len(gw.requests) == 200


async def test_async_client(gw):
    gw.enqueue(Reply(content="async hello"))
    async with openai.AsyncOpenAI(
        base_url=gw.base_url, api_key="k", max_retries=0
    ) as client:
        result = await client.chat.completions.create(model="m", messages=USER)
        assert result.choices[0].message.content == "async hello"
        stream = await client.chat.completions.create(
            model="m", messages=USER, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert text == "Offline reply to: hello there"


def test_lifecycle_start_stop_idempotent():
    gw = OfflineGateway(api_key="key")
    with pytest.raises(RuntimeError):
        _ = gw.base_url
    gw.start()
    try:
        gw.start()
        assert gw.running
        assert gw.base_url == f"http://127.0.0.1:{gw.port}/v1"
        # An idle keep-alive connection must not block stop().
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer key"})
        assert conn.getresponse().read()
    finally:
        started = time.perf_counter()
        gw.stop()
        gw.stop()
        conn.close()
    assert time.perf_counter() - started < 1
    assert not gw.running
    with OfflineGateway(models=["a"], log_requests=False) as other:
        assert raw(other, "GET", "/v1/models")[0] == 200
        assert other.requests == []
    assert not other.running


def test_pytest_env_fixture(holysheep_env):
    assert os.environ["HOLYSHEEP_BASE_URL"] == holysheep_env.base_url
    assert os.environ["HOLYSHEEP_API_KEY"] == "cr_offline_test_key"


def test_standalone_module_process():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_holysheep.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        assert line.startswith("http://127.0.0.1:")
        assert line.endswith("/v1")
        with openai.OpenAI(base_url=line, api_key="k", max_retries=0) as client:
            assert client.chat.completions.create(model="m", messages=USER).choices
    finally:
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == 0


def test_no_noise_on_stderr_when_clients_hang_up(gw, capfd):
    gw.enqueue(Reply(content="x " * 2000, chunk_delay=0.001))
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": "m", "messages": USER, "stream": True}),
        {"Authorization": "Bearer k"},
    )
    response = conn.getresponse()
    response.read(50)
    conn.close()
    response.close()
    gw.enqueue(Reply(content="late", delay_before_headers=0.1))
    done = threading.Event()

    def hang_up():
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=0.05)
        try:
            c.request(
                "POST",
                "/v1/chat/completions",
                json.dumps({"model": "m", "messages": USER}),
                {"Authorization": "Bearer k"},
            )
            c.getresponse()
        except TimeoutError:
            pass
        finally:
            c.close()
            done.set()

    threading.Thread(target=hang_up).start()
    assert done.wait(2)
    time.sleep(0.2)
    assert chat(gw)[0] == 200
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
    assert "Exception" not in captured.err
