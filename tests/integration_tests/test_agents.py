"""ChatHolySheep inside real LangChain and LangGraph programs, over real HTTP.

The offline gateway answers "as a model would": a responder looks at the
request the agent sent and calls a tool first, then answers once the tool's
result is in the conversation.
"""

from __future__ import annotations

import json

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ModelFallbackMiddleware, SummarizationMiddleware
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.fallback import ChatHolySheepFallback
from langchain_holysheep.testing import Fault, Reply, ToolCall
from tests.shared_tools import Person, add, multiply

# create_react_agent still works in LangGraph 1.x but warns that it moved to
# langchain.agents.create_agent; we keep testing it because users still call it.
REACT_MOVED = (
    "ignore:create_react_agent has been moved"
    ":langgraph.warnings.LangGraphDeprecatedSinceV10"
)


@pytest.fixture
def gw(holysheep_gateway):
    return holysheep_gateway


def chat(gw, model="gpt-4.1", **kwargs):
    return ChatHolySheep(
        model=model, base_url=gw.base_url, api_key="cr_test", max_retries=0, **kwargs
    )


def agent_responder(body):
    """Call multiply(6, 7), then add(result, 1), then answer with the total."""
    messages = body["messages"]
    results = [m["content"] for m in messages if m["role"] == "tool"]
    tools = {t["function"]["name"] for t in body.get("tools", [])}
    assert {"multiply", "add"} <= tools, "the agent must send its tools every turn"
    if not results:
        return Reply(
            reasoning="I need to multiply first.",
            tool_calls=[ToolCall("multiply", {"a": 6, "b": 7})],
        )
    if len(results) == 1:
        return Reply(tool_calls=[ToolCall("add", {"a": int(results[0]), "b": 1})])
    return Reply(content=f"The answer is {results[-1]}, as computed step by step.")


def check_loop(gw, messages):
    assert messages[-1].content == "The answer is 43, as computed step by step."
    tool_messages = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_messages] == ["42", "43"]
    chat_requests = [r for r in gw.requests if r.path.endswith("/chat/completions")]
    assert len(chat_requests) == 3
    last = [m for m in chat_requests[-1].body["messages"] if m["role"] != "system"]
    roles = [m["role"] for m in last]
    assert roles == ["user", "assistant", "tool", "assistant", "tool"]
    assert last[2]["tool_call_id"] == last[1]["tool_calls"][0]["id"]
    assert last[4]["tool_call_id"] == last[3]["tool_calls"][0]["id"]


def check_reasoning_echo(gw, *, echoed):
    assistant = next(
        m for m in gw.requests[-1].body["messages"] if m["role"] == "assistant"
    )
    assert ("reasoning_content" in assistant) is echoed


# --------------------------------------------------------------------------- #
# LCEL
# --------------------------------------------------------------------------- #


@pytest.fixture
def translate(gw):
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Translate to {language}."), ("human", "{text}")]
    )

    def echo(body):
        system, user = (m["content"] for m in body["messages"])
        return Reply(content=f"[{system}] {user}")

    gw.set_responder(echo)
    return prompt | chat(gw) | StrOutputParser()


def test_lcel_invoke(gw, translate):
    out = translate.invoke({"language": "French", "text": "I love cats"})
    assert out == "[Translate to French.] I love cats"
    assert gw.last_request.body["messages"] == [
        {"role": "system", "content": "Translate to French."},
        {"role": "user", "content": "I love cats"},
    ]


def test_lcel_stream(gw, translate):
    pieces = list(translate.stream({"language": "German", "text": "good morning all"}))
    assert len(pieces) > 3
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == "[Translate to German.] good morning all"


async def test_lcel_abatch(gw, translate):
    inputs = [
        {"language": lang, "text": "hi"} for lang in ("French", "Spanish", "Thai")
    ]
    outs = await translate.abatch(inputs, config={"max_concurrency": 2})
    assert outs == [
        f"[Translate to {lang}.] hi" for lang in ("French", "Spanish", "Thai")
    ]
    assert translate.batch(inputs[:1]) == outs[:1]


