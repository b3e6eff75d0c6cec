"""Table tests for the pure conversions in ``_convert``."""

from functools import reduce
from operator import add
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_holysheep._convert import (
    StreamState,
    completion_to_result,
    message_to_dict,
    messages_to_dicts,
    short_tool_call_id,
    usage_to_metadata,
)
from langchain_holysheep.errors import HolySheepInputError, HolySheepResponseError

PNG_B64 = "iVBORw0KGgo="


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (SystemMessage("be brief"), {"role": "system", "content": "be brief"}),
        (HumanMessage("hi"), {"role": "user", "content": "hi"}),
        (
            HumanMessage("hi", name="alice"),
            {"role": "user", "content": "hi", "name": "alice"},
        ),
        (AIMessage("hello"), {"role": "assistant", "content": "hello"}),
        (
            ToolMessage("42", tool_call_id="call_1"),
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ),
        (
            ToolMessage([{"type": "text", "text": "4"}, "2"], tool_call_id="c"),
            {"role": "tool", "tool_call_id": "c", "content": "42"},
        ),
        (
            ChatMessage(role="developer", content="rules"),
            {"role": "developer", "content": "rules"},
        ),
        (
            FunctionMessage(name="f", content="out"),
            {"role": "function", "name": "f", "content": "out"},
        ),
        (
            SystemMessage(
                [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
            ),
            {"role": "system", "content": "ab"},
        ),
    ],
)
def test_message_to_dict(message, expected):
    assert message_to_dict(message) == expected


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        ),
        (
            {"type": "image_url", "image_url": "https://x/cat.png"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        ),
        (
            {"type": "image", "url": "https://x/cat.png"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
        ),
        (
            {"type": "image", "base64": PNG_B64, "mime_type": "image/png"},
            {
                "type": "image_url",
                "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
            },
        ),
        (
            {
                "type": "image",
                "source_type": "base64",
                "data": PNG_B64,
                "mime_type": "image/png",
            },
            {
                "type": "image_url",
                "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
            },
        ),
        (
            {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}},
        ),
    ],
)
def test_user_content_blocks(block, expected):
    message = HumanMessage(content=[{"type": "text", "text": "look"}, block])
    parts = message_to_dict(message)["content"]
    assert parts == [{"type": "text", "text": "look"}, expected]


PDF_B64 = "JVBERi0xLjQK"
PDF_PART = {
    "type": "file",
    "file": {
        "file_data": f"data:application/pdf;base64,{PDF_B64}",
        "filename": "report.pdf",
    },
}


@pytest.mark.parametrize(
    "block",
    [
        {
            "type": "file",
            "base64": PDF_B64,
            "mime_type": "application/pdf",
            "filename": "report.pdf",
        },
        {
            "type": "file",
            "base64": PDF_B64,
            "mime_type": "application/pdf",
            "extras": {"filename": "report.pdf"},
        },
        {
            "type": "file",
            "source_type": "base64",
            "data": PDF_B64,
            "mime_type": "application/pdf",
            "filename": "report.pdf",
        },
        PDF_PART,  # already the wire form: sent as it is
    ],
)
def test_langchain_file_blocks_become_chat_completions_file_parts(block):
    """Regression: LangChain file blocks went on the wire unconverted."""
    message = HumanMessage(content=[{"type": "text", "text": "summarize"}, block])
    assert message_to_dict(message)["content"][1] == PDF_PART


@pytest.mark.parametrize(
    "block",
    [
        {"type": "file", "file_id": "file-abc"},
        {"type": "file", "source_type": "id", "id": "file-abc"},
    ],
)
def test_file_blocks_by_id(block):
    message = HumanMessage(content=[block])
    assert message_to_dict(message)["content"] == [
        {"type": "file", "file": {"file_id": "file-abc"}}
    ]


