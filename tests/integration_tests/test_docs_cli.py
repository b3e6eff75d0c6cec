"""The examples in docs/cli.md run: the python blocks and the shell commands.

Shell commands (``holysheep ...`` / ``uv run holysheep ...`` lines of the
```bash blocks) run as ``python -m langchain_holysheep.cli ...`` subprocesses
without ``HOLYSHEEP_API_KEY``, so they use the built-in offline gateway, whose
output is deterministic enough to compare with the page's sample output.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from langchain_holysheep import cli

DOC = Path(__file__).parents[2] / "docs" / "cli.md"


def _fenced(language):
    """The page's ```language blocks, list-item indentation removed."""
    pattern = re.compile(
        rf"^([ \t]*)```{language}\n(.*?)^\1```", re.DOTALL | re.MULTILINE
    )
    text = DOC.read_text(encoding="utf-8")
    return [textwrap.dedent(body) for _, body in pattern.findall(text)]


def _text_block(first_line_prefix):
    (block,) = [b for b in _fenced("text") if b.startswith(first_line_prefix)]
    return block


def documented_commands():
    """``(argv, stdin)`` for each shell command line of the page.

    Continuation lines are joined and optional ``[--flag VALUE]`` groups of the
    usage lines are dropped; ``echo "x" | holysheep ...`` feeds ``x`` on stdin.
    Lines that set environment variables (online runs) are left out.
    """
    commands = []
    for block in _fenced("bash"):
        for raw in block.replace("\\\n", " ").splitlines():
            stdin = None
            command = raw.strip()
            piped = re.fullmatch(r"echo (.+?) \| (.*)", command)
            if piped:
                stdin = shlex.split(piped.group(1))[0] + "\n"
                command = piped.group(2)
            command = command.removeprefix("uv run ")
            if not command.startswith("holysheep "):
                continue
            words = shlex.split(re.sub(r"\[[^\]]*\]", " ", command), comments=True)
            commands.append((words[1:], stdin))
    return commands


def run_cli(argv, stdin=None):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HOLYSHEEP_API_KEY", "HOLYSHEEP_BASE_URL", "HOLYSHEEP_PRICES_FILE"}
    }
    return subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_the_page_documents_every_command():
    names = {argv[0] for argv, _ in documented_commands()}
    assert names == {"demo", "chat", "models", "bench", "cost"}
    assert len(_fenced("python")) >= 2


@pytest.fixture(scope="module")
def runs():
    """Each documented command, run once offline (in parallel, they are independent)."""
    commands = {}
    for argv, stdin in documented_commands():
        key = argv[0] if stdin is None else f"{argv[0]} (stdin)"
        commands.setdefault(key, (argv, stdin))
    # The page's bench sample output: 6 requests, concurrency 3.
    bench, _ = commands["bench"]
    commands["bench"] = ([*bench, "--requests", "6", "--concurrency", "3"], None)
    commands["models --json"] = (["models", "--json"], None)
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {k: pool.submit(run_cli, *v) for k, v in commands.items()}
        return {k: f.result() for k, f in futures.items()}


def test_every_documented_command_exits_0_and_says_it_is_offline(runs):
    offline_notice = _text_block("holysheep: OFFLINE").strip()
    for name, result in runs.items():
        assert result.returncode == 0, (name, result.stderr)
        if name != "cost":  # cost sends no request
            assert offline_notice in result.stderr.splitlines(), name


def test_demo_output_matches_the_page(runs):
    out = runs["demo"].stdout
    assert out.startswith(
        "HolySheep demo (OFFLINE: built-in gateway, scripted replies)"
    )
    # Every line of the page's excerpt except the measured ones (tokens, ms).
    excerpt = _text_block("== 6. Fallback ==")
    lines = set(out.splitlines())
    stable = [ln for ln in excerpt.splitlines() if "usage:" not in ln]
    assert len(stable) >= 15
    for line in stable:
        assert line in lines
    assert "falling over to gemini-2.5-flash." in runs["demo"].stderr


def test_chat_streams_then_prints_the_summary_on_stderr(runs):
    for name in ("chat", "chat (stdin)"):
        result = runs[name]
        assert result.stdout.strip()
        assert re.search(
            r"^\[mistral-small-2603\] \d+ in / \d+ out tokens \| cost \$\d\.\d{6} "
            r"\(price table\) \| TTFT [\d.]+ ms, total [\d.]+ ms, \d+ tokens/s$",
            result.stderr,
            re.MULTILINE,
        )


def test_models_and_cost_print_the_tables_shown_on_the_page(runs):
    assert runs["models"].stdout == _text_block("model                  |")
    rows = {row["id"]: row for row in json.loads(runs["models --json"].stdout)}
    assert rows["gpt-4.1"]["input_per_million"] == 3.0
    assert rows["gpt-4.1"]["max_input_tokens"] == 1_047_576
    assert rows["text-embedding-3-small"]["input_per_million"] is None
    assert runs["cost"].stdout == _text_block("1,000,000 requests/month")


def test_bench_report(runs):
    out = runs["bench"].stdout
    assert out.startswith(
        "model mistral-small-2603 (offline gateway): "
        "6 requests, concurrency 3, 0 errors"
    )
    for row in ("TTFT (ms)         |", "total (ms)        |", "output (tokens/s) |"):
        assert row in out
    assert "output tokens in total" in out


def test_python_examples_run(holysheep_env, monkeypatch, capsys):
    steps = list(cli.DEMO_STEPS)
    namespace: dict = {"__name__": "docs_cli"}
    try:
        for number, code in enumerate(_fenced("python"), 1):
            try:
                exec(compile(code, f"{DOC.name}[block {number}]", "exec"), namespace)  # noqa: S102
            except Exception as error:
                pytest.fail(f"example {number} failed: {error!r}\n{code}")
        out = capsys.readouterr().out
        assert "'mistral-small-2603', 'gpt-4.1'" in out
        assert "['mistral-small-2603']" in out
        assert "Did you mean 'gpt-4.1'?" in out
        assert "('gpt-4.1',)" in out
        # validate_model stopped the typo before any chat request was sent.
        assert not [
            r for r in holysheep_env.requests if r.path.endswith("/completions")
        ]

        # The appended demo step runs after the built-in ones, offline.
        assert cli.DEMO_STEPS[-1].title == "Translation"
        for name in ("HOLYSHEEP_API_KEY", "HOLYSHEEP_BASE_URL"):
            monkeypatch.delenv(name)
        assert cli.main(["demo"]) == 0
        out = capsys.readouterr().out
        assert "== 8. Translation ==\n-> Bonjour tout le monde !\n" in out
        assert "== 9. Usage, cost and latency (all calls) ==" in out
    finally:
        cli.DEMO_STEPS[:] = steps
