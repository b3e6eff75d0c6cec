"""Bulk runs on Ray: a real local Ray (two CPUs), real HTTP to the offline gateway.

The shards are Ray actors in their own processes; the gateway (the session
fixture, on 127.0.0.1 in this process) is reachable from them. One local Ray is
started for the module and shut down at its end.
"""

import json
import logging
import os
import subprocess
import sys

# Ray's `uv run` hook (on by default when an ancestor process is `uv run`) would
# build a fresh virtualenv for the workers and upload the working directory;
# a local Ray can use this interpreter as it is. Ray reads it when imported.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

import pytest
import ray

from langchain_holysheep.batch._budget import budget_key
from langchain_holysheep.batch._engine import BatchSettings
from langchain_holysheep.batch._ray import (
    RAY_EXTRA_HINT,
    import_ray,
    run_on_ray,
    shard_settings,
)
from langchain_holysheep.batch._types import BatchRequest, nano_to_usd, usd_to_nano
from langchain_holysheep.errors import HolySheepInputError
from langchain_holysheep.testing.pytest_plugin import OFFLINE_API_KEY

MODEL = "mistral-small-2603"

# Ray Data's DataContext() sets three deprecated fields to their defaults when it
# is created (ray/data/context.py: `use_push_based_shuffle`, `use_polars`,
# `use_arrow_tensor_v2`), each a DeprecationWarning attributed to that module.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def local_ray():
    # The workers inherit this process's environment when Ray starts: the key.
    saved = os.environ.get("HOLYSHEEP_API_KEY")
    os.environ["HOLYSHEEP_API_KEY"] = OFFLINE_API_KEY
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("HOLYSHEEP_API_KEY", None)
        else:
            os.environ["HOLYSHEEP_API_KEY"] = saved


def requests(count, start=0, **body):
    for index in range(start, start + count):
        yield BatchRequest(
            custom_id=f"req-{index}",
            body={
                "model": MODEL,
                "messages": [{"role": "user", "content": f"question {index}"}],
                **body,
            },
            line_no=index + 1,
        )


def settings(gw, **changes):
    return BatchSettings(
        **{
            "model": None,
            "base_url": gw.base_url,
            "concurrency": 4,
            "retries": 0,
            **changes,
        }
    )


def answer_text(line):
    data = json.loads(line)
    return data["response"]["body"]["choices"][0]["message"]["content"]


# ------------------------------------------------------------- without Ray


def test_without_redis_the_keys_rates_are_split_between_the_shards():
    base = BatchSettings(
        model=MODEL, concurrency=7, requests_per_minute=90, tokens_per_minute=None
    )
    shards = shard_settings(base, 3)
    assert [s.requests_per_minute for s in shards] == [30, 30, 30]
    assert all(s.tokens_per_minute is None for s in shards)
    # Concurrency is per shard, as it is per process.
    assert all(s.concurrency == 7 for s in shards)
    assert all(s.model == MODEL for s in shards)


def test_with_redis_every_shard_books_against_the_whole_rate():
    base = BatchSettings(
        model=MODEL,
        concurrency=8,
        requests_per_minute=10,
        tokens_per_minute=5000,
        redis_url="redis://127.0.0.1:6379/0",
    )
    shards = shard_settings(base, 2)
    assert shards == [base, base]


def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(HolySheepInputError) as caught:
        import_ray()
    assert "langchain-holysheep[ray]" in str(caught.value)
    assert str(caught.value) == RAY_EXTRA_HINT


@pytest.mark.parametrize(
    ("workers", "chunk_size", "address", "match"),
    [
        (0, None, None, "workers"),
        (True, None, None, "workers"),
        (2, 0, None, "chunk_size"),
        (2, None, "  ", "address"),
    ],
)
def test_bad_arguments_are_refused_before_ray_starts(
    gw, workers, chunk_size, address, match
):
    with pytest.raises(HolySheepInputError, match=match):
        run_on_ray(
            requests(1),
            settings(gw),
            on_result=print,
            budget_usd=None,
            address=address,
            workers=workers,
            chunk_size=chunk_size,
        )
    assert gw.requests == []


# ---------------------------------------------------------------- on Ray