@pytest.mark.parametrize(
    ("block", "advice"),
    [
        (
            {"type": "file", "base64": PDF_B64, "mime_type": "application/pdf"},
            "filename",
        ),
        ({"type": "file", "base64": PDF_B64, "filename": "a.pdf"}, "mime_type"),
        ({"type": "file", "url": "https://x/a.pdf"}, "cannot fetch a file from a URL"),
        ({"type": "file", "mime_type": "application/pdf"}, "base64 data"),
    ],
)
def test_file_blocks_that_cannot_be_sent_are_refused_with_what_to_do(block, advice):
    with pytest.raises(HolySheepInputError, match=advice):
        message_to_dict(HumanMessage(content=[block]))


CACHED = {"type": "ephemeral"}


def test_cache_control_is_kept_or_stripped_on_every_part_kind():
    content = [
        {"type": "text", "text": "long context", "cache_control": CACHED},
        {
            "type": "image_url",
            "image_url": {"url": "https://x/cat.png"},
            "cache_control": CACHED,
        },
        {
            "type": "image",
            "base64": PNG_B64,
            "mime_type": "image/png",
            "cache_control": CACHED,
        },
        {**PDF_PART, "cache_control": CACHED},
    ]
    kept = message_to_dict(HumanMessage(content=content))["content"]
    assert [p["cache_control"] for p in kept] == [CACHED] * 4
    stripped = message_to_dict(HumanMessage(content=content), cache_control=False)
    assert all("cache_control" not in p for p in stripped["content"])
    assert [p["type"] for p in stripped["content"]] == [
        "text",
        "image_url",
        "image_url",
        "file",
    ]


def test_a_system_prompt_without_its_cache_hint_is_sent_as_plain_text():
    system = SystemMessage([{"type": "text", "text": "rules", "cache_control": CACHED}])
    assert message_to_dict(system)["content"] == [
        {"type": "text", "text": "rules", "cache_control": CACHED}
    ]
    assert message_to_dict(system, cache_control=False)["content"] == "rules"


def test_base64_image_without_mime_type_is_rejected():
    message = HumanMessage(content=[{"type": "image", "base64": PNG_B64}])
    with pytest.raises(HolySheepInputError, match="mime_type"):
        message_to_dict(message)


def test_unknown_user_block_is_rejected_not_dropped():
    message = HumanMessage(content=[{"type": "video", "url": "https://x/v.mp4"}])
    with pytest.raises(HolySheepInputError, match="'video'"):
        message_to_dict(message)


def test_message_type_the_api_cannot_take():
    with pytest.raises(HolySheepInputError, match="RemoveMessage"):
        message_to_dict(RemoveMessage(id="1"))


def test_empty_conversation_is_rejected():
    with pytest.raises(HolySheepInputError, match="empty list of messages"):
        messages_to_dicts([])


def test_ai_message_with_tool_calls_round_trips():
    message = AIMessage(
        content="",
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "call_1"}],
        invalid_tool_calls=[
            {"name": "sub", "args": "{bad", "id": "call_2", "error": "bad json"}
        ],
    )
    assert message_to_dict(message) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 1}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "sub", "arguments": "{bad"},
            },
        ],
    }


@pytest.mark.parametrize(
    "call_id",
    ["call_1", "toolu_01A09q90qw90lq917835lq9", "call-ä-☃", "12345678", "x" * 200],
)
def test_short_tool_call_ids_are_nine_letters_or_digits_and_stable(call_id):
    short = short_tool_call_id(call_id)
    assert len(short) == 9
    assert short.isascii()
    assert short.isalnum()
    assert short_tool_call_id(call_id) == short  # same id, same answer, every call
    assert short_tool_call_id(short) == short


def test_a_valid_short_tool_call_id_is_kept_and_others_do_not_collide():
    assert short_tool_call_id("aB3dE6gH9") == "aB3dE6gH9"
    ids = {f"call_{n}" for n in range(5000)}
    assert len({short_tool_call_id(i) for i in ids}) == len(ids)


