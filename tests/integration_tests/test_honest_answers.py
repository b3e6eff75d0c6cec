"""Honest answers (issue 12, items 1-5): never a guessed, empty or lost result.

Real HTTP against the offline gateway, each behaviour four ways where it
applies (``invoke``, ``ainvoke``, ``stream``, ``astream``):

1. a cut-off structured answer is an error, never a value;
2. in a chain, an unparsable answer is a failed attempt (and may be re-prompted);
3. a refusal is a standard ``refusal`` content block, seen by langchain's
   refusal and fallback middleware;
4. an answer that says nothing raises a retryable ``ModelError``;
5. an error object sent with a 200 raises the error its code stands for.
"""

from __future__ import annotations

import json

import openai
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    ModelFallbackMiddleware,
    ModelRefusalMiddleware,
)
from langchain_core.exceptions import (
    ModelError,
    ModelRateLimitError,
    ModelRefusalError,
    OutputParserException,
)
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.block_translators import get_translator
from pydantic import BaseModel

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import (
    HolySheepContextOverflowError,
    HolySheepEmptyAnswerError,
    HolySheepIncompleteOutputError,
    HolySheepModelNotFoundError,
    HolySheepRateLimitError,
    HolySheepServerError,
    HolySheepStreamError,
    HolySheepStructuredOutputError,
)
from langchain_holysheep.fallback import (
    ChatHolySheepFallback,
    HolySheepFallbackError,
)
from langchain_holysheep.testing import Fault, Reply, ToolCall
from tests.modes import INVOKES, MODES, call, collect

KEY = "cr_honest_answers_key_0123456789"
A, B = "gpt-4.1", "deepseek-v3.2"
CITY = {"city": "Paris", "pop": 2}


class City(BaseModel):
    """A city and its population in millions."""

    city: str
    pop: int


def chat(gw, model=A, **kwargs):
    kwargs.setdefault("max_retries", 0)
    return ChatHolySheep(model=model, base_url=gw.base_url, api_key=KEY, **kwargs)


def chain(gw, *models, **kwargs):
    kwargs.setdefault("circuit_breaker", None)
    return ChatHolySheepFallback(
        models=list(models or (A, B)), base_url=gw.base_url, api_key=KEY, **kwargs
    )


def models_asked(gw):
    return [r.model for r in gw.requests if r.path.endswith("/chat/completions")]


async def final(runnable, mode, text="Paris has 2 million people.", seen=None):
    """Run a structured runnable one way; a stream's last value is its answer."""
    if mode == "invoke":
        return runnable.invoke(text)
    if mode == "ainvoke":
        return await runnable.ainvoke(text)
    values = [] if seen is None else seen
    if mode == "stream":
        for value in runnable.stream(text):
            values.append(value)
    else:
        async for value in runnable.astream(text):
            values.append(value)
    return values[-1]


def answer_as_asked(body):
    """The whole city, as a tool call when a tool is forced, else as JSON text."""
    if body.get("tools"):
        return Reply(tool_calls=[ToolCall("City", CITY)], stop_at_max_tokens=True)
    return Reply(content=json.dumps(CITY), stop_at_max_tokens=True)


# --------------------------------------------------------------------------- #
# 1. a cut-off structured answer is an error, never a value
# --------------------------------------------------------------------------- #
METHODS = ["json_schema", "json_mode", "function_calling"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
async def test_an_answer_cut_at_max_tokens_is_an_error_never_a_value(gw, method, mode):
    """Regression: '{"pop": 2, "city": "Par' came back as City(city='Par', pop=2)."""
    gw.set_responder(answer_as_asked)
    cut = chat(gw, max_tokens=2).with_structured_output(City, method=method)
    seen: list = []
    with pytest.raises(HolySheepIncompleteOutputError, match="max_tokens") as info:
        await final(cut, mode, seen=seen)
    assert isinstance(info.value, OutputParserException)
    assert info.value.llm_output.startswith('{"city":')
    assert "pop" not in info.value.llm_output
    assert City(**CITY) not in seen
    whole = chat(gw, max_tokens=50).with_structured_output(City, method=method)
    assert await final(whole, mode) == City(**CITY)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", INVOKES)
async def test_include_raw_reports_a_cut_off_answer_as_a_parsing_error(
    gw, method, mode
):
    gw.set_responder(answer_as_asked)
    runnable = chat(gw, max_tokens=2).with_structured_output(
        City, method=method, include_raw=True
    )
    result = await final(runnable, mode)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], HolySheepIncompleteOutputError)
    assert result["raw"].response_metadata["finish_reason"] == "length"


