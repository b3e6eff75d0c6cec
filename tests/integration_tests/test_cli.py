"""The holysheep CLI.

Most commands run in this process through ``cli.main`` (fast); the offline demo and
an argument error also run as real ``python -m langchain_holysheep.cli``
subprocesses, so the entry point, its exit status and its output streams are
covered as a user meets them.

Without HOLYSHEEP_API_KEY every command runs against its built-in offline
gateway; with a (fake) key and ``--base-url`` it talks to the test gateway.
"""

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from unittest import mock

import pytest

from langchain_holysheep import cli
from langchain_holysheep.testing import Fault, Reply, ToolCall

FAKE_KEY = "cr_fake_secret_key_0123456789abcdef"


def _env(key=None):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HOLYSHEEP_API_KEY", "HOLYSHEEP_BASE_URL"}
    }
    if key is not None:
        env["HOLYSHEEP_API_KEY"] = key
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args, key=None, stdin=None) -> Run:
    """``holysheep *args`` in this process, with its own environment and streams."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, _env(key), clear=True),
        mock.patch("sys.stdin", io.StringIO(stdin or "")),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
    return Run(code, out.getvalue(), err.getvalue())


def run_cli_process(*args, key=None, stdin=None):
    """``python -m langchain_holysheep.cli *args``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.cli", *args],
        capture_output=True,
        text=True,
        env=_env(key),
        input=stdin,
        timeout=120,
        check=False,
    )


DEMO_TITLES = (
    "== 1. Invoke ==",
    "== 2. Streaming (tokens as they arrive) ==",
    "== 3. Async batch ==",
    "== 4. Tool call ==",
    "== 5. Structured extraction ==",
    "== 6. Fallback ==",
    "== 7. RAG (retrieval-augmented generation) ==",
    "== 8. Usage, cost and latency (all calls) ==",
)


def _sections(out):
    """The demo's output split by section title (titles in order, all present)."""
    positions = [out.index(title) for title in DEMO_TITLES]
    assert positions == sorted(positions)
    ends = [*positions[1:], len(out)]
    return {
        title: out[start:end]
        for title, start, end in zip(DEMO_TITLES, positions, ends, strict=True)
    }


@pytest.fixture(scope="module")
def offline_demo():
    """One offline ``holysheep demo`` subprocess, shared by the tests that read it."""
    return run_cli_process("demo")


def test_demo_runs_offline_with_labelled_sections(offline_demo):
    result = offline_demo
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OFFLINE" in out
    assert "OFFLINE" in result.stderr
    assert "HOLYSHEEP_API_KEY is not set" in result.stderr
    sections = _sections(out)
    assert out.count("usage: ") == 9
    assert "TTFT" in out
    assert "cost $0.0000" in out
    table = sections["== 8. Usage, cost and latency (all calls) =="]
    assert "gemini-2.5-flash   |        1 |" in table
    total = next(line for line in table.splitlines() if line.startswith("TOTAL"))
    calls = int(total.split("|")[1])
    assert calls >= 11
    assert f"{calls} calls" in table


def test_demo_async_batch_prints_whole_multiline_answers(offline_demo):
    """Regression: only the first line of the haiku was printed."""
    result = offline_demo
    assert result.returncode == 0, result.stderr
    batch = _sections(result.stdout)["== 3. Async batch =="]
    assert (
        "  -> Tokens drift like snow,\n"
        "     the gateway counts every flake,\n"
        "     the bill stays quite small.\n"
    ) in batch
    assert "Flocks stay together because a lone sheep is an easy target." in batch


def test_demo_offline_tool_structured_fallback_and_rag_steps(offline_demo):
    result = offline_demo
    assert result.returncode == 0, result.stderr
    sections = _sections(result.stdout)

    tools = sections["== 4. Tool call =="]
    assert "llm.bind_tools([get_weather])" in tools
    assert 'get_weather({"city": "Paris"})' in tools
    assert 'ToolMessage({"city": "Paris", "temperature_c": 18' in tools
    assert "final answer:" in tools
    assert "take an umbrella: it is 18 °C in Paris with light rain" in tools
    assert tools.count("usage: ") == 2

    structured = sections["== 5. Structured extraction =="]
    assert "llm.with_structured_output(SupportTicket)" in structured
    assert (
        "SupportTicket(customer='Ana Silva', email='ana@lisbontiles.pt', "
        "category='billing', urgent=True" in structured
    )
    assert (
        "SupportTicket(customer='Tom Becker', email=None, category='question', "
        "urgent=False" in structured
    )

    fallback = sections["== 6. Fallback =="]
    assert ".with_model_fallbacks(['gemini-2.5-flash'])" in fallback
    assert "HTTP 503 for mistral-small-2603 (injected)" in fallback
    assert "served by: gemini-2.5-flash" in fallback
    assert "failed attempts: 1" in fallback
    assert "mistral-small-2603: HolySheepServerError (HTTP 503)" in fallback
    assert "falling over to gemini-2.5-flash" in result.stderr

    rag = sections["== 7. RAG (retrieval-augmented generation) =="]
    assert "HolySheepEmbeddings(model='text-embedding-3-small')" in rag
    assert "10 chunks from 5 documents" in rag
    retrieved = [line.strip() for line in rag.splitlines() if "] score " in line]
    assert len(retrieved) == 2
    assert retrieved[0].startswith("[Fallback chains #1] score ")
    assert "[Fallback chains]." in rag
    assert rag.count("usage: ") == 1