def test_tool_call_ids_are_rewritten_consistently_only_when_asked():
    conversation = [
        HumanMessage("2+2 and 3-1?"),
        AIMessage(
            content="",
            tool_calls=[{"name": "add", "args": {"a": 2}, "id": "call_add"}],
            invalid_tool_calls=[
                {"name": "sub", "args": "{bad", "id": "call_sub", "error": "bad"}
            ],
        ),
        ToolMessage("4", tool_call_id="call_add"),
        ToolMessage("error", tool_call_id="call_sub"),
    ]
    sent = messages_to_dicts(conversation, short_tool_call_ids=True)
    add, sub = (call["id"] for call in sent[1]["tool_calls"])
    assert (add, sub) == (
        short_tool_call_id("call_add"),
        short_tool_call_id("call_sub"),
    )
    assert [sent[2]["tool_call_id"], sent[3]["tool_call_id"]] == [add, sub]
    assert conversation[1].tool_calls[0]["id"] == "call_add"  # the input is untouched
    assert conversation[2].tool_call_id == "call_add"
    as_is = messages_to_dicts(conversation)
    assert [c["id"] for c in as_is[1]["tool_calls"]] == ["call_add", "call_sub"]
    assert as_is[2]["tool_call_id"] == "call_add"


def test_reasoning_is_echoed_only_when_asked():
    message = AIMessage("4", additional_kwargs={"reasoning_content": "2+2"})
    assert "reasoning_content" not in message_to_dict(message)
    echoed = message_to_dict(message, echo_reasoning=True)
    assert echoed["reasoning_content"] == "2+2"


def test_ai_reasoning_blocks_are_not_sent_as_content():
    message = AIMessage(
        content=[
            {"type": "reasoning", "reasoning": "hmm"},
            {"type": "text", "text": "answer"},
        ]
    )
    assert message_to_dict(message)["content"] == "answer"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 7,
                "total_tokens": 17,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
            {
                "input_tokens": 10,
                "output_tokens": 7,
                "total_tokens": 17,
                "input_token_details": {"cache_read": 4},
                "output_token_details": {"reasoning": 5},
            },
        ),
        (
            {"prompt_tokens": 3, "completion_tokens": 2},
            {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
        ),
        (  # cache writes as OpenRouter and the SDK name them
            {
                "prompt_tokens": 90,
                "completion_tokens": 2,
                "prompt_tokens_details": {
                    "cached_tokens": 10,
                    "cache_write_tokens": 60,
                },
            },
            {
                "input_tokens": 90,
                "output_tokens": 2,
                "total_tokens": 92,
                "input_token_details": {"cache_read": 10, "cache_creation": 60},
            },
        ),
        (  # the Anthropic-style names some relays keep at the top level
            {
                "prompt_tokens": 90,
                "completion_tokens": 2,
                "cache_read_input_tokens": 10,
                "cache_creation_input_tokens": 60,
            },
            {
                "input_tokens": 90,
                "output_tokens": 2,
                "total_tokens": 92,
                "input_token_details": {"cache_read": 10, "cache_creation": 60},
            },
        ),
        (
            {
                "prompt_tokens": 9,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cache_creation_tokens": 5},
            },
            {
                "input_tokens": 9,
                "output_tokens": 1,
                "total_tokens": 10,
                "input_token_details": {"cache_creation": 5},
            },
        ),
    ],
)
def test_usage_to_metadata(usage, expected):
    assert usage_to_metadata(usage) == expected


def _completion(**message):
    return {
        "id": "chatcmpl-1",
        "model": "deepseek-v3.2",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }


