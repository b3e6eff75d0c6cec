"""The python examples in docs/fleet.md run, in order, as a reader would.

The first runs without a Redis URL (in-process limits); the rest with
``HOLYSHEEP_REDIS_URL`` pointing at the test Redis, whose ``docs-example``
and ``docs-learned`` namespaces are deleted afterwards.
"""

import re
from pathlib import Path

import pytest

from tests.redis_support import SHARED_REDIS_URL, delete_namespace, require

DOC = Path(__file__).parents[2] / "docs" / "fleet.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.fixture
def docs_namespace():
    require()
    yield
    delete_namespace("docs-example")
    delete_namespace("docs-learned")


def test_docs_fleet_examples_run(holysheep_env, monkeypatch, capsys, docs_namespace):
    monkeypatch.delenv("HOLYSHEEP_REDIS_URL", raising=False)
    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 4
    namespace: dict = {"__name__": "docs_fleet"}
    for number, code in enumerate(blocks, 1):
        if number == 2:
            monkeypatch.setenv("HOLYSHEEP_REDIS_URL", SHARED_REDIS_URL)
        exec(compile(code, f"{DOC.name}[block {number}]", "exec"), namespace)  # noqa: S102
        if number == 1:
            assert namespace["limiter"].backend == "local"
    out = capsys.readouterr().out.splitlines()
    assert out[1:3] == ["Offline reply to: Say hello", "redis"]
    learned = namespace["learned"]
    assert float(out[3]) == learned.learned_output_tokens("gpt-4.1") > 0
    assert out[4:] == ["5"]