def test_two_shards_answer_every_request_once(local_ray, gw, caplog):
    results = []
    caplog.set_level(logging.INFO, logger="langchain_holysheep.batch._ray")
    stats = run_on_ray(
        requests(120),
        settings(gw),
        on_result=results.append,
        budget_usd=None,
        address=None,
        workers=2,
        chunk_size=10,
    )
    assert stats.sent == 120
    assert not stats.budget_stopped
    ids = [result.custom_id for result in results]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(120))
    assert all(result.ok for result in results)
    for result in results:
        index = result.custom_id.removeprefix("req-")
        assert answer_text(result.line).endswith(f"question {index}")
    sent = [r.body["messages"][0]["content"] for r in gw.requests]
    assert sorted(sent) == sorted(f"question {i}" for i in range(120))
    # Two shards, each in a process of its own, neither of them this one.
    started = [r.getMessage() for r in caplog.records if "shard" in r.getMessage()]
    assert len(started) == 2
    pids = {message.split("process ")[1].split()[0] for message in started}
    assert len(pids) == 2
    assert str(os.getpid()) not in pids


def test_the_driver_reads_the_input_a_chunk_at_a_time(local_ray, gw):
    taken = 0
    answered = 0
    unanswered = []

    def counted():
        nonlocal taken
        for request in requests(200):
            taken += 1
            yield request

    def on_result(result):
        nonlocal answered
        answered += 1
        unanswered.append(taken - answered)

    run_on_ray(
        counted(),
        settings(gw),
        on_result=on_result,
        budget_usd=None,
        address=None,
        workers=2,
        chunk_size=10,
    )
    assert taken == answered == 200
    # Read but not answered yet: never more than one chunk per shard.
    assert max(unanswered) <= 2 * 10
    assert len(gw.requests) == 200


def worst_case_usd(requests_each):
    from langchain_holysheep.batch._cost import worst_case_nano
    from langchain_holysheep.pricing import load_price_table

    body = next(requests(1, max_tokens=16)).body
    return nano_to_usd(worst_case_nano(body, MODEL, load_price_table()) * requests_each)


def test_a_budget_without_redis_is_one_budget_for_every_shard(local_ray, gw):
    results = []
    budget = worst_case_usd(25)
    limit_nano = usd_to_nano(budget)
    stats = run_on_ray(
        requests(400, max_tokens=16),
        settings(gw, budget_usd=budget),
        on_result=results.append,
        budget_usd=budget,
        address=None,
        workers=2,
        chunk_size=20,
    )
    assert stats.budget_stopped
    assert 0 < len(results) < 400
    assert stats.sent == len(results)
    spent = sum(result.cost_nano for result in results)
    assert all(result.priced for result in results)
    assert 0 < spent <= limit_nano


def test_a_budget_on_redis_is_shared_by_every_shard(local_ray, gw):
    from tests.redis_support import (
        SHARED_REDIS_URL,
        client,
        namespace_on_shared_redis,
    )

    results = []
    budget = worst_case_usd(25)
    limit_nano = usd_to_nano(budget)
    with namespace_on_shared_redis() as namespace:
        stats = run_on_ray(
            requests(400, max_tokens=16),
            settings(
                gw,
                budget_usd=budget,
                redis_url=SHARED_REDIS_URL,
                namespace=namespace,
            ),
            on_result=results.append,
            budget_usd=budget,
            address=None,
            workers=2,
            chunk_size=20,
        )
        stored = client().hgetall(budget_key(namespace, OFFLINE_API_KEY))
    assert stats.budget_stopped
    assert 0 < len(results) < 400
    assert stats.sent == len(results) == len(gw.requests)
    spent = sum(result.cost_nano for result in results)
    assert 0 < spent <= limit_nano
    # Both shards booked on the one Redis budget: it holds what they all spent.
    assert int(stored[b"spent"]) == spent
    assert int(stored[b"reserved"]) == 0


def test_a_ray_data_pipeline_answers_each_row(local_ray, gw):
    from langchain_holysheep.batch._ray_data import HolySheepChatCompletions

    rows = [
        {
            "custom_id": f"row-{i}",
            "body": json.dumps(
                {"model": MODEL, "messages": [{"role": "user", "content": f"q{i}"}]}
            ),
        }
        for i in range(20)
    ]
    rows.append({"custom_id": "bad", "body": json.dumps({"model": MODEL})})
    dataset = ray.data.from_items(rows)
    answered = dataset.map_batches(
        HolySheepChatCompletions,
        fn_constructor_kwargs={"base_url": gw.base_url, "concurrency": 4},
        compute=ray.data.ActorPoolStrategy(size=2),
        batch_size=5,
    ).take_all()
    by_id = {row["custom_id"]: row for row in answered}
    assert sorted(by_id) == sorted(row["custom_id"] for row in rows)
    for i in range(20):
        row = by_id[f"row-{i}"]
        assert row["error"] is None
        completion = json.loads(row["response"])
        assert completion["choices"][0]["message"]["content"].endswith(f"q{i}")
        assert row["model"]
        assert row["latency_ms"] > 0
    bad = by_id["bad"]
    assert bad["response"] is None
    assert json.loads(bad["error"])["code"] == "invalid_request"
    assert "messages" in json.loads(bad["error"])["message"]
    assert len(gw.requests) == 20


