"""The holysheep CLI, each command run as a subprocess.

Without HOLYSHEEP_API_KEY every command runs against its built-in offline
gateway; with a (fake) key and ``--base-url`` it talks to the test gateway.
"""

import json
import os
import subprocess
import sys

import pytest

from langchain_holysheep.testing import Fault

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


def run_cli(*args, key=None, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.cli", *args],
        capture_output=True,
        text=True,
        env=_env(key),
        input=stdin,
        timeout=120,
        check=False,
    )


def test_demo_runs_offline_with_labelled_sections():
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "OFFLINE" in out
    assert "OFFLINE" in result.stderr
    assert "HOLYSHEEP_API_KEY is not set" in result.stderr
    positions = [
        out.index(title)
        for title in (
            "== 1. Invoke ==",
            "== 2. Streaming",
            "== 3. Async batch ==",
            "Usage, cost and latency",
        )
    ]
    assert positions == sorted(positions)
    assert out.count("usage: ") == 5
    assert "TTFT" in out
    assert "cost $0.0000" in out
    assert "mistral-small-2603 |        5 |      0 |" in out
    assert "5 calls" in out


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


def test_bad_arguments_exit_2_with_one_line():
    result = run_cli("bench", "--concurrency", "0")
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
