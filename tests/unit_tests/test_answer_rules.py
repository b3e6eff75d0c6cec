"""The pure rules behind honest answers (issue 12, items 1-5), one edge per case."""

import json

import httpx2
import openai
import pytest
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from pydantic import BaseModel, ValidationError

from langchain_holysheep import errors
from langchain_holysheep._convert import (
    StreamState,
    completion_to_result,
    says_nothing,
    translate_content,
    translate_content_chunk,
)
from langchain_holysheep._structured import check_structured_message, reprompt_messages
from langchain_holysheep.errors import (
    ErrorPayloadError,
    HolySheepEmptyAnswerError,
    HolySheepIncompleteOutputError,
    HolySheepStructuredOutputError,
    equivalent_status,
    to_holysheep_error,
    translate_errors,
)
from langchain_holysheep.fallback._policy import is_parse_error
from langchain_holysheep.testing import Reply, ToolCall
from langchain_holysheep.testing._replies import plan_chat

REQUEST = httpx2.Request("POST", "https://api.holysheep.ai/v1/chat/completions")


# --------------------------------------------------------------------------- #
# item 5: an error object sent with a 200
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("error", "status"),
    [
        ({"code": "rate_limit_exceeded"}, 429),
        ({"type": "rate_limit_error"}, 429),
        ({"type": "tokens", "code": "RateLimitReached"}, 429),
        ({"code": "insufficient_quota"}, 429),
        ({"code": 429}, 429),
        ({"code": "503"}, 503),
        ({"status": 502, "code": "upstream"}, 502),
        ({"code": "context_length_exceeded", "type": "invalid_request_error"}, 400),
        ({"type": "invalid_request_error"}, 400),
        ({"code": "invalid_api_key"}, 401),
        ({"type": "permission_error"}, 403),
        ({"code": "model_not_found"}, 404),
        ({"type": "server_error", "code": "upstream_error"}, None),
        ({"message": "nothing to go by"}, None),
        ({"code": 200}, None),
        ("a bare string", None),
        (None, None),
    ],
)
def test_equivalent_status(error, status):
    assert equivalent_status(error) == status


def test_an_error_payload_maps_to_the_equivalent_class_with_its_code():
    payload = ErrorPayloadError(
        "x", body={"error": {"message": "slow", "code": "rate_limit_exceeded"}}
    )
    payload.request = REQUEST
    with pytest.raises(errors.HolySheepRateLimitError) as info, translate_errors():
        raise payload
    mapped = info.value
    assert mapped.code == "rate_limit_exceeded"
    assert mapped.status_code == 200
    assert "slow" in str(mapped)
    assert mapped.__cause__ is None  # the signal is not shown
    assert mapped.request.url == REQUEST.url


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"message": "boom"}, errors.HolySheepServerError),
        ({"message": "too long", "code": "context_length_exceeded"}, None),
        ("plain text", errors.HolySheepServerError),
    ],
)
def test_an_unknown_error_payload_is_a_server_error(error, kind):
    payload = ErrorPayloadError("x", body={"error": error})
    payload.request = REQUEST
    with pytest.raises(errors.HolySheepError) as info, translate_errors():
        raise payload
    expected = kind or errors.HolySheepContextOverflowError
    assert type(info.value) is expected


def test_a_stream_error_event_with_a_rate_limit_code_is_a_rate_limit():
    body = {"message": "slow", "type": "server_error", "code": "rate_limit_exceeded"}
    mapped = to_holysheep_error(openai.APIError("slow", REQUEST, body=body), None)
    assert isinstance(mapped, errors.HolySheepRateLimitError)
    assert isinstance(mapped, openai.RateLimitError)
    plain = to_holysheep_error(openai.APIError("x", REQUEST, body={"code": "x"}), None)
    assert isinstance(plain, errors.HolySheepStreamError)


def test_an_error_payload_masks_the_key():
    key = "cr_payload_key_0123456789"
    payload = ErrorPayloadError("x", body={"error": {"message": f"bad {key}"}})
    payload.request = REQUEST
    with pytest.raises(errors.HolySheepError) as info, translate_errors(key):
        raise payload
    assert key not in str(info.value)
    assert key not in json.dumps(info.value.body)
    assert key not in info.value.response.text


def test_a_completion_that_is_an_error_object_is_not_no_choices():
    with pytest.raises(ErrorPayloadError, match="The gateway answered with an error"):
        completion_to_result({"error": {"message": "slow"}})
    with pytest.raises(errors.HolySheepResponseError, match="no choices"):
        completion_to_result({"choices": []})


# --------------------------------------------------------------------------- #
# item 4: answers that say nothing
# --------------------------------------------------------------------------- #
CALL = {"name": "f", "args": {}, "id": "1", "type": "tool_call"}


@pytest.mark.parametrize(
    ("message", "empty"),
    [
        (AIMessage(""), True),
        (AIMessage(" \n\t"), True),
        (AIMessage("", additional_kwargs={"reasoning_content": "hmm"}), True),
        (AIMessage([]), True),
        (AIMessage("hi"), False),
        (AIMessage([{"type": "text", "text": "hi"}]), False),
        (AIMessage("", tool_calls=[CALL]), False),
        (AIMessage("", additional_kwargs={"refusal": "no"}), False),
        (AIMessage("", response_metadata={"finish_reason": "content_filter"}), False),
    ],
)
def test_says_nothing(message, empty):
    assert says_nothing(message) is empty


