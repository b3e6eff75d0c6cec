"""Tool calling and structured output over real HTTP against the offline gateway."""

from __future__ import annotations

import json
import re
from functools import reduce
from operator import add

import pytest
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from typing_extensions import TypedDict

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._convert import short_tool_call_id
from langchain_holysheep.testing import Reply, ToolCall
from tests.shared_tools import Person, get_weather, multiply


class PersonDict(TypedDict):
    """A person mentioned in the text."""

    name: str
    age: int


PERSON_SCHEMA = {
    "title": "Person",
    "description": "A person mentioned in the text.",
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture
def gw(holysheep_gateway):
    return holysheep_gateway


def chat(gw, model="gpt-4.1", **kwargs):
    return ChatHolySheep(
        model=model, base_url=gw.base_url, api_key="cr_test", max_retries=0, **kwargs
    )


def stream_all(runnable, prompt="go"):
    return reduce(add, runnable.stream(prompt))


async def astream_all(runnable, prompt="go"):
    chunks = [c async for c in runnable.astream(prompt)]
    return reduce(add, chunks)


# --------------------------------------------------------------------------- #
# tool calls in responses
# --------------------------------------------------------------------------- #


TWO_CALLS = [
    ToolCall("multiply", {"a": 6, "b": 7}, id="call_a"),
    ToolCall("get_weather", {"city": "Paris"}, id="call_b"),
]


@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke", "astream"])
@pytest.mark.parametrize("omit_index", [False, True])
async def test_parallel_tool_calls(gw, mode, omit_index):
    gw.enqueue(Reply(tool_calls=TWO_CALLS, omit_tool_call_index=omit_index))
    bound = chat(gw, "gemini-2.5-flash").bind_tools([multiply, get_weather])
    if mode == "invoke":
        message = bound.invoke("go")
    elif mode == "ainvoke":
        message = await bound.ainvoke("go")
    elif mode == "stream":
        message = stream_all(bound)
    else:
        message = await astream_all(bound)
    assert [(c["name"], c["args"], c["id"]) for c in message.tool_calls] == [
        ("multiply", {"a": 6, "b": 7}, "call_a"),
        ("get_weather", {"city": "Paris"}, "call_b"),
    ]
    assert message.invalid_tool_calls == []
    assert message.response_metadata["finish_reason"] == "tool_calls"
    sent = gw.last_request.body
    assert [t["function"]["name"] for t in sent["tools"]] == ["multiply", "get_weather"]
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["a", "b"]


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_arguments_go_to_invalid_tool_calls(gw, stream):
    gw.enqueue(
        Reply(
            tool_calls=[
                ToolCall("multiply", "this is not json", id="bad"),
                ToolCall("get_weather", {"city": "Rome"}, id="good"),
            ]
        )
    )
    bound = chat(gw).bind_tools([multiply, get_weather])
    message = stream_all(bound) if stream else bound.invoke("go")
    assert [c["id"] for c in message.tool_calls] == ["good"]
    [bad] = message.invalid_tool_calls
    assert (bad["id"], bad["name"], bad["args"]) == (
        "bad",
        "multiply",
        "this is not json",
    )


def test_finish_reason_stop_with_tool_calls_is_kept(gw):
    gw.enqueue(Reply(tool_calls=TWO_CALLS[:1], finish_reason="stop"))
    message = stream_all(chat(gw, "gemini-2.5-flash").bind_tools([multiply]))
    assert message.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert message.response_metadata["finish_reason"] == "stop"


def test_tool_choice_and_parallel_flag_reach_the_gateway(gw):
    chat(gw).bind_tools(
        [multiply, get_weather], tool_choice="get_weather", parallel_tool_calls=False
    ).invoke("go")
    body = gw.last_request.body
    assert body["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }
    assert body["parallel_tool_calls"] is False


def test_bad_forms_send_nothing(gw):
    llm = chat(gw, "deepseek-v3.2")
    with pytest.raises(ValueError, match="strict"):
        llm.bind_tools([multiply], strict=True).invoke("go")
    with pytest.raises(ValueError, match="parallel_tool_calls"):
        llm.bind_tools([multiply], parallel_tool_calls=True)
    assert gw.requests == []


# --------------------------------------------------------------------------- #
# the conversation round trip
# --------------------------------------------------------------------------- #


def test_round_trip_with_tool_results(gw):
    gw.enqueue(Reply(tool_calls=TWO_CALLS), Reply(content="42, and sunny."))
    llm = chat(gw).bind_tools([multiply, get_weather])
    history = [HumanMessage("6*7, and the weather in Paris?")]
    first = llm.invoke(history)
    history.append(first)
    history.append(ToolMessage("42", tool_call_id="call_a"))
    history.append(
        ToolMessage(
            [{"type": "text", "text": "Sunny "}, {"type": "text", "text": "in Paris"}],
            tool_call_id="call_b",
        )
    )
    answer = llm.invoke(history)
    assert answer.content == "42, and sunny."
    sent = gw.last_request.body["messages"]
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"] is None
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in sent[1]["tool_calls"]
    ] == [
        ("call_a", "multiply", {"a": 6, "b": 7}),
        ("call_b", "get_weather", {"city": "Paris"}),
    ]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_a", "content": "42"}
    assert sent[3] == {
        "role": "tool",
        "tool_call_id": "call_b",
        "content": "Sunny in Paris",
    }


def test_round_trip_keeps_invalid_tool_calls(gw):
    gw.enqueue(
        Reply(tool_calls=[ToolCall("multiply", "{oops", id="call_x")]),
        Reply(content="Sorry."),
    )
    llm = chat(gw).bind_tools([multiply])
    first = llm.invoke("go")
    assert first.invalid_tool_calls[0]["args"] == "{oops"
    llm.invoke(
        [
            HumanMessage("go"),
            first,
            ToolMessage("bad arguments", tool_call_id="call_x", status="error"),
        ]
    )
    assistant = gw.last_request.body["messages"][1]
    assert assistant["tool_calls"] == [
        {
            "id": "call_x",
            "type": "function",
            "function": {"name": "multiply", "arguments": "{oops"},
        }
    ]


def test_a_tool_loop_another_model_started_reaches_mistral_with_valid_ids(gw):
    """Mistral answers 400 to tool call ids that are not 9 letters or digits."""
    gw.enqueue(Reply(tool_calls=TWO_CALLS[:1]), Reply(content="42"))
    first = chat(gw, "gpt-4.1").bind_tools([multiply]).invoke("6*7?")
    started_id = first.tool_calls[0]["id"]
    assert not re.fullmatch(r"[A-Za-z0-9]{9}", started_id)
    answer = ToolMessage("42", tool_call_id=started_id)
    mistral = chat(gw, "mistral-small-2603").bind_tools([multiply])
    assert mistral.invoke([HumanMessage("6*7?"), first, answer]).content == "42"
    assistant, tool = gw.last_request.body["messages"][1:3]
    sent_id = assistant["tool_calls"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{9}", sent_id)
    assert tool["tool_call_id"] == sent_id
    assert first.tool_calls[0]["id"] == started_id  # the conversation is untouched


@pytest.mark.parametrize(
    ("model", "echoed"),
    [
        ("deepseek-v3.2", True),
        ("gpt-4.1", False),
        ("claude-sonnet-4.5", False),
        ("gemini-2.5-flash", False),
        ("mistral-small-2603", False),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_is_echoed_or_stripped_per_model(gw, model, echoed, stream):
    gw.enqueue(
        Reply(reasoning="I should multiply.", tool_calls=TWO_CALLS[:1]),
        Reply(content="42"),
    )
    llm = chat(gw, model).bind_tools([multiply])
    first = stream_all(llm) if stream else llm.invoke("6*7?")
    assert first.additional_kwargs["reasoning_content"] == "I should multiply."
    llm.invoke([HumanMessage("6*7?"), first, ToolMessage("42", tool_call_id="call_a")])
    assistant, tool = gw.last_request.body["messages"][1:3]
    sent_id = (
        short_tool_call_id("call_a") if model == "mistral-small-2603" else "call_a"
    )
    assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"] == sent_id
    if echoed:
        assert assistant["reasoning_content"] == "I should multiply."
    else:
        assert "reasoning_content" not in assistant
        assert "reasoning" not in assistant


# --------------------------------------------------------------------------- #
# with_structured_output
# --------------------------------------------------------------------------- #

ANN = {"name": "Ann", "age": 31}


def answer_structured(body):
    """Answer like a model: a tool call when forced, JSON otherwise."""
    if body.get("tools"):
        name = body["tools"][0]["function"]["name"]
        return Reply(tool_calls=[ToolCall(name, ANN)])
    return Reply(content=json.dumps(ANN))


SCHEMAS = [
    pytest.param(Person, Person(**ANN), id="pydantic"),
    pytest.param(PersonDict, ANN, id="typeddict"),
    pytest.param(PERSON_SCHEMA, ANN, id="json-schema"),
]


@pytest.mark.parametrize(("schema", "expected"), SCHEMAS)
@pytest.mark.parametrize(
    ("model", "method"),
    [
        ("gpt-4.1", "json_schema"),
        ("gpt-4.1", "function_calling"),
        ("gpt-4.1", "json_mode"),
        ("deepseek-v3.2", "function_calling"),
        ("deepseek-v3.2", "json_mode"),
    ],
)
def test_each_method_and_schema_kind(gw, schema, expected, model, method):
    gw.set_responder(answer_structured)
    structured = chat(gw, model).with_structured_output(schema, method=method)
    assert structured.invoke("Ann is 31. Answer in JSON.") == expected
    body = gw.last_request.body
    name = "PersonDict" if schema is PersonDict else "Person"
    if method == "function_calling":
        assert body["tool_choice"]["function"]["name"] == name
        assert "response_format" not in body
    elif method == "json_schema":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["name"] == name
        assert body["response_format"]["json_schema"]["strict"] is True
        assert "tools" not in body
    else:
        assert body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("gpt-4.1", "response_format"),
        ("gemini-2.5-flash", "response_format"),
        ("mistral-small-2603", "response_format"),
        ("claude-sonnet-4.5", "tools"),
        ("deepseek-v3.2", "tools"),
        ("a-model-from-next-year", "tools"),
    ],
)
async def test_default_method_per_model(gw, model, sent):
    gw.set_responder(answer_structured)
    structured = chat(gw, model).with_structured_output(Person)
    assert await structured.ainvoke("Ann is 31") == Person(**ANN)
    body = gw.last_request.body
    assert sent in body
    assert ({"response_format", "tools"} - {sent}).isdisjoint(body)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_streams(gw, method):
    gw.set_responder(answer_structured)
    structured = chat(gw).with_structured_output(Person, method=method)
    results = list(structured.stream("Ann is 31"))
    assert results
    assert results[-1] == Person(**ANN)


def test_include_raw_success(gw):
    gw.set_responder(answer_structured)
    out = chat(gw, "deepseek-v3.2").with_structured_output(Person, include_raw=True)
    result = out.invoke("Ann is 31")
    assert result["parsed"] == Person(**ANN)
    assert result["parsing_error"] is None
    assert isinstance(result["raw"], AIMessage)
    assert result["raw"].tool_calls[0]["name"] == "Person"


@pytest.mark.parametrize(
    ("model", "reply", "match"),
    [
        ("deepseek-v3.2", Reply(content="Ann is 31."), "without calling 'Person'"),
        (
            "deepseek-v3.2",
            Reply(tool_calls=[ToolCall("Person", '{"name": "Ann", age')]),
            "not valid JSON",
        ),
        ("gpt-4.1", Reply(content="Ann, 31 years"), "not valid JSON"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_unusable_answers_are_clear_parsing_errors(gw, model, reply, match, stream):
    gw.set_default(reply)
    structured = chat(gw, model).with_structured_output(Person)
    run = structured.stream if stream else structured.invoke
    with pytest.raises(OutputParserException, match=match):
        list(run("Ann is 31")) if stream else run("Ann is 31")
    result = (
        chat(gw, model).with_structured_output(Person, include_raw=True).invoke("x")
    )
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], OutputParserException)
    assert match.split("'")[0] in str(result["parsing_error"])
    assert isinstance(result["raw"], AIMessage)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_schema_violations_are_errors_not_none_even_streamed(gw, method):
    gw.set_default(
        Reply(
            content=json.dumps({"name": "Ann"}),
            tool_calls=[ToolCall("Person", {"name": "Ann"})],
        )
    )
    structured = chat(gw).with_structured_output(Person, method=method)
    with pytest.raises(ValueError, match="age"):
        structured.invoke("x")
    with pytest.raises(ValueError, match="age"):
        list(structured.stream("x"))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["gpt-4.1", "deepseek-v3.2"])
async def test_refusal_raises_model_refusal_error(gw, stream, model):
    gw.set_default(Reply(refusal="I can't help with that."))
    structured = chat(gw, model).with_structured_output(Person)

    async def run():
        if stream:
            return [c async for c in structured.astream("x")]
        return await structured.ainvoke("x")

    with pytest.raises(ModelRefusalError, match="I can't help with that") as info:
        await run()
    assert info.value.raw_message is not None
    raw = chat(gw, model).with_structured_output(Person, include_raw=True)
    result = raw.invoke("x")
    assert result["parsed"] is None
    assert isinstance(result["parsing_error"], ModelRefusalError)


def test_json_mode_without_schema_returns_a_dict(gw):
    gw.set_default(Reply(content='```json\n{"ok": true}\n```'))
    out = chat(gw, "deepseek-v3.2").with_structured_output(None, method="json_mode")
    assert out.invoke("Reply in JSON") == {"ok": True}


def test_structured_output_over_a_batch(gw):
    def extract(body):
        text = body["messages"][-1]["content"]
        name, age = text.split(" is ")
        return Reply(tool_calls=[ToolCall("Person", {"name": name, "age": int(age)})])

    gw.set_responder(extract)
    structured = chat(gw, "claude-sonnet-4.5").with_structured_output(Person)
    people = structured.batch(["Ann is 31", "Bo is 7", "Cy is 64"])
    assert people == [
        Person(name="Ann", age=31),
        Person(name="Bo", age=7),
        Person(name="Cy", age=64),
    ]
