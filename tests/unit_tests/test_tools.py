"""Tool binding, tool_choice, structured-output setup, profiles and tool-call streams.

No sockets: everything here is checked on the bound runnable, the request body
builder or the pure stream converter, before any request could be sent.
"""

from __future__ import annotations

from functools import reduce
from operator import add
from typing import Any, get_type_hints

import pytest
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._convert import StreamState
from langchain_holysheep._profiles import (
    MODEL_CAPABILITIES,
    default_structured_output_method,
    model_profile,
)
from langchain_holysheep.errors import HolySheepInputError
from tests.shared_tools import multiply

KNOWN = sorted(MODEL_CAPABILITIES)


def make(model: str = "gpt-4.1") -> ChatHolySheep:
    return ChatHolySheep(model=model, api_key="cr_test", base_url="http://127.0.0.1:9")


def get_time(city: str) -> str:
    """Get the local time in a city.

    Args:
        city: The city name.
    """
    return f"12:00 in {city}"


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city, e.g. Paris")


class Lookup(TypedDict):
    """Look a word up in the dictionary."""

    word: str


JSON_SCHEMA_TOOL = {
    "title": "search",
    "description": "Search the web.",
    "type": "object",
    "properties": {"query": {"type": "string"}},
    "required": ["query"],
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "ping",
        "description": "Ping a host.",
        "parameters": {"type": "object", "properties": {"host": {"type": "string"}}},
    },
}


def bound_kwargs(runnable: Any) -> dict[str, Any]:
    return runnable.kwargs


# --------------------------------------------------------------------------- #
# bind_tools: every tool form
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("tool_like", "name", "param"),
    [
        (multiply, "multiply", "a"),
        (get_time, "get_time", "city"),
        (GetWeather, "GetWeather", "city"),
        (Lookup, "Lookup", "word"),
        (JSON_SCHEMA_TOOL, "search", "query"),
        (OPENAI_TOOL, "ping", "host"),
        (
            {"type": "function", "name": "resp", "parameters": {"type": "object"}},
            "resp",
            None,
        ),
    ],
)
def test_every_tool_form_becomes_a_function_tool(tool_like, name, param):
    kwargs = bound_kwargs(make().bind_tools([tool_like]))
    [spec] = kwargs["tools"]
    assert spec["type"] == "function"
    assert spec["function"]["name"] == name
    if param is not None:
        assert param in spec["function"]["parameters"]["properties"]
    assert "strict" not in spec["function"]
    assert "tool_choice" not in kwargs


def test_descriptions_survive_conversion():
    [spec] = bound_kwargs(make().bind_tools([GetWeather]))["tools"]
    assert spec["function"]["description"] == "Get the current weather in a city."
    city = spec["function"]["parameters"]["properties"]["city"]
    assert city["description"] == "The city, e.g. Paris"


def test_no_tools_sends_no_tools_key():
    assert "tools" not in bound_kwargs(make().bind_tools([]))


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"type": "web_search_preview"}, "built-in"),
        ({"type": "file_search", "vector_store_ids": []}, "built-in"),
        (42, "Cannot use 42 as a tool"),
        ({"properties": {}}, "Cannot use"),
    ],
)
def test_unusable_tools_raise_before_any_request(bad, match):
    with pytest.raises(HolySheepInputError, match=match):
        make().bind_tools([bad])


# --------------------------------------------------------------------------- #
# tool_choice
# --------------------------------------------------------------------------- #

NAMED = {"type": "function", "function": {"name": "multiply"}}


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        ("multiply", NAMED),
        (True, NAMED),
        (NAMED, NAMED),
        ({"type": "function", "function": {"name": "multiply", "x": 1}}, NAMED),
    ],
)
def test_tool_choice_forms(choice, sent):
    kwargs = bound_kwargs(make().bind_tools([multiply], tool_choice=choice))
    assert kwargs["tool_choice"] == sent


@pytest.mark.parametrize("choice", [None, False])
def test_unset_tool_choice_is_not_sent(choice):
    assert "tool_choice" not in bound_kwargs(
        make().bind_tools([multiply], tool_choice=choice)
    )


def test_a_tool_named_like_a_keyword_wins_over_the_keyword():
    def auto(x: int) -> int:
        """Auto-complete x."""
        return x

    kwargs = bound_kwargs(make().bind_tools([auto], tool_choice="auto"))
    assert kwargs["tool_choice"] == {"type": "function", "function": {"name": "auto"}}


