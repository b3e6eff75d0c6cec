"""The python examples in docs/testing.md run, in order, as a reader would.

Most examples start their own ``OfflineGateway``; the pytest example is a test
function, so it is defined by its block and then called with this test's own
``holysheep_env`` fixture, as pytest would.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks():
    return BLOCK.findall(DOC.read_text(encoding="utf-8"))


def test_the_page_has_examples():
    assert len(blocks()) >= 12


def test_docs_testing_examples_run(holysheep_env, capsys):
    namespace: dict = {"__name__": "docs_testing"}
    for number, code in enumerate(blocks(), 1):
        try:
            exec(compile(code, f"{DOC.name}[block {number}]", "exec"), namespace)  # noqa: S102
        except Exception as error:
            pytest.fail(f"example {number} failed: {error!r}\n{code}")
    # The page's own gateway was stopped by its last block.
    assert not namespace["gw"].running
    out = capsys.readouterr().out
    assert re.search(r"^http://127\.0\.0\.1:\d+/v1$", out, re.MULTILINE)
    for expected in (
        "always this",
        "get_weather {'city': 'Paris'}",
        "It is sunny in Paris.",
        '[] {"city": "Par',
        "HolySheepConnectionError 'a b '",
        "HolySheepStreamError 'a '",
        "HolySheepResponseError 'a '",
        "HolySheepTruncatedStreamError 'a b'",
        "slow",
        (
            "HolySheepRateLimitError\nHolySheepServerError\n"
            "HolySheepConnectionError\nHolySheepResponseError\n"
            "HolySheepResponseError\n"
        ),
        "[500, 500, 500, 'recovered']",
        'cut off: {"city": "Paris", \n',
        "empty, retryable: True",
        "[{'type': 'refusal', 'refusal': \"I can't help with that.\"}]",
        "HolySheepRateLimitError 200",
        "HolySheepServerError",
        "claude-sonnet-4.5 report.pdf 1\ngpt-4.1 report.pdf 0\n",
        "1\n0 0\n",
        "0\n[True, True, False]\n",
    ):
        assert expected in out

    # The pytest example, called as pytest would call it.
    namespace["test_my_chain"](holysheep_env)
    sent = holysheep_env.last_request
    assert sent.body["model"] == "gpt-4.1"
    assert sent.body["messages"][-1]["content"] == "What is six times seven?"


def test_standalone_gateway_prints_its_base_url_first():
    """The ``python -m langchain_holysheep.testing --port 0`` example."""
    process = subprocess.Popen(
        [sys.executable, "-m", "langchain_holysheep.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", first_line)
