"""Per-model rules over real HTTP: refused on a bare model, adapted in a chain.

A bare ``ChatHolySheep`` refuses what its model cannot take before anything is
sent, naming the model. Inside a fallback chain each member gets its own rules:
what the model can do without is left out of that member's request (one warning
naming member and setting); what it cannot take at all makes the member a failed
attempt, and the next member is asked. Every behaviour runs the four ways a
program calls a model.
"""

from __future__ import annotations

import pytest

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.errors import (
    HolySheepFallbackError,
    HolySheepUnsupportedInputError,
)
from langchain_holysheep.fallback import ChatHolySheepFallback
from langchain_holysheep.testing import Fault, Reply, ToolCall
from tests.modes import INVOKES, MODES, call
from tests.shared_tools import Person, multiply

KEY = "cr_model_rules_key_0042"
CLAUDE, GPT, GEMINI, MISTRAL = (
    "claude-sonnet-4.5",
    "gpt-4.1",
    "gemini-2.5-flash",
    "mistral-small-2603",
)
DEEPSEEK = "deepseek-v3.2"
DROPPED = r"Fallback member '{}' cannot take {} \("
PNG = "iVBORw0KGgo="
IMAGE_TURN = [
    (
        "user",
        [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image", "base64": PNG, "mime_type": "image/png"},
        ],
    )
]
PDF = {
    "type": "file",
    "base64": "JVBERi0xLjQK",
    "mime_type": "application/pdf",
    "filename": "report.pdf",
}
CACHED = {"type": "ephemeral"}


@pytest.fixture
def bare(gw):
    def make(model, **kwargs):
        return ChatHolySheep(
            model=model, base_url=gw.base_url, api_key=KEY, max_retries=0, **kwargs
        )

    return make


@pytest.fixture
def chain(gw):
    def make(*models, **kwargs):
        kwargs.setdefault("base_url", gw.base_url)
        kwargs.setdefault("api_key", KEY)
        return ChatHolySheepFallback(models=list(models), **kwargs)

    return make


def chat_requests(gw):
    return [r for r in gw.requests if r.path.endswith("/chat/completions")]


def sent_to(gw, model):
    return [r.body for r in chat_requests(gw) if r.model == model]


# --------------------------------------------------------------- droppable
@pytest.mark.parametrize("mode", MODES)
async def test_a_claude_member_drops_top_p_with_one_warning(gw, chain, mode):
    llm = chain(CLAUDE, GPT, temperature=0.2, top_p=0.9)
    with pytest.warns(UserWarning, match=DROPPED.format(CLAUDE, "top_p")):
        first = await call(llm, mode)
    await call(llm, mode)  # no second warning (filterwarnings=error would raise)
    assert first.response_metadata["model_name"] == CLAUDE
    assert first.response_metadata["fallback_attempts"] == []
    for body in sent_to(gw, CLAUDE):
        assert body["temperature"] == 0.2
        assert "top_p" not in body


@pytest.mark.parametrize("mode", MODES)
async def test_the_other_members_still_get_the_dropped_setting(gw, chain, mode):
    gw.enqueue(Fault(status=503), model=GPT)
    llm = chain(GPT, CLAUDE, temperature=0.2, top_p=0.9)
    with pytest.warns(UserWarning, match=DROPPED.format(CLAUDE, "top_p")):
        answer = await call(llm, mode)
    assert answer.response_metadata["model_name"] == CLAUDE
    [gpt_body] = sent_to(gw, GPT)
    assert (gpt_body["temperature"], gpt_body["top_p"]) == (0.2, 0.9)
    assert "top_p" not in sent_to(gw, CLAUDE)[0]


@pytest.mark.parametrize("mode", MODES)
async def test_a_bare_claude_still_refuses_temperature_with_top_p(gw, bare, mode):
    llm = bare(CLAUDE, temperature=0.2, top_p=0.9)
    with pytest.raises(HolySheepUnsupportedInputError, match=CLAUDE) as info:
        await call(llm, mode)
    assert info.value.setting == "top_p"
    assert chat_requests(gw) == []


@pytest.mark.parametrize("mode", MODES)
async def test_parallel_tool_calls_on_a_mistral_gemini_chain(gw, chain, mode):
    """Regression: bind_tools(parallel_tool_calls=False) on this chain raised."""
    gw.enqueue(Fault(status=503), model=MISTRAL)
    gw.set_default(Reply(tool_calls=[ToolCall("multiply", {"a": 6, "b": 7})]))
    llm = chain(MISTRAL, GEMINI).bind_tools([multiply], parallel_tool_calls=False)
    with pytest.warns(UserWarning, match=DROPPED.format(GEMINI, "parallel_tool_calls")):
        answer = await call(llm, mode)
    assert answer.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert answer.response_metadata["model_name"] == GEMINI
    assert sent_to(gw, MISTRAL)[0]["parallel_tool_calls"] is False
    [gemini_body] = sent_to(gw, GEMINI)
    assert "parallel_tool_calls" not in gemini_body
    assert gemini_body["tools"][0]["function"]["name"] == "multiply"


async def test_a_bare_gemini_still_refuses_parallel_tool_calls(gw, bare):
    with pytest.raises(HolySheepUnsupportedInputError, match=GEMINI):
        bare(GEMINI).bind_tools([multiply], parallel_tool_calls=False)
    with pytest.raises(HolySheepUnsupportedInputError, match=GEMINI):
        await bare(GEMINI).ainvoke("hi", parallel_tool_calls=False)
    assert chat_requests(gw) == []