@pytest.mark.parametrize(
    ("tools", "choice", "match"),
    [
        ([multiply, get_time], True, "tool_choice=True names no tool"),
        ([multiply], "divide", "neither 'auto'"),
        ([multiply], {"type": "function", "function": {"name": "x"}}, "not one of"),
        ([multiply], {"type": "tool", "name": "multiply"}, "not of the form"),
        ([multiply], {"function": {"name": "multiply"}}, "not of the form"),
        ([multiply], 3, "must be a string, a bool or a dict"),
        ([], "required", "needs at least one tool"),
        ([], "auto", "needs at least one tool"),
    ],
)
def test_bad_tool_choice_raises(tools, choice, match):
    with pytest.raises(HolySheepInputError, match=match):
        make().bind_tools(tools, tool_choice=choice)


def test_input_errors_are_value_errors_too():
    with pytest.raises(ValueError, match="tool_choice"):
        make().bind_tools([multiply], tool_choice="sometimes")


# --------------------------------------------------------------------------- #
# strict and parallel_tool_calls, per model
# --------------------------------------------------------------------------- #


def test_strict_is_sent_where_supported_with_closed_schemas():
    [spec] = bound_kwargs(make("gpt-4.1").bind_tools([GetWeather], strict=True))[
        "tools"
    ]
    assert spec["function"]["strict"] is True
    assert spec["function"]["parameters"]["additionalProperties"] is False


def test_strict_on_an_openai_dict_tool_closes_its_schema():
    [spec] = bound_kwargs(make("gpt-4.1").bind_tools([OPENAI_TOOL], strict=True))[
        "tools"
    ]
    assert spec["function"]["strict"] is True
    assert spec["function"]["parameters"]["additionalProperties"] is False
    assert "additionalProperties" not in OPENAI_TOOL["function"]["parameters"]


@pytest.mark.parametrize("model", ["claude-sonnet-4.5", "deepseek-v3.2"])
def test_strict_true_raises_where_unsupported(model):
    with pytest.raises(HolySheepInputError, match="strict tool schemas"):
        make(model).bind_tools([GetWeather], strict=True)


def test_strict_false_is_dropped_where_strict_is_not_understood():
    [spec] = bound_kwargs(make("deepseek-v3.2").bind_tools([GetWeather], strict=False))[
        "tools"
    ]
    assert "strict" not in spec["function"]
    [spec] = bound_kwargs(make("gpt-4.1").bind_tools([GetWeather], strict=False))[
        "tools"
    ]
    assert spec["function"]["strict"] is False


def test_strict_inside_a_dict_tool_follows_the_same_policy():
    tool_dict = {
        "type": "function",
        "function": {"name": "t", "parameters": {"type": "object"}, "strict": True},
    }
    with pytest.raises(HolySheepInputError, match="strict"):
        make("claude-sonnet-4.5").bind_tools([tool_dict])
    [spec] = bound_kwargs(make("gpt-4.1").bind_tools([tool_dict]))["tools"]
    assert spec["function"]["strict"] is True


def test_unknown_models_get_what_was_asked():
    kwargs = bound_kwargs(
        make("some-new-model").bind_tools(
            [GetWeather], strict=True, parallel_tool_calls=False, tool_choice="any"
        )
    )
    assert kwargs["tools"][0]["function"]["strict"] is True
    assert kwargs["parallel_tool_calls"] is False
    assert kwargs["tool_choice"] == "required"


def test_parallel_tool_calls():
    kwargs = bound_kwargs(
        make("gpt-4.1").bind_tools([multiply], parallel_tool_calls=False)
    )
    assert kwargs["parallel_tool_calls"] is False
    with pytest.raises(HolySheepInputError, match="parallel_tool_calls"):
        make("deepseek-v3.2").bind_tools([multiply], parallel_tool_calls=False)


def test_per_call_model_override_is_checked_against_that_model():
    with pytest.raises(HolySheepInputError, match=r"deepseek-v3\.2"):
        make("gpt-4.1").bind_tools([multiply], strict=True, model="deepseek-v3.2")


def test_response_format_for_the_agent_provider_strategy():
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": {"type": "object"}},
    }
    kwargs = bound_kwargs(make("gpt-4.1").bind_tools([multiply], response_format=fmt))
    assert kwargs["response_format"]["type"] == "json_schema"
    assert kwargs["response_format"]["json_schema"]["name"] == "Answer"
    with pytest.raises(HolySheepInputError, match="JSON-schema response_format"):
        make("deepseek-v3.2").bind_tools([multiply], response_format=fmt)


# --------------------------------------------------------------------------- #
# with_structured_output setup (no request)
# --------------------------------------------------------------------------- #


