"""The README's python examples run, in order, against the offline gateway."""

import re
from pathlib import Path

from tests.integration_tests.test_docs_tools import model_like

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_readme_examples_run(holysheep_env, capsys):
    holysheep_env.set_responder(model_like)
    blocks = BLOCK.findall(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md[block {number}]", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "GetWeather" in out
    assert "name='Ann' age=31" in out
    assert "Sheep are grazing animals." in out
    assert "mistral-small-2603" in out
    assert "TOTAL" in out
