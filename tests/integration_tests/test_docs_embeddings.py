"""docs/embeddings.md runs: its python blocks, in order, against the offline gateway."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "embeddings.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def python_blocks():
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_the_examples_we_run():
    blocks = python_blocks()
    assert len(blocks) >= 5
    assert any("InMemoryVectorStore" in block for block in blocks)
    assert any("aembed_documents" in block for block in blocks)


def test_doc_python_blocks_run_against_the_offline_gateway(holysheep_env, capsys):
    gw = holysheep_env
    namespace: dict = {"__name__": "__docs__"}
    for number, block in enumerate(python_blocks()):
        code = compile(block, f"{DOC}:block{number}", "exec")
        exec(code, namespace)  # noqa: S102 - running our own documentation

    out = capsys.readouterr().out.splitlines()
    # Usage: a query vector (256 numbers offline) and two document vectors.
    assert out[0] == "256 2"
    # Async: 1000 texts in 4 batches of 256, then the query.
    assert out[1] == "1000 256"
    assert out[2] == "too long: HolySheepContextOverflowError"
    # RAG: both sheep chunks retrieved, and the answer came from the chat model.
    assert out[3] == "['sheep.md', 'sheep.md']"
    assert out[4].startswith("Offline reply to: How much wool")
    assert out[5] == "offline batches: 2"

    chat = [r for r in gw.requests if r.path == "/v1/chat/completions"]
    assert len(chat) == 1
    assert "eight kilograms" in chat[0].body["messages"][0]["content"]
    embedded = [r.body["input"] for r in gw.requests if r.path == "/v1/embeddings"]
    assert sorted(len(batch) for batch in embedded[2:6]) == [232, 256, 256, 256]