def first_binding(runnable: Any) -> Any:
    """The model binding at the head of a structured-output chain."""
    return runnable.first


@pytest.mark.parametrize(
    ("model", "method"),
    [
        ("gpt-4.1", "json_schema"),
        ("mistral-small-2603", "json_schema"),
        ("gemini-2.5-flash", "json_schema"),
        ("claude-sonnet-4.5", "function_calling"),
        ("deepseek-v3.2", "function_calling"),
        ("a-model-we-do-not-know", "function_calling"),
        ("GPT-4.1", "function_calling"),  # ids are case-sensitive, like the gateway
    ],
)
def test_default_method_per_model(model, method):
    assert default_structured_output_method(model) == method
    kwargs = bound_kwargs(first_binding(make(model).with_structured_output(GetWeather)))
    if method == "json_schema":
        assert kwargs["response_format"]["type"] == "json_schema"
        assert "tools" not in kwargs
    else:
        assert "response_format" not in kwargs
        assert kwargs["tool_choice"] == {
            "type": "function",
            "function": {"name": "GetWeather"},
        }


def test_json_schema_is_strict_where_supported_and_the_schema_allows():
    fmt = bound_kwargs(
        first_binding(make("gpt-4.1").with_structured_output(GetWeather))
    )["response_format"]["json_schema"]
    assert fmt["strict"] is True
    assert fmt["name"] == "GetWeather"
    assert fmt["schema"]["additionalProperties"] is False


def test_json_schema_with_optional_fields_is_not_strict_by_default():
    class Maybe(BaseModel):
        """Maybe a value."""

        value: int | None = None

    fmt = bound_kwargs(first_binding(make("gpt-4.1").with_structured_output(Maybe)))[
        "response_format"
    ]["json_schema"]
    assert fmt["strict"] is False


def test_json_schema_without_strict_support_sends_no_strict():
    fmt = bound_kwargs(
        first_binding(make("gemini-2.5-flash").with_structured_output(GetWeather))
    )["response_format"]["json_schema"]
    assert "strict" not in fmt
    with pytest.raises(HolySheepInputError, match="strict JSON schemas"):
        make("gemini-2.5-flash").with_structured_output(GetWeather, strict=True)


def test_function_calling_disables_parallel_calls_only_where_accepted():
    gpt = bound_kwargs(
        first_binding(
            make("gpt-4.1").with_structured_output(
                GetWeather, method="function_calling"
            )
        )
    )
    assert gpt["parallel_tool_calls"] is False
    deepseek = bound_kwargs(
        first_binding(make("deepseek-v3.2").with_structured_output(GetWeather))
    )
    assert "parallel_tool_calls" not in deepseek


def test_json_mode_binds_json_object():
    kwargs = bound_kwargs(
        first_binding(
            make("deepseek-v3.2").with_structured_output(None, method="json_mode")
        )
    )
    assert kwargs["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        ("deepseek-v3.2", {"method": "json_schema"}, "does not support method"),
        ("claude-sonnet-4.5", {"method": "json_mode"}, "does not support method"),
        ("gpt-4.1", {"method": "xml"}, "Unknown method"),
        ("gpt-4.1", {"method": "json_mode", "strict": True}, "strict cannot"),
        ("claude-sonnet-4.5", {"strict": True}, "strict tool schemas"),
    ],
)
def test_unsupported_structured_output_forms_raise(model, kwargs, match):
    with pytest.raises(HolySheepInputError, match=match):
        make(model).with_structured_output(GetWeather, **kwargs)


def test_a_schema_is_required_except_for_json_mode():
    with pytest.raises(HolySheepInputError, match="needs a schema"):
        make().with_structured_output(None)
    with pytest.raises(HolySheepInputError, match="Cannot use"):
        make().with_structured_output({"properties": {}}, method="json_schema")


def test_response_format_dict_schemas_pass_through():
    schema = {"name": "Answer", "schema": {"type": "object"}, "strict": False}
    fmt = bound_kwargs(
        first_binding(
            make("gpt-4.1").with_structured_output(schema, method="json_schema")
        )
    )["response_format"]
    assert fmt == {"type": "json_schema", "json_schema": schema}


# --------------------------------------------------------------------------- #
# the structured-output checks (pure)
# --------------------------------------------------------------------------- #


def test_refusal_raises_model_refusal_error():
    message = AIMessage("", additional_kwargs={"refusal": "I can't help with that."})
    with pytest.raises(ModelRefusalError, match="can't help") as info:
        ChatHolySheep._check_structured_message(message, None)
    assert info.value.raw_message is message


