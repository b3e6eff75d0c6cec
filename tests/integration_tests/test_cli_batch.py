"""``holysheep batch`` as a user runs it: a real subprocess against the offline gateway.

The gateway runs in the test process (the ``holysheep_gateway`` fixture); the
command is ``python -m langchain_holysheep.cli batch ... --base-url <gateway>``
with a fake key in its environment, so the gateway's request log counts what
each run sent.
"""

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from langchain_holysheep.batch._budget import budget_key
from langchain_holysheep.batch._cost import worst_case_nano
from langchain_holysheep.batch._summary import format_usd
from langchain_holysheep.batch._types import EXIT_BUDGET, nano_to_usd, usd_to_nano
from langchain_holysheep.pricing import load_price_table
from langchain_holysheep.testing import Fault, Reply
from tests.redis_support import SHARED_REDIS_URL, client, namespace_on_shared_redis

FAKE_KEY = "cr_batch_cli_secret_key_0123456789abcdef"
CHAT_PATH = "/v1/chat/completions"


def env(key=FAKE_KEY):
    variables = {k: v for k, v in os.environ.items() if not k.startswith("HOLYSHEEP_")}
    if key is not None:
        variables["HOLYSHEEP_API_KEY"] = key
    return variables


def argv(gw, source, target, *extra):
    return [
        sys.executable, "-m", "langchain_holysheep.cli", "batch", str(source),
        "--output", str(target), "--base-url", gw.base_url, *extra,
    ]  # fmt: skip


def run_batch(gw, source, target, *extra, key=FAKE_KEY):
    return subprocess.run(
        argv(gw, source, target, *extra),
        capture_output=True,
        text=True,
        env=env(key),
        timeout=180,
        check=False,
    )


def write_input(path, count, *, model="gpt-4.1"):
    with path.open("w", encoding="utf-8") as file:
        for n in range(count):
            line = {
                "custom_id": f"q{n:04d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": model,
                    "messages": [{"role": "user", "content": f"Question {n}?"}],
                    "max_tokens": 20,
                },
            }
            file.write(json.dumps(line) + "\n")
    return path


def chat_requests(gw):
    return [r for r in gw.requests if r.path == CHAT_PATH]


def output_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def sent_prompts(gw):
    return [r.body["messages"][-1]["content"] for r in chat_requests(gw)]