def completion(content, finish_reason="stop"):
    message = {"role": "assistant", "content": content}
    return {"choices": [{"message": message, "finish_reason": finish_reason}]}


def test_an_empty_completion_raises_unless_allowed():
    with pytest.raises(HolySheepEmptyAnswerError, match="'stop'") as info:
        completion_to_result(completion(""))
    assert info.value.is_retryable
    assert info.value.response.content == ""
    result = completion_to_result(completion(None), allow_empty=True)
    assert result.generations[0].message.content == ""


def test_an_empty_completion_cut_at_max_tokens_says_raise_max_tokens():
    with pytest.raises(HolySheepEmptyAnswerError, match="raise max_tokens") as info:
        completion_to_result(completion("", "length"))
    assert info.value.finish_reason == "length"


def stream(*deltas, finish="stop"):
    state = StreamState()
    for delta in deltas:
        state.feed({"choices": [{"delta": delta}]})
    state.feed({"choices": [{"delta": {}, "finish_reason": finish}]})
    return state


@pytest.mark.parametrize(
    ("deltas", "empty"),
    [
        ((), True),
        (({"content": "  "}, {"content": "\n"}), True),
        (({"reasoning_content": "hmm"},), True),
        (({"content": " "}, {"content": "hi"}), False),
        (({"refusal": "no"},), False),
        (
            ({"tool_calls": [{"index": 0, "id": "1", "function": {"name": "f"}}]},),
            False,
        ),
    ],
)
def test_a_stream_that_said_nothing(deltas, empty):
    state = stream(*deltas)
    assert state.said_nothing is empty
    if empty:
        with pytest.raises(HolySheepEmptyAnswerError):
            state.last_chunk(REQUEST)
        assert state.last_chunk(REQUEST, allow_empty=True).message.content == ""
    else:
        state.last_chunk(REQUEST)


def test_a_content_filter_stream_is_not_empty():
    assert not stream(finish="content_filter").said_nothing


def test_empty_answer_errors_pickle():
    import pickle

    error = HolySheepEmptyAnswerError("x", finish_reason="stop")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert again.finish_reason == "stop"
    assert str(again) == "x"


# --------------------------------------------------------------------------- #
# item 3: standard content blocks
# --------------------------------------------------------------------------- #
INVALID = {"name": "f", "args": "{x", "id": "2", "error": "bad", "type": "invalid"}


@pytest.mark.parametrize(
    ("message", "blocks"),
    [
        (AIMessage(""), []),
        (AIMessage("hi"), [{"type": "text", "text": "hi"}]),
        (
            AIMessage("", additional_kwargs={"refusal": "no"}),
            [{"type": "refusal", "refusal": "no"}],
        ),
        (
            AIMessage("partial", response_metadata={"finish_reason": "content_filter"}),
            [
                {"type": "text", "text": "partial"},
                {
                    "type": "refusal",
                    "refusal": "",
                    "extras": {"category": "content_filter"},
                },
            ],
        ),
        (
            AIMessage("42", additional_kwargs={"reasoning_content": "6*7"}),
            [{"type": "reasoning", "reasoning": "6*7"}, {"type": "text", "text": "42"}],
        ),
        (
            AIMessage(
                "",
                tool_calls=[CALL],
                invalid_tool_calls=[{**INVALID, "type": "invalid_tool_call"}],
            ),
            [
                {"type": "tool_call", "name": "f", "args": {}, "id": "1"},
                {
                    "type": "invalid_tool_call",
                    "name": "f",
                    "args": "{x",
                    "id": "2",
                    "error": "bad",
                },
            ],
        ),
    ],
)
def test_translate_content(message, blocks):
    assert translate_content(message) == blocks
    message.response_metadata["model_provider"] = "holysheep"
    assert message.content_blocks == blocks


def test_list_content_is_left_to_core():
    with pytest.raises(NotImplementedError):
        translate_content(AIMessage([{"type": "text", "text": "hi"}]))
    message = AIMessage(
        [{"type": "text", "text": "hi"}],
        response_metadata={"model_provider": "holysheep"},
    )
    assert message.content_blocks == [{"type": "text", "text": "hi"}]


def test_translate_content_chunk():
    piece = {"name": "f", "args": '{"a"', "id": "1", "index": 0}
    chunk = AIMessageChunk("", tool_call_chunks=[{**piece, "type": "tool_call_chunk"}])
    assert translate_content_chunk(chunk) == [{"type": "tool_call_chunk", **piece}]
    refusal = AIMessageChunk("", additional_kwargs={"refusal": "no"})
    assert translate_content_chunk(refusal) == [{"type": "refusal", "refusal": "no"}]
    whole = AIMessageChunk(
        "",
        tool_call_chunks=[{**piece, "args": '{"a": 1}', "type": "tool_call_chunk"}],
        chunk_position="last",
    )
    assert translate_content_chunk(whole) == [
        {"type": "tool_call", "name": "f", "args": {"a": 1}, "id": "1"}
    ]


