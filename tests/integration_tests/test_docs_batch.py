"""The examples in docs/batch.md hold: the python block runs, the sample lines parse.

The python block runs in a scratch directory holding ``requests.jsonl`` made
of the page's own input line, against the offline gateway (``holysheep_env``).
"""

import json
import re
from pathlib import Path

from langchain_holysheep.batch._format import line_custom_id, parse_line
from langchain_holysheep.batch._types import EXIT_OK

DOC = Path(__file__).parents[2] / "docs" / "batch.md"


def blocks(language):
    pattern = re.compile(rf"^```{language}\n(.*?)^```", re.DOTALL | re.MULTILINE)
    return pattern.findall(DOC.read_text(encoding="utf-8"))


def test_the_sample_lines_are_what_the_code_reads_and_writes():
    request, success, error = (b.strip() for b in blocks("json"))
    assert parse_line(request, 1).custom_id == "q1"
    for text, custom_id in ((success, "q1"), (error, "q2")):
        assert line_custom_id(text) == custom_id
        data = json.loads(text)
        assert list(data) == [
            "id", "custom_id", "response", "error", "cost_usd", "model",
            "latency_ms", "attempts",
        ]  # fmt: skip


def test_the_python_example_runs(holysheep_env, tmp_path, monkeypatch, capsys):
    request = blocks("json")[0].strip()
    lines = [
        request,
        request.replace('"custom_id": "q1"', '"custom_id": "q2"'),
    ]
    (tmp_path / "requests.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    # The first block is the page's example; the Ray Data one runs (on a local
    # Ray, like the page's) in test_batch_ray.py.
    code = blocks("python")[0]
    namespace: dict = {"__name__": "docs_batch"}
    exec(compile(code, f"{DOC.name}[python]", "exec"), namespace)  # noqa: S102
    summary = namespace["summary"]
    assert summary.exit_status == EXIT_OK
    assert summary.succeeded == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == summary.message()
    assert out[1].startswith("2 0 ")
    answers = [
        json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()
    ]
    assert sorted(a["custom_id"] for a in answers) == ["q1", "q2"]
    assert (
        len([r for r in holysheep_env.requests if r.path.endswith("/completions")]) == 2
    )