@pytest.mark.parametrize(
    ("reply", "method"),
    [
        (Reply(content='{"pop": 2, "city": "Par'), "json_schema"),
        (Reply(content='```json\n{"pop": 2, "city": "Paris"'), "json_mode"),
        (Reply(tool_calls=[ToolCall("City", '{"city": "Paris", "pop"')]), None),
    ],
    ids=["json_schema", "json_mode-fenced", "function_calling"],
)
@pytest.mark.parametrize("mode", MODES)
async def test_json_that_ends_early_is_an_error_even_without_length(
    gw, reply, method, mode
):
    gw.set_default(reply)
    model = A if method else B  # deepseek: function calling
    structured = chat(gw, model).with_structured_output(City, method=method)
    with pytest.raises(HolySheepIncompleteOutputError, match="JSON is complete"):
        await final(structured, mode)


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_stream_still_yields_partial_values_before_the_error(gw, mode):
    gw.set_default(Reply(content='{"city": "Paris", "pop": 2', chunks=8))
    structured = chat(gw).with_structured_output(City, method="json_mode")
    seen: list = []
    with pytest.raises(HolySheepIncompleteOutputError):
        await final(structured, mode, seen=seen)
    assert seen  # partial values streamed; the final value is the error
    assert all(isinstance(v, City) for v in seen)


def test_invalid_json_is_a_structured_output_error_not_an_incomplete_one(gw):
    gw.set_default(Reply(content="Paris, 2 million"))
    with pytest.raises(HolySheepStructuredOutputError) as info:
        chat(gw).with_structured_output(City).invoke("x")
    assert not isinstance(info.value, HolySheepIncompleteOutputError)
    assert "not valid JSON" in str(info.value)


# --------------------------------------------------------------------------- #
# 2. in a chain, an unparsable answer is a failed attempt
# --------------------------------------------------------------------------- #
UNPARSABLE = [
    pytest.param(
        Reply(content='{"city": "Paris", "pop"', finish_reason="length"), id="cut"
    ),
    pytest.param(Reply(content="Paris, 2 million"), id="not-json"),
    pytest.param(Reply(content='{"city": "Paris"}'), id="schema-violation"),
]


@pytest.mark.parametrize("reply", UNPARSABLE)
@pytest.mark.parametrize("mode", MODES)
async def test_an_unparsable_member_answer_asks_the_next_member(gw, reply, mode):
    gw.set_default(reply, model=A)
    gw.set_default(Reply(tool_calls=[ToolCall("City", CITY)]), model=B)
    structured = chain(gw).with_structured_output(City)
    assert await final(structured, mode) == City(**CITY)
    assert models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", INVOKES)
async def test_the_unparsable_attempt_is_in_the_attempts_list(gw, mode):
    gw.set_default(Reply(content='{"city": "Par', finish_reason="length"), model=A)
    gw.set_default(Reply(tool_calls=[ToolCall("City", CITY)]), model=B)
    structured = chain(gw).with_structured_output(City, include_raw=True)
    result = await final(structured, mode)
    assert result["parsed"] == City(**CITY)
    assert result["parsing_error"] is None
    metadata = result["raw"].response_metadata
    assert metadata["model_name"] == B
    [attempt] = metadata["fallback_attempts"]
    assert attempt["model"] == A
    assert attempt["error_type"] == "HolySheepIncompleteOutputError"
    assert "For troubleshooting" not in attempt["message"]


@pytest.mark.parametrize("mode", INVOKES)
async def test_every_member_unparsable_raises_the_group(gw, mode):
    gw.set_default(Reply(content="no JSON here"))
    with pytest.raises(HolySheepFallbackError) as info:
        await final(chain(gw).with_structured_output(City), mode)
    assert [a["model"] for a in info.value.attempts] == [A, B]
    assert all(isinstance(e, OutputParserException) for e in info.value.exceptions)
    raw = chain(gw).with_structured_output(City, include_raw=True)
    result = await final(raw, mode)
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], HolySheepFallbackError)
    assert isinstance(result["raw"], AIMessage)


@pytest.mark.parametrize("mode", INVOKES)
async def test_fallback_on_parse_error_off_raises_at_once(gw, mode):
    gw.set_default(Reply(content="no JSON here"))
    structured = chain(gw, fallback_on_parse_error=False).with_structured_output(City)
    with pytest.raises(HolySheepStructuredOutputError):
        await final(structured, mode)
    assert models_asked(gw) == [A]


