"""Run the tool, structured output and agent examples of docs/chat.md offline.

The examples are executed as written, in order and in one namespace (later
blocks reuse earlier names, as a reader would), with ``HOLYSHEEP_BASE_URL`` and
``HOLYSHEEP_API_KEY`` pointing at the gateway and a responder that answers as a
model would: it calls a fitting tool, answers once a tool result is in, and
fills JSON schemas from the prompt.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_holysheep.testing import Reply, ToolCall

DOC = Path(__file__).parents[2] / "docs" / "chat.md"
FIRST_SECTION = "## Tool calling"
LAST_SECTION_END = "## Errors"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
WORDS = {"city": "Paris", "country": "France", "summary": "Sunny and 24 degrees"}
CITIES = {"Paris", "Rome", "Oslo"}


def user_text(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    content = users[-1]["content"] if users else ""
    return content if isinstance(content, str) else json.dumps(content)


def fill(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """Plausible arguments: numbers and names from the prompt, else stock words."""
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    names = re.findall(r"\b[A-Z][a-z]+\b", text)
    args: dict[str, Any] = {}
    for key, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type")
        if kind == "integer":
            args[key] = numbers.pop(0) if numbers else 3
        elif kind == "number":
            args[key] = 2.5
        elif kind == "boolean":
            args[key] = True
        elif key == "city":
            args[key] = next((n for n in reversed(names) if n in CITIES), "Paris")
        elif key in WORDS:
            args[key] = WORDS[key]
        else:
            args[key] = names[-1] if names else "example"
    return args


def words_of(name: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Z]?[a-z]+", name)}


def pick_tool(body: dict[str, Any], text: str) -> dict[str, Any]:
    tools = [t["function"] for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return next(t for t in tools if t["name"] == choice["function"]["name"])
    called = {
        c["function"]["name"]
        for m in body["messages"]
        for c in m.get("tool_calls") or ()
    }
    fresh = [t for t in tools if t["name"] not in called] or tools
    lowered = set(re.findall(r"[a-z]+", text.lower()))
    return next((t for t in fresh if words_of(t["name"]) & lowered), fresh[0])


def model_like(body: dict[str, Any]) -> Reply:
    text = user_text(body)
    last = body["messages"][-1]
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return Reply(content=json.dumps(fill(fmt["json_schema"]["schema"], text)))
    if fmt.get("type") == "json_object":
        return Reply(content=json.dumps({"city": "Paris", "country": "France"}))
    tool_turn = last["role"] == "tool"
    if body.get("tools") and (not tool_turn or body.get("tool_choice") == "required"):
        tool = pick_tool(body, text)
        args = fill(tool.get("parameters") or {}, text)
        return Reply(tool_calls=[ToolCall(tool["name"], args)])
    if tool_turn:
        return Reply(content=f"Here is what I found: {last['content']}")
    return Reply(content=f"You said: {text}")


def section_text() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(FIRST_SECTION) : text.index(LAST_SECTION_END)]


def blocks() -> list[str]:
    return BLOCK.findall(section_text())


def test_the_page_has_examples_for_each_section():
    text = section_text()
    for heading in ("## Tool calling", "## Structured output", "## Agents"):
        assert heading in text
    assert len(blocks()) >= 8


def test_docs_examples_run(holysheep_env, capsys):
    gw = holysheep_env
    gw.set_responder(model_like)
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for number, code in enumerate(blocks(), 1):
        try:
            exec(compile(code, f"{DOC.name}[block {number}]", "exec"), namespace)  # noqa: S102
        except Exception as error:
            pytest.fail(f"example {number} failed: {error!r}\n{code}")
    out = capsys.readouterr().out
    assert "GetWeather {'city': 'Paris'}" in out
    assert "{'a': 6, 'b': 7}" in out
    assert "Here is what I found: 42" in out
    assert "name='Ann' age=31" in out
    assert "[Person(name='Ann', age=31), Person(name='Bo', age=7)]" in out
    assert "{'city': 'Paris', 'country': 'France'}" in out
    assert "Tower" not in out
    assert "Here is what I found: Sunny and 24 degrees in Paris." in out
    assert "Here is what I found: Sunny and 24 degrees in Rome." in out
    assert "1047576" in out
    assert "city='Paris'" in out
    models = {r.body["model"] for r in gw.requests if r.body}
    assert models == {"gpt-4.1", "deepseek-v3.2", "claude-sonnet-4.5"}