def test_completion_to_result_metadata_and_reasoning():
    result = completion_to_result(_completion(content="hi", reasoning_content="why"))
    message = result.generations[0].message
    assert message.content == "hi"
    assert message.additional_kwargs["reasoning_content"] == "why"
    assert message.response_metadata == {
        "model_provider": "holysheep",
        "model_name": "deepseek-v3.2",
        "id": "chatcmpl-1",
        "system_fingerprint": "fp_1",
        "finish_reason": "stop",
        "token_usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    assert message.usage_metadata == {
        "input_tokens": 1,
        "output_tokens": 2,
        "total_tokens": 3,
    }
    assert result.llm_output["model_name"] == "deepseek-v3.2"


def test_reasoning_field_alias_is_kept():
    result = completion_to_result(_completion(content="x", reasoning="via reasoning"))
    assert result.generations[0].message.additional_kwargs == {
        "reasoning_content": "via reasoning"
    }


def test_invalid_tool_arguments_go_to_invalid_tool_calls():
    calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{x"}},
        {"id": "c", "type": "function", "function": {"name": "h", "arguments": "[1]"}},
    ]
    message = completion_to_result(_completion(content=None, tool_calls=calls))
    ai = message.generations[0].message
    assert [c["id"] for c in ai.tool_calls] == ["a"]
    assert [c["id"] for c in ai.invalid_tool_calls] == ["b", "c"]
    assert ai.invalid_tool_calls[0]["args"] == "{x"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<html>502 Bad Gateway</html>", "not a JSON chat completion"),
        ({"choices": []}, "no choices"),
        ({"object": "chat.completion"}, "no choices"),
        ({"choices": [{"index": 0}]}, "no message"),
    ],
)
def test_bad_bodies_raise_a_response_error(body, match):
    with pytest.raises(HolySheepResponseError, match=match):
        completion_to_result(body)


def _chunk(delta=None, finish=None, **extra):
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"id": "c1", "model": "m-served", "choices": [choice], **extra}


def test_stream_state_skips_empty_chunks_and_finishes_with_usage():
    state = StreamState()
    assert state.feed(_chunk({"role": "assistant", "content": ""})) is None
    first = state.feed(_chunk({"content": "Hel"}))
    second = state.feed(_chunk({"content": "lo"}))
    assert state.feed(_chunk(finish="stop")) is None
    usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert state.feed({"id": "c1", "choices": [], "usage": usage}) is None
    assert first.text + second.text == "Hello"
    assert state.complete
    last = state.finish()
    assert last.message.chunk_position == "last"
    assert last.message.usage_metadata["total_tokens"] == 6
    assert last.message.response_metadata["model_name"] == "m-served"
    assert last.message.response_metadata["finish_reason"] == "stop"


def test_stream_state_without_finish_reason_is_incomplete():
    state = StreamState()
    state.feed(_chunk({"content": "partial"}))
    assert not state.complete
    assert state.partial_text() == "partial"


def test_stream_state_keeps_reasoning_and_logprobs():
    state = StreamState()
    chunk = state.feed(_chunk({"reasoning_content": "think"}))
    assert chunk.message.additional_kwargs == {"reasoning_content": "think"}
    entry = {"token": "a", "logprob": -0.1}
    state.feed(
        {
            "id": "c",
            "choices": [{"delta": {"content": "a"}, "logprobs": {"content": [entry]}}],
        }
    )
    state.feed(_chunk(finish="stop"))
    assert state.finish().message.response_metadata["logprobs"] == {"content": [entry]}


def test_stream_state_rejects_non_object_payload():
    with pytest.raises(HolySheepResponseError, match="Unexpected stream payload"):
        StreamState().feed("oops")