@pytest.mark.parametrize("mode", MODES)
async def test_reprompt_asks_the_same_model_once_with_the_parse_error(gw, mode):
    gw.enqueue(Reply(content='{"city": "Par', finish_reason="length"), model=A)
    gw.enqueue(Reply(content=json.dumps(CITY)), model=A)
    structured = chain(gw, reprompt_on_parse_error=True).with_structured_output(City)
    assert await final(structured, mode) == City(**CITY)
    assert models_asked(gw) == [A, A]
    first, again = (r.body["messages"] for r in gw.requests)
    assert again[: len(first)] == first
    assert "could not be used as the structured output" in again[-1]["content"]
    assert "max_tokens" in again[-1]["content"]


@pytest.mark.parametrize("mode", INVOKES)
async def test_reprompt_is_once_per_member_then_the_walk_moves_on(gw, mode):
    gw.set_default(Reply(content="no JSON here"), model=A)
    gw.set_default(Reply(tool_calls=[ToolCall("City", CITY)]), model=B)
    structured = chain(gw, reprompt_on_parse_error=True).with_structured_output(City)
    assert await final(structured, mode) == City(**CITY)
    assert models_asked(gw) == [A, A, B]


def test_reprompt_is_off_by_default(gw):
    gw.set_default(Reply(content="no JSON here"), model=A)
    gw.set_default(Reply(tool_calls=[ToolCall("City", CITY)]), model=B)
    assert chain(gw).with_structured_output(City).invoke("x") == City(**CITY)
    assert models_asked(gw) == [A, B]


@pytest.mark.parametrize("mode", INVOKES)
async def test_a_refusal_in_a_chain_is_raised_not_fallen_over(gw, mode):
    gw.set_default(Reply(refusal="I can't help with that."), model=A)
    with pytest.raises(ModelRefusalError, match="can't help"):
        await final(chain(gw).with_structured_output(City), mode)
    assert models_asked(gw) == [A]


# --------------------------------------------------------------------------- #
# 3. a refusal is a standard content block
# --------------------------------------------------------------------------- #
REFUSAL = "I can't help with that."


def test_the_provider_translator_is_registered():
    translator = get_translator("holysheep")
    assert translator is not None
    assert translator["translate_content"].__module__ == "langchain_holysheep._convert"


@pytest.mark.parametrize("mode", MODES)
async def test_a_refusal_is_a_standard_refusal_block(gw, mode):
    """Regression: a refusal gave content_blocks == [] (no middleware saw it)."""
    gw.set_default(Reply(refusal=REFUSAL))
    message = await call(chat(gw), mode)
    assert message.additional_kwargs["refusal"] == REFUSAL
    assert message.content_blocks == [{"type": "refusal", "refusal": REFUSAL}]


@pytest.mark.parametrize("mode", MODES)
async def test_a_refusal_is_a_block_with_output_version_v1(gw, mode):
    gw.set_default(Reply(refusal=REFUSAL))
    message = await call(chat(gw, output_version="v1"), mode)
    refusals = [b for b in message.content if b["type"] == "refusal"]
    assert [b["refusal"] for b in refusals] == [REFUSAL]
    assert message.content_blocks == message.content


@pytest.mark.parametrize("mode", MODES)
async def test_a_content_filter_stop_is_a_refusal_block(gw, mode):
    gw.set_default(Reply(content="", finish_reason="content_filter"))
    message = await call(chat(gw), mode)
    [block] = [b for b in message.content_blocks if b["type"] == "refusal"]
    assert block["extras"] == {"category": "content_filter"}


@pytest.mark.parametrize("mode", MODES)
async def test_the_blocks_of_an_ordinary_answer_are_unchanged(gw, mode):
    gw.set_default(
        Reply(
            content="391",
            reasoning="17*23",
            tool_calls=[ToolCall("multiply", {"a": 17, "b": 23})],
        )
    )
    message = await call(chat(gw, model=B), mode)
    kinds = [b["type"] for b in message.content_blocks]
    assert kinds == ["reasoning", "text", "tool_call"]
    assert message.content_blocks[2]["args"] == {"a": 17, "b": 23}


def refusal_agent(gw, *middleware, model=A):
    return create_agent(chat(gw, model), tools=[], middleware=list(middleware))


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
async def test_model_refusal_middleware_sees_the_refusal(gw, mode):
    gw.set_default(Reply(refusal=REFUSAL))
    agent = refusal_agent(gw, ModelRefusalMiddleware())
    question = {"messages": [("user", "Help me with something bad.")]}

    async def run():
        if mode == "invoke":
            return agent.invoke(question)
        if mode == "ainvoke":
            return await agent.ainvoke(question)
        return list(agent.stream(question, stream_mode="messages"))

    with pytest.raises(ModelRefusalError, match="can't help"):
        await run()