def test_content_filter_is_a_refusal():
    message = AIMessage("", response_metadata={"finish_reason": "content_filter"})
    with pytest.raises(ModelRefusalError, match="content filter"):
        ChatHolySheep._check_structured_message(message, "T")


def test_missing_tool_call_is_a_clear_parsing_error():
    with pytest.raises(OutputParserException, match="without calling 'T'"):
        ChatHolySheep._check_structured_message(AIMessage("just text"), "T")


def test_invalid_tool_arguments_are_a_clear_parsing_error():
    message = AIMessage(
        "",
        invalid_tool_calls=[
            {
                "name": "T",
                "args": "{nope",
                "id": "1",
                "error": "bad",
                "type": "invalid_tool_call",
            }
        ],
    )
    with pytest.raises(OutputParserException, match="not valid JSON: '\\{nope'"):
        ChatHolySheep._check_structured_message(message, "T")


def test_invalid_json_content_is_a_clear_parsing_error():
    with pytest.raises(OutputParserException, match="not valid JSON"):
        ChatHolySheep._check_structured_message(AIMessage("Sure! name=Bob"), None)
    ChatHolySheep._check_structured_message(AIMessage('```json\n{"a": 1}\n```'), None)


# --------------------------------------------------------------------------- #
# profiles
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("model", KNOWN)
def test_known_models_have_a_valid_profile(model):
    profile = make(model).profile
    assert profile is not None
    assert profile == model_profile(model)
    assert set(profile) <= set(get_type_hints(ModelProfile))
    assert profile["tool_calling"] is True
    assert profile["max_input_tokens"] >= 128_000
    assert profile["structured_output"] is (
        default_structured_output_method(model) == "json_schema"
    )


@pytest.mark.parametrize("model", ["unknown-model", "GPT-4.1", "gpt-4.1 ", "deepseek"])
def test_unknown_models_get_no_profile(model):
    assert make(model).profile is None
    assert model_profile(model) is None


def test_profile_values_that_drive_agents():
    assert model_profile("deepseek-v3.2")["image_inputs"] is False
    assert model_profile("deepseek-v3.2")["reasoning_output"] is True
    assert model_profile("claude-sonnet-4.5")["structured_output"] is False
    assert model_profile("gpt-4.1")["max_input_tokens"] == 1_047_576
    assert "max_output_tokens" not in model_profile("mistral-small-2603")


def test_profiles_are_fresh_copies():
    model_profile("gpt-4.1")["tool_calling"] = False
    assert model_profile("gpt-4.1")["tool_calling"] is True


def test_explicit_profile_wins():
    llm = ChatHolySheep(
        model="gpt-4.1", api_key="cr_x", profile={"tool_calling": False}
    )
    assert llm.profile == {"tool_calling": False}


# --------------------------------------------------------------------------- #
# reasoning echo in the request body
# --------------------------------------------------------------------------- #

TURN = [
    HumanMessage("What is 2 + 2?"),
    AIMessage("4", additional_kwargs={"reasoning_content": "2 plus 2 is 4."}),
    HumanMessage("And times 3?"),
]


@pytest.mark.parametrize(
    ("model", "echoed"),
    [
        ("deepseek-v3.2", True),
        ("gpt-4.1", False),
        ("claude-sonnet-4.5", False),
        ("gemini-2.5-flash", False),
        ("mistral-small-2603", False),
        ("unknown-model", False),
    ],
)
def test_reasoning_is_echoed_only_where_required(model, echoed):
    body = make(model)._request_body(list(TURN), None, {}, stream=False)
    assistant = body["messages"][1]
    assert assistant["content"] == "4"
    assert ("reasoning_content" in assistant) is echoed
    if echoed:
        assert assistant["reasoning_content"] == "2 plus 2 is 4."


def test_per_call_model_decides_the_echo():
    body = make("gpt-4.1")._request_body(
        list(TURN), None, {"model": "deepseek-v3.2"}, stream=False
    )
    assert body["messages"][1]["reasoning_content"] == "2 plus 2 is 4."


def test_v1_reasoning_blocks_are_echoed():
    message = AIMessage(
        [
            {"type": "reasoning", "reasoning": "think "},
            {"type": "reasoning", "reasoning": "more"},
            {"type": "text", "text": "4"},
        ]
    )
    body = make("deepseek-v3.2")._request_body(
        [HumanMessage("q"), message, HumanMessage("q2")], None, {}, stream=False
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "think more",
    }


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