# --------------------------------------------------------------------------- #
# langchain.agents.create_agent
# --------------------------------------------------------------------------- #

QUESTION = {"messages": [("user", "What is 6 * 7 + 1?")]}


@pytest.mark.parametrize(
    ("model", "echoed"), [("deepseek-v3.2", True), ("gpt-4.1", False)]
)
def test_create_agent_loop_sync(gw, model, echoed):
    gw.set_responder(agent_responder)
    agent = create_agent(chat(gw, model), [multiply, add])
    result = agent.invoke(QUESTION)
    check_loop(gw, result["messages"])
    check_reasoning_echo(gw, echoed=echoed)


@pytest.mark.parametrize("streaming", [False, True])
async def test_create_agent_loop_async(gw, streaming):
    gw.set_responder(agent_responder)
    agent = create_agent(
        chat(gw, "gemini-2.5-flash", streaming=streaming),
        [multiply, add],
        system_prompt="Use the tools.",
    )
    result = await agent.ainvoke(QUESTION)
    check_loop(gw, result["messages"])
    assert all(r.body["messages"][0]["role"] == "system" for r in gw.requests)
    assert all(
        r.body.get("stream") is (True if streaming else None) for r in gw.requests
    )


def collect_tokens(events):
    chunks = []
    for chunk, metadata in events:
        if isinstance(chunk, AIMessageChunk) and metadata["langgraph_node"] == "model":
            chunks.append(chunk)
    return chunks


def test_create_agent_stream_mode_messages_delivers_tokens(gw):
    gw.set_responder(agent_responder)
    agent = create_agent(chat(gw, "mistral-small-2603"), [multiply, add])
    chunks = collect_tokens(agent.stream(QUESTION, stream_mode="messages"))
    text_chunks = [c for c in chunks if c.content]
    assert len(text_chunks) >= 5
    assert "".join(c.content for c in text_chunks) == (
        "The answer is 43, as computed step by step."
    )
    assert any(c.tool_call_chunks for c in chunks)
    assert any(c.usage_metadata for c in chunks)


async def test_create_agent_astream_mode_messages(gw):
    gw.set_responder(agent_responder)
    agent = create_agent(chat(gw, "claude-sonnet-4.5"), [multiply, add])
    chunks = [
        chunk
        async for chunk, meta in agent.astream(QUESTION, stream_mode="messages")
        if isinstance(chunk, AIMessageChunk) and meta["langgraph_node"] == "model"
    ]
    assert sum(1 for c in chunks if c.content) >= 5
    names = [tc["name"] for c in chunks for tc in c.tool_call_chunks if tc["name"]]
    assert names == ["multiply", "add"]


def extraction_responder(body):
    """Answer an extraction: JSON when a schema is requested, else a tool call."""
    text = body["messages"][-1]["content"]
    name, age = text.split(" is ")
    person = {"name": name, "age": int(age)}
    if body.get("response_format"):
        return Reply(content=json.dumps(person))
    return Reply(tool_calls=[ToolCall("Person", person)])


@pytest.mark.parametrize(
    ("model", "native"), [("gpt-4.1", True), ("deepseek-v3.2", False)]
)
def test_create_agent_structured_extraction_over_a_batch(gw, model, native):
    """The profile decides: native JSON schema on gpt-4.1, a tool on deepseek."""
    gw.set_responder(extraction_responder)
    agent = create_agent(chat(gw, model), [], response_format=Person)
    inputs = [{"messages": [("user", t)]} for t in ("Ann is 31", "Bo is 7")]
    results = agent.batch(inputs)
    assert [r["structured_response"] for r in results] == [
        Person(name="Ann", age=31),
        Person(name="Bo", age=7),
    ]
    body = gw.requests[-1].body
    assert ("response_format" in body) is native
    assert ("tools" in body) is not native


def test_with_structured_output_over_a_batch(gw):
    gw.set_responder(extraction_responder)
    extract = chat(gw, "gemini-2.5-flash").with_structured_output(Person)
    texts = ["Ann is 31", "Bo is 7", "Cy is 64", "Di is 12"]
    people = extract.batch(texts, config={"max_concurrency": 3})
    assert [(p.name, p.age) for p in people] == [
        ("Ann", 31),
        ("Bo", 7),
        ("Cy", 64),
        ("Di", 12),
    ]