@pytest.mark.parametrize("use_async", [False, True])
async def test_model_fallback_middleware_answers_from_the_next_model(gw, use_async):
    gw.set_default(Reply(refusal=REFUSAL), model=A)
    gw.set_default(Reply(content="Here is how."), model=B)
    agent = refusal_agent(
        gw, ModelFallbackMiddleware(chat(gw, B)), ModelRefusalMiddleware()
    )
    question = {"messages": [("user", "Help me.")]}
    result = await agent.ainvoke(question) if use_async else agent.invoke(question)
    answer = result["messages"][-1]
    assert answer.content == "Here is how."
    assert answer.response_metadata["model_name"] == B
    assert models_asked(gw) == [A, B]


def test_without_the_middleware_the_refusal_is_the_agents_answer(gw):
    gw.set_default(Reply(refusal=REFUSAL))
    result = refusal_agent(gw).invoke({"messages": [("user", "Help me.")]})
    assert result["messages"][-1].content_blocks == [
        {"type": "refusal", "refusal": REFUSAL}
    ]


# --------------------------------------------------------------------------- #
# 4. an answer that says nothing raises
# --------------------------------------------------------------------------- #
EMPTY = [
    pytest.param(Reply(content=""), "'stop'", id="empty"),
    pytest.param(Reply(content=" \n "), "'stop'", id="whitespace"),
    pytest.param(
        Reply(reasoning="Let me think about this at length", stop_at_max_tokens=True),
        "max_tokens",
        id="reasoned-until-max-tokens",
    ),
]


@pytest.mark.parametrize(("reply", "says"), EMPTY)
@pytest.mark.parametrize("mode", MODES)
async def test_an_empty_answer_raises_a_retryable_model_error(gw, reply, says, mode):
    """Regression: an empty answer came back as a silent ''."""
    gw.set_default(reply)
    with pytest.raises(HolySheepEmptyAnswerError, match=says) as info:
        await call(chat(gw, B, max_tokens=3), mode)
    assert isinstance(info.value, ModelError)
    assert info.value.is_retryable
    assert "allow_empty_answer=True" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
async def test_allow_empty_answer_returns_the_empty_message(gw, mode):
    gw.set_default(Reply(content=""))
    message = await call(chat(gw, allow_empty_answer=True), mode)
    assert message.content == ""
    assert message.response_metadata["finish_reason"] == "stop"


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_call_or_a_refusal_alone_is_an_answer(gw, mode):
    gw.set_default(Reply(tool_calls=[ToolCall("multiply", {"a": 1, "b": 2})]))
    assert (await call(chat(gw), mode)).tool_calls
    gw.set_default(Reply(refusal=REFUSAL))
    assert (await call(chat(gw), mode)).content == ""


@pytest.mark.parametrize("mode", MODES)
async def test_a_chain_falls_over_on_an_empty_answer(gw, mode):
    gw.set_default(Reply(content=""), model=A)
    answer = await call(chain(gw), mode)
    assert answer.response_metadata["model_name"] == B
    assert answer.content.startswith("Offline reply to")
    if mode in INVOKES:
        [attempt] = answer.response_metadata["fallback_attempts"]
        assert attempt["error_type"] == "HolySheepEmptyAnswerError"
    assert models_asked(gw) == [A, B]


def test_an_empty_answer_error_carries_the_answer(gw):
    gw.set_default(Reply(content="", reasoning="hmm"))
    with pytest.raises(HolySheepEmptyAnswerError) as info:
        chat(gw, B).invoke("x")
    assert info.value.finish_reason == "stop"
    assert info.value.response.additional_kwargs["reasoning_content"] == "hmm"


# --------------------------------------------------------------------------- #
# 5. an error object sent with a 200
# --------------------------------------------------------------------------- #
def in_200(**error):
    return Fault(status=200, **error)


ERRORS_IN_200 = [
    pytest.param(
        in_200(
            message="Rate limit reached for requests",
            type="rate_limit_error",
            code="rate_limit_exceeded",
        ),
        HolySheepRateLimitError,
        "rate_limit_exceeded",
        id="rate-limit",
    ),
    pytest.param(
        in_200(message="Quota exhausted", type="requests", code="429"),
        HolySheepRateLimitError,
        "429",
        id="numeric-code",
    ),
    pytest.param(
        in_200(message="Upstream provider failed", code="upstream_error"),
        HolySheepServerError,
        "upstream_error",
        id="unknown-code",
    ),
    pytest.param(
        in_200(message="Too long", code="context_length_exceeded"),
        HolySheepContextOverflowError,
        "context_length_exceeded",
        id="context-overflow",
    ),
    pytest.param(
        in_200(message="No such model", code="model_not_found"),
        HolySheepModelNotFoundError,
        "model_not_found",
        id="not-found",
    ),
]