_SPELLED_OUT_CASES = [
    pytest.param({"content": "Hel"}, "Hel", {}, [], id="text"),
    pytest.param(
        {"reasoning_content": "hmm"},
        "",
        {"reasoning_content": "hmm"},
        [],
        id="reasoning",
    ),
    pytest.param(
        {"content": "a", "reasoning": "b"},
        "a",
        {"reasoning_content": "b"},
        [],
        id="both",
    ),
    pytest.param({"refusal": "No."}, "", {"refusal": "No."}, [], id="refusal"),
    pytest.param(
        {"reasoning_content": "r", "refusal": "No."},
        "",
        {"reasoning_content": "r", "refusal": "No."},
        [],
        id="reasoning+refusal",
    ),
    pytest.param(
        {
            "tool_calls": [
                {"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}
            ]
        },
        "",
        {},
        [{"name": "f", "args": "", "id": "c1", "index": 0, "type": "tool_call_chunk"}],
        id="tool-call-start",
    ),
    pytest.param(
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]},
        "",
        {},
        [
            {
                "name": None,
                "args": '{"a": 1}',
                "id": None,
                "index": 0,
                "type": "tool_call_chunk",
            }
        ],
        id="tool-call-args",
    ),
]


@pytest.mark.parametrize(("delta", "content", "kwargs", "calls"), _SPELLED_OUT_CASES)
def test_stream_chunks_equal_fully_spelled_out_messages(delta, content, kwargs, calls):
    """Chunks pass only non-empty fields; the messages must not differ for it."""
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    chunk = StreamState().feed(_chunk(delta))
    expected = ChatGenerationChunk(
        message=AIMessageChunk(
            content=content,
            additional_kwargs=kwargs,
            tool_call_chunks=calls,
            response_metadata={"model_provider": "holysheep"},
        )
    )
    assert chunk == expected
    assert chunk.message == expected.message
    assert chunk.message.tool_call_chunks == expected.message.tool_call_chunks
    assert chunk.message.tool_calls == expected.message.tool_calls
    assert chunk.message.content_blocks == expected.message.content_blocks
    assert chunk.text == expected.text


def test_final_usage_chunk_is_unchanged_by_the_fast_path():
    state = StreamState()
    state.feed(_chunk({"content": "hi"}, finish="stop"))
    usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert state.feed({"id": "c1", "choices": [], "usage": usage}) is None
    last = state.finish()
    assert last.message.usage_metadata == usage_to_metadata(usage)
    assert last.message.response_metadata["token_usage"] == usage
    assert last.message.additional_kwargs == {}
    assert last.message.tool_call_chunks == []


