"""Reasoning in its list form, and Gemini thought signatures, over real HTTP."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from langchain_holysheep.testing import Fault, Reply, ToolCall
from tests.modes import MODES, call

GEMINI = "gemini-2.5-flash"
REASONING = "First add the units, then carry the ten."


@pytest.mark.parametrize("mode", MODES)
async def test_reasoning_details_are_kept_like_reasoning_content(gw, make_model, mode):
    """Regression: reasoning sent as ``reasoning_details`` (a list) was dropped."""
    gw.enqueue(
        Reply(content="42", reasoning=REASONING, reasoning_format="reasoning_details")
    )
    answer = await call(make_model(model="deepseek-v3.2"), mode)
    assert answer.text == "42"
    assert answer.additional_kwargs["reasoning_content"] == REASONING
    details = answer.additional_kwargs["reasoning_details"]
    assert [d["type"] for d in details] == ["reasoning.text"]
    assert details[0]["text"] == REASONING
    blocks = answer.content_blocks
    assert {"type": "reasoning", "reasoning": REASONING} in blocks


@pytest.mark.parametrize("mode", MODES)
async def test_reasoning_details_are_sent_back_where_reasoning_is(gw, make_model, mode):
    """DeepSeek needs its reasoning back on the next turn, whatever its form."""
    gw.enqueue(
        Reply(content="42", reasoning=REASONING, reasoning_format="reasoning_details")
    )
    model = make_model(model="deepseek-v3.2")
    answer = await call(model, mode)
    model.invoke([HumanMessage("sum?"), answer, HumanMessage("and again?")])
    assistant = gw.last_request.body["messages"][1]
    assert assistant["reasoning_content"] == REASONING


def _signed_reply():
    return Reply(
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}, thought_signature="sig-one"),
            ToolCall("get_weather", {"city": "Rome"}),
        ]
    )


@pytest.mark.parametrize("mode", MODES)
async def test_gemini_thought_signatures_are_kept(gw, make_model, mode):
    gw.enqueue(_signed_reply())
    answer = await call(make_model(model=GEMINI), mode)
    first, second = answer.tool_calls
    assert answer.additional_kwargs["thought_signatures"] == {first["id"]: "sig-one"}
    assert second["id"] not in answer.additional_kwargs["thought_signatures"]


async def _next_turn(gw, make_model, mode, model):
    gw.enqueue(_signed_reply())
    answer = await call(make_model(model=GEMINI), mode)
    history = [
        HumanMessage("Weather in Paris and Rome?"),
        answer,
        *(ToolMessage("sunny", tool_call_id=c["id"]) for c in answer.tool_calls),
    ]
    make_model(model=model).invoke(history)
    return answer, gw.last_request.body["messages"][1]["tool_calls"]


@pytest.mark.parametrize("mode", MODES)
async def test_thought_signatures_go_back_to_gemini_on_the_next_turn(
    gw, make_model, mode
):
    """Regression: the signatures were dropped, so Gemini lost its thought."""
    answer, sent = await _next_turn(gw, make_model, mode, GEMINI)
    assert sent[0]["id"] == answer.tool_calls[0]["id"]
    assert sent[0]["extra_content"] == {"google": {"thought_signature": "sig-one"}}
    assert "extra_content" not in sent[1]


@pytest.mark.parametrize("other", ["gemini-2.5-pro", "gemini-3-pro-preview"])
async def test_thought_signatures_go_back_to_every_gemini_model(gw, make_model, other):
    """Known Gemini families, and ids the table does not know yet (Gemini 3)."""
    answer, sent = await _next_turn(gw, make_model, "invoke", other)
    assert sent[0]["id"] == answer.tool_calls[0]["id"]
    assert sent[0]["extra_content"] == {"google": {"thought_signature": "sig-one"}}
    assert "extra_content" not in sent[1]


@pytest.mark.parametrize("mode", ["invoke", "astream"])
@pytest.mark.parametrize("other", ["gpt-4.1", "mistral-small-2603", "unknown-model"])
async def test_thought_signatures_are_dropped_for_other_models(
    gw, make_model, mode, other
):
    _, sent = await _next_turn(gw, make_model, mode, other)
    assert all("extra_content" not in c for c in sent)


async def test_thought_signatures_survive_a_fallback_to_gemini(gw, make_model):
    """A chain whose Gemini member answered sends it its signatures back."""
    chain = make_model(model="mistral-small-2603").with_model_fallbacks([GEMINI])
    gw.enqueue(_signed_reply(), model=GEMINI)
    gw.enqueue(Reply(content="x"), model=GEMINI)
    gw.enqueue(Fault(status=503, repeat=2), model="mistral-small-2603")
    answer = await call(chain, "stream", "Weather?")
    assert answer.response_metadata["model_name"] == GEMINI
    history = [
        HumanMessage("Weather?"),
        answer,
        *(ToolMessage("sunny", tool_call_id=c["id"]) for c in answer.tool_calls),
    ]
    chain.invoke(history)
    sent = gw.last_request.body["messages"][1]["tool_calls"]
    assert gw.last_request.model == GEMINI
    assert sent[0]["extra_content"] == {"google": {"thought_signature": "sig-one"}}