def test_every_line_is_answered_once(gw, tmp_path):
    source = write_input(tmp_path / "in.jsonl", 25)
    target = tmp_path / "out.jsonl"
    result = run_batch(gw, source, target, "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    lines = output_lines(target)
    assert sorted(line["custom_id"] for line in lines) == [
        f"q{n:04d}" for n in range(25)
    ]
    for line in lines:
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["body"]["choices"][0]["message"]["content"]
        assert line["model"] == "gpt-4.1"
        assert line["attempts"] == 1
        assert line["cost_usd"] > 0
    # Each request went out once, with the body as the line gave it.
    assert sorted(sent_prompts(gw)) == sorted(f"Question {n}?" for n in range(25))
    assert {r.body["max_tokens"] for r in chat_requests(gw)} == {20}
    assert result.stdout.strip()
    for text in (result.stdout, result.stderr, target.read_text()):
        assert FAKE_KEY not in text


def test_a_rerun_sends_nothing(gw, tmp_path):
    source = write_input(tmp_path / "in.jsonl", 10)
    target = tmp_path / "out.jsonl"
    assert run_batch(gw, source, target, "--quiet").returncode == 0
    first = target.read_text()
    sent = len(chat_requests(gw))
    assert sent == 10
    again = run_batch(gw, source, target, "--quiet")
    assert again.returncode == 0, again.stderr
    assert len(chat_requests(gw)) == sent
    assert target.read_text() == first


def test_a_partial_output_sends_only_the_rest(gw, tmp_path):
    source = write_input(tmp_path / "in.jsonl", 10)
    target = tmp_path / "out.jsonl"
    assert run_batch(gw, source, target, "--quiet").returncode == 0
    torn, *rest = target.read_text().splitlines(keepends=True)
    kept = [ln for ln in rest if json.loads(ln)["custom_id"] not in {"q0003", "q0007"}]
    # Two lines gone, and an interrupted write: one line torn in half at the end.
    target.write_text("".join(kept) + torn[: len(torn) // 2])
    torn_id = json.loads(torn)["custom_id"]
    before = len(chat_requests(gw))
    result = run_batch(gw, source, target, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "torn last line" in result.stderr
    resent = sent_prompts(gw)[before:]
    expected = {"Question 3?", "Question 7?", f"Question {int(torn_id[1:])}?"}
    assert sorted(resent) == sorted(expected)
    ids = [line["custom_id"] for line in output_lines(target)]
    assert sorted(ids) == [f"q{n:04d}" for n in range(10)]


def failed_run(gw, tmp_path):
    """A run whose every line is an error line; returns (input, output)."""
    source = write_input(tmp_path / "in.jsonl", 3)
    target = tmp_path / "out.jsonl"
    gw.set_default(Fault(status=400, message="this request is refused"))
    result = run_batch(gw, source, target, "--quiet", "--retries", "0")
    assert result.returncode == 1, result.stderr
    lines = output_lines(target)
    assert len(lines) == 3
    assert all(line["error"] is not None for line in lines)
    assert all(line["response"]["status_code"] == 400 for line in lines)
    gw.set_default(None)
    return source, target


def test_error_lines_count_as_done(gw, tmp_path):
    source, target = failed_run(gw, tmp_path)
    sent, before = len(chat_requests(gw)), target.read_text()
    again = run_batch(gw, source, target, "--quiet")
    assert again.returncode in {0, 1}, again.stderr
    assert len(chat_requests(gw)) == sent
    assert target.read_text() == before


def test_a_rerun_over_error_lines_still_exits_1(gw, tmp_path):
    source, target = failed_run(gw, tmp_path)
    assert run_batch(gw, source, target, "--quiet").returncode == 1


def test_deleting_error_lines_retries_them(gw, tmp_path):
    source, target = failed_run(gw, tmp_path)
    lines = target.read_text().splitlines(keepends=True)
    target.write_text(lines[0])  # keep one error line, delete two
    sent = len(chat_requests(gw))
    result = run_batch(gw, source, target, "--quiet")
    assert len(chat_requests(gw)) == sent + 2
    assert result.returncode in {0, 1}
    ok = [line for line in output_lines(target) if line["error"] is None]
    assert len(ok) == 2


MALFORMED = [
    ("not json", "{oops"),
    ("duplicate id", None),
    (
        "stream",
        json.dumps(
            {
                "custom_id": "x",
                "body": {
                    "messages": [{"role": "user", "content": "a"}],
                    "stream": True,
                },
            }
        ),
    ),
    (
        "embeddings",
        json.dumps(
            {
                "custom_id": "x",
                "url": "/v1/embeddings",
                "body": {"messages": [{"role": "user", "content": "a"}]},
            }
        ),
    ),
]


@pytest.mark.parametrize(("kind", "bad"), MALFORMED, ids=[k for k, _ in MALFORMED])
def test_malformed_input_exits_2_and_sends_nothing(gw, tmp_path, kind, bad):
    source = write_input(tmp_path / "in.jsonl", 5)
    lines = source.read_text().splitlines()
    lines[3] = lines[1] if bad is None else bad
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.jsonl"
    result = run_batch(gw, source, target)
    assert result.returncode == 2, (kind, result.stderr)
    [message] = result.stderr.strip().splitlines()
    assert f"{source}:4: " in message
    assert chat_requests(gw) == []
    assert not target.exists() or target.read_text() == ""


def test_output_equal_to_input_exits_2(gw, tmp_path):
    source = write_input(tmp_path / "in.jsonl", 2)
    before = source.read_text()
    result = run_batch(gw, source, source)
    assert result.returncode == 2
    assert "the output is the input file" in result.stderr
    assert source.read_text() == before
    assert chat_requests(gw) == []


def test_no_key_exits_2_and_sends_nothing(gw, tmp_path):
    source = write_input(tmp_path / "in.jsonl", 2)
    result = subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.cli", "batch", str(source),
         "-o", str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, env=env(None), timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "HOLYSHEEP_API_KEY is not set" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_offline_answers_every_line(tmp_path):
    source = write_input(tmp_path / "in.jsonl", 4, model="mistral-small-2603")
    target = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.cli", "batch", str(source),
         "-o", str(target), "--offline", "--quiet"],
        capture_output=True, text=True, env=env(None), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "OFFLINE" in result.stderr
    assert len(output_lines(target)) == 4


def wait_for_lines(path, count, process, deadline_s=60.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended early: {process.returncode}")
        time.sleep(0.02)
    pytest.fail("the run wrote too few lines in time")


def test_kill_9_mid_run_then_resume(gw, tmp_path):
    total, concurrency = 60, 4
    source = write_input(tmp_path / "in.jsonl", total)
    target = tmp_path / "out.jsonl"
    # Each answer takes a while, so the kill lands with requests in flight.
    gw.set_default(Reply(content="Slow answer.", delay_before_headers=0.15))
    process = subprocess.Popen(
        argv(gw, source, target, "--concurrency", str(concurrency), "--quiet"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    try:
        wait_for_lines(target, total // 3, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    written = {line["custom_id"] for line in output_lines_tolerant(target)}
    assert total // 3 <= len(written) < total
    first_run = len(chat_requests(gw))

    result = run_batch(gw, source, target, "--concurrency", str(concurrency), "--quiet")
    assert result.returncode == 0, result.stderr
    ids = [line["custom_id"] for line in output_lines(target)]
    assert sorted(ids) == [f"q{n:04d}" for n in range(total)]  # each exactly once
    assert first_run >= len(written)
    # Sent twice: only what was in flight when the kill landed.
    resent = len(chat_requests(gw)) - total
    assert 0 <= resent <= concurrency


def output_lines_tolerant(path):
    """The whole lines of an output a killed run left (a torn last one left out)."""
    return [
        json.loads(raw)
        for raw in path.read_text().splitlines(keepends=True)
        if raw.endswith("\n")
    ]


# ------------------------------------------------------------------- budget


def one_request_worst_case_nano(source):
    """The worst case the budget reserves for one line of ``source``."""
    body = json.loads(source.read_text().splitlines()[0])["body"]
    return worst_case_nano(body, body["model"], load_price_table())


def spent_nano(path):
    """What the lines of an output say they cost, in nano-dollars (exact)."""
    lines = [
        json.loads(raw, parse_float=Decimal) for raw in path.read_text().splitlines()
    ]
    return sum(usd_to_nano(line["cost_usd"]) for line in lines)


def test_the_budget_stops_the_run_with_exit_3_and_says_what_was_spent(gw, tmp_path):
    source = write_input(tmp_path / "in.jsonl", 200)
    target = tmp_path / "out.jsonl"
    limit = nano_to_usd(one_request_worst_case_nano(source) * 12)
    result = run_batch(
        gw, source, target, "--budget-usd", str(limit), "--concurrency", "4"
    )
    assert result.returncode == EXIT_BUDGET, result.stderr
    answered = output_lines(target)
    assert 12 <= len(answered) < 200
    assert all(line["error"] is None for line in answered)
    assert len(chat_requests(gw)) == len(answered)  # nothing sent went unwritten
    assert spent_nano(target) <= usd_to_nano(limit)
    message = result.stdout + result.stderr
    assert "Stopped by the budget" in message
    assert f"of the {format_usd(limit)} budget" in message
    assert f"{200 - len(answered)} request(s) not sent" in message
    assert "--budget-usd" in message


def start_batch(gw, source, target, *extra):
    return subprocess.Popen(
        argv(gw, source, target, *extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def run_two_workers(gw, tmp_path, *extra):
    """Two ``holysheep batch`` processes at once, each on its own 200 lines."""
    # Slow answers (2 in flight each: about 40 a second per worker), so the budget
    # lasts seconds and the two runs overlap even if one starts late.
    gw.set_default(Reply(content="Slow answer.", delay_before_headers=0.05))
    jobs = []
    for name in ("a", "b"):
        source = write_input(tmp_path / f"{name}.jsonl", 200)
        target = tmp_path / f"{name}-out.jsonl"
        jobs.append((target, start_batch(gw, source, target, *extra)))
    outcomes = []
    try:
        for target, process in jobs:
            stdout, stderr = process.communicate(timeout=180)
            outcomes.append((process.returncode, stdout + stderr, target))
    finally:
        for _, process in jobs:
            if process.poll() is None:
                process.kill()
                process.wait()
    return outcomes


def test_two_workers_on_one_redis_share_one_budget(gw, tmp_path):
    worst = one_request_worst_case_nano(write_input(tmp_path / "probe.jsonl", 1))
    limit = nano_to_usd(worst * 10)
    with namespace_on_shared_redis() as namespace:
        outcomes = run_two_workers(
            gw, tmp_path,
            "--budget-usd", str(limit), "--redis-url", SHARED_REDIS_URL,
            "--namespace", namespace, "--concurrency", "2", "--quiet",
        )  # fmt: skip
        stored = client().hgetall(budget_key(namespace, FAKE_KEY))
    for status, message, _ in outcomes:
        assert status == EXIT_BUDGET, message
        assert "Stopped by the budget" in message
    spent = [spent_nano(target) for _, _, target in outcomes]
    assert all(each > 0 for each in spent)  # both workers spent from it
    assert sum(spent) <= usd_to_nano(limit)  # and together never past it
    assert int(stored[b"spent"]) == sum(spent)
    assert int(stored[b"reserved"]) == 0
    answered = sum(len(output_lines(target)) for _, _, target in outcomes)
    assert answered == len(chat_requests(gw))


def test_without_redis_each_worker_spends_its_own_budget(gw, tmp_path):
    """The control for the test above: the same two runs, no shared budget."""
    worst = one_request_worst_case_nano(write_input(tmp_path / "probe.jsonl", 1))
    limit = nano_to_usd(worst * 10)
    outcomes = run_two_workers(
        gw, tmp_path, "--budget-usd", str(limit), "--concurrency", "4", "--quiet"
    )
    assert [status for status, _, _ in outcomes] == [EXIT_BUDGET, EXIT_BUDGET]
    spent = [spent_nano(target) for _, _, target in outcomes]
    assert all(each <= usd_to_nano(limit) for each in spent)
    assert sum(spent) > usd_to_nano(limit)