# --------------------------------------------------------------------------- #
# langgraph.prebuilt.create_react_agent (deprecated alias, still widely used)
# --------------------------------------------------------------------------- #


@pytest.mark.filterwarnings(REACT_MOVED)
def test_react_agent_loop_sync(gw):
    from langgraph.prebuilt import create_react_agent

    gw.set_responder(agent_responder)
    agent = create_react_agent(chat(gw, "deepseek-v3.2"), [multiply, add])
    result = agent.invoke(QUESTION)
    check_loop(gw, result["messages"])
    check_reasoning_echo(gw, echoed=True)


@pytest.mark.filterwarnings(REACT_MOVED)
async def test_react_agent_loop_async_streams_tokens(gw):
    from langgraph.prebuilt import create_react_agent

    gw.set_responder(agent_responder)
    agent = create_react_agent(chat(gw, "gpt-4.1"), [multiply, add])
    chunks = []
    async for chunk, meta in agent.astream(QUESTION, stream_mode="messages"):
        if isinstance(chunk, AIMessageChunk) and meta["langgraph_node"] == "agent":
            chunks.append(chunk)
    assert sum(1 for c in chunks if c.content) >= 5
    final = await agent.ainvoke(QUESTION)
    assert isinstance(final["messages"][-1], AIMessage)
    assert final["messages"][-1].content.startswith("The answer is 43")


# --------------------------------------------------------------------------- #
# Profiles and per-model rules inside agents (middleware reads the profile)
# --------------------------------------------------------------------------- #


def summarizing_responder(body):
    """Summarize when asked to, else answer plainly."""
    text = body["messages"][-1]["content"]
    if isinstance(text, str) and "Context Extraction Assistant" in text:
        return Reply(content="They talked about cats.")
    return Reply(content="Noted.")


LONG_HISTORY = {
    "messages": [
        (role, f"{role} says {'cats ' * 400}") for role in ("user", "assistant") * 3
    ]
    + [("user", "And now?")]
}


@pytest.mark.parametrize("use_async", [False, True])
async def test_summarization_middleware_uses_the_chains_smallest_window(gw, use_async):
    """Regression: the chain had no profile, so a fractional trigger raised."""
    gw.set_responder(summarizing_responder)
    small = chat(gw, "gpt-4.1", profile={"max_input_tokens": 2_000})
    chain = small.with_model_fallbacks(["deepseek-v3.2"])
    assert chain.profile["max_input_tokens"] == 2_000
    summarize = SummarizationMiddleware(
        model=chain, trigger=("fraction", 0.8), keep=("messages", 1)
    )
    agent = create_agent(chain, [], middleware=[summarize])
    run = agent.ainvoke if use_async else agent.invoke
    result = run(LONG_HISTORY)
    result = await result if use_async else result
    assert result["messages"][-1].content == "Noted."
    summary_request, answer_request = chat_bodies(gw)
    assert "Context Extraction Assistant" in str(summary_request["messages"])
    sent = answer_request["messages"]
    assert len(sent) == 2  # the summary, then the kept last message
    assert "They talked about cats." in sent[0]["content"]
    assert sent[1]["content"] == "And now?"