TICKET = {
    "customer": "Ana Silva",
    "email": None,
    "category": "billing",
    "urgent": True,
    "summary": "Charged twice.",
}


def _model_like(body):
    """Answer like a capable model: call tools, fill schemas, else plain text."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return Reply(tool_calls=[ToolCall(choice["function"]["name"], TICKET)])
    if (body.get("response_format") or {}).get("type") == "json_schema":
        return Reply(content=json.dumps(TICKET))
    if body.get("tools") and body["messages"][-1]["role"] != "tool":
        return Reply(tool_calls=[ToolCall("get_weather", {"city": "Lisbon"})])
    return Reply(content="A real-looking answer.\nOn two lines.")


@pytest.mark.parametrize("model", ["mistral-small-2603", "deepseek-v3.2"])
def test_demo_online_path_runs_every_step_without_injected_failures(
    holysheep_gateway, model
):
    holysheep_gateway.set_responder(_model_like)
    result = run_cli(
        "demo", "--model", model, "--base-url", holysheep_gateway.base_url, key=FAKE_KEY
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OFFLINE" not in out + result.stderr
    assert FAKE_KEY not in out + result.stderr
    sections = _sections(out)
    tools = sections["== 4. Tool call =="]
    assert 'get_weather({"city": "Lisbon"})' in tools
    assert 'ToolMessage({"city": "Lisbon", "temperature_c": 24' in tools
    tool_turns = [
        r.body["messages"]
        for r in holysheep_gateway.requests
        if r.body and r.body.get("tools") and r.body["messages"][-1]["role"] == "tool"
    ]
    assert len(tool_turns) == 1
    assert '"temperature_c": 24' in tool_turns[0][-1]["content"]
    assert (
        sections["== 5. Structured extraction =="].count(
            "SupportTicket(customer='Ana Silva'"
        )
        == 2
    )
    fallback = sections["== 6. Fallback =="]
    assert "no failure is injected" in fallback
    assert "served by: mistral-small-2603" in fallback
    assert "failed attempts: 0" in fallback
    rag = sections["== 7. RAG (retrieval-augmented generation) =="]
    assert "offline:" not in rag
    assert any(r.path == "/v1/embeddings" for r in holysheep_gateway.requests)
    assert "  -> A real-looking answer.\n     On two lines.\n" in rag


def test_demo_unparsable_structured_answer_exits_1_with_one_line(holysheep_gateway):
    holysheep_gateway.set_responder(
        lambda body: Reply(content="not json") if "Ana Silva" in str(body) else None
    )
    result = run_cli("demo", "--base-url", holysheep_gateway.base_url, key=FAKE_KEY)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        "holysheep demo: error: structured extraction: the model's answer is not "
        "a valid SupportTicket:"
    )
    assert "== 6. Fallback ==" not in result.stdout


def test_chat_streams_the_answer_then_usage_cost_latency():
    result = run_cli("chat", "Tell me about sheep", "--model", "gpt-4.1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Sheep are grazing animals")
    assert "[gpt-4.1]" in result.stderr
    assert "out tokens" in result.stderr
    assert "(price table)" in result.stderr
    assert "TTFT" in result.stderr


def test_chat_no_stream_with_system_and_stdin_prompt():
    result = run_cli("chat", "-", "--no-stream", "--system", "be brief", stdin="Paris?")
    assert result.returncode == 0, result.stderr
    assert "capital of France is Paris" in result.stdout
    assert "TTFT" not in result.stderr
    assert "total" in result.stderr


def test_chat_empty_prompt_is_a_one_line_error():
    result = run_cli("chat", "   ")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "holysheep chat: error: the prompt is empty"
    )


def test_wrong_model_id_fails_offline_with_suggestions():
    result = run_cli("chat", "hi", "--model", "Mistral-Small-2603")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert "Did you mean 'mistral-small-2603'?" in last
    assert "case-sensitive" in last


def test_models_table_and_json():
    table = run_cli("models", "--offline")
    assert table.returncode == 0, table.stderr
    assert "OFFLINE (--offline)" in table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("gpt-4.1"))
    assert "3.00" in row
    assert "8.00" in row
    listing = run_cli("models", "--json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["id"]: r for r in json.loads(listing.stdout)}
    assert rows["mistral-small-2603"]["input_per_million"] == 0.2
    assert rows["mistral-small-2603"]["output_per_million"] == 0.6
    assert rows["text-embedding-3-small"]["input_per_million"] is None


def test_bench_reports_percentiles_and_progress():
    result = run_cli("bench", "--requests", "6", "--concurrency", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["requests"] == 6
    assert report["errors"] == 0
    assert report["offline"] is True
    for key in ("ttft_ms", "total_ms"):
        assert report[key]["p50"] <= report[key]["p95"] <= report[key]["p99"]
    assert report["total_ms"]["p50"] >= report["ttft_ms"]["p50"] > 0
    assert report["tokens_per_s"]["p50"] > 0
    assert report["output_tokens"] > 0
    assert "bench: 6/6 done, 0 errors" in result.stderr


def test_bench_text_report():
    result = run_cli("bench", "--requests", "2", "--concurrency", "2")
    assert result.returncode == 0, result.stderr
    assert "TTFT (ms)" in result.stdout
    assert "p95" in result.stdout
    assert "0 errors" in result.stdout


def test_cost_runs_without_any_gateway():
    result = run_cli(
        "cost",
        "--requests-per-month",
        "100000",
        "--input-tokens",
        "1000",
        "--output-tokens",
        "250",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    costs = {row["model"]: row for row in document["models"]}
    # 1e8 * 3.00 / 1e6 + 2.5e7 * 15.00 / 1e6 = 300 + 375
    assert costs["claude-sonnet-4.5"]["monthly_usd"] == 675.0
    assert document["reference"] == "claude-sonnet-4.5"
    # 1e8 * 0.07 / 1e6 + 2.5e7 * 0.42 / 1e6 = 7 + 10.5
    assert costs["deepseek-v3.2"]["monthly_usd"] == 17.5
    assert costs["deepseek-v3.2"]["saving_usd"] == 657.5
    assert result.stderr == ""


@pytest.mark.parametrize("run", [run_cli, run_cli_process])
def test_bad_arguments_exit_2_with_one_line(run):
    result = run("bench", "--concurrency", "0")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_base_url_without_a_key_is_refused():
    result = run_cli("chat", "hi", "--base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert "HOLYSHEEP_API_KEY" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("chat", "hello"),
        ("chat", "hello", "--no-stream"),
        ("models",),
        ("bench", "--requests", "2"),
    ],
)
def test_key_never_printed_against_a_real_gateway(holysheep_gateway, args):
    result = run_cli(*args, "--base-url", holysheep_gateway.base_url, key=FAKE_KEY)
    assert result.returncode == 0, result.stderr
    assert "OFFLINE" not in result.stderr
    assert FAKE_KEY not in result.stdout + result.stderr
    assert FAKE_KEY[3:] not in result.stdout + result.stderr
    assert holysheep_gateway.requests
    assert all(
        r.headers["authorization"] == f"Bearer {FAKE_KEY}"
        for r in holysheep_gateway.requests
    )


def test_failed_request_exits_1_with_a_masked_one_line_error(holysheep_gateway):
    holysheep_gateway.enqueue(
        Fault(status=401, message=f"Incorrect API key provided: {FAKE_KEY}.")
    )
    result = run_cli(
        "chat", "hello", "--base-url", holysheep_gateway.base_url, key=FAKE_KEY
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "Incorrect API key" in lines[0]
    assert FAKE_KEY not in result.stdout + result.stderr


def test_bench_errors_exit_1(holysheep_gateway):
    holysheep_gateway.set_default(Fault(status=503))
    result = run_cli(
        "bench",
        "--requests",
        "2",
        "--base-url",
        holysheep_gateway.base_url,
        key=FAKE_KEY,
    )
    assert result.returncode == 1
    assert "2 of 2 requests failed" in result.stderr
    assert "2 errors" in result.stdout