def test_dict_bodies_come_back_from_arrow_as_they_were_sent(local_ray, gw):
    from langchain_holysheep.batch._ray_data import HolySheepChatCompletions

    rows = [
        {
            "custom_id": "with-max",
            "body": {
                "model": MODEL,
                "messages": [{"role": "user", "content": "a"}],
                "max_tokens": 5,
            },
        },
        {
            "custom_id": "without",
            "body": {
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "b"},
                ],
            },
        },
    ]
    answered = (
        ray.data.from_items(rows)
        .map_batches(
            HolySheepChatCompletions,
            fn_constructor_kwargs={"base_url": gw.base_url},
            compute=ray.data.ActorPoolStrategy(size=1),
            batch_size=10,
        )
        .take_all()
    )
    assert all(row["error"] is None for row in answered)
    sent = {r.body["messages"][-1]["content"]: r.body for r in gw.requests}
    assert sent["a"]["max_tokens"] == 5
    assert isinstance(sent["a"]["max_tokens"], int)
    assert "max_tokens" not in sent["b"]
    assert sent["b"]["messages"][0] == {"role": "system", "content": "be brief"}


# ------------------------------------------------- the whole run, --ray


def write_input(path, count):
    with path.open("w") as out:
        for request in requests(count):
            line = {
                "custom_id": request.custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": request.body,
            }
            out.write(json.dumps(line) + "\n")
    return path


def output_ids(path):
    return [json.loads(line)["custom_id"] for line in path.read_text().splitlines()]


def test_the_cli_with_ray_answers_every_line_once(gw, tmp_path):
    # A fresh process starts its own local Ray (two CPUs here: two shards).
    source = write_input(tmp_path / "in.jsonl", 150)
    output = tmp_path / "out.jsonl"
    env = {
        **os.environ,
        "HOLYSHEEP_API_KEY": OFFLINE_API_KEY,
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    }
    env.pop("RAY_ADDRESS", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "langchain_holysheep.cli",
            "batch",
            str(source),
            "--output",
            str(output),
            "--ray",
            "--concurrency",
            "4",
            "--base-url",
            gw.base_url,
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    ids = output_ids(output)
    assert len(ids) == 150
    assert sorted(ids) == sorted(f"req-{i}" for i in range(150))
    sent = sorted(r.body["messages"][0]["content"] for r in gw.requests)
    assert sent == sorted(f"question {i}" for i in range(150))
    assert OFFLINE_API_KEY not in output.read_text()
    assert OFFLINE_API_KEY not in completed.stdout + completed.stderr


def test_a_ray_run_resumes_after_a_partial_output(local_ray, gw, tmp_path):
    from langchain_holysheep.batch._api import run_batch
    from langchain_holysheep.batch._format import success_line

    source = write_input(tmp_path / "in.jsonl", 60)
    output = tmp_path / "out.jsonl"
    earlier = list(requests(21))

    def answered(request):
        body = {
            "id": "chatcmpl-earlier",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "from before"},
                    "finish_reason": "stop",
                }
            ],
        }
        return success_line(
            request,
            body,
            request_id=None,
            model=MODEL,
            cost_usd=None,
            latency_ms=1.0,
            attempts=1,
        )

    done = "".join(answered(request) for request in earlier[:20])
    torn = answered(earlier[20])[:50]  # a writer killed mid-line
    output.write_text(done + torn)

    summary = run_batch(
        source, output, ray=True, ray_workers=2, concurrency=4, base_url=gw.base_url
    )

    assert summary.already_done == 20
    assert summary.succeeded == 40
    assert summary.exit_status == 0
    text = output.read_text()
    assert text.startswith(done)  # what was whole stays as it was
    ids = output_ids(output)
    assert sorted(ids) == sorted(f"req-{i}" for i in range(60))
    sent = sorted(r.body["messages"][0]["content"] for r in gw.requests)
    assert sent == sorted(f"question {i}" for i in range(20, 60))

    gw.reset()
    again = run_batch(source, output, ray=True, ray_workers=2, base_url=gw.base_url)
    assert again.already_done == 60
    assert gw.requests == []
    assert output.read_text() == text