# --------------------------------------------------------------------------- #
# items 1 and 2: structured output is never guessed
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "text",
    [
        '{"pop": 2, "city": "Par',
        '{"pop": 2, ',
        '{"pop": 2',
        '{"ok": tru',
        "[1, 2",
        '```json\n{"pop": 2, "city": "Paris"',
    ],
)
def test_json_that_ends_early_is_incomplete(text):
    with pytest.raises(HolySheepIncompleteOutputError, match="JSON is complete"):
        check_structured_message(AIMessage(text), None)


@pytest.mark.parametrize(
    "text", ['{"pop": 2} and more', "Sure! pop=2", '{"pop": 2, city: "P"}', ""]
)
def test_json_that_is_wrong_is_invalid_not_incomplete(text):
    with pytest.raises(HolySheepStructuredOutputError, match="not valid JSON") as info:
        check_structured_message(AIMessage(text), None)
    assert not isinstance(info.value, HolySheepIncompleteOutputError)


@pytest.mark.parametrize(
    "text", ['{"a": 1}', '```json\n{"a": 1}\n```', '{"a": "two\nlines"}']
)
def test_whole_json_passes(text):
    check_structured_message(AIMessage(text), None)


@pytest.mark.parametrize("tool_name", [None, "T"])
def test_finish_reason_length_is_always_incomplete(tool_name):
    message = AIMessage(
        '{"a": 1}',
        tool_calls=[{"name": "T", "args": {"a": 1}, "id": "1", "type": "tool_call"}],
        response_metadata={"finish_reason": "length"},
    )
    with pytest.raises(HolySheepIncompleteOutputError, match="finish_reason 'length'"):
        check_structured_message(message, tool_name)


def test_cut_tool_arguments_are_incomplete():
    message = AIMessage(
        "",
        invalid_tool_calls=[
            {
                "name": "T",
                "args": '{"a": 1, "b"',
                "id": "1",
                "error": "bad",
                "type": "invalid_tool_call",
            }
        ],
    )
    with pytest.raises(HolySheepIncompleteOutputError, match="arguments that end"):
        check_structured_message(message, "T")


def test_structured_output_errors_are_parser_and_model_errors():
    error = HolySheepIncompleteOutputError("cut", llm_output="{")
    assert isinstance(error, OutputParserException)
    assert isinstance(error, errors.HolySheepError)
    assert error.llm_output == "{"
    assert not error.is_retryable


class _Person(BaseModel):
    age: int


def _validation_error():
    try:
        _Person(age="x")
    except ValidationError as error:
        return error
    raise AssertionError


@pytest.mark.parametrize(
    ("error", "parse"),
    [
        (HolySheepIncompleteOutputError("x"), True),
        (OutputParserException("x"), True),
        (_validation_error(), True),
        (json.JSONDecodeError("x", "doc", 0), True),
        (ModelRefusalError("no"), False),
        (errors.HolySheepEmptyAnswerError("x"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_is_parse_error(error, parse):
    assert is_parse_error(error) is parse


def test_reprompt_messages_quote_the_error_without_the_link():
    messages = [HumanMessage("Paris?")]
    error = HolySheepStructuredOutputError("The answer is not valid JSON: 'Paris'")
    again = reprompt_messages(messages, error)
    assert again[:1] == messages
    assert messages == [HumanMessage("Paris?")]  # not changed
    assert "not valid JSON: 'Paris'" in again[-1].content
    assert "troubleshooting" not in again[-1].content
    assert again[-1].type == "human"


# --------------------------------------------------------------------------- #
# the offline gateway: stop_at_max_tokens
# --------------------------------------------------------------------------- #
def test_plan_stops_at_max_tokens_in_order():
    reply = Reply(reasoning="a b", content="c d e", stop_at_max_tokens=True)
    plan = plan_chat(reply, {"max_tokens": 3, "messages": []}, 1)
    assert plan.reasoning == "a b"
    assert plan.content == "c "
    assert plan.finish_reason == "length"
    assert plan.usage["completion_tokens"] == 3
    assert plan.usage["completion_tokens_details"]["reasoning_tokens"] == 2


def test_plan_within_max_tokens_is_whole():
    reply = Reply(content="c d", stop_at_max_tokens=True)
    plan = plan_chat(reply, {"max_completion_tokens": 2, "messages": []}, 1)
    assert plan.content == "c d"
    assert plan.finish_reason == "stop"
    assert plan_chat(reply, {"messages": []}, 1).content == "c d"  # no budget


def test_plan_drops_tool_calls_past_the_budget():
    calls = [ToolCall("f", {"a": 1}), ToolCall("g", {"b": 2})]
    reply = Reply(tool_calls=calls, stop_at_max_tokens=True)
    plan = plan_chat(reply, {"max_tokens": 1, "messages": []}, 1)
    assert [name for _, name, _, _ in plan.tool_calls] == ["f"]
    assert plan.tool_calls[0][2] == '{"a":1}'
    assert plan.finish_reason == "length"
