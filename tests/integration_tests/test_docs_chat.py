"""The python examples in docs/chat.md run, in order, against the offline gateway."""

import re
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "chat.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks():
    """The examples outside the tools/agents sections (test_docs_tools runs those)."""
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index("## Tool calling"), text.index("## Errors")
    return BLOCK.findall(text[:start] + text[end:])


def test_the_page_has_examples():
    assert len(_blocks()) >= 5


def test_docs_chat_examples_run(holysheep_env, capsys):
    namespace: dict = {"__name__": "docs_chat"}
    for block in _blocks():
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 (our docs)
    printed = capsys.readouterr().out
    assert "Offline reply to: I love programming." in printed
    assert "deepseek-v3.2 image_url" in printed
    assert "1047576\nNone\n" in printed
    requests = holysheep_env.requests
    assert any(r.content_parts("file") for r in requests)
    cached = {r.model for r in requests if r.cache_control_parts}
    assert cached == {"claude-sonnet-4.5"}
    # The security section: repr masks every credential, loads restores them.
    assert "base_url='https://***:***@relay.example.com/v1'" in printed
    assert "default_headers={'Helicone-Auth': '***', 'X-Request-Source': 'docs'}" in (
        printed
    )
    assert "default_query={'sig': '***', 'v': '2'}" in printed
    assert "\nBearer hk-123\n" in printed
    sent = [r.body for r in holysheep_env.requests if r.path.endswith("/completions")]
    assert any(body["model"] == "gpt-4.1" for body in sent)
    assert any(body["model"] == "deepseek-v3.2" for body in sent)
