"""The python examples in docs/observability.md run, in order, offline.

The page's ``my_prices.json`` is its own ```json block, written to a temporary
working directory before the examples run.
"""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "observability.md"
PYTHON = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
JSON = re.compile(r"^```json\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_the_page_has_examples():
    text = DOC.read_text(encoding="utf-8")
    assert len(PYTHON.findall(text)) >= 10
    assert len(JSON.findall(text)) == 1


def test_docs_observability_examples_run(holysheep_env, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HOLYSHEEP_PRICES_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text(encoding="utf-8")
    (tmp_path / "my_prices.json").write_text(JSON.findall(text)[0], encoding="utf-8")
    namespace: dict = {"__name__": "docs_observability"}
    for number, code in enumerate(PYTHON.findall(text), 1):
        try:
            exec(compile(code, f"{DOC.name}[block {number}]", "exec"), namespace)  # noqa: S102
        except Exception as error:
            pytest.fail(f"example {number} failed: {error!r}\n{code}")
    out = capsys.readouterr().out

    # "What did this chain cost": a priced call and a latency percentile.
    assert re.search(r"^\$0\.\d{6}, p95 \d+ ms$", out, re.MULTILINE)
    assert not out.startswith("$0.000000")
    # The price table listing and its alternatives.
    assert "gpt-4.1 3.0 8.0 HolySheep published gateway prices" in out
    direct = namespace["direct"]
    assert direct.get("mistral-small-2603").input_per_million == 0.15
    # The JSON override file was read.
    assert namespace["table"].get("deepseek-v3.2").input_per_million == 0.1
    assert namespace["table"].get("deepseek-v3.2").source == "our contract"
    # cost_from_usage, as the comments say.
    cost = namespace["cost"]
    assert cost.usd == 0.000587
    assert cost.source == "price_table"
    # The tracker table (context manager, sync and async calls).
    assert "mistral-small-2603 |        2 |" in out
    assert "TOTAL" in out
    # The explicit callback saw the model call and the chain's call.
    summary = namespace["tracker"].snapshot()
    assert summary.requests == 2
    assert summary.cost_by_model["mistral-small-2603"] > 0
    # Per-call metadata on invoke and on an aggregated stream.
    msg, full = namespace["msg"], namespace["full"]
    assert msg.response_metadata["cost_source"] == "price_table"
    assert msg.response_metadata["cost_usd"] > 0
    assert msg.response_metadata["latency"]["ttft_ms"] is None
    assert full.response_metadata["latency"]["ttft_ms"] > 0
    assert full.response_metadata["cost_usd"] > 0

    sent = [r.body for r in holysheep_env.requests if r.body]
    assert sent[0]["messages"][-1]["content"] == (
        "Answer briefly: How many legs does a sheep have?"
    )
    assert [b["model"] for b in sent if b.get("stream")] == ["gpt-4.1"]