@pytest.mark.parametrize(("fault", "kind", "code"), ERRORS_IN_200)
@pytest.mark.parametrize("mode", MODES)
async def test_an_error_object_in_a_200_raises_the_equivalent_error(
    gw, fault, kind, code, mode
):
    """Regression: the gateway's message was lost ('no choices')."""
    gw.set_default(fault)
    with pytest.raises(kind) as info:
        await call(chat(gw), mode)
    error = info.value
    assert fault.message in str(error)
    assert error.code == code
    assert error.status_code == 200  # what the gateway sent
    assert error.request.url.path.endswith("/chat/completions")


@pytest.mark.parametrize("mode", MODES)
async def test_a_rate_limit_in_a_200_is_both_kinds_of_rate_limit_error(gw, mode):
    gw.set_default(in_200(message="slow down", type="rate_limit_error"))
    with pytest.raises(openai.RateLimitError) as info:
        await call(chat(gw), mode)
    assert isinstance(info.value, ModelRateLimitError)
    assert info.value.is_retryable


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_rate_limit_event_inside_a_stream_keeps_the_partial_text(gw, mode):
    gw.set_default(
        Reply(
            content="one two three",
            error_after_chunks=2,
            error_message="Rate limit reached",
            error_type="rate_limit_error",
        )
    )
    received: list = []
    with pytest.raises(HolySheepRateLimitError, match="Rate limit reached") as info:
        await collect(chat(gw), mode, received)
    assert info.value.partial_text == "one two "
    assert "".join(c.content for c in received) == "one two "


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_an_unclassified_event_inside_a_stream_stays_a_stream_error(gw, mode):
    gw.set_default(Reply(content="a b", error_after_chunks=1, error_code="oops"))
    with pytest.raises(HolySheepStreamError):
        await call(chat(gw), mode)


@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_a_json_completion_to_a_stream_request_is_named(gw, mode):
    gw.set_default(Fault(status=200, body={"id": "x", "choices": []}))
    with pytest.raises(Exception, match="JSON body instead of an event stream"):
        await call(chat(gw), mode)


@pytest.mark.parametrize("mode", MODES)
async def test_a_chain_falls_over_on_a_rate_limit_sent_with_a_200(gw, mode):
    gw.set_default(in_200(message="slow down", code="rate_limit_exceeded"), model=A)
    answer = await call(chain(gw), mode)
    assert answer.response_metadata["model_name"] == B
    if mode in INVOKES:
        [attempt] = answer.response_metadata["fallback_attempts"]
        assert attempt["error_type"] == "HolySheepRateLimitError"
        assert attempt["status_code"] == 200


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_echoed_in_a_200_error_is_masked(gw, mode):
    gw.set_default(in_200(message=f"bad key {KEY}", code="rate_limit_exceeded"))
    with pytest.raises(HolySheepRateLimitError) as info:
        await call(chat(gw), mode)
    error = info.value
    for text in (str(error), json.dumps(error.body), error.response.text):
        assert KEY not in text
    assert "Authorization" not in error.request.headers or (
        error.request.headers["Authorization"] == "***"
    )


# --------------------------------------------------------------------------- #
# the offline gateway's knobs for these answers
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("stream", [False, True])
def test_stop_at_max_tokens_cuts_the_answer_like_a_model(gw, stream):
    gw.set_default(Reply(content="one two three four", stop_at_max_tokens=True))
    model = chat(gw, max_tokens=2)
    if stream:
        chunks = list(model.stream("x"))
        message = sum(chunks[1:], chunks[0])
        assert isinstance(message, AIMessageChunk)
    else:
        message = model.invoke("x")
    assert message.content == "one two "
    assert message.response_metadata["finish_reason"] == "length"
    assert message.usage_metadata["output_tokens"] == 2
    assert chat(gw, max_tokens=9).invoke("x").response_metadata["finish_reason"] == (
        "stop"
    )


def test_stop_at_max_tokens_cuts_tool_call_arguments(gw):
    gw.set_default(Reply(tool_calls=[ToolCall("City", CITY)], stop_at_max_tokens=True))
    message = chat(gw, max_tokens=2).invoke("x")
    assert message.response_metadata["finish_reason"] == "length"
    [bad] = message.invalid_tool_calls
    assert bad["args"] == json.dumps(CITY, separators=(",", ":"))[:16]
