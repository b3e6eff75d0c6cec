"""``holysheep status``: the fleet's state read from a real Redis.

The state is made by the real limiter and shared breaker in a namespace of the
test's own; the command runs as users run it, in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from langchain_holysheep import HolySheepRateLimiter
from langchain_holysheep.fallback import CircuitBreakerPolicy, SharedCircuitBreaker
from tests.redis_support import (
    SHARED_REDIS_URL,
    closed_port_url,
    namespace_on_shared_redis,
)

KEY = "cr_status_key_0123456789abcdef"


@pytest.fixture
def namespace():
    with namespace_on_shared_redis() as name:
        yield name


def status(*args, redis_url=SHARED_REDIS_URL):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"HOLYSHEEP_API_KEY", "HOLYSHEEP_REDIS_URL"}
    }
    env["HOLYSHEEP_API_KEY"] = KEY
    if redis_url is not None:
        env["HOLYSHEEP_REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "langchain_holysheep.cli", "status", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _fill(namespace):
    limiter = HolySheepRateLimiter(
        requests_per_minute=6,  # 10 s a request: the state lasts
        model_limits={"gpt-4.1": {"tokens_per_minute": 600}},
        redis_url=SHARED_REDIS_URL,
        namespace=namespace,
        api_key=KEY,
    )
    limiter.reserve(tokens=100, model="gpt-4.1")
    limiter.block(30, model="gpt-4.1")
    policy = CircuitBreakerPolicy(
        failure_threshold=1,
        cooldown=30,
        redis_url=SHARED_REDIS_URL,
        redis_namespace=namespace,
    )
    SharedCircuitBreaker(
        "deepseek-v3.2", "http://gw/v1", policy, SHARED_REDIS_URL
    ).record_failure()
    limiter.close()


def test_status_json_shows_limits_blocks_and_breakers(namespace):
    _fill(namespace)
    run = status("--namespace", namespace, "--requests-per-minute", "6", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    limits = {row["limit"]: row for row in data["limits"]}
    assert set(limits) == {"rpm", "m:gpt-4.1:tpm"}
    # One request at 6 a minute books 10 s; the command starts a little later.
    ahead = limits["rpm"]["booked_ahead_s"]
    assert 0 < ahead <= 10
    assert limits["rpm"]["per_minute"] == 6
    assert limits["rpm"]["used"] == pytest.approx(ahead * 6 / 60, abs=0.06)
    assert limits["rpm"]["remaining"] == pytest.approx(6 - ahead * 6 / 60, abs=0.06)
    assert limits["m:gpt-4.1:tpm"]["used"] is None  # its limit was not given
    (block,) = data["blocks"]
    assert block["model"] == "gpt-4.1"
    assert 10 < block["ends_in"] <= 30
    (breaker,) = data["breakers"]
    assert breaker["model"] == "deepseek-v3.2"
    assert breaker["state"] == "open"
    assert 10 < breaker["retry_in"] <= 30
    assert KEY not in run.stdout


def test_status_table(namespace):
    _fill(namespace)
    run = status("--namespace", namespace)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "booked ahead" in out
    assert "gpt-4.1" in out
    assert "deepseek-v3.2" in out
    assert "open" in out
    assert KEY not in out


def test_status_of_an_idle_namespace_says_all_is_free(namespace):
    run = status("--namespace", namespace)
    assert run.returncode == 0, run.stderr
    assert "all free" in run.stdout
    assert "none in Redis" in run.stdout


def test_status_without_redis_or_with_redis_down_says_so():
    run = status(redis_url=None)
    assert run.returncode == 2
    assert "HOLYSHEEP_REDIS_URL" in run.stderr
    down = closed_port_url().replace("127.0.0.1", ":hunter2@127.0.0.1")
    run = status(redis_url=down)
    assert run.returncode == 1
    assert "cannot read Redis" in run.stderr
    assert "hunter2" not in run.stderr
    run = status("--redis-url", "http://example.com")
    assert run.returncode == 2
    assert "not a Redis URL" in run.stderr