def chat_bodies(gw):
    return [r.body for r in gw.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize(
    ("models", "native"),
    [
        (("gpt-4.1", "gemini-2.5-flash"), True),
        (("claude-sonnet-4.5", "gpt-4.1"), False),
    ],
)
@pytest.mark.parametrize("use_async", [False, True])
async def test_create_agent_response_format_follows_the_chains_profile(
    gw, models, native, use_async
):
    """Native JSON schema only when every member has it; the fallback keeps it."""
    gw.set_responder(extraction_responder)
    gw.enqueue(Fault(status=503), model=models[0])
    chain = ChatHolySheepFallback(
        models=list(models), base_url=gw.base_url, api_key="cr_test"
    )
    agent = create_agent(chain, [], response_format=Person)
    run = agent.ainvoke if use_async else agent.invoke
    result = run({"messages": [("user", "Ann is 31")]})
    result = await result if use_async else result
    assert result["structured_response"] == Person(name="Ann", age=31)
    failed, served = chat_bodies(gw)
    assert (failed["model"], served["model"]) == models
    for body in (failed, served):
        assert ("response_format" in body) is native
        assert ("tools" in body) is not native


@pytest.mark.parametrize(
    ("model", "native"),
    [
        ("gpt-4o-2024-08-06", True),
        ("gpt-4o-mini-2024-07-18", True),
        ("claude-opus-4-20250514", False),
        ("deepseek-chat", False),
    ],
)
def test_dated_ids_get_their_familys_profile_in_create_agent(gw, model, native):
    gw.set_responder(extraction_responder)
    llm = chat(gw, model)
    assert SummarizationMiddleware(model=llm, trigger=("fraction", 0.8))
    agent = create_agent(llm, [], response_format=Person)
    result = agent.invoke({"messages": [("user", "Bo is 7")]})
    assert result["structured_response"] == Person(name="Bo", age=7)
    body = chat_bodies(gw)[-1]
    assert ("response_format" in body) is native


IMAGE_QUESTION = {
    "messages": [
        (
            "user",
            [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "url": "https://example.com/cat.png"},
            ],
        )
    ]
}


@pytest.mark.parametrize("use_async", [False, True])
async def test_model_fallback_middleware_moves_on_from_a_refusal(gw, use_async):
    """A bare model refuses before sending; the middleware asks the next one."""
    agent = create_agent(
        chat(gw, "deepseek-v3.2"),
        [],
        middleware=[ModelFallbackMiddleware(chat(gw, "gpt-4.1"))],
    )
    run = agent.ainvoke if use_async else agent.invoke
    result = run(IMAGE_QUESTION)
    result = await result if use_async else result
    assert result["messages"][-1].content == "Offline reply to: What is this?"
    assert [b["model"] for b in chat_bodies(gw)] == ["gpt-4.1"]


def test_model_fallback_middleware_after_claudes_sampling_refusal(gw):
    agent = create_agent(
        chat(gw, "claude-sonnet-4.5", temperature=0.2, top_p=0.9),
        [],
        middleware=[ModelFallbackMiddleware(chat(gw, "gemini-2.5-flash"))],
    )
    result = agent.invoke({"messages": [("user", "hi")]})
    assert result["messages"][-1].response_metadata["model_name"] == "gemini-2.5-flash"
    assert [b["model"] for b in chat_bodies(gw)] == ["gemini-2.5-flash"]


@pytest.mark.parametrize("use_async", [False, True])
async def test_an_agent_on_a_chain_adapts_each_member(gw, use_async):
    """The tool loop runs on Claude without top_p, and an image skips deepseek."""
    gw.set_responder(agent_responder)
    chain = ChatHolySheepFallback(
        models=["claude-sonnet-4.5", "gpt-4.1"],
        base_url=gw.base_url,
        api_key="cr_test",
        temperature=0.2,
        top_p=0.9,
    )
    agent = create_agent(chain, [multiply, add])
    run = agent.ainvoke if use_async else agent.invoke
    with pytest.warns(UserWarning, match="'claude-sonnet-4.5' cannot take top_p"):
        result = (await run(QUESTION)) if use_async else run(QUESTION)
    check_loop(gw, result["messages"])
    assert all("top_p" not in b for b in chat_bodies(gw))
    assert {b["model"] for b in chat_bodies(gw)} == {"claude-sonnet-4.5"}

    gw.reset()
    looker = ChatHolySheepFallback(
        models=["deepseek-v3.2", "gpt-4.1"], base_url=gw.base_url, api_key="cr_test"
    )
    agent = create_agent(looker, [])
    run = agent.ainvoke if use_async else agent.invoke
    result = run(IMAGE_QUESTION)
    result = await result if use_async else result
    answer = result["messages"][-1]
    assert answer.response_metadata["model_name"] == "gpt-4.1"
    [attempt] = answer.response_metadata["fallback_attempts"]
    assert attempt["error_type"] == "HolySheepUnsupportedInputError"
