"""Structured output (``_structured``): the method per model, the runnable, its checks.

No sockets: the runnable is inspected as built, and the checks are pure
functions of a message.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.exceptions import ModelRefusalError, OutputParserException
from langchain_core.messages import AIMessage
from pydantic import BaseModel, Field

from langchain_holysheep import ChatHolySheep
from langchain_holysheep._profiles import default_structured_output_method
from langchain_holysheep._structured import (
    check_structured_message,
    choose_method,
    structured_output,
)
from langchain_holysheep.errors import HolySheepInputError


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city, e.g. Paris")


def make(model: str = "gpt-4.1") -> ChatHolySheep:
    return ChatHolySheep(model=model, api_key="cr_test", base_url="http://127.0.0.1:9")


def first_kwargs(
    model: str,
    schema: Any = GetWeather,
    *,
    method: str | None = None,
    strict: bool | None = None,
) -> dict[str, Any]:
    """What the structured-output runnable for ``model`` binds to the model."""
    runnable = structured_output(
        make(model),
        model,
        schema,
        method=method,
        include_raw=False,
        strict=strict,
        bind_kwargs={},
    )
    return runnable.first.kwargs


# --------------------------------------------------------------------------- #
# the method per model, and what it binds
# --------------------------------------------------------------------------- #


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
    assert choose_method(model, None, None) == method
    kwargs = first_kwargs(model)
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
    fmt = first_kwargs("gpt-4.1")["response_format"]["json_schema"]
    assert fmt["strict"] is True
    assert fmt["name"] == "GetWeather"
    assert fmt["schema"]["additionalProperties"] is False


def test_json_schema_with_optional_fields_is_not_strict_by_default():
    class Maybe(BaseModel):
        """Maybe a value."""

        value: int | None = None

    fmt = first_kwargs("gpt-4.1", Maybe)["response_format"]["json_schema"]
    assert fmt["strict"] is False


def test_json_schema_without_strict_support_sends_no_strict():
    fmt = first_kwargs("gemini-2.5-flash")["response_format"]["json_schema"]
    assert "strict" not in fmt
    with pytest.raises(HolySheepInputError, match="strict JSON schemas"):
        first_kwargs("gemini-2.5-flash", strict=True)


def test_function_calling_disables_parallel_calls_only_where_accepted():
    gpt = first_kwargs("gpt-4.1", method="function_calling")
    assert gpt["parallel_tool_calls"] is False
    deepseek = first_kwargs("deepseek-v3.2")
    assert "parallel_tool_calls" not in deepseek


def test_json_mode_binds_json_object():
    kwargs = first_kwargs("deepseek-v3.2", None, method="json_mode")
    assert kwargs["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        ("deepseek-v3.2", {"method": "json_schema"}, "does not support method"),
        ("claude-sonnet-4.5", {"method": "json_mode"}, "does not support method"),
        ("gpt-4.1", {"method": "xml"}, "Unknown method"),
        ("gpt-4.1", {"method": "json_mode", "strict": True}, "strict cannot"),
    ],
)
def test_unsupported_methods_raise(model, kwargs, match):
    with pytest.raises(HolySheepInputError, match=match):
        choose_method(model, kwargs["method"], kwargs.get("strict"))


def test_strict_where_the_forced_tool_cannot_be_strict_raises():
    with pytest.raises(HolySheepInputError, match="strict tool schemas"):
        first_kwargs("claude-sonnet-4.5", strict=True)


def test_a_schema_is_required_except_for_json_mode():
    with pytest.raises(HolySheepInputError, match="needs a schema"):
        first_kwargs("gpt-4.1", None)
    with pytest.raises(HolySheepInputError, match="Cannot use"):
        first_kwargs("gpt-4.1", {"properties": {}}, method="json_schema")


def test_response_format_dict_schemas_pass_through():
    schema = {"name": "Answer", "schema": {"type": "object"}, "strict": False}
    fmt = first_kwargs("gpt-4.1", schema, method="json_schema")["response_format"]
    assert fmt == {"type": "json_schema", "json_schema": schema}


# --------------------------------------------------------------------------- #
# ChatHolySheep.with_structured_output: the same runnable, per-call model
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        ("deepseek-v3.2", {"method": "json_schema"}, "does not support method"),
        ("gpt-4.1", {"method": "xml"}, "Unknown method"),
        ("claude-sonnet-4.5", {"strict": True}, "strict tool schemas"),
    ],
)
def test_unsupported_structured_output_forms_raise(model, kwargs, match):
    with pytest.raises(HolySheepInputError, match=match):
        make(model).with_structured_output(GetWeather, **kwargs)


def test_with_structured_output_binds_what_structured_output_builds():
    runnable = make("gpt-4.1").with_structured_output(GetWeather, seed=1)
    assert runnable.first.kwargs == {"seed": 1, **first_kwargs("gpt-4.1")}
    per_call = make("gpt-4.1").with_structured_output(GetWeather, model="deepseek-v3.2")
    assert "tool_choice" in per_call.first.kwargs


# --------------------------------------------------------------------------- #
# the structured-output checks (pure)
# --------------------------------------------------------------------------- #


def test_refusal_raises_model_refusal_error():
    message = AIMessage("", additional_kwargs={"refusal": "I can't help with that."})
    with pytest.raises(ModelRefusalError, match="can't help") as info:
        check_structured_message(message, None)
    assert info.value.raw_message is message


def test_content_filter_is_a_refusal():
    message = AIMessage("", response_metadata={"finish_reason": "content_filter"})
    with pytest.raises(ModelRefusalError, match="content filter"):
        check_structured_message(message, "T")


def test_missing_tool_call_is_a_clear_parsing_error():
    with pytest.raises(OutputParserException, match="without calling 'T'"):
        check_structured_message(AIMessage("just text"), "T")


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
        check_structured_message(message, "T")


def test_invalid_json_content_is_a_clear_parsing_error():
    with pytest.raises(OutputParserException, match="not valid JSON"):
        check_structured_message(AIMessage("Sure! name=Bob"), None)
    check_structured_message(AIMessage('```json\n{"a": 1}\n```'), None)