# ------------------------------------------------------------- undroppable
@pytest.mark.parametrize("mode", MODES)
async def test_a_strict_schema_skips_the_member_that_cannot_honour_it(gw, chain, mode):
    """Regression: a Claude member's input error ended the failover."""
    gw.set_default(Reply(tool_calls=[ToolCall("multiply", {"a": 2, "b": 3})]))
    llm = chain(CLAUDE, GPT).bind_tools([multiply], strict=True)
    answer = await call(llm, mode)
    assert answer.response_metadata["model_name"] == GPT
    [attempt] = answer.response_metadata["fallback_attempts"]
    assert attempt["model"] == CLAUDE
    assert attempt["error_type"] == "HolySheepUnsupportedInputError"
    assert "does not support strict tool schemas" in attempt["message"]
    assert sent_to(gw, CLAUDE) == []  # nothing was sent to it
    assert sent_to(gw, GPT)[0]["tools"][0]["function"]["strict"] is True


@pytest.mark.parametrize("mode", MODES)
async def test_an_image_skips_a_text_only_member(gw, chain, mode):
    answer = await call(chain(DEEPSEEK, GPT), mode, IMAGE_TURN)
    assert answer.response_metadata["model_name"] == GPT
    [attempt] = answer.response_metadata["fallback_attempts"]
    assert (attempt["model"], attempt["error_type"]) == (
        DEEPSEEK,
        "HolySheepUnsupportedInputError",
    )
    assert "cannot take image input" in attempt["message"]
    assert [r.model for r in chat_requests(gw)] == [GPT]
    [image] = chat_requests(gw)[0].content_parts("image_url")
    assert image["image_url"]["url"] == f"data:image/png;base64,{PNG}"


@pytest.mark.parametrize("mode", MODES)
async def test_when_no_member_can_take_the_input_the_group_lists_each(gw, chain, mode):
    with pytest.raises(HolySheepFallbackError) as info:
        await call(chain(DEEPSEEK, "deepseek-chat"), mode, IMAGE_TURN)
    assert [type(e) for e in info.value.exceptions] == [
        HolySheepUnsupportedInputError
    ] * 2
    assert [e.model for e in info.value.exceptions] == [DEEPSEEK, "deepseek-chat"]
    assert chat_requests(gw) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "case",
    [
        (DEEPSEEK, {"type": "image", "url": "https://x/cat.png"}, "image"),
        (DEEPSEEK, PDF, "file"),
        (
            GPT,
            {"type": "audio", "base64": "UklGRg==", "mime_type": "audio/wav"},
            "audio",
        ),
    ],
)
async def test_a_bare_model_refuses_media_it_cannot_take_before_sending(
    gw, bare, mode, case
):
    model, block, what = case
    turn = [("user", [{"type": "text", "text": "look"}, block])]
    with pytest.raises(HolySheepUnsupportedInputError) as info:
        await call(bare(model), mode, turn)
    assert f"Model {model!r} cannot take {what} input" in str(info.value)
    assert chat_requests(gw) == []


@pytest.mark.parametrize("mode", INVOKES)
async def test_structured_output_skips_a_member_without_the_method(gw, chain, mode):
    gw.set_default(Reply(content='{"name": "Ann", "age": 31}'))
    extract = chain(CLAUDE, GPT).with_structured_output(Person, method="json_schema")
    if mode == "invoke":
        person = extract.invoke("Ann is 31")
    else:
        person = await extract.ainvoke("Ann is 31")
    assert person == Person(name="Ann", age=31)
    assert [r.model for r in chat_requests(gw)] == [GPT]
    assert sent_to(gw, GPT)[0]["response_format"]["type"] == "json_schema"


# ----------------------------------------------------------- cache_control
CACHED_TURN = [
    ("system", [{"type": "text", "text": "Long rules.", "cache_control": CACHED}]),
    ("user", [{"type": "text", "text": "Question?", "cache_control": CACHED}]),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("model", "kept"), [(CLAUDE, 2), ("claude-opus-4", 2), (GPT, 0), (DEEPSEEK, 0)]
)
async def test_cache_control_reaches_claude_models_only(gw, bare, mode, model, kept):
    await call(bare(model), mode, CACHED_TURN)
    sent = gw.last_request
    assert len(sent.cache_control_parts) == kept
    if not kept:  # the system prompt is plain text again
        assert sent.body["messages"][0]["content"] == "Long rules."


@pytest.mark.parametrize("mode", MODES)
async def test_cache_control_is_stripped_for_the_non_claude_members(gw, chain, mode):
    gw.enqueue(Fault(status=503), model=CLAUDE)
    answer = await call(chain(CLAUDE, GEMINI), mode, CACHED_TURN)
    assert answer.response_metadata["model_name"] == GEMINI
    claude, gemini = chat_requests(gw)
    assert len(claude.cache_control_parts) == 2
    assert gemini.cache_control_parts == []


# ------------------------------------------------------------------- files
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("block", "part"),
    [
        (
            PDF,
            {
                "file_data": "data:application/pdf;base64,JVBERi0xLjQK",
                "filename": "report.pdf",
            },
        ),
        ({"type": "file", "file_id": "file-abc123"}, {"file_id": "file-abc123"}),
    ],
)
async def test_langchain_file_blocks_go_out_as_file_parts(gw, bare, mode, block, part):
    """Regression: file blocks went on the wire unconverted (a 400 from the API)."""
    turn = [("user", [{"type": "text", "text": "Summarize."}, block])]
    answer = await call(bare(GPT), mode, turn)
    assert answer.content == "Offline reply to: Summarize."
    assert gw.last_request.content_parts("file") == [{"type": "file", "file": part}]
