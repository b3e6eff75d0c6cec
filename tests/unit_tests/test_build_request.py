"""The chat request body (``_convert.build_request``) and the model rules it applies.

Pure: plain parameters in, a JSON body out, or a ``HolySheepInputError`` before
anything could be sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_holysheep._convert import build_request
from langchain_holysheep._profiles import get_capabilities
from langchain_holysheep.errors import (
    HolySheepInputError,
    HolySheepUnsupportedInputError,
)

HI = [HumanMessage("hi")]
CACHED = {"type": "ephemeral"}


def body(
    params: dict[str, Any] | None = None,
    call: dict[str, Any] | None = None,
    messages: list[Any] | None = None,
    *,
    stream: bool = False,
    **model_options: Any,
) -> dict[str, Any]:
    """``build_request`` for a model's ``params`` and a call's ``call`` kwargs.

    ``model_options`` are the model-level keyword arguments (``stop``,
    ``extra_body``, ``stream_usage``, ``no_stream_options``).
    """
    return build_request(
        {"model": "mistral-small-2603", **(params or {})},
        dict(call or {}),
        HI if messages is None else messages,
        get_capabilities,
        stream=stream,
        **model_options,
    )


# --------------------------------------------------------------------------- #
# what is sent, in which order of precedence
# --------------------------------------------------------------------------- #


def test_the_parameters_and_the_conversation_are_sent():
    assert body({"temperature": 0.3}) == {
        "model": "mistral-small-2603",
        "temperature": 0.3,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_per_call_overrides_win():
    sent = body(
        {"temperature": 0.3, "stop": ["a"]},
        {"model": "gpt-4.1", "temperature": 1.0, "seed": 1},
        stop=["b"],
    )
    assert sent["model"] == "gpt-4.1"
    assert sent["stop"] == ["b"]
    assert sent["temperature"] == 1.0
    assert sent["seed"] == 1


def test_extra_body_is_merged_instance_then_call():
    sent = body(
        call={"extra_body": {"top_k": 9}},
        extra_body={"top_k": 5, "thinking": {"type": "enabled"}},
    )
    assert sent["top_k"] == 9
    assert sent["thinking"] == {"type": "enabled"}
    assert "extra_body" not in sent


def test_the_call_kwargs_that_are_not_parameters_are_taken_out():
    call = {"extra_body": {"a": 1}, "stream_usage": False, "stream": True, "seed": 2}
    sent = build_request({"model": "m"}, call, HI, get_capabilities, stream=False)
    assert call == {"seed": 2}
    assert "stream" not in sent
    assert "stream_usage" not in sent


# --------------------------------------------------------------------------- #
# streams
# --------------------------------------------------------------------------- #


def test_stream_body_asks_for_usage():
    sent = body(stream=True)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert "stream_options" not in body(stream=True, stream_usage=False)
    assert "stream_options" not in body(call={"stream_usage": False}, stream=True)


def test_a_gateway_that_rejected_stream_options_is_not_sent_them_again():
    refused = {"mistral-small-2603"}
    assert "stream_options" not in body(stream=True, no_stream_options=refused)
    other = body({"model": "gpt-4.1"}, stream=True, no_stream_options=refused)
    assert other["stream_options"] == {"include_usage": True}


def test_n_greater_than_one_cannot_stream():
    with pytest.raises(HolySheepInputError, match="n > 1"):
        body({"n": 2}, stream=True)
    assert body({"n": 2})["n"] == 2


# --------------------------------------------------------------------------- #
# the model's rules
# --------------------------------------------------------------------------- #


def test_claude_sonnet_refuses_temperature_with_top_p_before_sending():
    claude = {"model": "claude-sonnet-4.5"}
    for params, call, extra_body in [
        ({**claude, "temperature": 0.2, "top_p": 0.9}, {}, None),
        ({**claude, "temperature": 0.2}, {"top_p": 0.5}, None),
        (claude, {"temperature": 0.1}, {"top_p": 0.5}),
    ]:
        with pytest.raises(HolySheepInputError, match="temperature and top_p") as error:
            body(params, call, extra_body=extra_body)
        assert "claude-sonnet-4.5" in str(error.value)
        assert "Set only one" in str(error.value)
    assert body({**claude, "temperature": 0.2})["temperature"] == 0.2
    assert body({**claude, "top_p": 0.9})["top_p"] == 0.9
    both = body({"model": "gpt-4.1", "temperature": 0.2, "top_p": 0.9})
    assert (both["temperature"], both["top_p"]) == (0.2, 0.9)
    unknown = body({"model": "some-new-model", "temperature": 0.2, "top_p": 0.9})
    assert (unknown["temperature"], unknown["top_p"]) == (0.2, 0.9)


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
    assistant = body({"model": model}, messages=list(TURN))["messages"][1]
    assert assistant["content"] == "4"
    assert ("reasoning_content" in assistant) is echoed
    if echoed:
        assert assistant["reasoning_content"] == "2 plus 2 is 4."


def test_per_call_model_decides_the_echo():
    sent = body({"model": "gpt-4.1"}, {"model": "deepseek-v3.2"}, list(TURN))
    assert sent["messages"][1]["reasoning_content"] == "2 plus 2 is 4."


def test_v1_reasoning_blocks_are_echoed():
    message = AIMessage(
        [
            {"type": "reasoning", "reasoning": "think "},
            {"type": "reasoning", "reasoning": "more"},
            {"type": "text", "text": "4"},
        ]
    )
    sent = body(
        {"model": "deepseek-v3.2"},
        messages=[HumanMessage("q"), message, HumanMessage("q2")],
    )
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "think more",
    }


def test_tool_call_ids_are_shortened_only_for_models_that_need_it():
    turn = [
        HumanMessage("q"),
        AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "call_abc123xyz"}]),
    ]
    mistral = body({"model": "mistral-small-2603"}, messages=turn)
    assert len(mistral["messages"][1]["tool_calls"][0]["id"]) == 9
    gpt = body({"model": "gpt-4.1"}, messages=turn)
    assert gpt["messages"][1]["tool_calls"][0]["id"] == "call_abc123xyz"


def test_an_empty_conversation_is_refused():
    with pytest.raises(HolySheepInputError, match="empty list of messages"):
        body(messages=[])


def test_a_dated_id_gets_its_familys_rules():
    with pytest.raises(HolySheepUnsupportedInputError, match="temperature and top_p"):
        body({"model": "claude-sonnet-4-5-20250929", "temperature": 0.2, "top_p": 0.9})


# --------------------------------------------------------------------------- #
# what a fallback member drops, and what a bare model refuses
# --------------------------------------------------------------------------- #


def test_droppable_settings_are_refused_without_on_drop_and_name_the_model():
    with pytest.raises(HolySheepUnsupportedInputError) as info:
        body({"model": "claude-sonnet-4.5", "temperature": 0.2, "top_p": 0.9})
    assert (info.value.model, info.value.setting) == ("claude-sonnet-4.5", "top_p")
    with pytest.raises(HolySheepUnsupportedInputError, match="parallel_tool_calls"):
        body({"model": "gemini-2.5-flash"}, {"parallel_tool_calls": False})


def test_with_on_drop_they_are_left_out_and_reported():
    dropped = []

    def on_drop(model, setting, reason):
        dropped.append((model, setting, reason))

    sent = body(
        {"model": "claude-sonnet-4.5", "temperature": 0.2, "top_p": 0.9},
        on_drop=on_drop,
    )
    assert sent["temperature"] == 0.2
    assert "top_p" not in sent
    sent = body(
        {"model": "deepseek-v3.2"}, {"parallel_tool_calls": False}, on_drop=on_drop
    )
    assert "parallel_tool_calls" not in sent
    assert [d[:2] for d in dropped] == [
        ("claude-sonnet-4.5", "top_p"),
        ("deepseek-v3.2", "parallel_tool_calls"),
    ]
    assert all(d[2] for d in dropped)  # a reason for the warning
    kept = body({"model": "gpt-4.1", "top_p": 0.9, "temperature": 0.1}, on_drop=on_drop)
    assert (kept["top_p"], len(dropped)) == (0.9, 2)


IMAGE = {"type": "image", "url": "https://x/cat.png"}
AUDIO = {"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"}
PDF = {
    "type": "file",
    "base64": "JVBERi0xLjQK",
    "mime_type": "application/pdf",
    "filename": "a.pdf",
}


@pytest.mark.parametrize(
    ("model", "block", "kind"),
    [
        ("deepseek-v3.2", IMAGE, "image_url"),
        ("deepseek-chat", PDF, "file"),
        ("gpt-4.1", AUDIO, "input_audio"),
        ("claude-sonnet-4.5", AUDIO, "input_audio"),
    ],
)
def test_media_a_model_cannot_take_is_refused_before_sending(model, block, kind):
    messages = [
        HumanMessage("first"),
        HumanMessage([{"type": "text", "text": "look"}, block]),
    ]
    with pytest.raises(HolySheepUnsupportedInputError) as info:
        body({"model": model}, messages=messages, on_drop=lambda *_: None)
    assert (info.value.model, info.value.setting) == (model, kind)
    assert f"Model {model!r} cannot take" in str(info.value)
    assert "message 2, role 'user'" in str(info.value)


@pytest.mark.parametrize(
    ("model", "block"),
    [
        ("gpt-4.1", IMAGE),
        ("gpt-4o", PDF),
        ("gemini-2.5-flash", AUDIO),
        ("mistral-large", IMAGE),  # not documented either way: sent
        ("claude-sonnet-4.5", PDF),  # not documented either way: sent
        ("some-new-model", AUDIO),  # unknown: sent as asked
    ],
)
def test_media_a_model_takes_or_may_take_is_sent(model, block):
    sent = body({"model": model}, messages=[HumanMessage([block])])
    assert sent["messages"][0]["content"][0]["type"] != "text"


def test_cache_control_reaches_claude_only():
    messages = [
        SystemMessage([{"type": "text", "text": "rules", "cache_control": CACHED}]),
        HumanMessage([{"type": "text", "text": "q", "cache_control": CACHED}]),
    ]
    claude = body({"model": "claude-sonnet-4.5"}, messages=messages)["messages"]
    assert claude[0]["content"][0]["cache_control"] == CACHED
    assert claude[1]["content"][0]["cache_control"] == CACHED
    for model in ("gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2", "some-model"):
        sent = body({"model": model}, messages=messages)["messages"]
        assert sent[0]["content"] == "rules"
        assert sent[1]["content"] == [{"type": "text", "text": "q"}]
