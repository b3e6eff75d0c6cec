"""ChatHolySheep inside real LangChain and LangGraph programs, over real HTTP.

The offline gateway answers "as a model would": a responder looks at the
request the agent sent and calls a tool first, then answers once the tool's
result is in the conversation.
"""

from __future__ import annotations

import json

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_holysheep import ChatHolySheep
from langchain_holysheep.testing import Reply, ToolCall
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