def test_encode_body_is_compact_utf8_json():
    from langchain_holysheep._convert import encode_body

    assert encode_body({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()


@pytest.mark.parametrize("value", [object(), float("nan"), float("inf")])
def test_a_body_that_is_not_json_is_a_clear_input_error(value):
    from langchain_holysheep._convert import encode_body

    with pytest.raises(HolySheepInputError, match="cannot be sent as JSON"):
        encode_body({"extra": value})


# --------------------------------------------------------------------------- #
# streamed tool-call deltas: index synthesis and invalid arguments
# --------------------------------------------------------------------------- #


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def call(args: str, *, id_: str | None = None, name: str | None = None, index=None):
    raw: dict[str, Any] = {"function": {"arguments": args}}
    if name is not None:
        raw["function"]["name"] = name
    if id_ is not None:
        raw["id"] = id_
        raw["type"] = "function"
    if index is not None:
        raw["index"] = index
    return {"tool_calls": [raw]}


def aggregate(deltas: list[dict[str, Any]]) -> AIMessage:
    state = StreamState()
    chunks = [c for d in deltas if (c := state.feed(chunk(d))) is not None]
    state.feed(chunk({}, "tool_calls"))
    chunks.append(state.finish())
    return reduce(add, chunks).message


GEMINI_PARALLEL = [
    call("", id_="a", name="multiply"),
    call('{"a": 2,'),
    call(' "b": 3}'),
    call("", id_="b", name="get_time"),
    call('{"city":'),
    call(' "Paris"}'),
]


def test_deltas_without_index_are_split_by_id():
    message = aggregate(GEMINI_PARALLEL)
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [
        ("multiply", {"a": 2, "b": 3}, "a"),
        ("get_time", {"city": "Paris"}, "b"),
    ]
    assert message.invalid_tool_calls == []


def test_whole_calls_without_index_each_get_their_own_index():
    message = aggregate(
        [
            call('{"a": 1, "b": 2}', id_="x", name="multiply"),
            call('{"a": 3, "b": 4}', id_="y", name="multiply"),
        ]
    )
    assert [c["args"] for c in message.tool_calls] == [
        {"a": 1, "b": 2},
        {"a": 3, "b": 4},
    ]


def test_a_repeated_id_continues_its_call():
    message = aggregate(
        [
            call('{"a":', id_="x", name="multiply"),
            call(' 1, "b": 2}', id_="x"),
        ]
    )
    assert [c["args"] for c in message.tool_calls] == [{"a": 1, "b": 2}]


def test_explicit_indexes_are_kept():
    message = aggregate(
        [
            call("", id_="a", name="multiply", index=0),
            call("", id_="b", name="get_time", index=1),
            call('{"a": 1, "b": 2}', index=0),
            call('{"city": "Rome"}', index=1),
        ]
    )
    assert [(c["id"], c["args"]) for c in message.tool_calls] == [
        ("a", {"a": 1, "b": 2}),
        ("b", {"city": "Rome"}),
    ]


def test_streamed_invalid_arguments_go_to_invalid_tool_calls():
    message = aggregate(
        [
            call("", id_="a", name="multiply"),
            call("not json at all"),
            call('{"city": "Oslo"}', id_="b", name="get_time"),
        ]
    )
    assert [c["id"] for c in message.tool_calls] == ["b"]
    [bad] = message.invalid_tool_calls
    assert (bad["id"], bad["name"], bad["args"]) == ("a", "multiply", "not json at all")


def test_streamed_refusal_is_kept():
    message = aggregate([{"refusal": "I can't "}, {"refusal": "do that."}])
    assert message.additional_kwargs["refusal"] == "I can't do that."


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ([{"type": "reasoning.text", "text": "a"}], "a"),
        (
            [
                {"type": "reasoning.summary", "summary": "s "},
                {"type": "reasoning.encrypted", "data": "xyz"},
                {"type": "reasoning.text", "text": "t"},
            ],
            "s t",
        ),
        ([{"type": "reasoning.encrypted", "data": "xyz"}], None),
        ("not a list", None),
        ([None, 3, {"type": "reasoning.text", "text": 7}], None),
    ],
)
def test_reasoning_details_text(details, expected):
    result = completion_to_result(_completion(content="x", reasoning_details=details))
    message = result.generations[0].message
    assert message.additional_kwargs.get("reasoning_content") == expected
    assert message.additional_kwargs["reasoning_details"] == details


def test_reasoning_content_wins_over_reasoning_details():
    body = _completion(
        content="x",
        reasoning_content="plain",
        reasoning_details=[{"type": "reasoning.text", "text": "list"}],
    )
    message = completion_to_result(body).generations[0].message
    assert message.additional_kwargs["reasoning_content"] == "plain"


def _signed_call(call_id, signature=None):
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    if signature is not None:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def test_thought_signatures_are_read_by_call_id():
    calls = [_signed_call("c1", "s1"), _signed_call("c2"), _signed_call("c3", "")]
    message = completion_to_result(_completion(content=None, tool_calls=calls))
    kwargs = message.generations[0].message.additional_kwargs
    assert kwargs["thought_signatures"] == {"c1": "s1"}


def test_stream_thought_signature_without_an_id_goes_to_its_call():
    state = StreamState()
    state.feed(_chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {}}]}))
    chunk = state.feed(
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "function": {"arguments": "{}"},
                        "extra_content": {"google": {"thought_signature": "s1"}},
                    }
                ]
            }
        )
    )
    assert chunk.message.additional_kwargs["thought_signatures"] == {"c1": "s1"}
