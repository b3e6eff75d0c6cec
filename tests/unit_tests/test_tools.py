"""Tools, tool_choice, strict and response_format in the wire form (``_tools``).

No sockets and no model: the pure functions that ``ChatHolySheep.bind_tools``
delegates to are called directly, with the model id the request would name.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._tools import (
    closed_schema,
    format_tool,
    json_schema_of,
    normalize_tool_choice,
    response_format_for,
    strict_compatible,
    tool_kwargs,
)
from langchain_holysheep.errors import (
    HolySheepInputError,
    HolySheepUnsupportedInputError,
)
from tests.shared_tools import multiply


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


def bound(tools: list[Any], model: str = "gpt-4.1", **options: Any) -> dict[str, Any]:
    """What ``bind_tools`` would bind for ``model``."""
    return tool_kwargs(tools, model, **options)


# --------------------------------------------------------------------------- #
# every tool form
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
    kwargs = bound([tool_like])
    [spec] = kwargs["tools"]
    assert spec == format_tool(tool_like, "gpt-4.1")
    assert spec["type"] == "function"
    assert spec["function"]["name"] == name
    if param is not None:
        assert param in spec["function"]["parameters"]["properties"]
    assert "strict" not in spec["function"]
    assert "tool_choice" not in kwargs


def test_descriptions_survive_conversion():
    spec = format_tool(GetWeather, "gpt-4.1")
    assert spec["function"]["description"] == "Get the current weather in a city."
    city = spec["function"]["parameters"]["properties"]["city"]
    assert city["description"] == "The city, e.g. Paris"


def test_no_tools_sends_no_tools_key():
    assert "tools" not in bound([])


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
        format_tool(bad, "gpt-4.1")


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
    assert normalize_tool_choice(choice, ["multiply"]) == sent
    assert bound([multiply], tool_choice=choice)["tool_choice"] == sent


@pytest.mark.parametrize("choice", [None, False])
def test_unset_tool_choice_is_not_sent(choice):
    assert normalize_tool_choice(choice, ["multiply"]) is None
    assert "tool_choice" not in bound([multiply], tool_choice=choice)


def test_a_tool_named_like_a_keyword_wins_over_the_keyword():
    def auto(x: int) -> int:
        """Auto-complete x."""
        return x

    kwargs = bound([auto], tool_choice="auto")
    assert kwargs["tool_choice"] == {"type": "function", "function": {"name": "auto"}}


@pytest.mark.parametrize(
    ("names", "choice", "match"),
    [
        (["multiply", "get_time"], True, "tool_choice=True names no tool"),
        (["multiply"], "divide", "neither 'auto'"),
        (["multiply"], {"type": "function", "function": {"name": "x"}}, "not one of"),
        (["multiply"], {"type": "tool", "name": "multiply"}, "not of the form"),
        (["multiply"], {"function": {"name": "multiply"}}, "not of the form"),
        (["multiply"], 3, "must be a string, a bool or a dict"),
        ([], "required", "needs at least one tool"),
        ([], "auto", "needs at least one tool"),
    ],
)
def test_bad_tool_choice_raises(names, choice, match):
    with pytest.raises(HolySheepInputError, match=match):
        normalize_tool_choice(choice, names)


def test_input_errors_are_value_errors_too():
    with pytest.raises(ValueError, match="tool_choice"):
        normalize_tool_choice("sometimes", ["multiply"])


# --------------------------------------------------------------------------- #
# strict and parallel_tool_calls, per model
# --------------------------------------------------------------------------- #


def test_strict_is_sent_where_supported_with_closed_schemas():
    spec = format_tool(GetWeather, "gpt-4.1", strict=True)
    assert spec["function"]["strict"] is True
    assert spec["function"]["parameters"]["additionalProperties"] is False


def test_strict_on_an_openai_dict_tool_closes_its_schema():
    spec = format_tool(OPENAI_TOOL, "gpt-4.1", strict=True)
    assert spec["function"]["strict"] is True
    assert spec["function"]["parameters"]["additionalProperties"] is False
    assert "additionalProperties" not in OPENAI_TOOL["function"]["parameters"]


@pytest.mark.parametrize("model", ["claude-sonnet-4.5", "deepseek-v3.2"])
def test_strict_true_raises_where_unsupported(model):
    with pytest.raises(HolySheepInputError, match="strict tool schemas"):
        format_tool(GetWeather, model, strict=True)


def test_strict_false_is_dropped_where_strict_is_not_understood():
    spec = format_tool(GetWeather, "deepseek-v3.2", strict=False)
    assert "strict" not in spec["function"]
    spec = format_tool(GetWeather, "gpt-4.1", strict=False)
    assert spec["function"]["strict"] is False


def test_strict_inside_a_dict_tool_follows_the_same_policy():
    tool_dict = {
        "type": "function",
        "function": {"name": "t", "parameters": {"type": "object"}, "strict": True},
    }
    with pytest.raises(HolySheepInputError, match="strict"):
        format_tool(tool_dict, "claude-sonnet-4.5")
    spec = format_tool(tool_dict, "gpt-4.1")
    assert spec["function"]["strict"] is True


def test_unknown_models_get_what_was_asked():
    kwargs = bound(
        [GetWeather],
        "some-new-model",
        strict=True,
        parallel_tool_calls=False,
        tool_choice="any",
    )
    assert kwargs["tools"][0]["function"]["strict"] is True
    assert kwargs["parallel_tool_calls"] is False
    assert kwargs["tool_choice"] == "required"


def test_parallel_tool_calls():
    kwargs = bound([multiply], "gpt-4.1", parallel_tool_calls=False)
    assert kwargs["parallel_tool_calls"] is False
    with pytest.raises(HolySheepInputError, match="parallel_tool_calls"):
        bound([multiply], "deepseek-v3.2", parallel_tool_calls=False)


def test_a_fallback_member_binds_parallel_tool_calls_for_the_request_to_drop():
    kwargs = bound([multiply], "deepseek-v3.2", parallel_tool_calls=False, adapt=True)
    assert kwargs["parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("model", "options", "setting"),
    [
        ("claude-sonnet-4.5", {"strict": True}, "strict"),
        ("deepseek-v3.2", {"parallel_tool_calls": False}, "parallel_tool_calls"),
        (
            "claude-sonnet-4.5",
            {"response_format": {"name": "A", "schema": {"type": "object"}}},
            "response_format",
        ),
    ],
)
def test_what_only_this_model_cannot_take_is_an_unsupported_input_error(
    model, options, setting
):
    with pytest.raises(HolySheepUnsupportedInputError) as info:
        bound([multiply], model, **options)
    assert (info.value.model, info.value.setting) == (model, setting)
    assert model in str(info.value)


def test_a_bad_tool_choice_is_a_plain_input_error_for_every_model():
    with pytest.raises(HolySheepInputError) as info:
        bound([multiply], "gpt-4.1", tool_choice="nope")
    assert not isinstance(info.value, HolySheepUnsupportedInputError)


def test_response_format_for_the_agent_provider_strategy():
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "Answer", "schema": {"type": "object"}},
    }
    kwargs = bound([multiply], "gpt-4.1", response_format=fmt)
    assert kwargs["response_format"]["type"] == "json_schema"
    assert kwargs["response_format"]["json_schema"]["name"] == "Answer"
    with pytest.raises(HolySheepInputError, match="JSON-schema response_format"):
        bound([multiply], "deepseek-v3.2", response_format=fmt)


# --------------------------------------------------------------------------- #
# response formats and strict schemas
# --------------------------------------------------------------------------- #


def test_response_format_dict_schemas_pass_through():
    schema = {"name": "Answer", "schema": {"type": "object"}, "strict": False}
    fmt = response_format_for(schema, "gpt-4.1")
    assert fmt == {"type": "json_schema", "json_schema": schema}


def test_json_object_and_text_formats_pass_through_where_supported():
    assert response_format_for({"type": "json_object"}, "deepseek-v3.2") == {
        "type": "json_object"
    }
    assert response_format_for({"type": "text"}, "claude-sonnet-4.5") == {
        "type": "text"
    }
    with pytest.raises(HolySheepInputError, match="JSON mode"):
        response_format_for({"type": "json_object"}, "claude-sonnet-4.5")


def test_json_schema_of_every_form():
    named = {"name": "A", "schema": {"type": "object"}}
    assert json_schema_of({"type": "json_schema", "json_schema": named}) == named
    assert json_schema_of(named) == named
    assert json_schema_of(GetWeather)["name"] == "GetWeather"
    assert json_schema_of(GetWeather)["description"] == (
        "Get the current weather in a city."
    )
    with pytest.raises(HolySheepInputError, match="Cannot use"):
        json_schema_of({"properties": {}})


def test_strict_needs_every_property_required_at_every_depth():
    closed = {"type": "object", "properties": {"a": {}}, "required": ["a"]}
    assert strict_compatible(closed)
    assert strict_compatible([closed, "x"])
    assert not strict_compatible({"type": "object", "properties": {"a": {}}})
    assert not strict_compatible({"$defs": {"B": {"properties": {"b": {}}}}})


def test_closed_schema_closes_every_object_and_keeps_an_explicit_choice():
    schema = {
        "type": "object",
        "properties": {"inner": {"type": "object", "properties": {}}},
        "anyOf": [{"properties": {}, "additionalProperties": True}],
    }
    closed = closed_schema(schema)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["inner"]["additionalProperties"] is False
    assert closed["anyOf"][0]["additionalProperties"] is True
    assert "additionalProperties" not in schema


# --------------------------------------------------------------------------- #
# ChatHolySheep.bind_tools: binds what tool_kwargs returns
# --------------------------------------------------------------------------- #


def make(model: str = "gpt-4.1") -> ChatHolySheep:
    return ChatHolySheep(model=model, api_key="cr_test", base_url="http://127.0.0.1:9")


def test_bind_tools_binds_the_checked_parameters_and_other_kwargs():
    runnable = make().bind_tools([multiply], tool_choice="multiply", seed=3)
    assert runnable.kwargs == {"seed": 3, **bound([multiply], tool_choice="multiply")}


def test_per_call_model_override_is_checked_against_that_model():
    with pytest.raises(HolySheepInputError, match=r"deepseek-v3\.2"):
        make("gpt-4.1").bind_tools([multiply], strict=True, model="deepseek-v3.2")
